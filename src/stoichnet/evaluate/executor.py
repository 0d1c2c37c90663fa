"""Independent trainings as jobs: one executor for folds x models x repeats x sizes.

A ``Job`` is a module-level function and its keyword arguments (both picklable), a
human-readable ``key`` naming it within its run (``"fold=2/model=rf"``) and a
``fingerprint``: a hash of everything its result depends on (configuration and data).
``run_jobs`` runs a list of jobs and returns their results (JSON-serialisable dicts) by
key, in the order of the list. A finished job's result is stored in ``cache_dir`` under
its fingerprint, by the coordinating process and atomically, the moment it arrives, and
is not recomputed when the same job is asked for again (after an interruption, or in a
larger run).

Where jobs run:

- ``n_jobs=1`` (default): one after the other, in this process;
- ``n_jobs=N``: N local worker processes (loky, joblib's process pool);
- ``scheduler="local"``: a Dask ``distributed.LocalCluster`` of N single-threaded worker
  processes (the dashboard and the Dask tooling, on this machine);
- ``scheduler="tcp://HOST:PORT"``: the workers of a running Dask scheduler (``dask
  scheduler`` plus ``dask worker tcp://HOST:PORT`` on other hosts, or a ``dask-jobqueue``
  cluster's ``scheduler_address``); the folder of ``cache_dir`` need only exist here.

Determinism: a job's randomness comes from ``job_seed(run_seed, key)``, derived from the
run's seed and the job's identity, never from the worker or the order in which jobs
finish, and each worker's BLAS and optimizer threads leave the arithmetic unchanged, so
every executor gives the serial run's results bit for bit.

Failures: a worker that dies mid-job (killed, out of memory) has its job run again
elsewhere; Dask does so itself (up to ``distributed.scheduler.allowed-failures`` deaths
of workers running the task, 3 by default), the local pool is restarted for the
unfinished jobs (at most ``ALLOWED_FAILURES`` times in a row without a job finishing in
between). A job's own exception stops the run. Ctrl-C (``KeyboardInterrupt``) cancels
every job, kills the local workers or closes the cluster, and propagates; the cache then
holds every job finished so far, each complete.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from joblib import cpu_count
from joblib.externals.loky import ProcessPoolExecutor
from threadpoolctl import threadpool_limits

from stoichnet.evaluate.progress import progress_bar, progress_line
from stoichnet.nn.optimizers import thread_limit
from stoichnet.util.checks import check_int
from stoichnet.util.files import atomic_file

CACHE_FORMAT = "stoichnet.job"
# names of a cache entry's own fields; a job's result may not use them
ENTRY_FIELDS = ("format", "key", "fingerprint")
# restarts of the local pool in a row, without a job finishing in between, before the run
# fails (Dask's distributed.scheduler.allowed-failures plays this part on a cluster)
ALLOWED_FAILURES = 3
SCHEDULER_ADDRESS = re.compile(r"^([a-z]+://)?(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d+$")


@dataclass(frozen=True)
class Job:
    """One independent piece of work.

    Attributes:
        key: its name within the run, unique among the run's jobs (e.g. "fold=2/model=rf").
        fn: a module-level function (so that another process can import it) returning a
            JSON-serialisable dict.
        kwargs: keyword arguments for ``fn`` (picklable).
        fingerprint: hash of everything the result depends on; jobs with the same
            fingerprint share one cache entry.
    """

    key: str
    fn: Callable[..., dict]
    kwargs: dict = field(default_factory=dict)
    fingerprint: str = ""

    def run(self) -> dict:
        return self.fn(**self.kwargs)


def fingerprint(*parts, label: str | None = None) -> str:
    """SHA-256 (hex) of ``parts`` written as canonical JSON (sorted keys; numbers, strings,
    lists, dicts, None); give data as its own digest string.

    ``label`` (e.g. a job's key) goes in front, with characters other than letters,
    digits and ``-_.`` as ``_``: ``"depth=2"`` gives ``"depth_2-<hex>"``, so that the
    cache folder says which file holds what.
    """
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if label is None:
        return digest
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label) + "-" + digest


def job_seed(run_seed: int, key: str) -> int:
    """A seed in [0, 2**32) for the job named ``key`` in a run seeded with ``run_seed``:
    the same on every worker and in every process."""
    run_seed = check_int("run_seed", run_seed, 0)
    digest = hashlib.sha256(f"{run_seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class JobCache:
    """Finished results in a folder, one JSON file per fingerprint (``format``, ``key``,
    ``fingerprint``, then the result's own fields), written atomically: a job interrupted
    mid-write leaves no entry, so it simply runs again."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, job: Job) -> Path:
        return self.folder / f"{job.fingerprint}.json"

    def get(self, job: Job) -> dict | None:
        """The cached result of ``job``, or None (never cached, or an unreadable entry)."""
        path = self._path(job)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if (not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT
                or entry.get("fingerprint") != job.fingerprint):
            return None
        return {name: value for name, value in entry.items() if name not in ENTRY_FIELDS}

    def put(self, job: Job, result: dict) -> None:
        entry = {"format": CACHE_FORMAT, "key": job.key, "fingerprint": job.fingerprint,
                 **result}
        with atomic_file(self._path(job), overwrite=True) as tmp:
            tmp.write_text(json.dumps(entry), encoding="utf-8")


@dataclass(frozen=True)
class Progress:
    """How ``run_jobs`` reports: a bar (``desc``, ``unit`` as tqdm's) on a terminal, else
    one line per job on stderr (``stoichnet.evaluate.progress``).

    ``line(job, result, seconds)`` writes a job's line; ``seconds`` is its run time, None
    when its result came from the cache; a None line writes nothing. Default: the key,
    then "done in 1.2 s" or "reused from the cache".
    """

    desc: str = "jobs"
    unit: str = "job"
    line: Callable[[Job, dict, float | None], str | None] | None = None

    def text(self, job: Job, result: dict, seconds: float | None) -> str | None:
        if self.line is not None:
            return self.line(job, result, seconds)
        how = "reused from the cache" if seconds is None else f"done in {seconds:.1f} s"
        return f"{job.key}: {how}"


def check_scheduler(scheduler: str | None) -> str | None:
    """``scheduler`` if it is None, ``"local"`` or a Dask scheduler address
    (``[PROTOCOL://]HOST:PORT``, e.g. ``tcp://10.0.0.5:8786``); else ValueError."""
    if scheduler is None or scheduler == "local" or (
            isinstance(scheduler, str) and SCHEDULER_ADDRESS.match(scheduler)):
        return scheduler
    raise ValueError(f"scheduler {scheduler!r} is neither 'local' nor the address of a Dask "
                     "scheduler such as tcp://HOST:8786")


def run_jobs(
    jobs: Sequence[Job],
    *,
    cache_dir: str | Path | None = None,
    n_jobs: int = 1,
    scheduler: str | None = None,
    threads_per_worker: int | None = None,
    progress: bool | Progress | None = None,
) -> dict[str, dict]:
    """Run ``jobs`` and return ``{job.key: result}`` in the order of ``jobs``.

    Args:
        jobs: the run's jobs, with unique keys.
        cache_dir: folder of finished results (created if missing): results found there
            are reused, each new one is stored as soon as it arrives.
        n_jobs: worker processes: 1 runs the jobs in this process, N > 1 in N local
            processes, or the size of the ``scheduler="local"`` cluster (ignored with a
            scheduler address: the cluster has its own workers).
        scheduler: None (this process or local processes), ``"local"`` (a Dask
            ``LocalCluster`` of ``n_jobs`` single-threaded worker processes) or the
            address of a running Dask scheduler, ``"tcp://HOST:PORT"``; one that does not
            answer within Dask's connect timeout (``distributed.comm.timeouts.connect``,
            30 s unless configured) raises ``ConnectionError`` before any job runs (it is
            not asked when every job is in the cache).
        threads_per_worker: BLAS and optimizer threads of each job in a worker (default:
            the cores of this machine divided among its workers; with a scheduler
            address, each worker's cores divided among its threads). In this process
            the limits are only set when it is given.
        progress: True for a bar or a line per job, a :class:`Progress` to say how,
            None/False for silence.

    Raises:
        ValueError: two jobs with the same key, a job without a fingerprint when a cache
            is used, a malformed scheduler, a result holding ``format``, ``key`` or
            ``fingerprint`` (the cache entry's fields).
        TypeError: a result that is not a JSON-serialisable dict with string keys.
        ConnectionError: no Dask scheduler at ``scheduler``.
        RuntimeError: the local pool kept losing workers (``ALLOWED_FAILURES``); Dask's
            ``KilledWorker`` is its counterpart on a cluster.
        KeyboardInterrupt: Ctrl-C; every job is cancelled, finished ones stay cached.
        The first exception of a job, with a note naming it.
    """
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"job keys must be unique within a run; repeated: {repeated}")
    n_jobs = check_int("n_jobs", n_jobs, 1)
    if threads_per_worker is not None:
        threads_per_worker = check_int("threads_per_worker", threads_per_worker, 1)
    scheduler = check_scheduler(scheduler)
    cache = None if cache_dir is None else JobCache(cache_dir)
    if cache is not None:
        missing = [job.key for job in jobs if not job.fingerprint]
        if missing:
            raise ValueError(f"jobs need a fingerprint to be cached; none for {missing[:3]}")
    if not (progress is None or isinstance(progress, bool | Progress)):
        raise TypeError(f"progress must be True, False, None or a Progress, got {progress!r}")
    report = Progress() if progress is True else progress or None

    results = {}
    for job in jobs:
        result = None if cache is None else cache.get(job)
        if result is not None:
            results[job.key] = result
    pending = [job for job in jobs if job.key not in results]
    n_workers = min(n_jobs, len(pending)) or 1
    threads = threads_per_worker
    if threads is None and (scheduler == "local" or (scheduler is None and n_workers > 1)):
        threads = max(1, cpu_count() // n_workers)
    with ExitStack() as stack:
        if scheduler is not None and pending:  # connect first: a bad address fails before any job
            finished = _on_dask(_dask_client(stack, scheduler, n_workers), pending, threads)
        elif n_workers > 1:
            finished = _in_local_processes(pending, n_workers, threads)
        else:
            finished = _in_this_process(pending, threads)
        shown = report or Progress()
        bar = stack.enter_context(progress_bar(total=len(jobs), enabled=report is not None,
                                               desc=shown.desc, unit=shown.unit))
        reused = [(job, results[job.key], None) for job in jobs if job.key in results]
        with closing(finished):
            for job, result, seconds in chain(reused, finished):
                if seconds is not None:
                    result = _checked(job, result)
                    if cache is not None:
                        cache.put(job, result)
                    results[job.key] = result
                bar.update()
                if report is not None:
                    text = report.text(job, result, seconds)
                    if text is not None:
                        progress_line(text, enabled=True)
    return {job.key: results[job.key] for job in jobs}


def _execute(job: Job, threads: int | None) -> tuple[dict, float]:
    """Run ``job`` with its BLAS and optimizer threads limited to ``threads`` (None: left
    as they are); its result and run time in seconds."""
    with ExitStack() as limits:
        if threads is not None:
            limits.enter_context(threadpool_limits(limits=threads, user_api="blas"))
            limits.enter_context(thread_limit(threads))
        start = time.perf_counter()
        result = job.run()
        return result, time.perf_counter() - start


def _execute_on_dask_worker(job: Job, threads: int | None) -> tuple[dict, float]:
    """``_execute`` in a Dask worker; ``threads`` None: the worker's cores divided among
    its threads."""
    if threads is None:
        from distributed import get_worker

        threads = max(1, cpu_count() // get_worker().state.nthreads)
    return _execute(job, threads)


def _checked(job: Job, result) -> dict:
    """``result`` as it reads back from JSON (so that a fresh and a cached result are the
    same objects), after checking it can be cached."""
    if not isinstance(result, dict) or not all(isinstance(name, str) for name in result):
        raise TypeError(f"job {job.key!r} returned a {type(result).__name__}, not a dict with "
                        "string keys")
    clash = [name for name in ENTRY_FIELDS if name in result]
    if clash:
        raise ValueError(f"the result of job {job.key!r} holds {clash}, names reserved for the "
                         "cache entry's own fields")
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as err:
        raise TypeError(f"the result of job {job.key!r} is not JSON-serialisable: {err}") from None


Finished = Iterator[tuple[Job, dict, float]]  # (job, result, seconds) in order of completion


def _in_this_process(jobs: Sequence[Job], threads: int | None) -> Finished:
    for job in jobs:
        try:
            result, seconds = _execute(job, threads)
        except Exception as err:
            err.add_note(f"(raised by job {job.key!r})")
            raise
        yield job, result, seconds


def _in_local_processes(jobs: Sequence[Job], n_workers: int, threads: int) -> Finished:
    """Run ``jobs`` in a pool of ``n_workers`` processes. A dead worker breaks the pool
    (every unfinished job fails with ``BrokenProcessPool``): the jobs that had finished
    are kept and the others run again in a new pool."""
    todo = {job.key: job for job in jobs}
    failures = 0
    while todo:
        pool = ProcessPoolExecutor(max_workers=min(n_workers, len(todo)))
        broken = None
        try:
            futures = {pool.submit(_execute, job, threads): job for job in todo.values()}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result, seconds = future.result()
                except BrokenProcessPool as err:
                    broken = err
                    continue
                except Exception as err:
                    err.add_note(f"(raised by job {job.key!r})")
                    raise
                del todo[job.key]
                failures = 0
                yield job, result, seconds
        finally:  # also on Ctrl-C and errors: no worker outlives the run
            pool.shutdown(wait=True, kill_workers=True)
        if broken is not None:
            failures += 1
            if failures > ALLOWED_FAILURES:
                raise RuntimeError(
                    f"the pool lost a worker {failures} time(s) in a row, with no job finishing "
                    f"in between; unfinished jobs: {', '.join(todo)}. Last: {broken}") from broken


def _dask_client(stack: ExitStack, scheduler: str, n_workers: int):
    """A ``distributed.Client`` of a new ``LocalCluster`` (``scheduler="local"``, closed
    with ``stack``) or of the scheduler at address ``scheduler``."""
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = stack.enter_context(LocalCluster(  # dashboard on any free port: no warning
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"))
        return stack.enter_context(Client(cluster))
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
    try:
        client = Client(scheduler, timeout=timeout)
    except OSError as err:  # TimeoutError included
        raise ConnectionError(
            f"no Dask scheduler answered at {scheduler} within {timeout:g} s (Dask's "
            "distributed.comm.timeouts.connect): start one there with `dask scheduler`, or "
            "correct the address") from err
    return stack.enter_context(client)


def _on_dask(client, jobs: Sequence[Job], threads: int | None) -> Finished:
    """Submit ``jobs`` to the cluster of ``client``; cancel the unfinished ones on the way
    out (an error, Ctrl-C)."""
    from distributed import as_completed as completed

    futures = {client.submit(_execute_on_dask_worker, job, threads, pure=False): job
               for job in jobs}
    try:
        for future in completed(futures):
            job = futures[future]
            try:
                result, seconds = future.result()
            except Exception as err:
                err.add_note(f"(raised by job {job.key!r})")
                raise
            yield job, result, seconds
    finally:
        client.cancel(list(futures))
