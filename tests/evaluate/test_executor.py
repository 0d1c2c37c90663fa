import json

import pytest

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
    assert entry["key"] == "x=0" and entry["result"]["square"] == 0


def test_bad_job_lists_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        run_jobs([Job("a", square, {"x": 1}), Job("a", square, {"x": 2})])
    with pytest.raises(ValueError, match="fingerprint"):
        run_jobs([Job("a", square, {"x": 1})], cache_dir=tmp_path)
