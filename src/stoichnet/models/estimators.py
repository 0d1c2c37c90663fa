"""scikit-learn compatible estimators around ``stoichnet.nn.Sequential``.

``NeuralNetRegressor`` / ``NeuralNetClassifier`` take numeric X (n_samples, n_features);
``ElemNetRegressor`` / ``ElemNetClassifier`` also take chemical formulas (a list, array
or pandas Series of strings), turned into ElemNet's 86 element fractions;
``RoostRegressor``/``RoostClassifier`` and ``CrabNetRegressor``/``CrabNetClassifier``
take formulas as sets of elements (:mod:`stoichnet.chem.element_sets`). All work in
``Pipeline``, ``cross_val_score`` and ``GridSearchCV``: ``__init__`` only stores
hyper-parameters, ``fit`` validates them and sets attributes ending in ``_``.

The network is an ElemNet-style architecture string (see
:func:`stoichnet.models.elemnet.parse_arch`) whose last block is the output layer and
must be ``1``: the estimator sets its width (1 for regression and binary
classification, one unit per class otherwise) and activation (linear, sigmoid, softmax).

With ``standardize_target`` a regressor trains on (y - mean) / std of its training
targets; after training the scale is folded into the output layer (W <- std * W,
b <- std * b + mean), so ``model_`` (and a saved model file) predicts in the target's unit.

A regressor trained with a likelihood loss (``loss="gaussian_nll"`` or ``"laplace_nll"``)
has an aleatoric head: two output units, the mean and the log scale (log sigma, or log b
for the Laplace), and ``predict_dist`` returns its mean and sigma; with Monte-Carlo
dropout (``inference_dropout="mc"``, ``mc_samples`` >= 2) the spread of the passes adds
an epistemic part. Standardisation folds back as mean <- std * mean + mu and
log scale <- log scale + log std.

With ``init`` a network starts from a trained one's hidden layers under a new output layer
(transfer learning, :mod:`stoichnet.models.transfer`): ``init="pretrained"`` is the
formation-energy network shipped in the package, ``freeze`` the number of hidden layers
kept fixed, ``init_lr_scale`` the learning-rate factor of the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..chem.element_sets import EMBEDDINGS, element_sets, set_width
from ..chem.fractions import ELEMNET_ELEMENTS, ElementFractions
from ..nn import Sequential, losses, optimizers, schedules
from ..nn.callbacks import Callback, EarlyStopping
from ..util.checks import check_bool, check_choice, check_int, check_real
from .distributions import from_passes
from .elemnet import ELEMNET_17, Block, elemnet, format_arch, parse_arch
from .recipes import DEFAULT_RECIPE, INFERENCE_DROPOUT, Recipe, get_recipe
from .set_models import crabnet, roost
from .shipped import DEFAULT_PRETRAINED, PRETRAINED, load_pretrained
from .transfer import load_init, transfer_weights


class TargetUnitLogs(Callback):
    """Puts the losses of a network trained on standardised targets back in the target's
    unit (multiplied by ``scale ** power``: 1 for MAE, 2 for MSE; for a negative
    log-likelihood, power 0, plus log(scale)) in every batch's and epoch's logs, before the
    progress lines print them and the History records them.

    Runs after the estimator's other callbacks, so early stopping still compares the
    standardised values (the same ranking)."""

    def __init__(self, scale: float, power: int):
        self.factor = float(scale) ** power
        # a likelihood in the target's unit: -log p(y) = -log p((y - mean) / std) + log std
        self.shift = math.log(scale) if power == 0 else 0.0

    def _rescale(self, logs) -> None:
        for key in ("loss", "val_loss", "val_mc_loss"):
            if logs is not None and key in logs:
                logs[key] = logs[key] * self.factor + self.shift

    def on_batch_end(self, batch, logs=None):
        self._rescale(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._rescale(logs)


class TimeBudget(Callback):
    """Stops ``fit`` after the first mini-batch that ends past ``seconds`` of training;
    ``stopped`` tells whether it did."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.stopped = False

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_batch_end(self, batch, logs=None):
        if time.perf_counter() - self._start > self.seconds:
            self.stopped = True
            self.model.stop_training = True


class MonteCarloValidation(Callback):
    """Scores the validation rows as ``predict`` does with Monte-Carlo dropout (the mean
    of ``mc_samples`` passes with dropout on, masks drawn from ``seed``) after every
    epoch, as ``logs["val_mc_loss"]`` (the History records it with the other logs).

    The engine's ``val_loss`` is computed with dropout off; a network that predicts
    with dropout on must be early-stopped on what it will predict (the dropout trap).
    """

    def __init__(self, X_val: np.ndarray, y_val: np.ndarray, mc_samples: int, seed: int):
        self.X_val, self.y_val = X_val, y_val
        self.mc_samples, self.seed = mc_samples, seed

    def on_epoch_end(self, epoch, logs=None):
        predicted = self.model.predict(self.X_val, mc_samples=self.mc_samples, seed=self.seed)
        logs["val_mc_loss"] = float(self.model.loss.value(predicted, self.y_val))


@dataclass(repr=False, eq=False)  # sklearn's repr; estimators compare by identity
class _NeuralNet(BaseEstimator):
    """Shared fitting logic; see :class:`NeuralNetRegressor` for the parameters.

    The hyper-parameters are this dataclass's fields, listed once: the generated
    ``__init__`` has the explicit signature scikit-learn's ``get_params`` reads and only
    stores its arguments. These are the training's; the network's own are added by
    :class:`_DenseNet` (and the set models' estimators), the task's methods by
    :class:`_Regressor` / :class:`_Classifier`. The ElemNet estimators change some
    defaults (:class:`_ElemNet`).
    """

    _: KW_ONLY
    loss: str | None = None
    standardize_target: bool = False
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str | None = None
    warmup_fraction: float = 0.05
    epochs: int = 200
    batch_size: int = 32
    patience: int | None = 10
    validation_fraction: float = 0.1
    inference_dropout: str = "off"
    mc_samples: int = 10
    max_minutes: float | None = None
    dtype: str = "float32"
    random_state: int | None = None
    verbose: int = 0

    # --- hooks of the task (regression / classification) and of the input (numbers / formulas)
    def _settings(self) -> dict:
        """The effective hyper-parameters (an ElemNet estimator fills None from its recipe)."""
        return self.get_params()

    def _prepare_X(self, X, *, reset: bool) -> np.ndarray:
        dtype = np.float64 if self.dtype == "float64" else np.float32
        return validate_data(self, X, reset=reset, dtype=dtype)

    def _check_settings(self, s: dict) -> dict:
        """``s`` with every hyper-parameter checked: a wrong type raises TypeError, a
        value out of range ValueError (``stoichnet.util.checks``)."""
        check_choice("dtype", s["dtype"], ("float32", "float64"))
        s["standardize_target"] = check_bool("standardize_target", s["standardize_target"])
        for name in ("epochs", "batch_size", "mc_samples"):
            s[name] = check_int(name, s[name], 1)
        for name in ("patience", "random_state"):  # None: no early stopping, a fresh seed
            if s[name] is not None:
                s[name] = check_int(name, s[name], 0)
        s["validation_fraction"] = check_real("validation_fraction", s["validation_fraction"], 0, 1)
        s["warmup_fraction"] = check_real("warmup_fraction", s["warmup_fraction"], 0, 1)
        s["learning_rate"] = check_real("learning_rate", s["learning_rate"], 0)
        s["weight_decay"] = check_real("weight_decay", s["weight_decay"], 0)
        if s["max_minutes"] is not None:
            s["max_minutes"] = check_real("max_minutes", s["max_minutes"], 0)
        check_choice("inference_dropout", s["inference_dropout"], INFERENCE_DROPOUT)
        check_choice("schedule", s["schedule"], schedules.RECIPE_SCHEDULES)
        if not isinstance(s["verbose"], bool):
            s["verbose"] = check_int("verbose", s["verbose"], 0, 2)
        return self._check_network(s)

    def _check_network(self, s: dict) -> dict:
        """``s`` with the network's hyper-parameters checked (the subclass's)."""
        raise NotImplementedError

    def _build_network(self, s: dict, X: np.ndarray, seed: int) -> Sequential:
        """A new network for inputs like X, with ``self._n_outputs()`` outputs of
        activation ``self._output_activation()``, initial weights from ``seed``; sets
        ``init_source_``."""
        raise NotImplementedError

    def _split(self, X, y, fraction: float, rng: np.random.Generator):
        n = len(X)
        n_val = math.ceil(fraction * n)
        if n - n_val < 1:
            raise ValueError(
                f"validation_fraction={fraction} of {n} sample(s) leaves no training rows; "
                "lower it, or pass validation_data"
            )
        order = rng.permutation(n)
        val, train = order[:n_val], order[n_val:]
        return X[train], y[train], X[val], y[val]

    def _budget(self, s: dict, n_train: int) -> tuple[int, int]:
        """(batch size, epochs) of a fit on ``n_train`` rows; an ElemNet estimator sizes
        those it was not given by its recipe's size rule."""
        return s["batch_size"], s["epochs"]

    def _target_scale(self, y_train: np.ndarray, s: dict) -> tuple[float, float]:
        """(mean, std) the targets are standardised with; (0, 1) leaves them as they are."""
        return 0.0, 1.0

    def fit(self, X, y, validation_data=None, *, checkpoint=None, checkpoint_every: int = 1,
            resume=None, record=None):
        """Train a new network on (X, y).

        Args:
            X: (n_samples, n_features) numbers (ElemNet estimators: also formulas).
            y: (n_samples,) targets (numbers, or labels for a classifier).
            validation_data: optional (X_val, y_val) monitored for early stopping and
                the learning curves; without it, ``validation_fraction`` of the rows
                are held out (none when 0).
            checkpoint, checkpoint_every, resume: as ``Sequential.fit``: write a
                checkpoint every ``checkpoint_every`` epochs (and on Ctrl-C), or continue
                from one written by a fit with the same data and parameters; the result
                is bit-identical to an uninterrupted fit.
            record: "layers" records each layer's weight norm, gradient norm and dead-unit
                fraction per epoch in ``history_`` (``Sequential.fit``'s ``record``; the
                gradients are those of the standardised targets); the fit is unchanged.
        Returns:
            self, with ``model_`` (the trained Sequential, predicting in the target's
            unit), ``history_`` (per-epoch ``loss``/``val_loss`` and metrics; with
            standardised targets the MAE losses are converted back to the target's unit
            and MSE to its square, other losses stay those of the standardised targets),
            ``n_features_in_``, ``n_epochs_``, ``n_steps_`` (optimizer steps taken),
            ``best_epoch_`` (1-based epoch whose weights early stopping kept; None
            without it), ``stopped_by_budget_``, ``target_mean_``/``target_scale_``
            (the standardisation; 0 and 1 without it), ``settings_`` (the
            hyper-parameters used, with the batch size and epochs actually planned) and
            ``predict_seed_`` (the seed of the dropout masks of Monte-Carlo predictions,
            so a saved network predicts as the estimator did), ``init_source_`` (the
            network the hidden layers came from, in words; None without ``init``).
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        s = self._check_settings(self._settings())
        X = self._prepare_X(X, reset=True)
        y = self._prepare_y(y, len(X), fitting=True)
        split_seed, init_seed, fit_seed, predict_seed = np.random.SeedSequence(
            s["random_state"]
        ).generate_state(4)
        self.predict_seed_ = int(predict_seed)
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            X_val = self._prepare_X(validation_data[0], reset=False)
            y_val = self._prepare_y(validation_data[1], len(X_val), fitting=False)
            X_train, y_train = X, y
        elif s["validation_fraction"] > 0:
            X_train, y_train, X_val, y_val = self._split(
                X, y, s["validation_fraction"], np.random.default_rng(split_seed)
            )
        else:
            X_train, y_train, X_val, y_val = X, y, None, None
        s["batch_size"], s["epochs"] = self._budget(s, len(X_train))
        mean, scale = self._target_scale(y_train, s)
        if (mean, scale) != (0.0, 1.0):
            y_train = ((y_train - mean) / scale).astype(y_train.dtype)
            if y_val is not None:
                y_val = ((y_val - mean) / scale).astype(y_val.dtype)

        self.model_ = self._build_network(s, X, int(init_seed))
        total_steps = s["epochs"] * math.ceil(len(X_train) / s["batch_size"])
        optimizer = optimizers.get(
            {
                "name": s["optimizer"],
                "learning_rate": schedules.from_name(
                    s["schedule"], s["learning_rate"], total_steps, s["warmup_fraction"]),
                "weight_decay": s["weight_decay"],
            }
        )
        self.model_.compile(optimizer=optimizer, loss=s["loss"] or self._default_loss())
        callbacks = []
        monitor, stopping = "val_loss", None
        if X_val is not None and s["inference_dropout"] == "mc":
            callbacks.append(
                MonteCarloValidation(X_val, y_val, s["mc_samples"], seed=self.predict_seed_)
            )
            monitor = "val_mc_loss"
        if X_val is not None and s["patience"] is not None:
            stopping = EarlyStopping(monitor=monitor, patience=s["patience"],
                                     restore_best_weights=True)
            callbacks.append(stopping)
        budget = None
        if s["max_minutes"] is not None:
            budget = TimeBudget(60.0 * s["max_minutes"])
            callbacks.append(budget)
        power = _LOSS_UNIT_POWER.get(self.model_.loss.name)
        if (mean, scale) != (0.0, 1.0) and power is not None:
            callbacks.append(TargetUnitLogs(scale, power))  # last: after early stopping
        self.history_ = self.model_.fit(
            X_train,
            y_train,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            validation_data=None if X_val is None else (X_val, y_val),
            callbacks=callbacks,
            verbose=int(s["verbose"]),
            seed=int(fit_seed),
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
            record=record,
        )
        self.n_epochs_ = len(self.history_.history["loss"])
        self.n_steps_ = int(self.model_.optimizer.iterations)
        self.best_epoch_ = (None if stopping is None or stopping.best_epoch is None
                            else stopping.best_epoch + 1)
        self.stopped_by_budget_ = bool(budget and budget.stopped)
        self.target_mean_, self.target_scale_ = mean, scale
        if (mean, scale) != (0.0, 1.0):
            self._unscale(mean, scale)
        self.settings_ = s
        return self

    def _unscale(self, mean: float, scale: float) -> None:
        """Fold the target standardisation into the (linear) output layer, so ``model_``
        predicts mean + scale * output, and with an aleatoric head log scale + log(scale)
        in its second unit (``history_`` is already in the target's unit where the loss
        allows, :class:`TargetUnitLogs`)."""
        out = self.model_.layers[-1]
        # views into the model's flat parameters; column 0 the mean, 1 the log scale
        out.params["W"][:, :1] *= scale
        out.params["b"][:1] *= scale
        out.params["b"][:1] += mean
        out.params["b"][1:] += math.log(scale)

    def _forward(self, X, inference_dropout=None, mc_samples=None) -> np.ndarray:
        """(n_samples, n_outputs) network outputs; averaged over ``mc_samples`` passes with
        dropout on when ``inference_dropout`` is "mc" (None: the fitted settings)."""
        check_is_fitted(self, "model_")
        X = self._prepare_X(X, reset=False)
        mode = (
            self.settings_["inference_dropout"] if inference_dropout is None else inference_dropout
        )
        check_choice("inference_dropout", mode, INFERENCE_DROPOUT)
        if mode == "off":
            return self.model_.predict(X)
        samples = self.settings_["mc_samples"] if mc_samples is None else mc_samples
        samples = check_int("mc_samples", samples, 1)
        # the same masks on every call, so predictions are reproducible
        return self.model_.predict(X, mc_samples=samples, seed=self.predict_seed_)


_LOSS_UNIT_POWER = {"mae": 1, "mse": 2, "sum_squares": 2, "gaussian_nll": 0, "laplace_nll": 0}
"""Losses whose value on standardised targets times std**power is the value in the
target's unit (power 0: the negative log-likelihoods, whose value in the target's unit is
the standardised one plus log std; the others, e.g. Huber, are not scale-equivariant)."""


@dataclass(repr=False, eq=False)
class _DenseNet(_NeuralNet):
    """The fully connected networks' hyper-parameters (ElemNet syntax, transfer learning);
    see :class:`NeuralNetRegressor`."""

    arch: str = "64x2-1"
    _: KW_ONLY
    dropout: float | Sequence[float] = 0.0
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    init: str | None = None
    freeze: int = 0
    init_lr_scale: float = 0.1

    def _check_network(self, s: dict) -> dict:
        s["freeze"] = check_int("freeze", s["freeze"], 0)
        s["init_lr_scale"] = check_real("init_lr_scale", s["init_lr_scale"], 0, low_open=True)
        if s["init"] is None and s["freeze"]:
            raise ValueError(f"freeze={s['freeze']} freezes pretrained layers: it needs init "
                             "('pretrained' or a model file)")
        blocks = parse_arch(s["arch"])
        if blocks[-1] != Block(1, 1, False):
            raise ValueError(
                f"arch {s['arch']!r}: the last block is the output layer and must be '1' "
                "(its width is set from the target)"
            )
        return s

    def _build_network(self, s: dict, X: np.ndarray, seed: int) -> Sequential:
        blocks = parse_arch(s["arch"])[:-1] + [Block(self._n_outputs(), 1, False)]
        model = elemnet(
            format_arch(blocks),
            dropout=s["dropout"],
            activation=s["activation"],
            input_dim=X.shape[1],
            output_activation=self._output_activation(),
            kernel_initializer=s["kernel_initializer"],
            dtype=s["dtype"],
            seed=seed,
        )
        self.init_source_ = None
        if s["init"] is not None:
            source, self.init_source_ = load_init(s["init"])
            transfer_weights(source, model, s["freeze"], s["init_lr_scale"],
                             self.init_source_)
        return model

class _Regressor(RegressorMixin):
    """The regression task of a network estimator: numeric targets, one linear output."""


    def _prepare_y(self, y, n: int, fitting: bool) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if len(y) != n:
            raise ValueError(f"y must have shape ({n},), got {y.shape}")
        try:
            y = y.astype(np.float64 if self.dtype == "float64" else np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"y must be numeric for a regressor, got dtype {y.dtype}") from None
        if not np.all(np.isfinite(y)):
            raise ValueError("y has NaN or infinite values")
        return y[:, None]

    def _target_scale(self, y_train, s):
        if not s["standardize_target"]:
            return 0.0, 1.0
        scale = float(np.std(y_train, dtype=np.float64))
        return float(np.mean(y_train, dtype=np.float64)), scale if scale > 0 else 1.0

    def _n_outputs(self) -> int:
        # a likelihood loss reads two outputs, the mean and the log scale
        return losses.get(self._settings()["loss"] or self._default_loss()).outputs_per_target

    def _output_activation(self) -> str:
        return "linear"

    def _default_loss(self) -> str:
        return "mae"

    def predict(self, X, *, inference_dropout=None, mc_samples=None) -> np.ndarray:
        """(n_samples,) predictions in the target's unit.

        ``inference_dropout`` / ``mc_samples`` override the fitted settings for this call,
        so one trained network can be scored with dropout off and with MC averaging.
        """
        return self._forward(X, inference_dropout, mc_samples)[:, 0].astype(np.float64)

    def uncertainty_kinds(self) -> tuple[str, ...]:
        """What the sigma of :meth:`predict_dist` is made of: "aleatoric" (a likelihood
        loss's head) and/or "mc dropout" (the spread of ``mc_samples`` >= 2 passes of a
        network with dropout predicting with ``inference_dropout="mc"``); () for none."""
        check_is_fitted(self, "model_")
        s = self.settings_
        has_dropout = any(getattr(layer, "rate", 0) > 0 for layer in self.model_.layers)
        return (*(("aleatoric",) if self.model_.loss.distributional else ()),
                *(("mc dropout",) if has_dropout and s["inference_dropout"] == "mc"
                  and s["mc_samples"] >= 2 else ()))

    def predict_dist(self, X, *, components: bool = False) -> tuple[np.ndarray, ...]:
        """The predictive distribution's mean and standard deviation, (n_samples,) each in
        the target's unit: (mean, sigma), or with ``components`` (mean, epistemic,
        aleatoric) with sigma² = epistemic² + aleatoric².

        The mean is :meth:`predict`'s (to rounding): the average of the Monte-Carlo
        passes' means. Epistemic: the standard deviation of the passes' means (0 without
        Monte-Carlo dropout). Aleatoric: the root mean over passes of the head's variance,
        sigma = e^s for ``gaussian_nll`` and sqrt(2) b = sqrt(2) e^s (the Laplace
        distribution's standard deviation) for ``laplace_nll`` (0 without a head).

        Raises:
            ValueError: the network has no uncertainty (:meth:`uncertainty_kinds` is empty).
        """
        check_is_fitted(self, "model_")
        if not self.uncertainty_kinds():
            raise ValueError(
                f"this {type(self).__name__} has no uncertainty: it was trained with loss "
                f"{self.model_.loss.name!r} and predicts with inference_dropout="
                f"{self.settings_['inference_dropout']!r} (mc_samples="
                f"{self.settings_['mc_samples']}); train it with loss='gaussian_nll' or "
                "'laplace_nll' (an aleatoric head), or with dropout, inference_dropout='mc' "
                "and mc_samples >= 2, or use a DeepEnsembleRegressor"
            )
        X = self._prepare_X(X, reset=False)
        if "mc dropout" in self.uncertainty_kinds():
            passes = self.model_.predict_passes(X, self.settings_["mc_samples"],
                                                seed=self.predict_seed_)
        else:
            passes = self.model_.predict(X)[None]
        mean, epistemic, aleatoric = from_passes(passes, self.model_.loss.name)
        if components:
            return mean, epistemic, aleatoric
        return mean, np.sqrt(epistemic**2 + aleatoric**2)


class NeuralNetRegressor(_Regressor, _DenseNet):
    """A fully connected network regressor on numeric features, trained by stoichnet.nn.

    Args:
        arch: ElemNet-syntax architecture ending in the output layer ``1``, e.g.
            ``"64x2-1"`` (two hidden layers of 64) or ``"256x2D-64-1"``.
        dropout: drop rate per ``D`` block, a single rate for all, or 0 for none.
        activation: hidden-layer activation name.
        kernel_initializer: weight initializer name.
        loss: training loss name; None: "mae" (regression), cross-entropy (classification).
        standardize_target: train on (y - mean) / std of the training targets (the
            scale is folded back into the output layer after training); regression only.
        optimizer: one of ``stoichnet.nn.optimizers`` ("adam", "sgd", ...).
        learning_rate: (peak) learning rate.
        weight_decay: the optimizer's weight decay.
        schedule: None/"constant", "cosine", "warmup_cosine" (linear warm-up over
            ``warmup_fraction`` of the steps) or "onecycle".
        warmup_fraction: fraction of all steps spent warming up (warmup_cosine).
        epochs: maximum passes over the training rows.
        batch_size: rows per mini-batch.
        patience: early-stopping patience in epochs on the validation loss (best weights
            restored); None trains all epochs. With ``inference_dropout="mc"`` the
            monitored loss is that of the MC-averaged predictions (``val_mc_loss``).
        validation_fraction: fraction of rows held out for validation when ``fit`` gets
            no ``validation_data``.
        inference_dropout: "off" (dropout is the identity in ``predict``) or "mc"
            (average ``mc_samples`` passes with dropout on).
        mc_samples: passes averaged by Monte-Carlo dropout.
        max_minutes: wall-time budget of ``fit``; training stops after the first
            mini-batch past it (``stopped_by_budget_``); with early stopping the best
            weights so far are kept.
        init: start from a trained network's hidden layers under a new output layer
            (transfer learning): "pretrained" (the shipped formation-energy network), a
            shipped network's name, or a model file written by ``stoichnet train``; the
            architecture and input features must be this estimator's. None: random.
        freeze: with ``init``, the hidden layers (from the input) kept as they are.
        init_lr_scale: with ``init``, the learning-rate factor of the copied layers that
            train (the new output layer learns at the full rate).
        dtype: "float32" or "float64" arithmetic.
        random_state: seed of the validation split, the initial weights, the shuffling
            and the dropout masks.
        verbose: 0 silent, 1 progress bar per epoch.
    """


class _Classifier(ClassifierMixin):
    """The classification task of a network estimator: labels, sigmoid/softmax outputs."""

    def _check_settings(self, s: dict) -> dict:
        s = super()._check_settings(s)
        if s["standardize_target"]:
            raise ValueError("standardize_target=True is for regression; a classifier's "
                             "targets are class labels")
        return s

    def _prepare_y(self, y, n: int, fitting: bool) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if len(y) != n:
            raise ValueError(f"y must have shape ({n},), got {y.shape}")
        if fitting:
            check_classification_targets(y)
            self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"a classifier needs at least 2 classes in y, got 1 class: {self.classes_.tolist()}"
                )
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(
                f"labels {unknown.tolist()} were not seen in fit: {self.classes_.tolist()}"
            )
        codes = self._encoder.transform(y)
        dtype = np.float64 if self.dtype == "float64" else np.float32
        if len(self.classes_) == 2:
            return codes.astype(dtype)[:, None]
        return np.eye(len(self.classes_), dtype=dtype)[codes]

    def _n_outputs(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _output_activation(self) -> str:
        return "sigmoid" if len(self.classes_) == 2 else "softmax"

    def _default_loss(self) -> str:
        return "binary_crossentropy" if len(self.classes_) == 2 else "categorical_crossentropy"

    def predict_proba(self, X, *, inference_dropout=None, mc_samples=None) -> np.ndarray:
        """(n_samples, n_classes) class probabilities, columns in ``classes_`` order;
        keyword overrides as ``NeuralNetRegressor.predict``."""
        out = self._forward(X, inference_dropout, mc_samples).astype(np.float64)
        if out.shape[1] == 1:
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    def predict(self, X) -> np.ndarray:
        """(n_samples,) most probable labels."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]




class NeuralNetClassifier(_Classifier, _DenseNet):
    """A fully connected network classifier; parameters as :class:`NeuralNetRegressor`.

    Two classes: one sigmoid output and binary cross-entropy; more: one softmax unit per
    class and categorical cross-entropy. ``classes_`` holds the labels in column order
    of ``predict_proba``.
    """

@dataclass(repr=False, eq=False)
class _Recipe:
    """Training by a named recipe (:mod:`stoichnet.models.recipes`), for the estimators
    that take formulas: the fields below replace :class:`_NeuralNet`'s defaults (None:
    the recipe's value) and add ``recipe``."""

    _: KW_ONLY
    recipe: str | Recipe = DEFAULT_RECIPE
    optimizer: str | None = None
    learning_rate: float | None = None
    weight_decay: float | None = None
    warmup_fraction: float | None = None
    standardize_target: bool | None = None
    epochs: int | None = None
    batch_size: int | None = None
    patience: int | None = None
    inference_dropout: str | None = None
    mc_samples: int | None = None

    def _settings(self) -> dict:
        params = self.get_params()
        recipe = get_recipe(params["recipe"])
        defaults = recipe.hyperparameters()
        if isinstance(self, ClassifierMixin):
            defaults.pop("loss")  # the recipes' "mae" is a regression loss
            defaults["standardize_target"] = False  # labels are not scaled
        settings = {k: defaults[k] if v is None and k in defaults else v for k, v in params.items()}
        return settings | {"recipe": recipe.name}

    def _budget(self, s, n_train):
        """The recipe's :meth:`~stoichnet.models.recipes.Recipe.budget`: the batch size
        and epochs follow the training rows unless given explicitly."""
        return get_recipe(self.recipe).budget(
            n_train, None if self.batch_size is None else s["batch_size"],
            None if self.epochs is None else s["epochs"])


@dataclass(repr=False, eq=False)
class _ElemNet(_Recipe):
    """Formula input (ElemNet's 86 element fractions), ElemNet-17 and the recipe's drop
    rates: shared by the ElemNet estimators; the other hyper-parameters are
    :class:`_DenseNet`'s."""

    arch: str = ELEMNET_17
    _: KW_ONLY
    dropout: float | Sequence[float] | None = None

    def _prepare_X(self, X, *, reset: bool) -> np.ndarray:
        dtype = np.float64 if self.dtype == "float64" else np.float32
        if not _is_formulas(X):
            X = validate_data(self, X, reset=reset, dtype=dtype, accept_sparse="csr")
            if sparse.issparse(X):  # e.g. chem.fraction_matrix output
                X = X.toarray()
            if X.shape[1] != len(ELEMNET_ELEMENTS):
                raise ValueError(
                    f"X has {X.shape[1]} columns; an ElemNet estimator takes formulas or "
                    f"{len(ELEMNET_ELEMENTS)} element fractions (columns ELEMNET_ELEMENTS)"
                )
            return X
        if reset:
            self.n_features_in_ = len(ELEMNET_ELEMENTS)
        return np.asarray(ElementFractions().transform(np.asarray(X, dtype=object)), dtype=dtype)


def _is_formulas(X) -> bool:
    """True for a 1-D sequence (list, array, Series) of strings (or other objects, which
    the formula parser then rejects by row)."""
    if isinstance(X, str):
        raise TypeError("X must be a sequence of formulas, not a single string; wrap it in a list")
    array = np.asarray(X)
    return array.ndim == 1 and array.dtype.kind in "OUS"


@dataclass(repr=False, eq=False)  # merges _ElemNet's fields into the signature
class ElemNetRegressor(_ElemNet, NeuralNetRegressor):
    """ElemNet: a deep fully connected network from element fractions to a property.

    X is formulas (list, array or pandas Series of strings such as "Fe2O3") or an
    (n_samples, 86) matrix of ElemNet element fractions. The architecture defaults to
    ElemNet-17 and the training to the named ``recipe`` (see
    ``stoichnet.models.recipes``; default :data:`~stoichnet.models.recipes.DEFAULT_RECIPE`);
    every training hyper-parameter left at None takes the recipe's value, one given
    explicitly overrides it. Other parameters as :class:`NeuralNetRegressor`.

    >>> ElemNetRegressor(recipe="elemnet-original").fit(train.formula, train.target)  # doctest: +SKIP
    """


@dataclass(repr=False, eq=False)
class ElemNetClassifier(_ElemNet, NeuralNetClassifier):
    """ElemNet with a sigmoid/softmax output and cross-entropy loss; X as
    :class:`ElemNetRegressor`, outputs as :class:`NeuralNetClassifier`."""


@dataclass(repr=False, eq=False)
class _SetNet(_Recipe, _NeuralNet):
    """Formula input as sets of elements (:mod:`stoichnet.chem.element_sets`) for the set
    models, trained by a recipe; see :class:`RoostRegressor`.

    The set width is fixed at ``fit``: ``set_width_`` = max(most elements of a training
    formula, :data:`~stoichnet.chem.element_sets.MIN_SET_WIDTH`); ``predict`` pads to it
    and refuses, naming the rows, a formula with more elements.
    """

    _: KW_ONLY
    embedding: str = "mat2vec"

    def _check_network(self, s: dict) -> dict:
        check_choice("embedding", s["embedding"], tuple(EMBEDDINGS))
        return s

    def _prepare_X(self, X, *, reset: bool) -> np.ndarray:
        if not _is_formulas(X):
            raise TypeError(f"{type(self).__name__} takes formulas (a list, array or Series of "
                            f"strings such as 'Fe2O3'), got {type(X).__name__}")
        formulas = np.asarray(X, dtype=object)
        if reset:
            widest = element_sets(formulas, None, self.embedding, dtype=self.dtype).X
            self.set_width_ = set_width(widest.shape[1])
            self.n_features_in_ = 2 * self.set_width_  # scikit-learn's attribute
            X = np.zeros((len(widest), self.set_width_, 2), dtype=widest.dtype)
            X[:, :widest.shape[1]] = widest
            return X
        return element_sets(formulas, self.set_width_, self.embedding, dtype=self.dtype).X


@dataclass(repr=False, eq=False)
class _Roost(_SetNet):
    """Roost's hyper-parameters (:func:`stoichnet.models.set_models.roost`)."""

    _: KW_ONLY
    d: int = 64
    n_graph: int = 3
    heads: int = 3
    gate_hidden: Sequence[int] = (256,)
    message_hidden: Sequence[int] = (256,)
    trunk_hidden: Sequence[int] = (1024, 512)
    out_hidden: Sequence[int] = (256, 128, 64)

    def _build_network(self, s: dict, X: np.ndarray, seed: int) -> Sequential:
        self.init_source_ = None
        return roost(self._n_outputs(), output_activation=self._output_activation(),
                     dtype=s["dtype"], seed=seed,
                     **{k: s[k] for k in ("d", "n_graph", "heads", "gate_hidden",
                                          "message_hidden", "trunk_hidden", "out_hidden",
                                          "embedding")})


@dataclass(repr=False, eq=False)
class _CrabNet(_SetNet):
    """CrabNet's hyper-parameters (:func:`stoichnet.models.set_models.crabnet`), sized for
    a CPU: d_model 256 and a feed-forward width of 1024 instead of the published 512 and
    2048 (a training step takes half the time on the 2-core development machine; the
    rest as published)."""

    _: KW_ONLY
    d_model: int = 256
    n_layers: int = 3
    heads: int = 4
    hidden: int = 1024
    dropout: float = 0.1
    out_hidden: Sequence[int] = (1024, 512, 256, 128)
    resolution: int = 5000

    def _build_network(self, s: dict, X: np.ndarray, seed: int) -> Sequential:
        self.init_source_ = None
        return crabnet(self._n_outputs(), output_activation=self._output_activation(),
                       dtype=s["dtype"], seed=seed,
                       **{k: s[k] for k in ("d_model", "n_layers", "heads", "hidden", "dropout",
                                            "out_hidden", "resolution", "embedding")})


class RoostRegressor(_Regressor, _Roost):
    """Roost (Goodall & Lee 2020): message passing with weighted soft attention over the
    elements of a formula (:func:`stoichnet.models.set_models.roost`).

    X is formulas (list, array or pandas Series of strings); any element with an
    ``embedding`` vector is accepted (mat2vec: all 118). Network hyper-parameters (d,
    n_graph, heads, gate_hidden, message_hidden, trunk_hidden, out_hidden) default to
    aviary's; the training follows ``recipe`` as :class:`ElemNetRegressor`'s does (every
    training hyper-parameter left at None takes the recipe's value). Trained on MAE by default;
    ``loss="laplace_nll"`` is Roost's robust loss (a second output, log σ). Fitted attributes as :class:`NeuralNetRegressor`, plus
    ``set_width_`` (see :class:`_SetNet`).
    """


class RoostClassifier(_Classifier, _Roost):
    """Roost with a sigmoid/softmax output and cross-entropy; X as :class:`RoostRegressor`,
    outputs as :class:`NeuralNetClassifier`."""


class CrabNetRegressor(_Regressor, _CrabNet):
    """CrabNet (Wang et al. 2021): a transformer encoder over the elements of a formula
    with fractional encodings (:func:`stoichnet.models.set_models.crabnet`).

    X as :class:`RoostRegressor`. Network hyper-parameters (d_model, n_layers, heads,
    hidden, dropout, out_hidden, resolution) default to CrabNet's but d_model and hidden
    (see :class:`_CrabNet`); training by ``recipe``, on MAE.
    """


class CrabNetClassifier(_Classifier, _CrabNet):
    """CrabNet with a sigmoid/softmax output and cross-entropy; X as :class:`RoostRegressor`,
    outputs as :class:`NeuralNetClassifier`."""


def from_card(model: Sequential, card: dict):
    """A fitted ElemNet estimator around a trained network and its model card (as
    ``stoichnet train`` writes them, or a shipped network's): it predicts as the
    estimator that trained the network did.

    Raises:
        ValueError: the card names no task, or the network is not ElemNet's input.
    """
    task = card.get("task")
    if task not in ("regression", "classification"):
        raise ValueError(f"the model card names task {task!r}, not regression/classification")
    if model.input_shape != (len(ELEMNET_ELEMENTS),):
        raise ValueError(f"the network takes inputs of shape {model.input_shape}, not "
                         f"ElemNet's {len(ELEMNET_ELEMENTS)} element fractions")
    cls = ElemNetClassifier if task == "classification" else ElemNetRegressor
    settings = dict(card.get("hyperparameters", {}))
    estimator = cls(**{k: v for k, v in settings.items() if k in cls().get_params()})
    settings |= {"inference_dropout": card["inference_dropout"],
                 "mc_samples": card["mc_samples"]}
    estimator.settings_ = settings
    estimator.model_ = model
    estimator.predict_seed_ = card["seed"]
    estimator.n_features_in_ = len(ELEMNET_ELEMENTS)
    estimator.init_source_ = None
    if task == "classification":
        estimator.classes_ = np.asarray(card["classes"])
        estimator._encoder = LabelEncoder().fit(estimator.classes_)
    else:
        scale = card.get("target_standardization") or {"mean": 0.0, "std": 1.0}
        estimator.target_mean_, estimator.target_scale_ = scale["mean"], scale["std"]
    return estimator


def pretrained(name: str = DEFAULT_PRETRAINED, unit: str | None = None):
    """A network shipped in the package (:mod:`stoichnet.models.shipped`), as a fitted
    estimator whose ``predict`` takes formulas; its model card is ``card_``.

    Args:
        name: a key of :data:`~stoichnet.models.shipped.PRETRAINED`.
        unit: the unit the caller expects; a network trained for another is refused.
    Raises:
        ValueError: unknown name, or ``unit`` is not the network's.
        ModelFileError: the shipped file is missing or fails its SHA-256.

    A network with a sigma head (the formation-energy one) also has ``predict_dist``;
    its sigma is the raw one: the card's ``"recalibration"``, fitted on the validation rows,
    is what ``stoichnet predict`` applies
    (``stoichnet.evaluate.uncertainty.Recalibration.from_dict(card_["recalibration"])``).

    >>> pretrained("formation_energy").predict(["Fe2O3", "NaCl"])  # doctest: +SKIP
    """
    name = check_choice("pretrained model", name, tuple(PRETRAINED))
    entry = PRETRAINED[name]
    if unit is not None and unit != entry.unit:
        raise ValueError(f"the pretrained model {name!r} predicts {entry.property} in "
                         f"{entry.unit!r}, not {unit!r}")
    model, card = load_pretrained(name)
    estimator = from_card(model, card)
    estimator.card_ = card
    return estimator
