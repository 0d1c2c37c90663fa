"""Tuning studies: one network per value of one knob, on the same split.

``run_study`` trains a network for every value of a knob (depth, learning rate,
optimizer, activation, batch size, epochs, dropout) with everything else held at the
base recipe, records validation MAE per epoch, test MAE, wall time and every layer's
weight norm, gradient norm and dead units per epoch (``fit(record="layers")``: why sigmoid
learns slowly through 17 layers and ReLU does not), and trains the
random forest on Magpie features once as the reference line. Every value, and the
forest, is an independent job of ``stoichnet.evaluate.executor`` (in this process, in
local processes or on a Dask cluster); a finished one is stored as a JSON file in
``cache_dir`` under a hash of its full configuration and of the data
(``depth_2-<hash>.json``), so re-running a study (after an interruption, or with more
values) recomputes only what is missing. With ``checkpoint_dir`` every network also
writes a checkpoint after each epoch (named like its cache file, ``.ckpt``; deleted once
the value is finished), and ``resume=True`` continues an unfinished one from it,
bit-identically.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stoichnet.evaluate import plots
from stoichnet.evaluate.executor import Job, JobCache, Progress, fingerprint, run_jobs
from stoichnet.evaluate.metrics import mae
from stoichnet.models.baselines import rf_magpie
from stoichnet.models.elemnet import ELEMNET_17, depth_arch
from stoichnet.models.estimators import ElemNetRegressor
from stoichnet.models.recipes import DEFAULT_RECIPE, get_recipe
from stoichnet.nn.callbacks import layer_history
from stoichnet.util.checks import check_int

KNOBS: dict[str, type] = {
    "depth": int,
    "learning_rate": float,
    "optimizer": str,
    "activation": str,
    "batch_size": int,
    "epochs": int,
    "dropout": float,
}


def parse_values(knob: str, values: str | Sequence) -> list:
    """The values of ``knob`` as their Python type, from a comma-separated string
    (``"1,2,4"``) or a sequence.

    Raises:
        ValueError: unknown knob, an empty list, a value that does not convert, or a
            repeated value.
    """
    if knob not in KNOBS:
        raise ValueError(f"knob {knob!r} is not one of {', '.join(KNOBS)}")
    items = [v.strip() for v in values.split(",")] if isinstance(values, str) else list(values)
    if not items or any(v == "" for v in items):
        raise ValueError(f"values for {knob} must be a non-empty comma-separated list, got {values!r}")
    kind = KNOBS[knob]
    out = []
    for item in items:
        try:
            out.append(kind(item))
        except (TypeError, ValueError):
            raise ValueError(
                f"value {item!r} for {knob} is not a valid {kind.__name__}"
            ) from None
    repeated = sorted({str(v) for v in out if out.count(v) > 1})
    if repeated:
        raise ValueError(f"values for {knob} repeat {', '.join(repeated)}")
    return out


@dataclass(frozen=True)
class StudyData:
    """The split every value trains on.

    X_*: (n_rows, n_features) float32 inputs of the network (element fractions);
    y_*: (n_rows,) float targets; ``formulas_train``/``formulas_test`` feed the forest.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    formulas_train: tuple[str, ...]
    formulas_test: tuple[str, ...]

    def fingerprint(self) -> str:
        """SHA-256 of every array and formula: a changed split invalidates the cache."""
        digest = hashlib.sha256()
        for name, value in asdict(self).items():
            digest.update(name.encode())
            if isinstance(value, np.ndarray):
                digest.update(str(value.shape).encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update("\n".join(value).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class NetworkConfig:
    """The settings of one network run; a study varies exactly one of them.

    ``recipe`` names the training recipe (``stoichnet.models.recipes``); every other
    field left at None takes the recipe's value (``depth`` None: the 17-layer ElemNet;
    ``dropout`` None: the recipe's rates). ``dropout`` as a number applies that rate
    after every ``D`` block. A depth-d network follows
    :func:`stoichnet.models.elemnet.depth_arch`, with ElemNet's drop rates when the
    recipe uses dropout and none otherwise.
    """

    recipe: str = DEFAULT_RECIPE
    depth: int | None = None
    learning_rate: float | None = None
    optimizer: str | None = None
    activation: str = "relu"
    batch_size: int | None = None
    epochs: int | None = None
    dropout: float | None = None
    seed: int = 0
    max_minutes: float | None = None


def train_network(config: NetworkConfig, data: StudyData, *, checkpoint=None,
                  resume=None) -> dict:
    """Train one network of a study and score it.

    ``checkpoint``/``resume``: paths passed to the estimator's ``fit`` (write a
    checkpoint every epoch; continue from one).

    Returns a dict: test_mae, best_val_mae, epochs_run, stopped_by_budget,
    val_mae_per_epoch (the validation loss per epoch: every recipe trains on MAE) and
    layer_stats ({Dense layer: {"weight_norm", "grad_norm", "dead_fraction": one value
    per epoch}}, ``stoichnet.nn.LayerStats``).
    """
    recipe = get_recipe(config.recipe)
    if recipe.loss != "mae":
        raise ValueError(f"recipe {recipe.name!r} trains on {recipe.loss!r}; a study needs MAE")
    arch, dropout = ELEMNET_17, config.dropout
    if config.depth is not None:
        arch, rates = depth_arch(config.depth)
        if dropout is None:
            dropout = rates if recipe.dropout else 0.0
    net = ElemNetRegressor(
        arch, recipe=recipe, dropout=dropout, activation=config.activation,
        optimizer=config.optimizer, learning_rate=config.learning_rate,
        batch_size=config.batch_size, epochs=config.epochs, max_minutes=config.max_minutes,
        random_state=config.seed,
    )
    net.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
            checkpoint=checkpoint, resume=resume, record="layers")
    curve = [float(v) for v in net.history_.history["val_loss"]]
    return {
        "test_mae": mae(data.y_test, net.predict(data.X_test)),
        "best_val_mae": min(curve),
        "epochs_run": net.n_epochs_,
        "stopped_by_budget": net.stopped_by_budget_,
        "val_mae_per_epoch": curve,
        "layer_stats": layer_history(net.history_.history),
    }


def forest_mae(data: StudyData, seed: int = 0) -> float:
    """Test MAE of the random forest on Magpie features (100 trees) trained on the
    study's training rows."""
    forest = rf_magpie(random_state=seed).fit(list(data.formulas_train), data.y_train)
    return mae(data.y_test, forest.predict(list(data.formulas_test)))


@dataclass
class ValueResult:
    """What one network of a study produced."""

    knob: str
    value: object
    test_mae: float
    best_val_mae: float
    epochs_run: int
    wall_s: float
    stopped_by_budget: bool
    val_mae_per_epoch: list[float] = field(default_factory=list)
    layer_stats: dict = field(default_factory=dict)  # empty in a cache from before it
    cached: bool = False


def _train_value(knob: str, value, config: NetworkConfig, data: StudyData,
                 checkpoint: Path | None, resume: bool) -> dict:
    """The job of one value: train its network (continuing from ``checkpoint`` when
    ``resume`` and it exists) and return its :class:`ValueResult` fields but ``cached``."""
    start = time.perf_counter()
    resume_from = checkpoint if resume and checkpoint is not None and checkpoint.is_file() else None
    outcome = train_network(config, data, checkpoint=checkpoint, resume=resume_from)
    result = ValueResult(knob=knob, value=value, wall_s=time.perf_counter() - start, **outcome)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # the finished result supersedes it
    return {name: v for name, v in asdict(result).items() if name != "cached"}


def _forest_job(data: StudyData, seed: int) -> dict:
    return {"test_mae": forest_mae(data, seed)}


def _value_line(job: Job, result: dict, seconds: float | None) -> str | None:
    """A value's progress line (none for the forest)."""
    if job.fn is not _train_value:
        return None
    how = "reused from the cache" if seconds is None else f"fitted in {result['wall_s']:.1f} s"
    return (f"{job.key}: {how} ({result['epochs_run']} epochs), best val MAE "
            f"{result['best_val_mae']:.4g}, test MAE {result['test_mae']:.4g}")


@dataclass
class StudyResult:
    """All values of one study plus the forest's reference MAE."""

    knob: str
    values: list[ValueResult]
    rf_test_mae: float
    unit: str = ""

    def table(self) -> pd.DataFrame:
        """One row per value: value, test_mae, best_val_mae, epochs_run, wall_s,
        stopped_by_budget, cached."""
        rows = [
            {k: v for k, v in asdict(r).items()
             if k not in ("knob", "val_mae_per_epoch", "layer_stats")}
            for r in self.values
        ]
        frame = pd.DataFrame(rows).rename(columns={"value": self.knob})
        frame["rf_test_mae"] = self.rf_test_mae
        return frame

    def curves_figure(self) -> Figure:
        """Validation MAE per epoch, one line per value."""
        histories = {
            f"{self.knob}={r.value}": {"val_mae": r.val_mae_per_epoch} for r in self.values
        }
        unit = f" ({self.unit})" if self.unit else ""
        return plots.learning_curves(histories, metric="mae", ylabel=f"validation MAE{unit}")

    def layers_figure(self) -> Figure | None:
        """Each layer's gradient norm (first and last epoch), weight norm and dead units
        against its depth, one line per value (:func:`plots.layer_profiles`); None when no
        value has them (all reused from a cache written before they were recorded)."""
        runs = {f"{self.knob}={r.value}": r.layer_stats for r in self.values if r.layer_stats}
        return plots.layer_profiles(runs) if runs else None

    def score_figure(self) -> Figure:
        """Test MAE vs value, with the random forest's MAE as a horizontal line and each
        value's wall time written next to its point."""
        values = [r.value for r in self.values]
        unit = f" ({self.unit})" if self.unit else ""
        fig = plots.metric_vs_value(
            values,
            [r.test_mae for r in self.values],
            reference={"random forest (Magpie)": self.rf_test_mae},
            xlabel=self.knob,
            ylabel=f"test MAE{unit}",
        )
        ax = fig.axes[0]
        if self.knob == "learning_rate":
            ax.set_xscale("log")
        for x, r in zip(ax.lines[0].get_xdata(), self.values, strict=True):
            ax.annotate(f"{r.wall_s:.0f} s", (x, r.test_mae), textcoords="offset points",
                        xytext=(4, 6), fontsize="x-small")
        return fig


def run_study(
    knob: str,
    values: Sequence,
    data: StudyData,
    *,
    base: NetworkConfig | None = None,
    cache_dir: str | Path,
    jobs: int = 1,
    scheduler: str | None = None,
    unit: str = "",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> StudyResult:
    """Train one network per value of ``knob`` and the forest once; reuse cached runs.

    Args:
        knob: one of :data:`KNOBS`.
        values: the values of ``knob``, e.g. ``[1, 2, 4, 8, 17]`` for depth.
        data: the split, shared by every run.
        base: the recipe held fixed (default :class:`NetworkConfig`).
        cache_dir: folder of finished runs (created if missing).
        jobs: worker processes (``run_jobs``'s ``n_jobs``); 1 runs in this process.
        scheduler: None, ``"local"`` (a Dask ``LocalCluster`` of ``jobs`` workers) or a
            Dask scheduler's address (``"tcp://HOST:8786"``), as in
            :func:`stoichnet.evaluate.executor.run_jobs`.
        unit: the target's unit, for the figures.
        checkpoint_dir: folder (created if missing) where each network writes a
            checkpoint after every epoch and on Ctrl-C (``TrainingInterrupted`` is raised).
        resume: continue each unfinished value from its checkpoint in ``checkpoint_dir``
            (one without a checkpoint starts afresh).
        progress: show a progress bar over the values (a line per value in a log).
    """
    values = parse_values(knob, values)
    jobs = check_int("jobs", jobs, 1)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, the folder of the checkpoints")
    base = base or NetworkConfig()
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    data_digest = data.fingerprint()
    tasks = []
    for value in values:
        config = replace(base, **{knob: value})
        key = f"{knob}={value}"
        digest = fingerprint({"config": asdict(config), "data": data_digest}, label=key)
        checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{digest}.ckpt"
        tasks.append(Job(key, _train_value, {"knob": knob, "value": value, "config": config,
                                             "data": data, "checkpoint": checkpoint,
                                             "resume": resume}, digest))
    forest = Job("random_forest", _forest_job, {"data": data, "seed": base.seed},
                 fingerprint({"data": data_digest, "seed": base.seed}, label="random_forest"))
    cache = JobCache(cache_dir)
    reused = {job.key for job in tasks if cache.get(job) is not None}
    report = Progress(desc=f"study {knob}", unit="value", line=_value_line) if progress else None
    results = run_jobs([*tasks, forest], cache_dir=cache_dir, n_jobs=jobs, scheduler=scheduler,
                       progress=report)
    runs = [ValueResult(**results[job.key], cached=job.key in reused) for job in tasks]
    return StudyResult(knob=knob, values=runs, rf_test_mae=results[forest.key]["test_mae"],
                       unit=unit)
