"""Independent trainings as jobs: one executor for folds x models x repeats x sizes.

A ``Job`` is a module-level function and its keyword arguments (both picklable), a
human-readable ``key`` naming it within its run (``"fold=2/model=rf"``) and a
``fingerprint``: a hash of everything its result depends on (configuration and data).
``run_jobs`` runs a list of jobs and returns their results (JSON-serialisable dicts) by
key. A finished job's result is stored in ``cache_dir`` under its fingerprint and is not
recomputed when the same job is asked for again (after an interruption, or in a larger
run).

Determinism: a job's randomness comes from ``job_seed(run_seed, key)``, derived from the
run's seed and the job's identity, never from the worker or the order in which jobs
finish, so any executor gives the serial run's results.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stoichnet.util.checks import check_int
from stoichnet.util.files import atomic_file

CACHE_FORMAT = "stoichnet.job"


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


def fingerprint(*parts) -> str:
    """SHA-256 (hex) of ``parts`` written as canonical JSON (sorted keys; numbers, strings,
    lists, dicts, None); give data as its own digest string."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def job_seed(run_seed: int, key: str) -> int:
    """A seed in [0, 2**32) for the job named ``key`` in a run seeded with ``run_seed``:
    the same on every worker and in every process."""
    run_seed = check_int("run_seed", run_seed, 0)
    digest = hashlib.sha256(f"{run_seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class JobCache:
    """Finished results in a folder, one JSON file per fingerprint, written atomically (a
    job interrupted mid-write leaves no entry, so it simply runs again)."""

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
        if entry.get("format") != CACHE_FORMAT or entry.get("fingerprint") != job.fingerprint:
            return None
        return entry["result"]

    def put(self, job: Job, result: dict) -> None:
        entry = {"format": CACHE_FORMAT, "key": job.key, "fingerprint": job.fingerprint,
                 "result": result}
        with atomic_file(self._path(job), overwrite=True) as tmp:
            tmp.write_text(json.dumps(entry), encoding="utf-8")


def run_jobs(jobs: Sequence[Job], *, cache_dir: str | Path | None = None) -> dict[str, dict]:
    """Run ``jobs`` (serially, in this process) and return ``{job.key: result}``; with
    ``cache_dir``, results found there are reused and new ones stored.

    Raises ValueError for two jobs with the same key, or a job without a fingerprint when
    a cache is used.
    """
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"job keys must be unique within a run; repeated: {repeated}")
    cache = None if cache_dir is None else JobCache(cache_dir)
    if cache is not None:
        missing = [job.key for job in jobs if not job.fingerprint]
        if missing:
            raise ValueError(f"jobs need a fingerprint to be cached; none for {missing[:3]}")
    results = {}
    for job in jobs:
        result = None if cache is None else cache.get(job)
        if result is None:
            result = job.run()
            if cache is not None:
                cache.put(job, result)
        results[job.key] = result
    return results
