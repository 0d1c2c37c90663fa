"""A deep ensemble's members trained as independent jobs (:mod:`stoichnet.evaluate.executor`).

:func:`fit_ensemble` trains the members of a
:class:`~stoichnet.models.uncertainty.DeepEnsembleRegressor` (its
``unfitted_members()``: clones of one network estimator, each with its own seed, on its
``member_data``) at once, in local worker processes or on a Dask cluster, and gives the
ensemble that ``DeepEnsembleRegressor.fit`` trains one member after another, bit for bit:
each member's randomness (and bootstrap rows) comes from its own seed, never from where
or when it ran.

A job's result must be JSON (the executor's contract), so a fitted member travels as
its network in the model-file format (``nn.io.save_model``: an ``.npz`` archive with its
SHA-256, never pickle), base64-encoded, plus its fitted attributes (``n_epochs_``,
``settings_``, ... as JSON values) and its ``history_``; the coordinating process puts
them back onto the unfitted member. The weights are stored at full precision, so the
member predicts exactly as the one that trained.
"""

from __future__ import annotations

import base64
import tempfile
import time
from pathlib import Path

import numpy as np

from stoichnet.evaluate.executor import Job, run_jobs
from stoichnet.nn import History, load_model, save_model


def fit_ensemble(ensemble, X, y, validation_data=None, *, jobs: int = 1,
                 scheduler: str | None = None, threads: int | None = None,
                 progress=None) -> tuple[object, list[dict]]:
    """Train the members of ``ensemble`` as independent jobs and make it of them.

    Args:
        ensemble: an unfitted ``DeepEnsembleRegressor``.
        X, y, validation_data: as ``DeepEnsembleRegressor.fit`` (formulas or features,
            (n,) targets, an optional (X_val, y_val)).
        jobs, scheduler, threads: where the members train and with how many BLAS and
            optimizer threads each (``run_jobs``' ``n_jobs``, ``scheduler`` and
            ``threads_per_worker``); the result does not depend on them.
        progress: as ``run_jobs``' (a line or a bar per finished member).
    Returns:
        (the fitted ensemble, one dict per member {"wall_s", "cpu_s"}: the seconds its
        ``fit`` took and the CPU seconds of the process that ran it meanwhile, all its
        threads).
    """
    members = ensemble.unfitted_members()
    job_list = []
    for k, member in enumerate(members):
        X_member, y_member = ensemble.member_data(member, X, y)
        job_list.append(Job(f"member={k}", _fit_member,
                            {"member": member, "X": X_member, "y": y_member,
                             "validation_data": validation_data}))
    results = run_jobs(job_list, n_jobs=jobs, scheduler=scheduler,
                       threads_per_worker=threads, progress=progress)
    outcomes = [results[job.key] for job in job_list]
    for member, outcome in zip(members, outcomes, strict=True):
        _restore(member, outcome)
    ensemble.set_members(members)
    return ensemble, [{"wall_s": o["wall_s"], "cpu_s": o["cpu_s"]} for o in outcomes]


def _fit_member(member, X, y, validation_data) -> dict:
    """Job: fit ``member`` and return it as JSON (see the module docstring) with its
    wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    member.fit(X, y, validation_data=validation_data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "member.npz"
        save_model(member.model_, path)
        network = base64.b64encode(path.read_bytes()).decode("ascii")
    fitted = {name: _json(value) for name, value in vars(member).items()
              if name.endswith("_") and not name.startswith("_")
              and name not in ("model_", "history_")}
    history = {"epoch": [int(e) for e in member.history_.epoch],
               "history": _json(member.history_.history)}
    return {"network": network, "fitted": fitted, "history": history,
            "wall_s": wall, "cpu_s": cpu}


def _restore(member, outcome: dict) -> None:
    """Put a ``_fit_member`` result back onto the unfitted ``member`` it was trained from."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "member.npz"
        path.write_bytes(base64.b64decode(outcome["network"]))
        member.model_ = load_model(path)
    for name, value in outcome["fitted"].items():
        setattr(member, name, value)
    member.history_ = History()
    member.history_.epoch = outcome["history"]["epoch"]
    member.history_.history = outcome["history"]["history"]


def _json(value):
    """``value`` with NumPy scalars as Python numbers and tuples as lists (JSON's own
    values); anything else that JSON cannot hold raises TypeError naming it."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a fitted ensemble member holds a {type(value).__name__} ({value!r:.60}), "
                    "which cannot travel as a job's result")
