"""Cross-validation: every model on the same folds, a score per fold, and a paired test of
the network against the forest.

``cross_validate(rows)`` splits the rows into folds (random k-fold, folds grouped by
chemical system, one element held out, or Matbench v0.1's folds), trains each named model
on each training fold (as ``compare`` does: the same model names, recipe and metrics) and
predicts its test fold. A network stops early on 10% of its training fold
(:data:`stoichnet.evaluate.data.VALIDATION_FRACTION`; grouped by chemical system under
the chemical-system split) and never sees the test fold; the baselines, which do not stop
early, train on the whole training fold (the forest's sigma is then recalibrated on its
out-of-bag predictions, not on rows it trained on). Every (repeat, fold, model) training is one
:class:`~stoichnet.evaluate.executor.Job` whose seed derives from the run's seed and the
job's name, so a cached or parallel run gives the serial run's numbers.

The result holds the per-fold scores, their mean, standard deviation and 95% t-interval,
the out-of-fold prediction of every row by every model, and the Nadeau-Bengio corrected
resampled t-test of network vs forest; ``write_cv`` puts them in a folder, with the
per-fold record of the Matbench protocol in Matbench's own layout.

>>> rows = load_rows("matbench_expt_is_metal", raw=True)  # doctest: +SKIP
>>> result = cross_validate(rows.frame, protocol="matbench", ids=rows.ids, name=rows.name)
>>> print(result.table()); print(result.verdict())
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from stoichnet.chem import (
    chemical_system_kfold,
    chemical_system_split,
    chemical_systems,
    get_dataset,
    kfold_indices,
    leave_element_out,
    load_dataset,
    matbench_folds,
    train_val_test_split,
)
from stoichnet.evaluate import plots
from stoichnet.evaluate.compare import (
    BASELINES,
    DEFAULT_MODELS,
    ELEMNET_INPUT,
    FOREST,
    NETWORK,
    NETWORKS,
    TASKS,
    _check_frame,
    as_labels,
    compare,
    detect_task,
    network_rows,
)
from stoichnet.evaluate.data import VALIDATION_FRACTION, _read
from stoichnet.evaluate.executor import Job, fingerprint, job_seed, run_jobs
from stoichnet.evaluate.text import format_table
from stoichnet.util.checks import check_choice, check_int
from stoichnet.util.files import atomic_dir

PROTOCOLS = ("kfold", "matbench")
"""``kfold``: the folds of ``split``; ``matbench``: Matbench v0.1's five folds."""

SPLITS = ("random", "chemical-system", "element")
"""How the k-fold protocol folds the rows: at random, grouped by chemical system (every
system in one test fold only), or one element held out (``holdout_element``)."""

DEFAULT_FOLDS = 5
LOWER_IS_BETTER = {"MAE": True, "RMSE": True, "R2": False,
                   "accuracy": False, "ROC-AUC": False, "F1": False}
METRICS = {"regression": ("MAE", "RMSE", "R2"), "classification": ("ROC-AUC", "accuracy", "F1")}
HEADLINE = {"regression": "MAE", "classification": "ROC-AUC"}
SIGNIFICANCE = 0.05
CV_FILES = ("cv.json", "folds.csv", "predictions.csv", "folds.png")
MATBENCH_FILE = "matbench_results.json"
MATBENCH_BENCHMARK = "matbench_v0.1"


# ---------------------------------------------------------------- rows
@dataclass
class Rows:
    """The rows a protocol runs on.

    Attributes:
        name: the dataset's name, or the table's file name.
        frame: columns ``formula`` and ``target`` (plus ``split`` for a dataset that
            comes as several files), index 0..n-1, in file order.
        ids: (n,) str, each row's identity in the records: Matbench's ``mbid``
            ("mb-expt-is-metal-0001", the row's position from 1) for a Matbench set, the
            position in the pooled files for another dataset, the row number of a table.
        unit: the target's unit, or "".
        notes: one sentence per choice made for the user.
    """

    name: str
    frame: pd.DataFrame
    ids: np.ndarray
    unit: str = ""
    notes: list[str] = field(default_factory=list)


def matbench_ids(name: str, n: int) -> np.ndarray:
    """Matbench's ids of a dataset's ``n`` rows in its order: "mb-<name>-<i>" with i from
    1, zero-padded to the digits of n (``matbench_glass`` -> "mb-glass-0001")."""
    prefix = name.replace("matbench", "mb").replace("_", "-")
    digits = math.floor(math.log10(n)) + 1
    return np.array([f"{prefix}-{i:0{digits}d}" for i in range(1, n + 1)], dtype=object)


def load_rows(
    dataset: str | None = None,
    *,
    path: str | os.PathLike | None = None,
    formula_col: str = "formula",
    target_col: str = "target",
    duplicates: str | None = None,
    subset: int | None = None,
    seed: int = 0,
    task: str = "auto",
    raw: bool = False,
) -> Rows:
    """All rows of a registered ``dataset`` (every file pooled, in file order) or of the
    table at ``path``.

    Args:
        duplicates: rows with the same composition, as in ``load_split`` ("raise" by
            default for a table; a dataset keeps them and warns).
        subset: keep a seeded random ``subset`` rows (in file order).
        raw: the rows exactly as in the files, as the Matbench protocol needs them:
            nothing dropped, merged (duplicates are kept) or reordered; refuses
            ``subset`` and a ``duplicates`` policy other than "keep".
    """
    check_choice("task", task, ("auto", *TASKS))
    if (dataset is None) == (path is None):
        raise ValueError("give either dataset or path (not both)")
    if raw and (subset is not None or duplicates not in (None, "keep")):
        raise ValueError(
            "the matbench protocol uses every row as in the file: no subset, and duplicates "
            f"kept (got subset={subset!r}, duplicates={duplicates!r})")
    notes, unit = [], ""
    if dataset is not None:
        entry = get_dataset(dataset)
        name, unit = entry.name, entry.unit
        frame = load_dataset(name, duplicates="keep" if raw else duplicates, progress=False)
        if len(entry.splits) > 1:
            notes.append(f"{name}: its {'/'.join(entry.splits)} files pooled, "
                         f"{len(frame):,} rows in file order")
        ids = (matbench_ids(name, len(frame)) if name.startswith("matbench_")
               else frame.index.astype(str).to_numpy(dtype=object))
    else:
        name = Path(path).name
        policy = "keep" if raw else (duplicates or "raise")
        frame = _read(path, formula_col, target_col, policy, task)
        ids = frame.index.astype(str).to_numpy(dtype=object)
        frame = frame.reset_index(drop=True)
    if subset is not None:
        subset = check_int("subset", subset, 2)
        if subset < len(frame):
            keep = np.sort(np.random.default_rng(seed).choice(len(frame), subset, replace=False))
            frame, ids = frame.iloc[keep].reset_index(drop=True), ids[keep]
            notes.append(f"--subset {subset}: a random {subset} of the rows (seed {seed})")
    return Rows(name, frame, ids, unit, notes)


# ---------------------------------------------------------------- statistics
def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the mean of ``values`` (J,): mean ± t(J-1) * s / sqrt(J); (nan, nan)
    for fewer than two values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(
        len(values))
    return float(values.mean() - half), float(values.mean() + half)


def corrected_resampled_ttest(differences, n_train: float, n_test: float) -> tuple[float, float]:
    """Nadeau and Bengio's corrected resampled t-test of a paired score difference.

    The J folds' training sets overlap, so the folds' differences are correlated and the
    plain paired t-test is far too confident. Nadeau and Bengio replace the variance of
    the mean, s^2 / J, by s^2 * (1/J + n_test/n_train):

        t = mean(d) / sqrt((1/J + n_test/n_train) * s^2),   J - 1 degrees of freedom,

    with s^2 the sample variance (ddof 1) of the differences. C. Nadeau and Y. Bengio,
    "Inference for the generalization error", Machine Learning 52, 239-281 (2003); over
    repeated k-fold, J = repeats * k (Bouckaert and Frank, PAKDD 2004).

    Args:
        differences: (J,) per-fold differences of one metric (model A - model B).
        n_train, n_test: rows of a training and of a test fold (means, if they vary).
    Returns:
        (t, two-sided p-value). Differences that are all equal give t = ±inf, p = 0, or
        t = 0, p = 1 when they are all zero.
    Raises:
        ValueError: fewer than two differences.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"the corrected t-test needs at least two folds, got {d.shape}")
    variance = d.var(ddof=1) * (1 / len(d) + n_test / n_train)
    if variance == 0:
        return (0.0, 1.0) if d.mean() == 0 else (math.copysign(math.inf, d.mean()), 0.0)
    t = float(d.mean() / math.sqrt(variance))
    return t, float(2 * stats.t.sf(abs(t), len(d) - 1))


@dataclass(frozen=True)
class PairedComparison:
    """The network against the forest on one metric, fold by fold.

    Attributes:
        metric: e.g. "MAE"; lower_is_better: its direction.
        differences: (J,) network - forest, per fold.
        network_wins, forest_wins, ties: folds on which each scored better.
        t, p_value: the corrected resampled t-test (None with a single fold).
    """

    metric: str
    lower_is_better: bool
    network: float
    forest: float
    differences: tuple[float, ...]
    network_wins: int
    forest_wins: int
    ties: int
    t: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < SIGNIFICANCE


# ---------------------------------------------------------------- one job
def fit_and_score(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame, *, model: str,
                  task: str, epochs: int | None, recipe: str | None, seed: int,
                  n_resamples: int = 1, baselines_train: pd.DataFrame | None = None) -> dict:
    """Train ``model`` on ``train`` (a network stops early on ``val``; a baseline trains on
    ``baselines_train`` when given, and a forest's sigma is then recalibrated out of bag)
    and score it on ``test``, through :func:`stoichnet.evaluate.compare.compare`.

    Returns a JSON-serialisable dict: ``metrics`` (name -> value, low, high: the
    bootstrap interval over ``n_resamples`` resamples of the test rows, meaningless for
    the default 1), ``predictions`` (n_test,), ``probabilities`` (n_test, n_classes) or
    None, ``classes``, ``fit_seconds``, ``epochs``, ``stopped_by``, ``learning`` (a
    network's "did not learn" diagnosis, :mod:`stoichnet.evaluate.learning`, or None),
    ``calibration`` (a model with an uncertainty: ``ModelRun.calibration``, else None).
    """
    result = compare(train, val, test, models=[model], task=task, epochs=epochs, recipe=recipe,
                     seed=seed, n_resamples=n_resamples, progress=False,
                     baselines_train=baselines_train)
    run = result.runs[model]
    return {
        "metrics": {name: {"value": e.value, "low": e.low, "high": e.high}
                    for name, e in run.metrics.items()},
        "predictions": run.predictions.tolist(),
        "probabilities": None if run.probabilities is None else run.probabilities.tolist(),
        "classes": None if result.classes is None else result.classes.tolist(),
        "fit_seconds": run.fit_s,
        "epochs": run.epochs,
        "stopped_by": run.stopped_by,
        "learning": None if run.learning is None else str(run.learning),
        "calibration": run.calibration,
    }


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's formulas and targets, in order: its identity in a job's
    fingerprint."""
    h = hashlib.sha256("\n".join(frame["formula"].astype(str)).encode())
    h.update(json.dumps(frame["target"].tolist(), default=str).encode())
    return h.hexdigest()


def check_models(models: Sequence[str] | None, task: str) -> list[str]:
    """The model names, defaulting to ``compare``'s for the task; ValueError for an
    unknown or repeated name."""
    names = list(DEFAULT_MODELS[task] if models is None else models)
    known = {**BASELINES[task], **NETWORKS[task]}
    if not names or len(set(names)) != len(names) or not set(names) <= set(known):
        raise ValueError(f"models {names} for {task}: each must be one of {', '.join(known)}, "
                         "at least one, no repeats")
    return names


def prepare_rows(frame: pd.DataFrame, models: Sequence[str] | None, task: str,
                 drop_unsupported: bool) -> tuple[pd.DataFrame, str, list[str], np.ndarray]:
    """(rows with index 0..n-1, task, model names, kept positions of the input): the task
    detected as ``compare`` does, class labels as ints, and with a network among the
    models the rows outside ElemNet's 86 elements refused or (``drop_unsupported``)
    dropped (ElemNet's input only; the set models take any element)."""
    check_choice("task", task, ("auto", *TASKS))
    frame = _check_frame("data", frame)
    task = detect_task(frame["target"]) if task == "auto" else task
    frame = _check_frame("data", frame, task)
    if task == "classification":
        frame = as_labels(frame)
    models = check_models(models, task)
    if any(m in ELEMNET_INPUT for m in models):
        frame = network_rows({"data": frame}, drop_unsupported)["data"]
    kept = frame.index.to_numpy()
    return frame.reset_index(drop=True), task, models, kept


def inner_split(train: pd.DataFrame, grouped: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (fit, validation) of a training fold: a seeded random
    :data:`VALIDATION_FRACTION`, or whole chemical systems when ``grouped``."""
    if grouped:
        return chemical_system_split(train["formula"], VALIDATION_FRACTION, seed=seed)
    return train_val_test_split(len(train), (1 - VALIDATION_FRACTION, VALIDATION_FRACTION),
                                seed=seed)


# ---------------------------------------------------------------- the result
@dataclass
class Fold:
    """One outer fold: positions (into the rows) of its training fold, the network's
    validation rows (a part of the training fold) and its test fold."""

    repeat: int
    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class CVResult:
    """Everything ``cross_validate`` measured.

    ``scores``: one row per repeat x fold x model x metric (columns repeat, fold, model,
    metric, value, n_train, n_test); ``outcomes``: the job results by job key
    (predictions in the test fold's row order); ``formulas``/``y``/``ids``: the (n,) rows.
    """

    name: str
    task: str
    unit: str
    protocol: str
    split: str
    holdout_element: str | None
    models: list[str]
    repeats: int
    folds: list[Fold]
    scores: pd.DataFrame
    outcomes: dict[str, dict]
    formulas: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    settings: dict
    notes: list[str] = field(default_factory=list)
    classes: list | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.task]

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    def values(self, model: str, metric: str) -> np.ndarray:
        """(J,) the metric on each fold (repeat-major order)."""
        rows = self.scores[(self.scores["model"] == model) & (self.scores["metric"] == metric)]
        return rows.sort_values(["repeat", "fold"])["value"].to_numpy(dtype=float)

    def summary(self) -> pd.DataFrame:
        """One row per model x metric: mean, std (ddof 1) and the 95% t-interval of the mean
        over the folds. The interval treats folds as independent; their training sets
        overlap, so it is optimistic (the paired test below corrects for that)."""
        rows = []
        for model in self.models:
            for metric in self.metrics:
                v = self.values(model, metric)
                low, high = t_interval(v)
                rows.append({"model": model, "metric": metric, "mean": float(v.mean()),
                             "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                             "low": low, "high": high, "n_folds": len(v)})
        return pd.DataFrame(rows)

    @property
    def networks(self) -> list[str]:
        """The networks among the models, in the order asked for."""
        return [m for m in self.models if m in NETWORKS[self.task]]

    def comparison(self, metric: str | None = None,
                   network: str | None = None) -> PairedComparison | None:
        """``network`` (default: the first network of the models) vs the forest on
        ``metric`` (default: MAE or ROC-AUC); None unless both were trained."""
        network = network or next(iter(self.networks), NETWORK)
        if network not in self.models or FOREST not in self.models:
            return None
        metric = metric or HEADLINE[self.task]
        lower = LOWER_IS_BETTER[metric]
        net, rf = self.values(network, metric), self.values(FOREST, metric)
        d = net - rf
        better = -d if lower else d
        t = p = None
        if len(d) >= 2:
            n_train = np.mean([len(f.train) for f in self.folds])
            n_test = np.mean([len(f.test) for f in self.folds])
            t, p = corrected_resampled_ttest(d, n_train, n_test)
        return PairedComparison(metric, lower, float(net.mean()), float(rf.mean()),
                                tuple(d.tolist()), int((better > 0).sum()),
                                int((better < 0).sum()), int((better == 0).sum()), t, p)

    def verdict(self) -> str | None:
        """One sentence per network on it vs the forest across the folds, saying whether
        the difference is significant; None without a network or without the forest."""
        sentences = [self._verdict(network) for network in self.networks]
        return " ".join(s for s in sentences if s) or None

    def _verdict(self, network: str) -> str | None:
        c = self.comparison(network=network)
        if c is None:
            return None
        failed = self.failed_folds(network)
        if failed:
            j = self.n_folds
            return (f"The network ({network}) is no result: it did not learn in {len(failed)} "
                    f"of {j} fold{'s' if j > 1 else ''} ({self.describe_folds()}); in "
                    f"{failed[0][0]}, {failed[0][1]}; its scores are not compared with the "
                    f"forest's ({FOREST}).")
        unit = f" {self.unit}" if self.unit and self.task == "regression" else ""
        diff = c.network - c.forest
        better = (diff < 0) if c.lower_is_better else (diff > 0)
        how = ("ties with" if diff == 0 else "beats" if better else "trails")
        j = self.n_folds
        head = (f"The network ({network}) {how} the forest ({FOREST}) in {c.metric}: "
                f"{c.network:.4g} vs {c.forest:.4g}{unit} on average over {j} fold"
                f"{'s' if j > 1 else ''} ({self.describe_folds()}), better on "
                f"{c.network_wins} of {j}")
        if c.p_value is None:
            return f"{head}; a single fold allows no test of significance."
        if c.significant:
            return (f"{head}; the difference is significant (Nadeau-Bengio corrected "
                    f"resampled t-test, p = {c.p_value:.3g}).")
        return (f"{head}; the difference is not significant (Nadeau-Bengio corrected "
                f"resampled t-test, p = {c.p_value:.3g} >= {SIGNIFICANCE}): these folds "
                "do not tell the two apart.")

    def failed_folds(self, network: str | None = None) -> list[tuple[str, str]]:
        """(fold label, diagnosis) of each fold in which ``network`` (default: the first
        network of the models) did not learn (its validation error not clearly below the
        mean predictor's or chance)."""
        network = network or next(iter(self.networks), NETWORK)
        failed = []
        for fold in self.folds:
            out = self.outcomes.get(job_key(fold.repeat, fold.index, network), {})
            if out.get("learning"):
                failed.append((f"repeat {fold.repeat}, fold {fold.index}", out["learning"]))
        return failed

    def describe_folds(self) -> str:
        """E.g. "random 5-fold", "chemical-system 5-fold x 2 repeats", "Li held out"."""
        if self.protocol == "matbench":
            return "Matbench v0.1 folds"
        if self.split == "element":
            return f"formulas with {self.holdout_element} held out"
        k = self.n_folds // self.repeats
        return f"{self.split} {k}-fold" + (f" x {self.repeats} repeats" if self.repeats > 1
                                            else "")

    def table(self) -> str:
        """Text table: per model, each metric's mean ± std [95% t-interval] over folds."""
        summary = self.summary().set_index(["model", "metric"])
        unit = f" ({self.unit})" if self.unit and self.task == "regression" else ""

        def cell(model, metric):
            row = summary.loc[(model, metric)]
            if row["n_folds"] < 2:
                return f"{row['mean']:.4g}"
            return f"{row['mean']:.4g} ± {row['std']:.3g} [{row['low']:.4g}, {row['high']:.4g}]"

        columns = [f"{m}{unit if m in ('MAE', 'RMSE') else ''}" for m in self.metrics]
        rows = {model: {col: cell(model, m) for col, m in zip(columns, self.metrics, strict=True)}
                for model in self.models}
        return format_table(rows, columns)

    def calibration_summary(self) -> dict[str, dict[str, float]]:
        """"<model> raw" / "<model> recalibrated" -> the mean over folds of each test-fold
        calibration metric (each fold recalibrated on its own validation rows; the forest,
        which trains on them, on its out-of-bag predictions), for the models with an
        uncertainty; {} when none has one."""
        rows = {}
        for model in self.models:
            reports = [out.get("calibration") for key, out in self.outcomes.items()
                       if key.endswith(f"/model={model}")]
            if not reports or any(r is None for r in reports):
                continue
            for stage in ("raw", "recalibrated"):
                rows[f"{model} {stage}"] = {
                    metric: float(np.mean([r[stage][metric] for r in reports]))
                    for metric in reports[0][stage] if metric != "rows"}
        return rows

    def calibration_table(self) -> str | None:
        """Text table of :meth:`calibration_summary` (None when no model has an uncertainty)."""
        rows = self.calibration_summary()
        return format_table(rows, list(next(iter(rows.values())))) if rows else None

    def predictions_frame(self) -> pd.DataFrame:
        """id, formula, target, then per repeat the test fold of each row and every
        model's out-of-fold prediction (classification: the label, then
        ``<model> p(<label>)`` columns). With repeats, columns carry " r<repeat>". Rows that
        were in no test fold (the training rows of an element split) are left out."""
        n = len(self.y)
        frame = pd.DataFrame({"id": self.ids, "formula": self.formulas, "target": self.y})
        predicted = np.zeros(n, dtype=bool)
        for r in range(self.repeats):
            suffix = f" r{r}" if self.repeats > 1 else ""
            fold_of = np.full(n, -1, dtype=np.int64)
            columns: dict[str, np.ndarray] = {}
            for fold in (f for f in self.folds if f.repeat == r):
                fold_of[fold.test] = fold.index
                for model in self.models:
                    out = self.outcomes[job_key(r, fold.index, model)]
                    label = columns.setdefault(f"{model}{suffix}",
                                               np.full(n, None, dtype=object))
                    label[fold.test] = out["predictions"]
                    for j, c in enumerate(self.classes or []):
                        p = columns.setdefault(f"{model}{suffix} p({c})", np.full(n, np.nan))
                        p[fold.test] = np.asarray(out["probabilities"])[:, j]
            predicted |= fold_of >= 0
            frame[f"fold{suffix}"] = fold_of
            for name in sorted(columns, key=lambda c: " p(" in c):  # labels, then p(...)
                frame[name] = columns[name]
        return frame[predicted].reset_index(drop=True).infer_objects()

    def figure(self):
        """Per-fold scores of every metric, the models of one fold joined by a line."""
        panels = {m: {model: self.values(model, m) for model in self.models}
                  for m in self.metrics}
        unit = f" ({self.unit})" if self.unit and self.task == "regression" else ""
        return plots.paired_scores(panels, units={"MAE": unit, "RMSE": unit},
                                   title=f"{self.name}: {self.describe_folds()}")

    def to_dict(self) -> dict:
        """JSON-serialisable summary (no per-row predictions)."""
        summary = self.summary()
        comparisons = {network: {m: _comparison_record(network, self.comparison(m, network))
                                 for m in self.metrics}
                       for network in self.networks}
        return {
            "name": self.name, "task": self.task, "unit": self.unit,
            "protocol": self.protocol, "split": self.split,
            "holdout_element": self.holdout_element, "folds": self.describe_folds(),
            "n_rows": len(self.y), "repeats": self.repeats, "settings": self.settings,
            "notes": self.notes, "verdict": self.verdict(),
            "models": {
                model: {row["metric"]: {k: row[k] for k in ("mean", "std", "low", "high")}
                        for _, row in summary[summary["model"] == model].iterrows()}
                for model in self.models},
            # the first network's (as before several networks), then every network's
            "comparison": next(iter(comparisons.values()), dict.fromkeys(self.metrics)),
            "comparisons": comparisons,
            "fold_sizes": [{"repeat": f.repeat, "fold": f.index, "n_train": len(f.train),
                            "n_val": len(f.val), "n_test": len(f.test)} for f in self.folds],
            "jobs": {key: {k: out[k] for k in ("fit_seconds", "epochs", "stopped_by")}
                     for key, out in self.outcomes.items()},
            "calibration": self.calibration_summary(),
        }

    def matbench_record(self) -> dict:
        """Each model's folds in the layout of Matbench's results (``MatbenchTask.as_dict``'s
        ``results``): ``fold_<k>`` -> ``data`` (id -> prediction: a float, the positive
        class's probability for classification), ``parameters`` and ``scores`` (mae, rmse,
        mape, max_error; accuracy, balanced_accuracy, f1, rocauc), plus ``scores`` over
        the folds (mean, max, min, std) as Matbench's leaderboard shows them."""
        models = {}
        for model in self.models:
            results = {}
            for fold in self.folds:
                out = self.outcomes[job_key(fold.repeat, fold.index, model)]
                truth = self.y[fold.test]
                if self.task == "regression":
                    predicted = np.asarray(out["predictions"], dtype=float)
                else:
                    predicted = np.asarray(out["probabilities"], dtype=float)[:, 1]
                results[f"fold_{fold.index}"] = {
                    "data": dict(zip(self.ids[fold.test].tolist(), predicted.tolist(),
                                     strict=True)),
                    "parameters": {"model": model, "seed": self.settings["job seeds"][
                        job_key(fold.repeat, fold.index, model)]} | (
                        {} if out["epochs"] is None else
                        {"recipe": self.settings["recipe"], "max_epochs": self.settings["epochs"],
                         "epochs_trained": out["epochs"], "stopped_by": out["stopped_by"]}),
                    "scores": matbench_scores(truth, predicted, self.task, self.classes),
                }
            names = next(iter(results.values()))["scores"]
            scores = {m: {op: float(getattr(np, op)([r["scores"][m] for r in results.values()]))
                          for op in ("mean", "max", "min", "std")} for m in names}
            models[model] = {"benchmark_name": MATBENCH_BENCHMARK, "dataset_name": self.name,
                             "results": results, "scores": scores}
        return {
            "benchmark_name": MATBENCH_BENCHMARK, "dataset_name": self.name,
            "folds": "KFold(n_splits=5, shuffle=True, random_state=18012019) over the rows "
                     "in file order",
            "ids": "Matbench's mbid (the row's position from 1) for a Matbench set, else "
                   "the row's id in predictions.csv; they name Matbench's rows only if the "
                   "file holds its rows in its order",
            "models": models,
        }


def _comparison_record(network: str, c: PairedComparison | None) -> dict | None:
    """``c`` as JSON for cv.json."""
    return None if c is None else {
        "network": network, "forest": FOREST, "mean_network": c.network,
        "mean_forest": c.forest, "differences": list(c.differences),
        "network_wins": c.network_wins, "forest_wins": c.forest_wins, "ties": c.ties,
        "t": c.t, "p_value": c.p_value, "test": "Nadeau-Bengio corrected resampled t"}


def matbench_scores(truth, predicted, task: str, classes=None) -> dict[str, float]:
    """Matbench's fold scores. Regression: mae, rmse, mape (over |truth| > 1e-5, as a
    fraction) and max_error. Classification (``predicted``: probability of the positive
    class ``classes[1]``): accuracy, balanced_accuracy and f1 of the labels
    ``predicted > 0.5``, and rocauc of the probabilities."""
    truth, predicted = np.asarray(truth), np.asarray(predicted, dtype=float)
    if task == "regression":
        truth = truth.astype(float)
        kept = np.abs(truth) > 1e-5
        return {"mae": float(skm.mean_absolute_error(truth, predicted)),
                "rmse": float(skm.root_mean_squared_error(truth, predicted)),
                "mape": float(np.mean(np.abs((truth[kept] - predicted[kept]) / truth[kept]))),
                "max_error": float(skm.max_error(truth, predicted))}
    positive = truth == classes[1]
    labels = predicted > 0.5
    return {"accuracy": float(skm.accuracy_score(positive, labels)),
            "balanced_accuracy": float(skm.balanced_accuracy_score(positive, labels)),
            "f1": float(skm.f1_score(positive, labels)),
            "rocauc": float(skm.roc_auc_score(positive, predicted))}


def job_key(repeat: int, fold: int, model: str) -> str:
    return f"repeat={repeat}/fold={fold}/model={model}"


# ---------------------------------------------------------------- the protocol
def make_folds(frame: pd.DataFrame, *, protocol: str, split: str, folds: int | None,
               repeats: int, holdout_element: str | None, seed: int,
               task: str) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train positions, test positions) of every outer fold; every bad
    combination is refused here, before any training."""
    n = len(frame)
    if protocol == "matbench":
        if folds not in (None, 5) or split != "random" or repeats != 1:
            raise ValueError(
                "the matbench protocol has Matbench v0.1's five fixed random folds: leave "
                f"folds at 5, split random and repeats 1 (got folds={folds}, split={split!r}, "
                f"repeats={repeats})")
        sets = [matbench_folds(n)]
    elif split == "element":
        if holdout_element is None:
            raise ValueError("split='element' needs holdout_element (--holdout-element), "
                             "e.g. 'Li'")
        if folds is not None or repeats != 1:
            raise ValueError(
                f"the element split has one fold (test: the formulas with {holdout_element}); "
                f"leave folds unset and repeats at 1 (got folds={folds}, repeats={repeats})")
        sets = [leave_element_out(frame["formula"], holdout_element)]
    else:
        k = check_int("folds", DEFAULT_FOLDS if folds is None else folds, 2)
        if split == "chemical-system":
            n_groups = len(set(chemical_systems(frame["formula"])))
            if k > n_groups:
                raise ValueError(f"folds={k} exceeds the {n_groups} chemical systems of the "
                                 f"{n} rows: use at most {n_groups} folds, or split='random'")
            make = lambda s: chemical_system_kfold(frame["formula"], k, seed=s)  # noqa: E731
        else:
            if k > n:
                raise ValueError(f"folds={k} exceeds the {n} rows: use at most {n} folds")
            make = lambda s: kfold_indices(n, k, seed=s)  # noqa: E731
        sets = [make(job_seed(seed, f"repeat={r}/folds")) for r in range(repeats)]
    if holdout_element is not None and split != "element":
        raise ValueError(f"holdout_element={holdout_element!r} goes with split='element', "
                         f"not {split!r}")
    out = [(r, k, train, test) for r, fold_set in enumerate(sets)
           for k, (train, test) in enumerate(fold_set)]
    if task == "classification":
        y = frame["target"].to_numpy()
        for r, k, train, test in out:
            for part, rows in (("training", train), ("test", test)):
                present = np.unique(y[rows])
                if len(present) < 2:
                    raise ValueError(
                        f"fold {k} (repeat {r}) has only class {present.tolist()} in its "
                        f"{part} rows: ROC-AUC is undefined; use fewer folds")
    return out


def cross_validate(
    data: pd.DataFrame,
    *,
    folds: int | None = None,
    repeats: int = 1,
    models: Sequence[str] | None = None,
    split: str = "random",
    holdout_element: str | None = None,
    protocol: str = "kfold",
    task: str = "auto",
    epochs: int | None = None,
    recipe: str | None = None,
    seed: int = 0,
    unit: str = "",
    ids: Sequence | None = None,
    name: str = "data",
    notes: Sequence[str] = (),
    drop_unsupported: bool = False,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
) -> CVResult:
    """Cross-validate every model on the same folds of ``data``.

    Args:
        data: DataFrame with columns ``formula`` and ``target`` (the rows, in order).
        folds: folds of the k-fold protocol (default 5; >= 2, at most the rows, or the
            chemical systems under ``split="chemical-system"``); leave unset for the
            element split (one fold) and the matbench protocol (five).
        repeats: repeated k-fold: each repeat folds the rows anew (seeded).
        models: names as in ``compare`` (default: all of the task).
        split: one of :data:`SPLITS`; holdout_element: the element of ``split="element"``.
        protocol: one of :data:`PROTOCOLS`; "matbench" folds the rows exactly as
            Matbench v0.1 does (keep them as in the file: :func:`load_rows` ``raw=True``).
        task, epochs, recipe, drop_unsupported: as in ``compare``.
        seed: the run's seed: folds, validation rows and each job's seed derive from it.
        unit, name, notes: for the reports; ids: (n,) row ids for the records (default:
            the positions).
        cache_dir: folder of finished jobs, reused when the run is repeated.
        jobs, scheduler: where the trainings run: ``run_jobs``' ``n_jobs`` (local worker
            processes, or the workers of ``scheduler="local"``) and ``scheduler`` (None,
            "local" or "tcp://HOST:PORT"); results do not depend on them.
        progress: a bar (terminal) or a line per finished training (log) on stderr.

    Raises:
        ValueError: any bad combination (more folds than rows or systems, a holdout
            element no formula or every formula contains, ...), before any training.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    check_choice("split", split, SPLITS)
    repeats = check_int("repeats", repeats, 1)
    seed = check_int("seed", seed, 0)
    ids = np.arange(len(data)).astype(str) if ids is None else np.asarray(ids, dtype=object)
    if len(ids) != len(data):
        raise ValueError(f"ids has {len(ids)} entries for {len(data)} rows")
    frame, task, models, kept = prepare_rows(data, models, task, drop_unsupported)
    if len(kept) < len(ids) and protocol == "matbench":
        raise ValueError("the matbench protocol scores every row; it cannot drop the rows "
                         "outside the network's elements (leave the network out instead)")
    ids = ids[kept]
    classes = np.unique(frame["target"]).tolist() if task == "classification" else None
    if protocol == "matbench" and classes is not None and len(classes) != 2:
        raise ValueError(f"the matbench protocol's classification is binary; got {classes}")
    outer = make_folds(frame, protocol=protocol, split=split, folds=folds, repeats=repeats,
                       holdout_element=holdout_element, seed=seed, task=task)
    grouped = split == "chemical-system"
    settings = {"models": models, "epochs": epochs, "recipe": recipe, "seed": seed,
                "folds": folds, "repeats": repeats, "split": split, "protocol": protocol,
                "job seeds": {}}
    fold_list, job_list, data_digest = [], [], digest(frame)
    for r, k, train, test in outer:
        fit, val = inner_split(frame.iloc[train], grouped,
                               job_seed(seed, f"repeat={r}/fold={k}/validation"))
        fold_list.append(Fold(r, k, train, train[val], test))
        parts = {"train": frame.iloc[train], "fit": frame.iloc[train[fit]],
                 "val": frame.iloc[train[val]], "test": frame.iloc[test]}
        for model in models:
            key = job_key(r, k, model)
            job_seed_ = job_seed(seed, key)
            settings["job seeds"][key] = job_seed_
            kwargs = {"train": parts["fit"], "val": parts["val"], "test": parts["test"],
                      "model": model, "task": task, "epochs": epochs, "recipe": recipe,
                      "seed": job_seed_}
            if model not in NETWORKS[task]:  # the whole training fold, val rows included
                kwargs["baselines_train"] = parts["train"]
            frames = ("train", "val", "test", "baselines_train")
            config = {k_: v for k_, v in kwargs.items() if k_ not in frames}
            job_list.append(Job(key, fit_and_score, kwargs, fingerprint(
                "stoichnet.cv", config, data_digest,
                *(digest(kwargs[k_]) for k_ in frames if k_ in kwargs))))
    start = time.perf_counter()
    outcomes = run_jobs(job_list, cache_dir=cache_dir, n_jobs=jobs, scheduler=scheduler,
                        progress=progress or None)
    settings["wall_seconds"] = time.perf_counter() - start
    score_rows = [
        {"repeat": f.repeat, "fold": f.index, "model": model, "metric": metric,
         "value": outcomes[job_key(f.repeat, f.index, model)]["metrics"][metric]["value"],
         "n_train": len(f.train), "n_test": len(f.test)}
        for f in fold_list for model in models for metric in METRICS[task]]
    return CVResult(
        name=name, task=task, unit=unit, protocol=protocol, split=split,
        holdout_element=holdout_element, models=models, repeats=repeats, folds=fold_list,
        scores=pd.DataFrame(score_rows), outcomes=outcomes,
        formulas=frame["formula"].to_numpy(dtype=object), y=frame["target"].to_numpy(),
        ids=ids, settings=settings, notes=list(notes), classes=classes)


def write_cv(result: CVResult, out_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Write cv.json, folds.csv, predictions.csv and folds.png (and, for the matbench
    protocol, matbench_results.json) into ``out_dir``, atomically. Other files there (the
    jobs/ cache) are left alone.

    Raises:
        FileExistsError: one of those files exists and ``overwrite`` is false.
    """
    names = list(CV_FILES) + ([MATBENCH_FILE] if result.protocol == "matbench" else [])
    out = Path(out_dir)
    check_cv_output(out, overwrite, names)
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "cv.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
        result.scores.to_csv(tmp / "folds.csv", index=False)
        result.predictions_frame().to_csv(tmp / "predictions.csv", index=False)
        result.figure().savefig(tmp / "folds.png", dpi=110)
        if result.protocol == "matbench":
            (tmp / MATBENCH_FILE).write_text(json.dumps(result.matbench_record(), indent=1))
    return [out / n for n in names]


def check_cv_output(out: Path, overwrite: bool, names: Sequence[str] = CV_FILES) -> None:
    """Refuse a folder that already holds one of ``names`` unless ``overwrite`` (a cache
    of finished jobs there is what a re-run reuses, so it is not in the way)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output folder {str(out)!r} is a file")
    there = [n for n in names if (out / n).exists()]
    if there and not overwrite:
        raise FileExistsError(f"{out}/ already holds {', '.join(there)}; pass --overwrite "
                              "(overwrite=True) to replace them (finished jobs are reused "
                              "from its jobs/ cache)")
