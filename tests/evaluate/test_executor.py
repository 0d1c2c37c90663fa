import json
import os
import re
import signal
import socket
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import psutil
import pytest

from stoichnet.evaluate import executor
from stoichnet.evaluate.executor import Job, fingerprint, job_seed, run_jobs

CALLS: list[int] = []


def square(x: int) -> dict:
    CALLS.append(x)
    return {"x": x, "square": x * x}


def test_job_seed_depends_on_run_seed_and_key_only():
    assert job_seed(0, "fold=1/model=rf") == job_seed(0, "fold=1/model=rf")
    seeds = {job_seed(s, f"fold={k}") for s in (0, 1) for k in range(5)}
    assert len(seeds) == 10
    assert all(0 <= s < 2**32 for s in seeds)
    with pytest.raises(TypeError, match="run_seed must be an int"):
        job_seed("0", "a")


def test_fingerprint_is_canonical():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_finished_jobs_are_cached_and_not_recomputed(tmp_path):
    jobs = [Job(f"x={x}", square, {"x": x}, fingerprint("square", x)) for x in range(3)]
    CALLS.clear()
    first = run_jobs(jobs, cache_dir=tmp_path)
    assert first == {f"x={x}": {"x": x, "square": x * x} for x in range(3)}
    assert CALLS == [0, 1, 2]
    more = jobs + [Job("x=3", square, {"x": 3}, fingerprint("square", 3))]
    assert run_jobs(more, cache_dir=tmp_path)["x=3"] == {"x": 3, "square": 9}
    assert CALLS == [0, 1, 2, 3]
    # a broken cache entry is recomputed, not trusted
    (tmp_path / f"{jobs[0].fingerprint}.json").write_text("{not json")
    run_jobs(jobs, cache_dir=tmp_path)
    assert CALLS == [0, 1, 2, 3, 0]
    entry = json.loads((tmp_path / f"{jobs[0].fingerprint}.json").read_text())
    assert entry["key"] == "x=0" and entry["square"] == 0


def test_bad_job_lists_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        run_jobs([Job("a", square, {"x": 1}), Job("a", square, {"x": 2})])
    with pytest.raises(ValueError, match="fingerprint"):
        run_jobs([Job("a", square, {"x": 1})], cache_dir=tmp_path)


# ---------------------------------------------------------------- parallel executors
# Job functions live at module level so that worker processes can import them.
def noisy_sum(seed: int, n: int, sleep: float = 0.0) -> dict:
    """A small seeded NumPy job; ``sleep`` makes it finish later than the others."""
    time.sleep(sleep)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return {"seed": seed, "trace": float(np.trace(a @ a.T)), "row": a[0].tolist()}


def die_once(marker: str, x: int) -> dict:
    """SIGKILLs its own process the first time it runs (``marker`` records that it did)."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"x": x, "pid": os.getpid()}


def always_die() -> dict:
    os.kill(os.getpid(), signal.SIGKILL)


def blas_threads() -> dict:
    from threadpoolctl import threadpool_info

    from stoichnet.nn.kernels import default_num_threads

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {"blas": blas, "optimizer": default_num_threads()}


def sleep_and_record(folder: str, seconds: float) -> dict:
    """Writes its pid to ``folder`` then sleeps: a job that is running when Ctrl-C comes."""
    (Path(folder) / f"{os.getpid()}.pid").touch()
    time.sleep(seconds)
    return {"slept": seconds}


def interrupt_parent(parent: int) -> dict:
    os.kill(parent, signal.SIGINT)
    time.sleep(30)  # killed with the pool before this ends
    return {}


def _tiny_training_jobs(run_seed: int = 3) -> list[Job]:
    """Two 2-layer networks on 200 rows for 2 epochs, each seeded by ``job_seed``."""
    from stoichnet.evaluate.study import NetworkConfig, StudyData, train_network

    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(86) * 0.05, size=200).astype(np.float32)
    y = X @ rng.standard_normal(86)
    data = StudyData(X[:140], y[:140], X[140:170], y[140:170], X[170:], y[170:], (), ())
    jobs = []
    for lr in (1e-3, 3e-3):
        key = f"net/lr={lr}"
        config = NetworkConfig(depth=2, epochs=2, learning_rate=lr,
                               seed=job_seed(run_seed, key))
        jobs.append(Job(key, train_network, {"config": config, "data": data},
                        fingerprint(asdict(config), data.fingerprint())))
    return jobs


def _numpy_jobs(run_seed: int = 3) -> list[Job]:
    # the first jobs take longest: they finish last in parallel
    return [Job(f"sum={i}", noisy_sum, {"seed": job_seed(run_seed, f"sum={i}"), "n": 30,
                                        "sleep": 0.2 * (3 - i)}, fingerprint("sum", i))
            for i in range(4)]


@pytest.mark.slow
def test_local_processes_and_dask_give_the_serial_results_bit_for_bit(tmp_path):
    jobs = _numpy_jobs() + _tiny_training_jobs()
    serial = run_jobs(jobs)
    assert list(serial) == [job.key for job in jobs]
    assert serial["net/lr=0.001"]["epochs_run"] == 2
    local = run_jobs(jobs, n_jobs=2, cache_dir=tmp_path / "local")
    dask = run_jobs(jobs, n_jobs=2, scheduler="local", cache_dir=tmp_path / "dask")
    assert list(local) == list(dask) == list(serial)  # job order, not completion order
    assert local == serial and dask == serial
    # the cached results are reused, not recomputed
    refuse = [Job(job.key, always_fail, {}, job.fingerprint) for job in jobs]
    assert run_jobs(refuse, cache_dir=tmp_path / "dask", n_jobs=2) == serial


def always_fail() -> dict:
    raise AssertionError("a cached job ran again")


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", [None, "local"])
def test_a_worker_killed_during_a_job_has_it_run_again(tmp_path, scheduler):
    marker = tmp_path / "killed-once"
    jobs = [Job("victim", die_once, {"marker": str(marker), "x": 7}, fingerprint("victim"))]
    jobs += _numpy_jobs()
    results = run_jobs(jobs, n_jobs=2, scheduler=scheduler, cache_dir=tmp_path / "cache")
    assert marker.exists()  # the first attempt died
    assert results["victim"]["x"] == 7
    assert {k: v for k, v in results.items() if k != "victim"} == run_jobs(_numpy_jobs())
    assert len(list((tmp_path / "cache").glob("*.json"))) == len(jobs)


def test_a_job_that_keeps_killing_its_worker_fails_the_run(monkeypatch):
    monkeypatch.setattr(executor, "ALLOWED_FAILURES", 0)  # one pool is enough to see it
    jobs = [Job("bad", always_die), Job("good", noisy_sum, {"seed": 1, "n": 2})]
    # "good" may or may not have finished when "bad" broke the pool (a race under load)
    with pytest.raises(RuntimeError, match=r"lost a worker 1 time\(s\) in a row.*unfinished "
                                           r"jobs: [^.]*\bbad\b[^.]*\. Last: A worker process"):
        run_jobs(jobs, n_jobs=2)


def test_workers_get_their_share_of_the_cores():
    jobs = [Job(f"t{i}", blas_threads) for i in range(2)]
    for result in run_jobs(jobs, n_jobs=2, threads_per_worker=3).values():
        assert set(result["blas"]) == {3} and result["optimizer"] == 3
    cores = executor.cpu_count()
    for result in run_jobs(jobs, n_jobs=2).values():
        assert result["optimizer"] == max(1, cores // 2)


def test_a_scheduler_that_does_not_answer_is_a_clear_error_before_any_job(tmp_path):
    import dask

    with socket.socket() as sock:  # a free port on this machine, with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    start = time.perf_counter()
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(
            ConnectionError, match=rf"no Dask scheduler answered at {address} within 2 s"):
        run_jobs([Job("a", always_fail, {}, "a")], scheduler=address, cache_dir=tmp_path)
    assert time.perf_counter() - start < 15
    assert list(tmp_path.iterdir()) == []
    for bad in ("remote", "tcp://host", 8786):
        with pytest.raises(ValueError, match="neither 'local' nor the address"):
            run_jobs([], scheduler=bad)


def _stop_after_first(job, result, seconds):
    raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", [None, "local"])
def test_ctrl_c_cancels_every_job_and_keeps_the_finished_ones(tmp_path, scheduler):
    pids = tmp_path / "pids"
    pids.mkdir()
    jobs = [Job("quick", noisy_sum, {"seed": 0, "n": 3}, "quick")]
    jobs += [Job(f"slow{i}", sleep_and_record, {"folder": str(pids), "seconds": 60}, f"slow{i}")
             for i in range(2)]
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, n_jobs=2, scheduler=scheduler, cache_dir=tmp_path / "cache",
                 progress=executor.Progress(line=_stop_after_first))
    assert time.perf_counter() - start < 30
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["quick.json"]
    assert json.loads((tmp_path / "cache" / "quick.json").read_text())["seed"] == 0
    _assert_gone(int(p.stem) for p in pids.iterdir())


def _assert_gone(pids) -> None:
    """The processes ``pids`` have ended (within a few seconds)."""
    deadline = time.monotonic() + 10
    for pid in pids:
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, f"worker {pid} still runs"
            time.sleep(0.1)


def test_sigint_from_a_job_interrupts_the_run(tmp_path):
    jobs = [Job("quick", noisy_sum, {"seed": 0, "n": 3}, "quick"),
            Job("ctrl-c", interrupt_parent, {"parent": os.getpid()}, "ctrl-c")]
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, n_jobs=2, cache_dir=tmp_path)
    for path in tmp_path.iterdir():  # only complete entries
        assert json.loads(path.read_text())["key"] == "quick"


def test_progress_writes_one_line_per_job(tmp_path, capsys):
    jobs = _numpy_jobs()[:2]
    run_jobs(jobs[:1], cache_dir=tmp_path)
    run_jobs(jobs, cache_dir=tmp_path, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "sum=0: reused from the cache"
    assert re.fullmatch(r"sum=1: done in \d+\.\d s", lines[1]) and len(lines) == 2
    with pytest.raises(TypeError, match="progress must be True, False, None or a Progress"):
        run_jobs(jobs, progress="yes")


def test_a_job_error_names_the_job():
    with pytest.raises(AssertionError, match="ran again") as info:
        run_jobs([Job("broken", always_fail)])
    assert "(raised by job 'broken')" in info.value.__notes__
    with pytest.raises(TypeError, match="'np' is not JSON-serialisable"):
        run_jobs([Job("np", noisy_sum_float32)])
    with pytest.raises(ValueError, match=r"holds \['key'\]"):
        run_jobs([Job("k", dict, {"key": 1})])


def noisy_sum_float32() -> dict:
    return {"x": np.float32(1.0)}
