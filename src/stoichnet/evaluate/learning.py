"""Did the network learn? The one check ``compare``, ``train`` and ``cv`` run after
training a network, so that a network that learned nothing is reported as such and not
as a result.

The rule, on the validation rows (never the test rows):

- regression: the network's validation MAE must be below :data:`MAE_RATIO` (0.9) times
  the MAE of the mean predictor (the training targets' mean for every row) on the same
  rows;
- classification: its validation ROC-AUC must reach :data:`MIN_ROC_AUC` (0.6; chance
  and the majority predictor score 0.5). Accuracy is not used: on unbalanced classes a
  useful network may still predict the majority class everywhere;
- predictions that are not finite always fail.

When the rule fails, :func:`learning_check` names the likely causes from what the
estimator recorded: too few optimizer steps, a zero learning rate, validation loss best
after the first epoch, unscaled targets, a time budget, non-finite predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stoichnet.evaluate.metrics import mae, roc_auc

MAE_RATIO = 0.9
"""A regressor learned when its validation MAE < MAE_RATIO x the mean predictor's."""
MIN_ROC_AUC = 0.6
"""A classifier learned when its validation ROC-AUC >= MIN_ROC_AUC."""
FEW_STEPS = 1000
"""Fewer optimizer steps than this are named as a likely cause (the stoichnet recipe
takes at least 3,000)."""


@dataclass(frozen=True)
class LearningFailure:
    """A network that did not learn; ``str()`` is the sentence the reports print.

    Attributes:
        metric: "MAE" or "ROC-AUC", on the validation rows.
        network: the network's value of ``metric``.
        reference: what it had to beat: the mean predictor's MAE (regression), or
            :data:`MIN_ROC_AUC` (classification).
        n_val: validation rows.
        causes: the likely causes, most likely first.
        unit: the target's unit (regression), for the sentence.
    """

    metric: str
    network: float
    reference: float
    n_val: int
    causes: tuple[str, ...]
    unit: str = ""

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit and self.metric == "MAE" else ""
        if self.metric == "MAE":
            ratio = self.network / self.reference if self.reference else math.inf
            how = (f"its validation MAE {self.network:.4g}{unit} is {ratio:.2f} x the mean "
                   f"predictor's {self.reference:.4g}{unit} on the same {self.n_val} rows "
                   f"(learning means below {MAE_RATIO} x)")
        else:
            how = (f"its validation ROC-AUC {self.network:.3g} on {self.n_val} rows is below "
                   f"{self.reference:g} (chance: 0.5)")
        return f"the network did not learn: {how}; likely cause: {'; '.join(self.causes)}"


def learning_check(estimator, X_val, y_val, y_train, unit: str = "") -> LearningFailure | None:
    """None if a fitted network estimator learned by the rule of this module, else why not.

    Args:
        estimator: a fitted ``NeuralNetRegressor``/``NeuralNetClassifier`` or ElemNet
            estimator (it records ``n_steps_``, ``n_epochs_``, ``best_epoch_``,
            ``settings_``, ``target_scale_``, ``stopped_by_budget_``).
        X_val: (n_val, ...) validation inputs, as ``fit`` takes them (formulas or numbers).
        y_val: (n_val,) validation targets or labels.
        y_train: (n_train,) the training targets (the mean predictor's mean).
        unit: the target's unit, for the sentence.
    Returns None too when the rule cannot judge: constant validation targets
    (regression) or a single class among the validation labels.
    """
    y_val, y_train = np.asarray(y_val), np.asarray(y_train)
    if hasattr(estimator, "classes_"):
        proba = estimator.predict_proba(X_val)
        if len(np.unique(y_val)) < 2:
            return None
        finite = bool(np.all(np.isfinite(proba)))
        value = roc_auc(y_val, proba, classes=estimator.classes_) if finite else math.nan
        metric, reference = "ROC-AUC", MIN_ROC_AUC
        learned = value >= MIN_ROC_AUC
    else:
        predictions = estimator.predict(X_val)
        y_val = y_val.astype(float)
        reference = mae(y_val, np.full(len(y_val), float(np.mean(y_train))))
        if reference == 0:
            return None
        finite = bool(np.all(np.isfinite(predictions)))
        value = mae(y_val, predictions) if finite else math.nan
        metric = "MAE"
        learned = value < MAE_RATIO * reference
    if finite and learned:
        return None
    return LearningFailure(metric, value, reference, len(y_val),
                           _likely_causes(estimator, len(y_train), y_train, finite), unit)


def _likely_causes(estimator, n_train: int, y_train: np.ndarray, finite: bool) -> tuple[str, ...]:
    s = estimator.settings_
    causes = []
    if not finite:
        causes.append("its predictions are not finite (training diverged): lower the "
                      "learning rate")
    if s["learning_rate"] == 0:
        causes.append("the learning rate is 0")
    if estimator.n_steps_ < FEW_STEPS:
        per_epoch = math.ceil(n_train / s["batch_size"])
        causes.append(
            f"too few optimizer steps: {estimator.n_steps_} were taken ({estimator.n_epochs_} "
            f"epoch(s) of {per_epoch} batch(es) of {s['batch_size']} rows); give more epochs "
            "or a smaller batch size (the stoichnet recipe's defaults take at least 3,000)")
    if estimator.stopped_by_budget_:
        causes.append("the time budget (max_minutes) stopped training early")
    if estimator.best_epoch_ == 1 and estimator.n_epochs_ > 1:
        causes.append(
            "the validation loss was lowest after the first epoch and early stopping kept "
            f"those weights: the learning rate ({s['learning_rate']:g}) may be too high")
    if not hasattr(estimator, "classes_") and estimator.target_scale_ == 1.0:
        mean, std = float(np.mean(y_train)), float(np.std(y_train))
        if std > 10 or std < 0.1 or abs(mean) > 3 * std:
            causes.append(
                f"the targets are not standardised (mean {mean:.4g}, std {std:.4g}): pass "
                "standardize_target=True (the stoichnet recipe does)")
    if not causes:
        causes.append(
            f"none in the training settings ({estimator.n_steps_} steps, learning rate "
            f"{s['learning_rate']:g}): with {n_train} training rows the target may not be "
            "predictable from these inputs")
    return tuple(causes)
