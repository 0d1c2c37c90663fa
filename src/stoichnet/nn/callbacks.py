"""Callbacks: hooks that ``Sequential.fit`` calls during training.

Stopping and saving: ``EarlyStopping``, ``ModelCheckpoint``; weight averaging:
``StochasticWeightAveraging``; logging: ``CSVLogger``,
``ProgressBar``; per-layer diagnostics: ``LayerStats`` (``fit(record="layers")``); the
learning rate: ``ReduceLROnPlateau`` and ``LearningRateScheduler``,
which act through ``optimizer.lr_multiplier`` (training state, saved in checkpoints),
never through the optimizer's configured ``learning_rate`` (a compile setting).
The callbacks that watch a metric share ``monitor_mode`` and ``_Monitor``.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stoichnet.util.checks import check_choice, check_int, check_real


class Callback:
    """Base class. ``fit`` sets ``self.model`` and ``self.params`` (epochs, steps per
    epoch, samples, verbose) before ``on_train_begin``.

    ``logs`` is a dict of the current metrics, e.g. ``{"loss": 0.12, "val_loss": 0.15}``.
    A callback stops training by setting ``self.model.stop_training = True``.

    A callback whose decisions depend on earlier epochs lists the attributes holding
    that memory in ``state_attributes`` (or overrides ``get_state``/``set_state``), so a
    checkpoint (``fit(checkpoint=...)``) saves it and ``fit(resume=...)`` restores it
    after ``on_train_begin``.
    """

    model = None
    params: dict = {}
    state_attributes: tuple[str, ...] = ()

    def get_state(self) -> dict:
        """What a resumed run needs: name -> JSON value (number, str, bool, None,
        list, dict) or numpy array."""
        return {name: getattr(self, name) for name in self.state_attributes}

    def set_state(self, state: dict) -> None:
        """Restore what ``get_state`` returned (called after ``on_train_begin``)."""
        for name in self.state_attributes:
            setattr(self, name, state[name])

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...

    def on_train_end(self, logs: dict | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


def monitor_mode(monitor: str, mode: str) -> str:
    """"min" or "max": whether smaller or larger values of the log key ``monitor`` are
    better. ``mode`` "auto" means "max" for an accuracy (a key ending in "acc" or
    "accuracy", e.g. "val_accuracy") and "min" for everything else (losses, errors)."""
    check_choice("mode", mode, ("auto", "min", "max"))
    if mode == "auto":
        return "max" if monitor.endswith(("acc", "accuracy")) else "min"
    return mode


def _monitored(callback: Callback, monitor: str, logs: dict | None) -> float:
    if not logs or monitor not in logs:
        raise ValueError(
            f"{type(callback).__name__} monitors {monitor!r} but the epoch logs hold "
            f"{sorted(logs or {})}; pass validation data to fit or monitor one of those"
        )
    return float(logs[monitor])


class _Monitor:
    """Tracks the best value of a monitored metric (``monitor_mode`` decides whether
    smaller or larger is better); an improvement must beat the best by min_delta."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        self.monitor, self.mode = monitor, monitor_mode(monitor, mode)
        self.min_delta = abs(check_real("min_delta", min_delta))
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (Keras' rule:
    patience=0 stops at the first epoch without improvement).

    Args:
        monitor: a log key, e.g. "val_loss", "loss", "val_mae".
        patience: epochs without improvement tolerated.
        min_delta: smallest change counted as an improvement.
        mode: "auto", "min" or "max".
        restore_best_weights: at the end of training, put back the weights of the
            best epoch (whether or not training stopped early, as Keras 3 does).
    Attributes: best, best_epoch, stopped_epoch (None if it did not stop), wait.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ):
        patience = check_int("patience", patience, 0)
        self.tracker = _Monitor(monitor, mode, min_delta)
        self.monitor, self.patience, self.restore_best_weights = monitor, patience, restore_best_weights

    @property
    def best(self) -> float:
        return self.tracker.best

    def on_train_begin(self, logs=None):
        self.tracker.reset()
        self.wait, self.best_epoch, self.stopped_epoch = 0, None, None
        self.best_weights: np.ndarray | None = None

    def on_epoch_end(self, epoch, logs=None):
        if self.tracker.improved(_monitored(self, self.monitor, logs)):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                if self.best_weights is None:
                    self.best_weights = self.model.flat_params.copy()
                else:
                    np.copyto(self.best_weights, self.model.flat_params)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            np.copyto(self.model.flat_params, self.best_weights)

    def get_state(self) -> dict:
        return {"best": self.tracker.best, "wait": self.wait, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def set_state(self, state: dict) -> None:
        self.tracker.best = state["best"]
        self.wait, self.best_epoch = state["wait"], state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]
        best = state["best_weights"]
        self.best_weights = None if best is None else np.array(best, dtype=self.model.dtype)


class StochasticWeightAveraging(Callback):
    """Stochastic weight averaging (Izmailov et al. 2018, UAI): the running mean of the
    weights w̄ = (1/k) Σ w_e over the ends of epochs e = start_epoch, start_epoch + 1, …
    (0-based, as ``on_epoch_end`` counts), put in the model when training ends. Usually
    run with a constant or cyclic learning rate after ordinary training, e.g. from a
    finished run's weights; the mean lies nearer the centre of a wide minimum than any
    single iterate. The engine has no batch normalisation, so no statistics need
    recomputing afterwards. The per-epoch logs score the current weights, not the mean.

    Put it after an ``EarlyStopping(restore_best_weights=True)`` in the callback list
    (``on_train_end`` runs in list order: the last to write the weights wins).
    Attributes: count (epochs averaged so far), average (float64 flat weights, or None).
    """

    def __init__(self, start_epoch: int = 0):
        self.start_epoch = check_int("start_epoch", start_epoch, 0)

    def on_train_begin(self, logs=None):
        self.count, self.average = 0, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_epoch:
            return
        self.count += 1
        if self.average is None:
            self.average = self.model.flat_params.astype(np.float64)
        else:  # w̄_k = w̄_(k-1) + (w_k - w̄_(k-1)) / k
            self.average += (self.model.flat_params - self.average) / self.count

    def on_train_end(self, logs=None):
        if self.average is not None:
            np.copyto(self.model.flat_params, self.average, casting="same_kind")

    def get_state(self) -> dict:
        return {"count": self.count, "average": self.average}

    def set_state(self, state: dict) -> None:
        self.count = state["count"]
        self.average = None if state["average"] is None else np.array(state["average"],
                                                                      dtype=np.float64)


class ModelCheckpoint(Callback):
    """Save the model (``Sequential.save``) after every epoch, or only when ``monitor``
    improves if ``save_best_only``. ``filepath`` may hold ``{epoch}`` (1-based) and log
    keys, e.g. "model-{epoch:03d}-{val_loss:.4f}.npz"; the file is replaced each time.
    """

    def __init__(self, filepath, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"):
        self.filepath = str(filepath)
        self.monitor, self.save_best_only = monitor, save_best_only
        self.tracker = _Monitor(monitor, mode, 0.0)

    def on_train_begin(self, logs=None):
        self.tracker.reset()

    def get_state(self) -> dict:
        return {"best": self.tracker.best}

    def set_state(self, state: dict) -> None:
        self.tracker.best = state["best"]

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only and not self.tracker.improved(_monitored(self, self.monitor, logs)):
            return
        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        self.model.save(path, overwrite=True)


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (0-based, as Keras) and the sorted log keys.

    ``append=False`` replaces ``filename``; ``append=True`` adds rows (no second header).
    A run resumed from a checkpoint continues the file as an uninterrupted run would.
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = Path(filename), separator, append
        self._file = self._writer = None

    def on_train_begin(self, logs=None):
        has_rows = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = None
        self._header_written = has_rows

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self._writer = csv.DictWriter(
                self._file, fieldnames=["epoch", *sorted(logs)], delimiter=self.separator
            )
            if not self._header_written:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None

    def get_state(self) -> dict:
        return {"size": self.filename.stat().st_size}  # rows are flushed as written

    def set_state(self, state: dict) -> None:
        """Make the file what it was at the checkpoint: drop rows of later epochs
        (``append``), or write the run's rows again from the History (replaced file)."""
        if self.append:
            self._file.truncate(state["size"])
            return
        history = self.model.history
        for i, epoch in enumerate(history.epoch):
            self.on_epoch_end(epoch, {key: values[i] for key, values in history.history.items()})


class ProgressBar(Callback):
    """What ``fit(verbose=...)`` shows. 1: on a terminal, a tqdm bar per epoch on stderr
    (batches, then the epoch's logs); when stderr is not a terminal (a log file, a batch
    job) no bars, whose carriage-return redraws would fill the log, but one line per
    epoch on stderr. 2: one line per epoch on stdout. A line reads
    ``Epoch 3/40 - loss: 0.12 - val_loss: 0.15 - 1.3s`` (the epoch's wall time)."""

    def __init__(self, verbose: int = 1):
        self.verbose = check_choice("verbose", verbose, (1, 2))
        self._bar = None
        self._bars = False
        self._started = 0.0

    def on_train_begin(self, logs=None):
        self._bars = self.verbose == 1 and sys.stderr.isatty()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        if self._bars:
            self._bar = tqdm(
                total=self.params["steps"], desc=f"Epoch {epoch + 1}/{self.params['epochs']}",
                unit="batch", leave=True,
            )

    def on_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update()

    def on_epoch_end(self, epoch, logs=None):
        # per-layer keys ("dense/grad_norm", LayerStats) are for the History, not the line
        text = " - ".join(f"{k}: {v:.4g}" for k, v in (logs or {}).items() if "/" not in k)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
            return
        seconds = time.perf_counter() - self._started
        line = f"Epoch {epoch + 1}/{self.params['epochs']} - {text} - {seconds:.1f}s"
        if self.verbose == 2:
            tqdm.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


LAYER_STATS: tuple[str, ...] = ("weight_norm", "grad_norm", "dead_fraction")
"""What ``LayerStats`` records per layer and epoch, as log keys ``"<layer>/<stat>"``."""


class LayerStats(Callback):
    """Per-layer training diagnostics, one value per epoch in the epoch's logs (so the
    History records them, and CSVLogger writes them) under ``"<layer name>/<stat>"``:

    - ``weight_norm``: ||θ||₂ of all the layer's parameters (W and b) at the epoch's end;
    - ``grad_norm``: the mean over the epoch's batches of ||dC/dθ||₂ of the layer, the
      gradient its optimizer step used (after ``clipnorm``): vanishing gradients show
      as a norm that shrinks from the last layer towards the first;
    - ``dead_fraction``: the fraction of the layer's output values (units) that were 0
      for every training sample of the epoch, in training mode as the batches passed:
      dead ReLU units. Only for layers that keep their output ``a`` (Dense, Conv2D).

    Layers without parameters (Dropout, Flatten) are left out. It only reads the
    model: training is bit-identical with and without it. ``fit(record="layers")``
    installs one; :func:`layer_history` regroups the keys per layer. The progress
    lines do not print keys with a "/".
    """

    state_attributes = ("_grad_sums", "_batches", "_alive")  # a mid-epoch checkpoint's sums

    def on_train_begin(self, logs=None):
        self._layers, offset, shape = [], 0, self.model.input_shape
        for layer in self.model.layers:
            shape = tuple(layer.output_shape(shape))
            if layer.n_params:
                units = int(np.prod(shape)) if hasattr(layer, "a") else 0
                self._layers.append((layer, slice(offset, offset + layer.n_params), units))
            offset += layer.n_params
        self._units = np.cumsum([0, *(units for _, _, units in self._layers)])
        self._reset()

    def _reset(self) -> None:
        self._grad_sums = np.zeros(len(self._layers))
        self._batches = 0
        self._alive = np.zeros(self._units[-1], dtype=bool)  # every layer's units, in order

    def on_batch_end(self, batch, logs=None):
        grads = self.model.flat_grads
        for i, (layer, params, units) in enumerate(self._layers):
            g = grads[params]
            self._grad_sums[i] += math.sqrt(float(np.dot(g, g)))
            if units:
                alive = self._alive[self._units[i] : self._units[i + 1]]
                alive |= (layer.a.reshape(len(layer.a), units) != 0).any(axis=0)
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        weights = self.model.flat_params
        for i, (layer, params, units) in enumerate(self._layers):
            w = weights[params]
            logs[f"{layer.name}/weight_norm"] = math.sqrt(float(np.dot(w, w)))
            logs[f"{layer.name}/grad_norm"] = float(self._grad_sums[i] / self._batches)
            if units:
                alive = self._alive[self._units[i] : self._units[i + 1]]
                logs[f"{layer.name}/dead_fraction"] = float(1.0 - alive.mean())
        self._reset()

    def set_state(self, state: dict) -> None:
        self._grad_sums = np.array(state["_grad_sums"], dtype=float)
        self._batches = int(state["_batches"])
        self._alive = np.array(state["_alive"], dtype=bool)


def layer_history(history: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """The ``LayerStats`` entries of a History's ``history`` dict regrouped:
    {layer name: {stat: one value per epoch}}, layers in the order recorded."""
    out: dict[str, dict[str, list[float]]] = {}
    for key, values in history.items():
        layer, _, stat = key.rpartition("/")
        if layer and stat in LAYER_STATS:
            out.setdefault(layer, {})[stat] = list(values)
    return out


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Follows PyTorch's ``ReduceLROnPlateau`` with ``threshold_mode="abs"``: an epoch
    improves when the metric beats the best so far by more than ``min_delta``; the rate is
    reduced on the (patience + 1)-th epoch in a row without improvement (Keras reduces on
    the patience-th), never below ``min_lr``, then ``cooldown`` epochs pass before bad
    epochs count again. It acts through ``optimizer.lr_multiplier``, so it composes with a
    schedule (``min_lr`` bounds the rate at the moment of each reduction).

    Args:
        monitor: key of the epoch logs, e.g. "val_loss".
        factor: in (0, 1).
        patience: bad epochs tolerated, >= 0.
        min_delta: absolute improvement that counts, >= 0.
        cooldown: epochs to wait after a reduction, >= 0.
        min_lr: lower bound of the rate, >= 0.
        mode: "min", "max" or "auto" (see ``monitor_mode``).
    Attributes: best, wait, cooldown_counter.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
                 mode: str = "auto"):
        self.monitor = monitor
        self.factor = check_real("factor", factor, 0.0, 1.0, low_open=True)
        self.patience = check_int("patience", patience, 0)
        self.tracker = _Monitor(monitor, mode, check_real("min_delta", min_delta, 0.0))
        self.mode = self.tracker.mode
        self.cooldown = check_int("cooldown", cooldown, 0)
        self.min_lr = check_real("min_lr", min_lr, 0.0)
        self.on_train_begin()

    @property
    def best(self) -> float:
        return self.tracker.best

    def on_train_begin(self, logs=None):
        self.tracker.reset()
        self.wait = 0
        self.cooldown_counter = 0

    def get_state(self) -> dict:
        return {"best": self.tracker.best, "wait": self.wait,
                "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: dict) -> None:
        self.tracker.best = state["best"]
        self.wait, self.cooldown_counter = state["wait"], state["cooldown_counter"]

    def on_epoch_end(self, epoch, logs=None):
        if self.tracker.improved(_monitored(self, self.monitor, logs)):
            self.wait = 0
        else:
            self.wait += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.wait > self.patience:
            self._reduce(self.model.optimizer)
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def _reduce(self, optimizer) -> None:
        old = optimizer.current_learning_rate
        new = max(old * self.factor, self.min_lr)
        if old - new > 1e-8:  # PyTorch's eps: smaller changes are ignored
            optimizer.lr_multiplier *= new / old


class LearningRateScheduler(Callback):
    """Train epoch ``epoch`` (counted from 0) at the rate ``schedule(epoch)``, as Keras'
    callback of the same name. ``schedule``: callable int -> float >= 0.

    It sets ``optimizer.lr_multiplier`` (training state, saved in checkpoints) to
    ``schedule(epoch) / learning_rate``, chosen so that the product is
    ``schedule(epoch)`` exactly when a float multiplier gives it, and leaves the
    configured ``learning_rate`` alone: a checkpointed run resumes bit-identically.
    Setting the multiplier replaces earlier ``ReduceLROnPlateau`` reductions, as
    Keras' scheduler overrides them. The optimizer's ``learning_rate`` must be a
    float > 0; for a per-step rate pass a schedule as ``learning_rate`` instead.
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch -> learning rate), got "
                            f"{schedule!r}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        rate = check_real(f"schedule({epoch})", self.schedule(epoch), 0.0)
        optimizer = self.model.optimizer
        base = optimizer.learning_rate
        if callable(base) or base == 0:
            raise ValueError(f"LearningRateScheduler scales the optimizer's learning_rate, "
                             f"which must be a float > 0, got {base!r}; use either a "
                             "schedule as learning_rate or this callback")
        multiplier = rate / base
        if base * multiplier != rate:  # the optimizer uses base * multiplier: make it rate
            for candidate in (math.nextafter(multiplier, -math.inf),
                              math.nextafter(multiplier, math.inf)):
                if base * candidate == rate:
                    multiplier = candidate
                    break
        optimizer.lr_multiplier = multiplier
