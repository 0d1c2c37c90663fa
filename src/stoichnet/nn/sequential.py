"""``Sequential``: a stack of layers trained by mini-batch gradient descent, Keras-shaped.

Training is the lecture's loop: shuffle, split into mini-batches, and for each
batch run the layers forward, the cost's gradient backward through every layer
(each layer applies its own chain rule), then one optimizer step. An epoch is one
pass over all samples.

All parameters live in one contiguous buffer ``flat_params`` (and their gradients
in ``flat_grads``): each layer's ``params``/``grads`` entries are views into them
(see ``layers.base``), so the optimizer updates the whole model in one call,
``optimizer.step([flat_params], [flat_grads])``.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings

import numpy as np

from stoichnet.util.checks import check_bool, check_choice, check_int, check_real

from . import io, losses, optimizers
from .callbacks import Callback, LayerStats, ProgressBar
from .checkpoint import TrainingState
from .errors import ModelFileError, TrainingDivergedError
from .layers.base import LAYERS, Layer

DTYPES = ("float32", "float64")
DEFAULT_PREDICT_BATCH = 1024
_UNSEEDED_WEIGHTS = (
    "fit(seed=...) seeds the shuffling and dropout, but this model's initial weights were "
    "drawn when it was built, from Sequential(seed=None): they differ from run to run. For "
    "reproducible weights pass seed to Sequential (or elemnet), or build the model lazily "
    "(no input_dim) so that fit's seed draws them"
)


class History(Callback):
    """Records the logs of every epoch: ``history["loss"]``, ``history["val_loss"]``,
    one list per metric, one value per epoch; ``epoch`` lists the 0-based epochs run.

    ``fit`` calls it after every other callback at the end of an epoch, so a key a
    callback adds to ``logs`` there (e.g. ``logs["val_mc_loss"]``) is recorded too."""

    def on_train_begin(self, logs=None):
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _as_numeric(value, name: str, dtype) -> np.ndarray:
    """``value`` as a non-empty, finite array of ``dtype``; TypeError/ValueError naming ``name``."""
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{name} is not a rectangular array of numbers: {err}") from None
    # an object array (e.g. from a pandas object column) is accepted only if it holds numbers
    if arr.dtype.kind == "O" and all(isinstance(v, numbers.Real) for v in arr.flat):
        arr = arr.astype(dtype)
    if arr.dtype.kind not in "biuf":
        first = f" (first value {arr.flat[0]!r})" if arr.size else ""
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}{first}")
    if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one sample")
    with np.errstate(over="ignore"):  # values beyond the dtype's range become inf, reported below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(arr)
    if not finite.all():
        rows = np.unique(np.nonzero(~finite)[0])
        raise ValueError(
            f"{name} contains NaN or inf (after conversion to {np.dtype(dtype)}) in "
            f"{rows.size} row(s), the first at row {rows[0]}: remove or impute them first"
        )
    return arr


class Sequential:
    """A linear stack of layers.

    Args:
        layers: layers to ``add`` in order.
        dtype: "float32" (default) or "float64": parameters, activations and
            gradients all use it.
        seed: seed of the model's generator ``rng``, which draws the initial
            weights (and, unless ``fit`` gets its own seed, shuffles and dropout masks).
        name: a label for ``summary``.
    Attributes:
        layers, rng, optimizer, loss, metrics, flat_params, flat_grads,
        input_shape / output_shape (per sample, None until built), history,
        stop_training (a callback sets it to end ``fit``), interrupt_requested
        (see ``interrupt``).
    """

    def __init__(self, layers=None, dtype: str = "float32", seed=None, name: str = "sequential"):
        self.dtype = np.dtype(check_choice("dtype", str(dtype), DTYPES))
        self.name = name
        self.rng = np.random.default_rng(seed)
        # whether rng was seeded, and whether the current weights were drawn unseeded and
        # never trained or set since (fit(seed=...) warns about those: see fit)
        self._rng_seeded = seed is not None
        self._initial_weights_unseeded = False
        self.layers: list[Layer] = []
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.flat_params: np.ndarray | None = None
        self.flat_grads: np.ndarray | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[str] = []
        self._metric_fns: dict = {}
        self.history: History | None = None
        self.stop_training = False
        self.interrupt_requested = False
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ building
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def add(self, layer: Layer) -> None:
        """Append ``layer``; it is built at once if the model's input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add expects a Layer such as Dense(32), got "
                f"{type(layer).__name__}: {layer!r}"
            )
        if layer.built or any(layer is other for other in self.layers):
            raise ValueError(f"{layer!r} is already built or in a model; create a new layer")
        if layer.name is None:
            kind = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type(layer).__name__).lower()
            taken = {other.name for other in self.layers}
            name, i = kind, 0
            while name in taken:
                i += 1
                name = f"{kind}_{i}"
            layer.name = name
        self.layers.append(layer)
        if self.built:
            self._build_layer(layer, self.output_shape)
            self.output_shape = tuple(layer.output_shape(self.output_shape))
            self._assemble()
        elif len(self.layers) == 1 and layer.declared_input_shape is not None:
            self.build(layer.declared_input_shape)

    def build(self, input_shape) -> None:
        """Create every layer's weights for a per-sample ``input_shape`` (e.g. ``(86,)``)."""
        if not self.layers:
            raise ValueError("the model has no layers; add some before building it")
        shape = tuple(int(d) for d in input_shape)
        self.input_shape = shape
        for layer in self.layers:
            if not layer.built:
                self._build_layer(layer, shape)
            shape = tuple(layer.output_shape(shape))
        self.output_shape = shape
        self._assemble()

    def _build_layer(self, layer: Layer, shape: tuple[int, ...]) -> None:
        declared = layer.declared_input_shape
        if declared is not None and tuple(declared) != tuple(shape):
            raise ValueError(
                f"{layer.name} declares input shape {tuple(declared)} but receives {tuple(shape)} "
                "from the layer before it"
            )
        layer.build(shape, self.rng, self.dtype)
        self._initial_weights_unseeded |= not self._rng_seeded

    def _assemble(self) -> None:
        """Move every parameter and gradient into the flat buffers; layers keep views."""
        total = sum(layer.n_params for layer in self.layers)
        flat_params = np.empty(total, dtype=self.dtype)
        flat_grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer in self.layers:
            for key, value in layer.params.items():
                size = value.size
                view = flat_params[offset : offset + size].reshape(value.shape)
                view[...] = value
                layer.params[key] = view
                layer.grads[key] = flat_grads[offset : offset + size].reshape(value.shape)
                offset += size
        self.flat_params, self.flat_grads = flat_params, flat_grads

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_metric_fns"] = {}  # closures; rebuilt from the metric names
        return state

    def __setstate__(self, state: dict) -> None:
        # pickle and deepcopy copy every view separately: re-point the layers at one buffer
        self.__dict__.update(state)
        if self.loss is not None:
            self._metric_fns = {name: losses.get_metric(name, self.loss) for name in self.metrics}
        if self.built:
            self._assemble()

    def _set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng
        for layer in self.layers:
            layer.rng = rng

    def count_params(self) -> int:
        self._require_built("count_params")
        return int(self.flat_params.size)

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(
                f"{what} needs a built model, and this one has no input shape yet: give the "
                "first layer input_dim, call build(input_shape), or fit it first"
            )

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer, loss, metrics=None) -> None:
        """Choose the optimizer (name, instance or config dict), the loss (name) and
        metrics (names: "mae", "mse", "accuracy" or any loss name)."""
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, str):
            metrics = [metrics]
        self._metric_fns = {name: losses.get_metric(name, self.loss) for name in metrics}
        self.metrics = list(metrics)

    def _require_compiled(self, what: str) -> None:
        if self.loss is None or self.optimizer is None:
            raise ValueError(f"{what} needs a compiled model: call compile(optimizer, loss) first")

    def _fused(self) -> bool:
        """Whether the loss is computed from the last layer's logits z (softmax/sigmoid
        fused): the layer then offers ``logits()`` and ``backward_from_z``."""
        last = self.layers[-1]
        return (
            self.loss.fused_activation is not None
            and getattr(last, "activation", None) == self.loss.fused_activation
            and hasattr(last, "backward_from_z")
        )

    # ------------------------------------------------------------------ validation
    def _check_x(self, X, name: str = "X", build: bool = False, what: str = "predict") -> np.ndarray:
        X = _as_numeric(X, name, self.dtype)
        if X.ndim < 2:
            raise ValueError(
                f"{name} must have shape (n_samples, n_features), got shape {X.shape}; "
                "use X.reshape(-1, 1) for a single feature"
            )
        if not self.built:
            if not build:
                self._require_built(what)
            self.build(X.shape[1:])
        if X.shape[1:] != self.input_shape:
            raise ValueError(
                f"{name} has per-sample shape {X.shape[1:]} but the model was built for "
                f"{self.input_shape} (features per sample)"
            )
        return X

    def _check_y(self, y, n: int, name: str = "y", x_name: str = "X") -> np.ndarray:
        if self.loss.sparse_labels:
            y = _as_numeric(y, name, np.float64)
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            n_classes = self.output_shape[-1]
            if y.ndim != 1 or (y != np.round(y)).any() or y.min() < 0 or y.max() >= n_classes:
                raise ValueError(
                    f"{name} must hold integer class indices 0..{n_classes - 1} of shape "
                    f"(n_samples,) for sparse_categorical_crossentropy, got shape {y.shape} "
                    f"with values in [{y.min()}, {y.max()}]"
                )
            y = y.astype(np.intp)
        else:
            y = _as_numeric(y, name, self.dtype)
            # a likelihood loss reads [mean | log scale]: two outputs per target
            per = self.loss.outputs_per_target
            if y.ndim == 1 and self.output_shape == (per,):
                y = y.reshape(-1, 1)
            if per == 1 and y.shape[1:] != self.output_shape:
                raise ValueError(
                    f"{name} has per-sample shape {y.shape[1:]} but the model outputs "
                    f"{self.output_shape} per sample"
                )
            if per > 1 and (y.ndim != 2 or (per * y.shape[1],) != self.output_shape):
                raise ValueError(
                    f"{name} has per-sample shape {y.shape[1:]} but the model outputs "
                    f"{self.output_shape} per sample and the loss {self.loss.name!r} reads "
                    f"{per} of them per target: y needs shape (n_samples, "
                    f"{self.output_shape[-1] / per:g})"
                )
        if y.shape[0] != n:
            raise ValueError(
                f"{x_name} and {name} have different numbers of samples: {n} and {y.shape[0]}"
            )
        return y

    def _check_xy(self, X, y, names=("X", "y"), build=False, what="evaluate"):
        X = self._check_x(X, names[0], build=build, what=what)
        return X, self._check_y(y, X.shape[0], names[1], names[0])

    # ------------------------------------------------------------------ the math
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _regularization(self) -> float:
        return sum(layer.regularization_loss() for layer in self.layers)

    def _cost(self, y_pred: np.ndarray, y: np.ndarray, fused: bool) -> float:
        """The batch cost (without regularization) of the last forward pass."""
        if fused:
            return self.loss.value_from_logits(self.layers[-1].logits(), y)
        return self.loss.value(y_pred, y)

    def _backward(self, y_pred: np.ndarray, y: np.ndarray, fused: bool,
                  input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate the cost of the last forward pass; fills flat_grads, returns dC/dX
        (None with ``input_grad=False``: training skips the first layer's da_prev)."""
        layers = self.layers
        if fused:
            last = layers[-1]
            grad = last.backward_from_z(self.loss.gradient_from_logits(last.logits(), last.a, y))
            layers = layers[:-1]
        else:
            grad = self.loss.gradient(y_pred, y)
        if not input_grad:
            # the layers below the first trainable one need no gradient (frozen layers)
            layers = layers[self._first_trainable():]
            if not layers:
                return None
            for layer in reversed(layers[1:]):
                grad = layer.backward(grad)
            layers[0].backward_params(grad)
            return None
        for layer in reversed(layers):
            grad = layer.backward(grad)
        return grad

    def _train_step(self, x, y, fused: bool, epoch=None, batch=None,
                    clipnorm: float | None = None) -> tuple[float, np.ndarray]:
        y_pred = self._forward(x, training=True)
        loss = self._cost(y_pred, y, fused) + self._regularization()
        self._backward(y_pred, y, fused, input_grad=False)
        segments = self.trainable_segments()
        params = [self.flat_params[start:stop] for start, stop, _ in segments]
        grads = [self.flat_grads[start:stop] for start, stop, _ in segments]
        # the squared gradient norm is one fast pass; a NaN/inf in it or in the loss
        # stops training before the optimizer can write NaN into the weights
        with np.errstate(over="ignore", invalid="ignore"):
            grad_sq = float(sum(np.dot(g, g) for g in grads))
        grad_ok = math.isfinite(grad_sq)
        if not (math.isfinite(loss) and grad_ok):
            where = "" if epoch is None else f" at epoch {epoch + 1}, batch {batch + 1}"
            what = f"the loss became {loss}" if not math.isfinite(loss) else (
                f"the gradient became non-finite (loss {loss:.4g})"
            )
            raise TrainingDivergedError(
                f"{what}{where}; training stopped "
                f"and the weights from before this batch are kept. Likely cause: the learning "
                f"rate ({self.optimizer.current_learning_rate:g}) is too high, or inputs/targets "
                "are badly scaled",
                epoch,
                batch,
                loss,
            )
        if clipnorm is not None:
            # torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1
            scale = clipnorm / (math.sqrt(grad_sq) + 1e-6)
            if scale < 1.0:
                for g in grads:
                    g *= scale
        self.optimizer.step(params, grads, [lr_scale for _, _, lr_scale in segments])
        return loss, y_pred

    def trainable_segments(self) -> list[tuple[int, int, float]]:
        """The slices of ``flat_params`` the optimizer steps, as (start, stop, lr_scale):
        the parameters of the layers with ``trainable`` set, adjacent layers of the same
        ``lr_scale`` merged (all of ``flat_params`` when nothing is frozen or scaled).

        Raises ValueError when no layer with parameters is trainable."""
        segments: list[tuple[int, int, float]] = []
        offset = 0
        for layer in self.layers:
            size = layer.n_params
            trainable = check_bool(f"{layer.name}.trainable", layer.trainable)
            scale = check_real(f"{layer.name}.lr_scale", layer.lr_scale, 0.0, low_open=True)
            if size and trainable:
                if segments and segments[-1][1] == offset and segments[-1][2] == scale:
                    segments[-1] = (segments[-1][0], offset + size, scale)
                else:
                    segments.append((offset, offset + size, scale))
            offset += size
        if not segments:
            raise ValueError("every layer with parameters is frozen (trainable=False): "
                             "there is nothing to train")
        return segments

    def _first_trainable(self) -> int:
        """Index of the first layer whose parameters are trained (0 when none is frozen)."""
        return next((i for i, layer in enumerate(self.layers)
                     if layer.trainable and layer.n_params), len(self.layers))

    def compute_loss(self, X, y) -> float:
        """The total cost (loss + regularization) on (X, y) in inference mode (dropout off)."""
        self._require_compiled("compute_loss")
        X, y = self._check_xy(X, y)
        return self._evaluate_arrays(X, y, X.shape[0], self._fused())["loss"]

    def compute_gradients(self, X, y) -> tuple[float, np.ndarray]:
        """Forward and backward on (X, y) in inference mode, without an optimizer step.

        Returns (total cost, dC/dX of X's shape); the parameter gradients are left
        in ``flat_grads`` (and each layer's ``grads``).
        """
        self._require_compiled("compute_gradients")
        X, y = self._check_xy(X, y)
        fused = self._fused()
        y_pred = self._forward(X, training=False)
        loss = self._cost(y_pred, y, fused) + self._regularization()
        return loss, self._backward(y_pred, y, fused).copy()

    # ------------------------------------------------------------------ training
    def fit(
        self,
        X,
        y,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data=None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        callbacks=None,
        verbose: int = 1,
        seed=None,
        checkpoint=None,
        checkpoint_every: int = 1,
        resume=None,
        clipnorm: float | None = None,
        record: str | None = None,
    ) -> History:
        """Train for ``epochs`` passes over (X, y) in mini-batches of ``batch_size``.

        Args:
            X: (n_samples, n_features) numbers; y: (n_samples, n_outputs) or
                (n_samples,) for one output (class indices for the sparse loss).
            validation_data: (X_val, y_val) scored after every epoch (dropout off).
            validation_split: fraction of samples held out for validation, taken
                from the END of X and y before shuffling, as in Keras.
            shuffle: reshuffle the training samples before every epoch.
            callbacks: ``Callback`` instances (EarlyStopping, CSVLogger, ...), called in
                this order; the History records the epoch's logs after all of them.
            verbose: 0 silent, 1 a progress bar per epoch on a terminal (one line per
                epoch when stderr is not one, e.g. a log file), 2 one line per epoch.
            seed: seeds a new generator ``self.rng`` for shuffling, dropout and,
                if the model is not built yet, the initial weights. A model built
                earlier (``input_dim`` on its first layer, ``build``) drew them from
                ``Sequential(seed=...)``; fit's seed does not redraw them. If that seed
                was None and the model was never trained, loaded or given weights,
                ``fit(seed=...)`` warns (``UserWarning``): its initial weights differ
                from run to run. The same seeds, data and machine give bit-identical
                weights.
            checkpoint: path of a checkpoint (see ``nn.checkpoint.TrainingState``) written atomically
                after every ``checkpoint_every``-th epoch, the last epoch, an early stop
                and a Ctrl-C; never with non-finite weights.
            resume: path of a checkpoint to continue from, with the same data, compile
                settings and kinds of callbacks; ``epochs`` counts from the run's start.
                The final weights are bit-identical to an uninterrupted run's.
            clipnorm: if given, rescale each batch's gradient to at most this global L2
                norm, as ``torch.nn.utils.clip_grad_norm_(max_norm=clipnorm)``.
            record: "layers" adds a ``LayerStats`` callback after ``callbacks``: each
                layer's weight norm, gradient norm and dead-unit fraction per epoch, in
                the History as ``history["<layer>/grad_norm"]`` etc. (regrouped by
                ``callbacks.layer_history``); the weights are the same as without it. A
                run resumed from a checkpoint needs the same ``record``.
        Returns the ``History`` (also kept as ``self.history``). Raises
        ``TrainingDivergedError`` if the loss or a gradient becomes NaN/inf (the last
        checkpoint is kept), ``TrainingInterrupted`` (a ``KeyboardInterrupt``) after
        Ctrl-C or ``interrupt()``.
        """
        self._require_compiled("fit")
        epochs = check_int("epochs", epochs, 0)
        batch_size = check_int("batch_size", batch_size, 1)
        check_choice("verbose", verbose, (0, 1, 2))
        validation_split = check_real("validation_split", validation_split, 0.0, 1.0)
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {cb!r}")
        if check_choice("record", record, (None, "layers")) == "layers":
            callbacks.append(LayerStats())
        state = TrainingState(self, checkpoint, checkpoint_every, resume)
        if clipnorm is not None:
            clipnorm = check_real("clipnorm", clipnorm, 0.0, low_open=True)
        if seed is not None:  # before a lazy build, so that it draws from this generator too
            self._set_rng(np.random.default_rng(seed))
            if self._initial_weights_unseeded and resume is None:
                warnings.warn(_UNSEEDED_WEIGHTS, UserWarning, stacklevel=2)
            self._rng_seeded = True
        X, y = self._check_xy(X, y, build=True)
        X, y, val = self._validation(X, y, validation_data, validation_split)
        self._initial_weights_unseeded = False  # from here on the weights are trained ones

        n = X.shape[0]
        n_batches = -(-n // batch_size)
        fused = self._fused()
        user_callbacks = callbacks
        self.history = History()
        # History last: it records what every callback added to the epoch's logs
        callbacks = [*callbacks, *([ProgressBar(verbose)] if verbose else []), self.history]
        params = {"epochs": epochs, "steps": n_batches, "samples": n, "verbose": verbose}
        for cb in callbacks:
            cb.set_model(self)
            cb.set_params(params)
        X_epoch, y_epoch = (np.empty_like(X), np.empty_like(y)) if shuffle else (X, y)
        self.stop_training = self.interrupt_requested = False
        logs: dict[str, float] = {}
        for cb in callbacks:
            cb.on_train_begin()
        # checkpoint, resume and Ctrl-C: TrainingState; what remains is the lecture's loop
        with state.run(user_callbacks, X, y, val, batch_size, shuffle):
            for epoch in range(state.start.epoch, epochs if not self.stop_training else 0):
                for cb in callbacks:
                    cb.on_epoch_begin(epoch)
                resumed = state.resumed_batches(epoch)
                if resumed is not None:  # a checkpoint from mid-epoch: its order and sums
                    order, first, totals, seen = (resumed.order, resumed.batch,
                                                  resumed.totals, resumed.seen)
                else:  # shuffle
                    order, first = self.rng.permutation(n) if shuffle else None, 0
                    totals, seen = dict.fromkeys(["loss", *self._metric_fns], 0.0), 0
                if order is not None:
                    np.take(X, order, axis=0, out=X_epoch)
                    np.take(y, order, axis=0, out=y_epoch)
                for batch in range(first, n_batches):  # mini-batches
                    xb = X_epoch[batch * batch_size : (batch + 1) * batch_size]
                    yb = y_epoch[batch * batch_size : (batch + 1) * batch_size]
                    # forward, cost, backward, optimizer step
                    loss, y_pred = self._train_step(xb, yb, fused, epoch, batch, clipnorm)
                    m = xb.shape[0]
                    seen += m
                    totals["loss"] += loss * m
                    for key, fn in self._metric_fns.items():
                        totals[key] += fn(y_pred, yb) * m
                    for cb in callbacks:
                        cb.on_batch_end(batch, {"loss": loss})
                    state.batch_done(epoch, batch, order, totals, seen)
                    if self.stop_training:
                        break
                # epoch end: mean training scores, validation scores, callbacks
                logs = {key: value / seen for key, value in totals.items()}
                if val is not None:
                    scores = self._evaluate_arrays(*val, batch_size, fused)
                    logs.update({f"val_{key}": value for key, value in scores.items()})
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs)
                state.epoch_done(epoch, epochs)
                if self.stop_training:
                    break
        for cb in callbacks:
            cb.on_train_end(logs)
        return self.history

    def _validation(self, X, y, validation_data, validation_split: float):
        """(X, y, validation pair or None): ``validation_data`` checked, or the last
        ``validation_split`` of (X, y) held out."""
        if validation_data is not None:
            if validation_split:
                raise ValueError("give either validation_data or validation_split, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(
                    f"validation_data must be a pair (X_val, y_val), got {type(validation_data).__name__}"
                )
            names = ("validation_data[0]", "validation_data[1]")
            return X, y, self._check_xy(*validation_data, names=names)
        if not validation_split:
            return X, y, None
        n_val = int(X.shape[0] * validation_split)
        if n_val == 0 or n_val == X.shape[0]:
            raise ValueError(
                f"validation_split={validation_split} of {X.shape[0]} samples leaves "
                f"{n_val} for validation and {X.shape[0] - n_val} for training; both need >= 1"
            )
        return X[:-n_val], y[:-n_val], (X[-n_val:], y[-n_val:])

    def interrupt(self) -> None:
        """Ask a running ``fit`` to stop after its current batch, write its checkpoint
        (if it has one) and raise ``TrainingInterrupted``; safe in a signal handler.
        Unlike ``stop_training``, the epoch is not finished, so a resumed run matches an
        uninterrupted one."""
        self.interrupt_requested = True

    def train_on_batch(self, X, y) -> float:
        """One optimizer step on the batch (X, y); returns its cost before the step."""
        self._require_compiled("train_on_batch")
        X, y = self._check_xy(X, y, build=True)
        self._initial_weights_unseeded = False
        return self._train_step(X, y, self._fused())[0]

    # ------------------------------------------------------------------ inference
    def predict(self, X, batch_size: int | None = None, mc_samples: int | None = None,
                seed: int | None = None) -> np.ndarray:
        """Network outputs for X: (n_samples, *output_shape) in the model's dtype.

        Args:
            batch_size: samples per forward pass (default 1024); only memory changes.
            mc_samples: if given, average this many passes with dropout ON
                (Monte-Carlo dropout, drawing masks from ``self.rng``); default:
                one pass with dropout off (unless a layer has ``mc_dropout``).
            seed: draw this call's dropout masks from ``numpy.random.default_rng(seed)``
                instead, leaving ``self.rng`` where it was: the same seed gives the same
                Monte-Carlo predictions, and training goes on with its own masks.
        """
        X = self._check_x(X)
        passes = 1 if mc_samples is None else check_int("mc_samples", mc_samples, 1)
        out = np.zeros((X.shape[0], *self.output_shape), dtype=self.dtype)
        for chunk, _, a in self._passes(X, batch_size, mc_samples, seed):
            out[chunk] += a
        if passes > 1:
            out /= passes
        return out

    def predict_passes(self, X, mc_samples: int, batch_size: int | None = None,
                       seed: int | None = None) -> np.ndarray:
        """The ``mc_samples`` Monte-Carlo dropout passes that ``predict(X, mc_samples=...,
        seed=...)`` averages, one by one: (mc_samples, n_samples, *output_shape); their
        spread is the network's Monte-Carlo dropout uncertainty (Gal & Ghahramani 2016).
        Arguments as :meth:`predict`; the same seed draws the same masks."""
        X = self._check_x(X)
        passes = check_int("mc_samples", mc_samples, 1)
        out = np.empty((passes, X.shape[0], *self.output_shape), dtype=self.dtype)
        for chunk, k, a in self._passes(X, batch_size, mc_samples, seed):
            out[k, chunk] = a
        return out

    def _passes(self, X: np.ndarray, batch_size, mc_samples, seed):
        """Yield (rows, pass index, outputs) chunk by chunk and pass by pass, dropout on
        when ``mc_samples`` is given, masks drawn from ``seed``'s generator if given."""
        batch_size = check_int("batch_size", DEFAULT_PREDICT_BATCH if batch_size is None else batch_size, 1)
        passes = 1 if mc_samples is None else check_int("mc_samples", mc_samples, 1)
        own_rng = self.rng
        if seed is not None:
            self._set_rng(np.random.default_rng(seed))
        try:
            for start in range(0, X.shape[0], batch_size):
                chunk = slice(start, start + batch_size)
                for k in range(passes):
                    yield chunk, k, self._forward(X[chunk], training=mc_samples is not None)
        finally:
            if seed is not None:
                self._set_rng(own_rng)

    def activations(self, X, layers=None, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Every layer's output for X, computed as ``predict`` computes it (dropout off
        unless a layer has ``mc_dropout``): what the network holds at each depth, for
        looking inside it (``stoichnet.evaluate.inspect``).

        Args:
            X: (n_samples, *input_shape) numbers.
            layers: names of the layers whose outputs to return (default: every layer);
                the forward passes stop at the last of them.
            batch_size: samples per forward pass (default 1024): besides the returned
                arrays, memory holds one batch's activations.
        Returns:
            {layer name: (n_samples, *that layer's output shape) array of the model's
            dtype}, in layer order; the last layer's output is ``predict(X)``, and an
            inactive Dropout layer's is its input. Another kind of model (a set model
            with attention) offers this method to be inspected the same way.
        """
        X = self._check_x(X, what="activations")
        batch_size = check_int("batch_size", DEFAULT_PREDICT_BATCH if batch_size is None else batch_size, 1)
        names = [layer.name for layer in self.layers]
        wanted = names if layers is None else [layers] if isinstance(layers, str) else list(layers)
        unknown = [name for name in wanted if name not in names]
        if unknown or not wanted:
            raise ValueError(f"layers must name layers of the model, one of {names}; got {wanted!r}")
        shapes, shape = {}, self.input_shape
        for layer in self.layers:
            shape = shapes[layer.name] = tuple(layer.output_shape(shape))
        depth = max(names.index(name) for name in wanted) + 1
        out = {name: np.empty((X.shape[0], *shapes[name]), dtype=self.dtype)
               for name in names[:depth] if name in wanted}
        for start in range(0, X.shape[0], batch_size):
            chunk = slice(start, start + batch_size)
            a = X[chunk]
            for layer in self.layers[:depth]:
                a = layer.forward(a, training=False)
                if layer.name in out:
                    out[layer.name][chunk] = a  # a copy: layers reuse their output buffers
        return out

    def _evaluate_arrays(self, X, y, batch_size: int, fused: bool) -> dict[str, float]:
        totals = dict.fromkeys(["loss", *self._metric_fns], 0.0)
        for start in range(0, X.shape[0], batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            y_pred = self._forward(xb, training=False)
            totals["loss"] += self._cost(y_pred, yb, fused) * xb.shape[0]
            for key, fn in self._metric_fns.items():
                totals[key] += fn(y_pred, yb) * xb.shape[0]
        scores = {key: value / X.shape[0] for key, value in totals.items()}
        scores["loss"] += self._regularization()
        return scores

    def evaluate(self, X, y, batch_size: int | None = None, return_dict: bool = False):
        """Cost (with regularization) and metrics on (X, y), dropout off.

        Returns the loss as a float when there are no metrics, else
        ``[loss, *metrics]`` in ``compile`` order, or a dict with ``return_dict``.
        """
        self._require_compiled("evaluate")
        X, y = self._check_xy(X, y)
        batch_size = check_int("batch_size", DEFAULT_PREDICT_BATCH if batch_size is None else batch_size, 1)
        scores = self._evaluate_arrays(X, y, batch_size, self._fused())
        if return_dict:
            return scores
        return scores["loss"] if not self.metrics else list(scores.values())

    # ------------------------------------------------------------------ weights and files
    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters in layer order: [W1, b1, W2, b2, ...], W as (n_in, n_out)."""
        self._require_built("get_weights")
        return [p.copy() for layer in self.layers for p in layer.params.values()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (same order and shapes as ``get_weights``) into the model."""
        self._require_built("set_weights")
        targets = [(layer, key) for layer in self.layers for key in layer.params]
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"set_weights needs {len(targets)} arrays, got {len(weights)}")
        checked = []
        for (layer, key), w in zip(targets, weights, strict=True):
            w = _as_numeric(w, f"weights for {layer.name}.{key}", self.dtype)
            if w.shape != layer.params[key].shape:
                raise ValueError(
                    f"weights for {layer.name}.{key} must have shape {layer.params[key].shape}, "
                    f"got {w.shape}"
                )
            checked.append(w)
        for (layer, key), w in zip(targets, checked, strict=True):
            layer.params[key][...] = w
        self._initial_weights_unseeded = False

    def get_config(self) -> dict:
        """JSON-serialisable architecture: name, dtype, input shape and layer configs."""
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [_layer_entry(layer) for layer in self.layers],
        }

    def get_compile_config(self) -> dict | None:
        """JSON description of ``compile`` (loss, metrics, optimizer's ``get_config``), or
        None if the model is not compiled."""
        if self.loss is None:
            return None
        return {"loss": self.loss.name, "metrics": list(self.metrics),
                "optimizer": self.optimizer.get_config()}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """Rebuild an (unbuilt unless ``input_shape`` is set) model from ``get_config``;
        only layer classes in the ``LAYERS`` registry can be named."""
        model = cls(dtype=config["dtype"], name=config["name"])
        for entry in config["layers"]:
            layer_cls = LAYERS.get(entry["class_name"])
            if layer_cls is None:
                raise ValueError(
                    f"unknown layer class {entry['class_name']!r}; known layers are {sorted(LAYERS)}"
                )
            layer = layer_cls(**entry["config"])
            # absent in files written before layers could be frozen
            layer.trainable = check_bool("trainable", entry.get("trainable", True))
            layer.lr_scale = check_real("lr_scale", entry.get("lr_scale", 1.0), 0.0,
                                        low_open=True)
            model.add(layer)
        if config["input_shape"] is not None and not model.built:
            model.build(config["input_shape"])
        return model

    def save(self, path, overwrite: bool = False) -> None:
        """Write architecture, compile settings and weights to one file (see ``nn.io``);
        ``load_model`` reads it back."""
        io.save_model(self, path, overwrite=overwrite)

    def summary(self, print_fn=print) -> str:
        """Print (and return) a table of layers, per-sample output shapes and parameter counts."""
        self._require_built("summary")
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
            rows.append((f"{layer.name} ({type(layer).__name__})", str((None, *shape)), f"{layer.n_params:,}"))
        widths = [max(len(row[i]) for row in rows) + 2 for i in range(3)]
        rule = "-" * sum(widths)
        lines = [f'Model: "{self.name}"', rule]
        lines += ["".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(3, rule)
        trainable = sum(layer.n_params for layer in self.layers if layer.trainable)
        lines += [rule, f"Total params: {self.count_params():,}"]
        if trainable != self.count_params():
            lines += [f"Trainable params: {trainable:,}",
                      f"Frozen params: {self.count_params() - trainable:,}"]
        lines += [f"dtype: {self.dtype.name}"]
        text = "\n".join(lines)
        print_fn(text)
        return text


def _layer_entry(layer: Layer) -> dict:
    """A layer's part of ``Sequential.get_config``: its class and constructor config, and
    ``trainable`` / ``lr_scale`` when not the defaults (so older files read the same)."""
    entry = {"class_name": type(layer).__name__, "config": layer.get_config()}
    if not layer.trainable:
        entry["trainable"] = False
    if layer.lr_scale != 1.0:
        entry["lr_scale"] = float(layer.lr_scale)
    return entry


def load_model(path) -> Sequential:
    """Read a model written by ``save_model`` / ``Sequential.save``: architecture, weights
    and (if it was compiled) loss, metrics and optimizer hyper-parameters (not optimizer
    state). Raises ``FileNotFoundError`` or ``ModelFileError`` (see ``nn.io``)."""
    return _from_file(path, *io.read_model_file(path))


def load_models(path) -> list[Sequential]:
    """The networks of a ``save_models`` (ensemble) file, or the one network of a
    ``save_model`` file, as :func:`load_model` reads each."""
    return [_from_file(path, config, weights) for config, weights in io.read_models_file(path)]


def _from_file(path, config: dict, weights: np.ndarray) -> Sequential:
    """The network described by a model file's ``config`` {"model", "compile"} and weights."""
    try:
        model = Sequential.from_config(config["model"])
        if weights.dtype == np.float16:  # stored at half precision (save_model's storage)
            weights = weights.astype(model.dtype)
        if weights.dtype != model.dtype or weights.shape != (model.count_params(),):
            raise ValueError(
                f"weights are {weights.dtype} {weights.shape}, the architecture needs "
                f"{model.dtype} ({model.count_params()},)"
            )
        model.flat_params[...] = weights
        model._initial_weights_unseeded = False
        compiled = config["compile"]
        if compiled is not None:
            model.compile(optimizers.get(compiled["optimizer"]), losses.get(compiled["loss"]),
                          compiled["metrics"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path} has an invalid model description: {err}") from None
    return model
