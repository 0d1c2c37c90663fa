"""Scores of predictions against targets, with seeded 95% bootstrap confidence intervals.

The metric values come from scikit-learn's functions; this module adds input checks,
the percentile bootstrap (resampling test rows with replacement) and a report per task.

Regression: ``mae``, ``rmse``, ``r2`` (targets and predictions in the target's unit,
e.g. eV/atom). Classification: ``accuracy`` and ``f1`` from predicted labels,
``roc_auc`` from scores (probability of the positive class, or one column of
probabilities per class).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from stoichnet.util.checks import check_int, check_real

from ..chem import ATOMIC_NUMBERS, parse_formulas


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the full test set and its bootstrap confidence interval.

    Attributes:
        value: the metric on all rows.
        low, high: percentile bootstrap interval bounds.
        confidence: coverage of the interval, e.g. 0.95.
    """

    value: float
    low: float
    high: float
    confidence: float

    def overlaps(self, other: Estimate) -> bool:
        """True when the two intervals share at least one point."""
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


def _as_1d(name: str, values, numeric: bool = True) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if numeric:
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(
            array.dtype, np.complexfloating
        ):
            raise TypeError(f"{name} must be real numbers, got dtype {array.dtype}")
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(
                f"{name} has {bad.size} non-finite value(s) (NaN/inf), first at row {bad[0]}"
            )
    return array


def _check_pair(y_true, y_pred, pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    t = _as_1d("y_true", y_true)
    p = _as_1d(pred_name, y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} rows but {pred_name} has {len(p)}")
    return t, p


def mae(y_true, y_pred) -> float:
    """Mean absolute error, in the target's unit. Inputs: (n_samples,) numbers."""
    return float(skm.mean_absolute_error(*_check_pair(y_true, y_pred)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, in the target's unit. Inputs: (n_samples,) numbers."""
    return float(skm.root_mean_squared_error(*_check_pair(y_true, y_pred)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination R² (1 is perfect; 0 is the mean predictor)."""
    return float(skm.r2_score(*_check_pair(y_true, y_pred)))


def _check_labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = _as_1d("y_true", y_true, numeric=False)
    p = _as_1d("y_pred", y_pred, numeric=False)
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} rows but y_pred has {len(p)}")
    return t, p


def accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose predicted label equals the true label."""
    return float(skm.accuracy_score(*_check_labels(y_true, y_pred)))


def f1(y_true, y_pred, classes=None) -> float:
    """F1 score: of the larger label for two classes (1 for 0/1 targets), macro-averaged
    over the classes otherwise. ``classes``: all labels (default: those in the inputs)."""
    t, p = _check_labels(y_true, y_pred)
    classes = np.unique(np.concatenate([t, p]) if classes is None else np.asarray(classes))
    if len(classes) <= 2:
        return float(skm.f1_score(t, p, average="binary", pos_label=classes[-1]))
    return float(skm.f1_score(t, p, labels=classes, average="macro"))


def roc_auc(y_true, y_score, classes=None) -> float:
    """Area under the ROC curve.

    Args:
        y_true: (n_samples,) labels.
        y_score: (n_samples,) score of the positive class (the larger label) for binary
            targets, or (n_samples, n_classes) probabilities, columns in ``classes`` order
            (one-vs-rest, macro average; a two-column matrix uses its second column).
        classes: labels of the columns of a 2-D ``y_score``; default: sorted unique y_true.
    Raises:
        ValueError: when y_true holds a single class (the curve is undefined).
    """
    t = _as_1d("y_true", y_true, numeric=False)
    score = np.asarray(y_score, dtype=float)
    if score.ndim not in (1, 2) or len(score) != len(t):
        raise ValueError(
            f"y_score must have shape ({len(t)},) or ({len(t)}, n_classes), got {score.shape}"
        )
    if not np.all(np.isfinite(score)):
        raise ValueError("y_score has non-finite values (NaN/inf)")
    present = np.unique(t)
    if len(present) < 2:
        raise ValueError(f"ROC-AUC needs two classes in y_true, got only {present.tolist()}")
    if score.ndim == 2 and score.shape[1] == 2:
        score = score[:, 1]
    if score.ndim == 1:
        return float(skm.roc_auc_score(t, score))
    labels = np.unique(t) if classes is None else np.asarray(classes)
    return float(skm.roc_auc_score(t, score, multi_class="ovr", average="macro", labels=labels))


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    y_pred,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    stratify: bool = False,
) -> Estimate:
    """Percentile bootstrap interval of ``metric(y_true, y_pred)``.

    Each resample draws ``len(y_true)`` rows with replacement (within each class of
    ``y_true`` when ``stratify``, so every resample keeps every class: needed for
    ROC-AUC) and recomputes the metric; the interval spans the (1 - confidence)/2 and
    (1 + confidence)/2 quantiles of the resampled values.

    Args:
        metric: function of (y_true, y_pred) -> float, e.g. :func:`mae`.
        y_true: (n_samples,) targets or labels.
        y_pred: (n_samples, ...) predictions or scores; rows are resampled together.
        n_resamples: number of bootstrap resamples (>= 1).
        confidence: interval coverage in (0, 1).
        seed: seed of the ``numpy.random.Generator`` drawing the resamples.
        stratify: resample within the classes of ``y_true``.
    """
    n_resamples = check_int("n_resamples", n_resamples, 1)
    confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True)
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {t.shape}")
    if len(p) != len(t):
        raise ValueError(f"y_true has {len(t)} rows but y_pred has {len(p)}")
    value = float(metric(t, p))
    rng = np.random.default_rng(seed)
    if stratify:
        groups = [np.flatnonzero(t == c) for c in np.unique(t)]
        draws = np.concatenate(
            [g[rng.integers(0, len(g), size=(n_resamples, len(g)))] for g in groups], axis=1
        )
    else:
        draws = rng.integers(0, len(t), size=(n_resamples, len(t)))
    values = np.array([metric(t[rows], p[rows]) for rows in draws], dtype=float)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return Estimate(value, float(low), float(high), float(confidence))


REGRESSION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "MAE": mae,
    "RMSE": rmse,
    "R2": r2,
}


def regression_report(
    y_true, y_pred, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Estimate]:
    """MAE, RMSE and R² of (n_samples,) predictions, each with a bootstrap interval
    (the same resampled rows for every metric)."""
    t, p = _check_pair(y_true, y_pred)
    return {
        name: bootstrap_ci(f, t, p, n_resamples=n_resamples, confidence=confidence, seed=seed)
        for name, f in REGRESSION_METRICS.items()
    }


def classification_report(
    y_true,
    y_proba,
    classes=None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Accuracy, ROC-AUC and F1 from predicted probabilities, with stratified bootstrap
    intervals.

    Args:
        y_true: (n_samples,) labels.
        y_proba: (n_samples, n_classes) probabilities, columns in ``classes`` order (what
            ``predict_proba`` returns), or (n_samples,) probability of the larger of two
            labels. The predicted label is the most probable class.
        classes: the column labels; default: sorted unique ``y_true``.
    """
    t = _as_1d("y_true", y_true, numeric=False)
    proba = np.asarray(y_proba, dtype=float)
    labels = np.unique(t) if classes is None else np.asarray(classes)
    if proba.ndim == 1:
        if len(labels) != 2:
            raise ValueError(
                f"a 1-D y_proba needs exactly two classes, got {len(labels)}: {labels.tolist()}"
            )
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape != (len(t), len(labels)):
        raise ValueError(
            f"y_proba must have shape ({len(t)}, {len(labels)}) for classes {labels.tolist()}, "
            f"got {proba.shape}"
        )
    unknown = np.setdiff1d(np.unique(t), labels)
    if unknown.size:
        raise ValueError(f"y_true has labels {unknown.tolist()} not in classes {labels.tolist()}")
    scorers = {
        "accuracy": lambda yt, pr: accuracy(yt, labels[pr.argmax(axis=1)]),
        "ROC-AUC": lambda yt, pr: roc_auc(yt, pr, classes=labels),
        "F1": lambda yt, pr: f1(yt, labels[pr.argmax(axis=1)], classes=labels),
    }
    return {
        name: bootstrap_ci(
            f, t, proba, n_resamples=n_resamples, confidence=confidence, seed=seed, stratify=True
        )
        for name, f in scorers.items()
    }


def error_by_element(formulas, y_true, y_pred) -> pd.DataFrame:
    """Mean absolute error of the formulas that contain each element.

    A formula counts once for every element in it (Fe2O3 counts for Fe and for O).

    Args:
        formulas: (n_samples,) formula strings (a bad one raises FormulaError naming its row).
        y_true, y_pred: (n_samples,) targets and predictions.
    Returns:
        DataFrame indexed by element symbol (in order of atomic number) with columns
        ``mae`` (target unit) and ``n_formulas``; ``df["mae"]`` feeds
        :func:`stoichnet.evaluate.plots.periodic_table_heatmap`.
    """
    t, p = _check_pair(y_true, y_pred)
    parsed = parse_formulas(formulas, errors="raise")
    if len(parsed.inverse) != len(t):
        raise ValueError(f"formulas has {len(parsed.inverse)} rows but y_true has {len(t)}")
    elements_of = [c.elements for c in parsed.compositions]
    errors = np.abs(p - t)
    pairs = pd.DataFrame(
        [
            (symbol, e)
            for k, e in zip(parsed.inverse, errors, strict=True)
            for symbol in elements_of[k]
        ],
        columns=["element", "abs_error"],
    )
    table = pairs.groupby("element")["abs_error"].agg(mae="mean", n_formulas="size")
    return table.sort_index(key=lambda index: index.map(ATOMIC_NUMBERS))
