"""The main job: the network and the classical baselines side by side on one split.

``compare(train, val, test)`` trains every named model on the same training rows (the
networks stop early on the validation rows and keep their best weights), scores each on
the test rows with 95% bootstrap intervals, and says in one sentence how much the network
improves on the random forest. ``write_comparison`` puts the numbers, the predictions and
the figures in a folder. A network that did not learn (:func:`stoichnet.evaluate.learning.
learning_check` on the validation rows) is reported as such, in the verdict too.

Baselines are trained before the networks, so a run stopped during the (long) network
training still holds every baseline's result. With ``checkpoint_dir`` each network
writes ``<checkpoint_dir>/<model>.ckpt`` after every epoch and on a stop request, and
``resume=True`` continues it: the resumed network is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from stoichnet.chem import ELEMNET_ELEMENTS, parse_formulas
from stoichnet.evaluate import plots
from stoichnet.evaluate.learning import LearningFailure, learning_check
from stoichnet.evaluate.metrics import (
    Estimate,
    classification_report,
    error_by_element,
    regression_report,
)
from stoichnet.evaluate.progress import progress_bar, progress_line
from stoichnet.evaluate.text import format_table, verdict
from stoichnet.evaluate.uncertainty import (
    LEVELS,
    Recalibration,
    calibration_report,
    fit_recalibration,
    interval_coverage,
)
from stoichnet.models.baselines import CLASSIFICATION_BASELINES, REGRESSION_BASELINES
from stoichnet.models.estimators import (
    CrabNetClassifier,
    CrabNetRegressor,
    ElemNetClassifier,
    ElemNetRegressor,
    RoostClassifier,
    RoostRegressor,
)
from stoichnet.models.uncertainty import (
    oob_dist,
    predict_dist,
    quantile_interval,
    uncertainty_kinds,
)
from stoichnet.util.checks import check_choice
from stoichnet.util.files import atomic_dir

TASKS = ("regression", "classification")
NETWORKS = {
    task: {"elemnet": elemnet,
           # fine-tuned from the formation-energy network shipped in the package
           "elemnet-transfer": partial(elemnet, init="pretrained"),
           "roost": roost,
           "crabnet": crabnet}
    for task, elemnet, roost, crabnet in (
        ("regression", ElemNetRegressor, RoostRegressor, CrabNetRegressor),
        ("classification", ElemNetClassifier, RoostClassifier, CrabNetClassifier))}
ELEMNET_INPUT = ("elemnet", "elemnet-transfer")
"""The networks that read ElemNet's 86 element fractions (the others, the set models,
take any element with an embedding vector)."""
BASELINES = {"regression": REGRESSION_BASELINES, "classification": CLASSIFICATION_BASELINES}
DEFAULT_MODELS = {"regression": ("elemnet", "rf", "ridge", "mean"),
                  "classification": ("elemnet", "rf", "majority")}
NETWORK, FOREST = "elemnet", "rf"


def detect_task(y) -> str:
    """"classification" for a target of 0/1 values, booleans or text labels, else
    "regression". y: (n_rows,) targets."""
    values = pd.Series(np.asarray(y))
    if values.dtype == bool or values.dtype == object or isinstance(
        values.dtype, pd.StringDtype | pd.CategoricalDtype
    ):
        return "classification"
    return "classification" if values.isin([0, 1]).all() else "regression"


def as_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a float target of whole numbers (0.0/1.0 read from a CSV) turned into
    int64 class labels; other targets unchanged."""
    target = frame["target"]
    if pd.api.types.is_float_dtype(target) and np.all(np.mod(target.to_numpy(), 1) == 0):
        return frame.assign(target=target.astype(np.int64))
    return frame


def _check_frame(name: str, frame, task: str | None = None) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame with columns formula, target; "
                        f"got {type(frame).__name__}")
    missing = [c for c in ("formula", "target") if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")
    if len(frame) == 0:
        raise ValueError(f"{name} has no rows")
    if task == "regression" and not pd.api.types.is_numeric_dtype(frame["target"]):
        raise ValueError(f"{name}.target must be numeric for regression, got {frame['target'].dtype}")
    return frame.reset_index(drop=True)


class StopRequest:
    """Asks a running network to stop after its current mini-batch (what Ctrl-C does).

    ``request()`` may be called from a signal handler. Without a checkpoint it sets
    ``stop_training`` on the network being trained (``current``), which keeps its best
    weights so far; when ``checkpointed`` it calls the network's ``interrupt()``, so
    ``fit`` writes the checkpoint mid-epoch and raises ``TrainingInterrupted``, and a
    resumed run loses nothing.
    """

    def __init__(self):
        self.requested = False
        self.current = None
        self.checkpointed = False

    def request(self) -> None:
        self.requested = True
        if hasattr(self.current, "request_stop"):  # an ensemble stops its member itself
            self.current.request_stop()
            return
        model = getattr(self.current, "model_", None)
        if model is None:
            return
        if self.checkpointed:
            model.interrupt()
        else:
            model.stop_training = True


@dataclass
class ModelRun:
    """One model's outcome on the test rows.

    Attributes:
        name: as in ``models`` ("elemnet", "rf", ...).
        metrics: metric name -> :class:`Estimate` (value and 95% bootstrap interval).
        fit_s, predict_s: wall seconds of ``fit`` (of a resumed network: since its
            checkpoint) and of ``predict`` on the test rows.
        predictions: (n_test,) predicted values (regression) or labels (classification).
        probabilities: (n_test, n_classes) class probabilities (classification), else None.
        history: per-epoch logs of a network (``loss``, ``val_loss``, ...), else None.
        epochs: epochs a network trained, else None.
        stopped_by: why a network stopped: "early stopping", "epochs", "budget" or
            "interrupt"; None for baselines.
        n_far_outside: test predictions far outside the training targets' range
            (:func:`far_outside`; regression), else 0.
        learning: a network's :class:`~stoichnet.evaluate.learning.LearningFailure`
            when it did not learn (its metrics are then no result), else None.
        steps: optimizer steps a network took, else None.
        sigma: (n_test,) predicted standard deviations of a regressor with an
            uncertainty (:func:`stoichnet.models.predict_dist`), else None.
        calibration: for such a model, {"kinds": what sigma is made of,
            "recalibrated on": "validation rows" (or a forest's "out-of-bag training
            rows", see ``compare``'s ``baselines_train``), "recalibration": the
            :class:`~stoichnet.evaluate.uncertainty.Recalibration` fitted there (as a
            dict), "raw" / "recalibrated": the test
            rows' :func:`~stoichnet.evaluate.uncertainty.calibration_report`; a forest
            adds "tree quantiles": the test rows' coverage of the central 68% and 95%
            intervals of its trees' predictions, :func:`~stoichnet.models.uncertainty.
            quantile_interval`}, else None.
    """

    name: str
    metrics: dict[str, Estimate]
    fit_s: float
    predict_s: float
    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    history: dict[str, list[float]] | None = None
    epochs: int | None = None
    stopped_by: str | None = None
    n_far_outside: int = 0
    learning: LearningFailure | None = None
    steps: int | None = None
    sigma: np.ndarray | None = None
    calibration: dict | None = None


@dataclass
class Comparison:
    """Everything ``compare`` measured.

    ``formulas``/``y_test``: the (n_test,) test rows; ``runs``: model name -> ModelRun in
    the order asked for; ``classes``: the labels (classification); ``skipped``: models
    not trained because the run was interrupted.
    """

    task: str
    formulas: np.ndarray
    y_test: np.ndarray
    runs: dict[str, ModelRun]
    n_train: int
    n_val: int
    settings: dict
    unit: str = ""
    classes: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return any(r.stopped_by == "interrupt" for r in self.runs.values()) or bool(self.skipped)

    @property
    def headline(self) -> tuple[str, bool]:
        """(metric the verdict uses, whether lower is better)."""
        return ("MAE", True) if self.task == "regression" else ("ROC-AUC", False)

    def table(self) -> str:
        """Text table: the test metrics with intervals, fit and predict seconds, epochs."""
        unit = f" ({self.unit})" if self.unit else ""
        rows = {}
        for name, run in self.runs.items():
            if self.task == "regression":
                row = {f"test MAE{unit} [95% CI]": run.metrics["MAE"],
                       "RMSE": run.metrics["RMSE"].value, "R2": run.metrics["R2"].value}
            else:
                row = {f"{m} [95% CI]": run.metrics[m] for m in ("accuracy", "ROC-AUC", "F1")}
            note = f" ({run.stopped_by})" if run.stopped_by in ("budget", "interrupt") else ""
            rows[name] = row | {"fit s": round(run.fit_s, 1), "predict s": round(run.predict_s, 2),
                                "epochs": None if run.epochs is None else f"{run.epochs}{note}"}
        return format_table(rows, list(next(iter(rows.values()))))

    def calibration_table(self) -> str | None:
        """Text table of the test rows' calibration, raw and recalibrated on the
        validation rows, for every model with an uncertainty (a forest also the coverage
        of its tree-quantile intervals); None if none has one."""
        rows = {}
        for name, run in self.runs.items():
            if run.calibration is None:
                continue
            recal = Recalibration.from_dict(run.calibration["recalibration"])
            how = {"scale": f"sigma x {recal.scale:.3g}", "isotonic": "isotonic",
                   "none": "not fitted"}[recal.method]
            rows[f"{name} raw"] = run.calibration["raw"]
            rows[f"{name} recalibrated ({how})"] = run.calibration["recalibrated"]
            if "tree quantiles" in run.calibration:
                rows[f"{name} tree quantiles"] = run.calibration["tree quantiles"]
        if not rows:
            return None
        columns = [c for c in next(iter(rows.values())) if c != "rows"]
        return format_table(rows, columns)

    def verdict(self) -> str | None:
        """One sentence per network on it vs the forest (or on the network not having
        learned); None without a network or without the forest."""
        if FOREST not in self.runs:
            return None
        metric, lower = self.headline
        unit = self.unit if self.task == "regression" else ""
        sentences = [
            verdict(name, run.metrics[metric], FOREST, self.runs[FOREST].metrics[metric],
                    metric, lower, unit,
                    failure=None if run.learning is None else str(run.learning))
            for name, run in self.runs.items() if name in NETWORKS[self.task]]
        return " ".join(sentences) or None

    def to_dict(self) -> dict:
        """JSON-serialisable summary (no per-row predictions)."""
        return {
            "task": self.task,
            "unit": self.unit,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": len(self.y_test),
            "settings": self.settings,
            "interrupted": self.interrupted,
            "skipped": self.skipped,
            "verdict": self.verdict(),
            "models": {
                name: {
                    "metrics": {m: vars(e) for m, e in run.metrics.items()},
                    "fit_seconds": run.fit_s,
                    "predict_seconds": run.predict_s,
                    "epochs": run.epochs,
                    "steps": run.steps,
                    "stopped_by": run.stopped_by,
                    "learning_check": None if run.learning is None else str(run.learning),
                    "predictions_far_outside_training_range": run.n_far_outside,
                    "calibration": run.calibration,
                }
                for name, run in self.runs.items()
            },
        }


def far_outside(predictions, y_train) -> np.ndarray:
    """(n,) bool: which ``predictions`` lie more than the width of the training targets'
    range outside it, below ``min - (max - min)`` or above ``max + (max - min)``.

    No sound regression of those targets predicts there; a baseline that does has
    extrapolated wildly (a linear model on an unusual formula). predictions: (n,);
    y_train: (n_train,) training targets, in the same unit.
    """
    low, high = float(np.min(y_train)), float(np.max(y_train))
    width = high - low
    predictions = np.asarray(predictions, dtype=float)
    return (predictions < low - width) | (predictions > high + width)


def _warn_far_outside(name: str, formulas, predictions, y_train) -> int:
    """Warn, naming the worst formula, when predictions are :func:`far_outside` the
    training targets' range; return how many are."""
    far = far_outside(predictions, y_train)
    if far.any():
        low, high = float(np.min(y_train)), float(np.max(y_train))
        worst = int(np.argmax(np.where(far, np.abs(predictions - (low + high) / 2), -np.inf)))
        warnings.warn(
            f"{name}: {int(far.sum())} of {len(far)} test prediction(s) lie far outside the "
            f"training targets' range [{low:.4g}, {high:.4g}] (more than its width beyond "
            f"it), e.g. {formulas[worst]!r} predicted {predictions[worst]:.4g}; its metrics "
            "are dominated by them", stacklevel=3)
    return int(far.sum())


def _summary_line(run: ModelRun, task: str) -> str:
    """One line on a finished model, e.g. "elemnet: fitted in 96.3 s (25 epochs: the
    maximum; best val_loss 0.0712), test MAE 0.0705"."""
    epochs = ""
    if run.history and run.history.get("val_loss"):
        why = "the maximum" if run.stopped_by == "epochs" else run.stopped_by
        epochs = f" ({run.epochs} epochs: {why}; best val_loss {min(run.history['val_loss']):.4g})"
    metric = "MAE" if task == "regression" else "ROC-AUC"
    failure = f"; {run.learning}" if run.learning else ""
    return (f"{run.name}: fitted in {run.fit_s:.1f} s{epochs}, "
            f"test {metric} {run.metrics[metric].value:.4g}{failure}")


def _calibration(estimator, val: pd.DataFrame, test: pd.DataFrame, method: str,
                 fitted_rows: pd.DataFrame | None = None) -> tuple[np.ndarray, dict]:
    """(test sigma (n_test,), ``ModelRun.calibration``) of a regressor with an uncertainty:
    the recalibration fitted on the validation rows, the test rows scored raw and with it.
    A forest that trained on the validation rows (``fitted_rows``: the rows it was fitted
    on, in order) is recalibrated on its out-of-bag predictions of those rows instead."""
    if fitted_rows is None:
        recal_on, y_recal = "validation rows", val["target"].to_numpy()
        recal_mean, recal_sigma = predict_dist(estimator, val["formula"])
    else:
        recal_on, y_recal = "out-of-bag training rows", fitted_rows["target"].to_numpy()
        recal_mean, recal_sigma = oob_dist(estimator, fitted_rows["formula"])
        kept = ~np.isnan(recal_mean)  # rows every tree saw have no out-of-bag prediction
        y_recal, recal_mean, recal_sigma = y_recal[kept], recal_mean[kept], recal_sigma[kept]
    recal = fit_recalibration(y_recal, recal_mean, recal_sigma, method)
    y_test = test["target"].to_numpy()
    mean, sigma = predict_dist(estimator, test["formula"])
    calibration = {
        "kinds": list(uncertainty_kinds(estimator)),
        "recalibrated on": recal_on,
        "recalibration": recal.to_dict(),
        "raw": calibration_report(y_test, mean, sigma),
        "recalibrated": calibration_report(y_test, mean, sigma, recal),
    }
    if "trees" in calibration["kinds"]:  # the cheap interval without a Gaussian shape
        calibration["tree quantiles"] = {
            f"coverage {level:.0%}": interval_coverage(
                y_test, *quantile_interval(estimator, test["formula"], level))
            for level in LEVELS}
    return sigma, calibration


def _stopped_by(estimator, stop: StopRequest) -> str:
    if stop.requested:
        return "interrupt"
    if estimator.stopped_by_budget_:
        return "budget"
    return "epochs" if estimator.n_epochs_ >= estimator.settings_["epochs"] else "early stopping"


def network_rows(
    frames: dict[str, pd.DataFrame], drop: bool
) -> dict[str, pd.DataFrame]:
    """Keep the rows whose formulas use only ElemNet's 86 input elements: raise naming the
    others, or (``drop``) drop them from every split with a warning that counts them."""
    allowed, problems = set(ELEMNET_ELEMENTS), {}
    for split, frame in frames.items():
        parsed = parse_formulas(frame["formula"])
        outside = [sorted(set(c.elements) - allowed) for c in parsed.compositions]
        bad = np.array([bool(e) for e in outside], dtype=bool)[parsed.inverse]
        if bad.any():
            problems[split] = [
                f"row {label} {formula!r} ({', '.join(outside[i])})"
                for label, formula, i in zip(frame.index[bad], frame["formula"][bad],
                                             parsed.inverse[bad], strict=True)
            ]
            frames[split] = frame[~bad] if drop else frame
    if not problems:
        return frames
    counts = ", ".join(f"{len(rows)} in {split}" for split, rows in problems.items())
    examples = "; ".join(rows[0] for rows in problems.values())
    message = f"formulas with elements outside the network's 86 inputs: {counts} (e.g. {examples})"
    if not drop:
        raise ValueError(
            f"{message}. Remove those rows, or pass drop_unsupported=True "
            "(--drop-unsupported) to drop them from every model's data with this report"
        )
    warnings.warn(f"dropped {message}", stacklevel=3)
    return frames


def compare(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    task: str = "auto",
    epochs: int | None = None,
    recipe: str | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    unit: str = "",
    n_resamples: int = 1000,
    n_jobs: int | None = None,
    stop: StopRequest | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    drop_unsupported: bool = False,
    progress: bool = True,
    recalibration: str = "isotonic",
    baselines_train: pd.DataFrame | None = None,
) -> Comparison:
    """Train each model on ``train`` and score it on ``test``.

    Args:
        train, val, test: DataFrames with columns ``formula`` (str) and ``target``
            (number, or class label). Networks stop early on ``val``.
        models: names, e.g. ``("elemnet", "rf", "ridge", "mean")`` (regression) or
            ``("elemnet", "rf", "majority")`` (classification); default: all of the task.
        task: "regression", "classification" or "auto" (:func:`detect_task` on train).
        epochs: maximum epochs of the network (default: the recipe's).
        recipe: the network's training recipe (``stoichnet.models.recipes``; default
            the package default).
        seed: seed of every model's random draws and of the bootstrap.
        max_minutes: wall-time cap on each network's training; the best weights so far
            are kept and the run is marked ``stopped_by="budget"``.
        unit: the target's unit, e.g. "eV/atom", for the table and the verdict.
        n_resamples: bootstrap resamples of each interval.
        n_jobs: processes of the baselines that take them (the forest); None: one.
        stop: a :class:`StopRequest` a signal handler may trigger; the network being
            trained stops after its current batch and the remaining models are skipped.
        checkpoint_dir: existing folder where each network writes ``<model>.ckpt``
            after every epoch and on a stop request (which then raises, see below).
        resume: continue each network from its checkpoint in ``checkpoint_dir`` (one
            without a checkpoint starts afresh); the same data, models and settings give
            the same predictions as an uninterrupted run.
        drop_unsupported: with an ElemNet network among ``models``, rows whose formula has
            an element outside its 86 inputs are dropped from every split (with a warning
            counting them) instead of raising, so all models see the same rows. Roost
            and CrabNet take every element (mat2vec has all 118), the baselines every
            element their features cover (CBFV's Magpie table, the forest's, has every
            property of He, Ne and Ar: noble-gas rows are featurised, nothing imputed;
            a formula with an element it lacks raises, naming the row).
        progress: show progress bars.
        recalibration: how a model's uncertainty is recalibrated on the validation rows
            ("isotonic" or "scale", :func:`~stoichnet.evaluate.uncertainty.
            fit_recalibration`) before its test calibration is reported beside the raw one.
            The scale, fitted by the Gaussian NLL, is pulled up by heavy tails (a 2-member
            ensemble's test coverage went from 12% / 22% raw to 98% / 99% at 68% / 95%),
            which the isotonic map (68% / 96%) is not.
        baselines_train: rows (``formula``, ``target``) the baselines, which do not stop
            early, train on instead of ``train``, e.g. ``cv``'s whole training fold, the
            validation rows included; the forest's sigma is then recalibrated on its
            out-of-bag predictions of those rows
            (:func:`~stoichnet.models.uncertainty.oob_dist`), never on rows it trained on.

    Warns:
        UserWarning: a model's test predictions lie :func:`far_outside` the training
            targets' range (counted in ``ModelRun.n_far_outside`` and metrics.json).

    Raises:
        stoichnet.nn.TrainingInterrupted: ``stop`` was requested while a network trained
            with a checkpoint; its ``path`` holds the run so far.
    """
    check_choice("task", task, ("auto", *TASKS))
    check_choice("recalibration", recalibration, ("scale", "isotonic"))
    train = _check_frame("train", train)
    task = detect_task(train["target"]) if task == "auto" else task
    train, val, test = (_check_frame(name, frame, task) for name, frame in
                        (("train", train), ("val", val), ("test", test)))
    if task == "classification":
        train, val, test = as_labels(train), as_labels(val), as_labels(test)
    available = {**BASELINES[task], **NETWORKS[task]}
    models = list(DEFAULT_MODELS[task] if models is None else models)
    unknown = [m for m in models if m not in available]
    if unknown or not models or len(set(models)) != len(models):
        raise ValueError(
            f"models {models} for {task}: each must be one of {', '.join(available)}, "
            "at least one, no repeats"
        )
    if any(m in ELEMNET_INPUT for m in models):
        train, val, test = network_rows(
            {"train": train, "val": val, "test": test}, drop_unsupported).values()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, the folder of the checkpoints")
    if checkpoint_dir is not None and not Path(checkpoint_dir).is_dir():
        raise FileNotFoundError(f"checkpoint_dir={str(checkpoint_dir)!r} is not a folder")
    stop = stop or StopRequest()
    settings = {"models": models, "epochs": epochs, "recipe": recipe, "seed": seed,
                "max_minutes": max_minutes, "n_jobs": n_jobs}
    y_test = test["target"].to_numpy()
    classes = np.unique(train["target"].to_numpy()) if task == "classification" else None
    runs: dict[str, ModelRun] = {}
    order = sorted(models, key=lambda m: m in NETWORKS[task])  # baselines first
    bar = progress_bar(order, enabled=progress, desc="compare", unit="model")
    for name in bar:
        if stop.requested:
            break
        bar.set_postfix_str(name)
        if name in NETWORKS[task]:
            estimator = NETWORKS[task][name](
                recipe=recipe, epochs=epochs, max_minutes=max_minutes,
                random_state=seed, verbose=1 if progress else 0,
            )
            fit_args = {"validation_data": (val["formula"], val["target"].to_numpy())}
            if checkpoint_dir is not None:
                checkpoint = Path(checkpoint_dir) / f"{name}.ckpt"
                fit_args |= {"checkpoint": checkpoint,
                             "resume": checkpoint if resume and checkpoint.is_file() else None}
        else:
            estimator = BASELINES[task][name]()
            # a Pipeline names its steps' parameters "<step>__random_state"
            estimator.set_params(**{
                key: value for key in estimator.get_params()
                for suffix, value in (("random_state", seed), ("n_jobs", n_jobs))
                if key == suffix or key.endswith(f"__{suffix}")
            })
            fit_args = {}
        on_baseline_rows = baselines_train is not None and name not in NETWORKS[task]
        rows = baselines_train if on_baseline_rows else train
        stop.current, stop.checkpointed = estimator, "checkpoint" in fit_args
        start = time.perf_counter()
        try:
            estimator.fit(rows["formula"], rows["target"].to_numpy(), **fit_args)
        finally:
            stop.current, stop.checkpointed = None, False
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        if task == "regression":
            predictions = np.asarray(estimator.predict(test["formula"]), dtype=float)
            probabilities = None
            predict_s = time.perf_counter() - start
            metrics = regression_report(y_test, predictions, n_resamples=n_resamples, seed=seed)
        else:
            probabilities = estimator.predict_proba(test["formula"])
            predictions = estimator.classes_[probabilities.argmax(axis=1)]
            predict_s = time.perf_counter() - start
            metrics = classification_report(y_test, probabilities, estimator.classes_,
                                            n_resamples=n_resamples, seed=seed)
        run = ModelRun(name, metrics, fit_s, predict_s, predictions, probabilities)
        if task == "regression":
            run.n_far_outside = _warn_far_outside(
                name, test["formula"].to_numpy(), predictions, rows["target"].to_numpy())
        if task == "regression" and uncertainty_kinds(estimator):
            run.sigma, run.calibration = _calibration(
                estimator, val, test, recalibration, rows if on_baseline_rows else None)
        if name in NETWORKS[task]:
            run.history = {k: [float(v) for v in vals]
                           for k, vals in estimator.history_.history.items()}
            run.epochs, run.steps = estimator.n_epochs_, estimator.n_steps_
            run.stopped_by = _stopped_by(estimator, stop)
            run.learning = learning_check(estimator, val["formula"], val["target"].to_numpy(),
                                          train["target"].to_numpy(), unit=unit)
            settings[f"{name} hyperparameters"] = {
                k: v for k, v in estimator.settings_.items() if k != "verbose"
            } | {"loss": estimator.model_.loss.name}  # the estimator's choice when unset
        runs[name] = run
        progress_line(_summary_line(run, task), enabled=progress)
    bar.close()
    return Comparison(
        task=task, formulas=test["formula"].to_numpy(dtype=str), y_test=y_test,
        runs={m: runs[m] for m in models if m in runs}, n_train=len(train), n_val=len(val),
        settings=settings, unit=unit, classes=classes,
        skipped=[m for m in models if m not in runs],
    )


def comparison_figures(result: Comparison) -> dict[str, object]:
    """File name -> matplotlib Figure: parity, residuals and the network's periodic-table
    MAE map (regression) or ROC curves and confusion matrices (classification), and the
    networks' learning curves."""
    figures = {}
    runs = result.runs
    if result.task == "regression":
        predictions = {name: run.predictions for name, run in runs.items()}
        figures["parity.png"] = plots.parity_plots(result.y_test, predictions, unit=result.unit)
        figures["residuals.png"] = plots.residual_histograms(
            result.y_test, predictions, unit=result.unit
        )
        if NETWORK in runs:
            by_element = error_by_element(result.formulas, result.y_test,
                                          runs[NETWORK].predictions)["mae"]
            unit = f" ({result.unit})" if result.unit else ""
            figures["periodic_table_mae.png"] = plots.periodic_table_heatmap(
                by_element, label=f"{NETWORK} test MAE{unit}"
            )
    else:
        figures["confusion.png"] = plots.confusion_matrices(
            result.y_test, {name: run.predictions for name, run in runs.items()},
            labels=result.classes,
        )
        if len(result.classes) == 2:
            figures["roc.png"] = plots.roc_curves(
                result.y_test, {name: run.probabilities for name, run in runs.items()}
            )
    distributions = {name: (run.predictions, run.sigma) for name, run in runs.items()
                     if run.sigma is not None}
    if distributions:
        # the test rows' mean is the point prediction of every model with an uncertainty
        figures["calibration.png"] = plots.calibration_curves(
            result.y_test, distributions, recalibrations={
                name: Recalibration.from_dict(runs[name].calibration["recalibration"])
                for name in distributions})
        figures["error_vs_sigma.png"] = plots.error_vs_sigma(result.y_test, distributions,
                                                             unit=result.unit)
    histories = {name: run.history for name, run in runs.items() if run.history}
    if histories:
        losses = sorted({result.settings[f"{name} hyperparameters"]["loss"] for name in histories})
        unit = f", {result.unit}" if result.unit and losses == ["mae"] else ""
        figures["learning_curves.png"] = plots.learning_curves(
            histories, ylabel=f"loss ({', '.join(losses)}{unit})")
    return figures


def predictions_frame(result: Comparison) -> pd.DataFrame:
    """formula, target, then one column of test predictions per model (classification:
    predicted labels, plus ``<model> p(<label>)`` probability columns; a model with an
    uncertainty adds ``<model> sigma``, the raw predicted standard deviation)."""
    frame = pd.DataFrame({"formula": result.formulas, "target": result.y_test})
    for name, run in result.runs.items():
        frame[name] = run.predictions
    for name, run in result.runs.items():
        if run.sigma is not None:
            frame[f"{name} sigma"] = run.sigma
    for name, run in result.runs.items():
        if run.probabilities is not None:
            for j, label in enumerate(result.classes):
                frame[f"{name} p({label})"] = run.probabilities[:, j]
    return frame


def write_comparison(result: Comparison, out_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Write metrics.json, predictions.csv and the PNG figures into ``out_dir``.

    Files are written into ``<out_dir>.partial`` and moved into ``out_dir`` when all are
    complete. Returns the paths written.

    Raises:
        FileExistsError: ``out_dir`` is a non-empty folder and ``overwrite`` is false.
    """
    names = []
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
        predictions_frame(result).to_csv(tmp / "predictions.csv", index=False)
        names += ["metrics.json", "predictions.csv"]
        for name, fig in comparison_figures(result).items():
            fig.savefig(tmp / name, dpi=110)
            names.append(name)
    return [Path(out_dir) / n for n in names]
