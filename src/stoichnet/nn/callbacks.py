"""Callbacks: hooks that ``Sequential.fit`` calls during training."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm


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


def _monitored(callback: Callback, monitor: str, logs: dict | None) -> float:
    if not logs or monitor not in logs:
        raise ValueError(
            f"{type(callback).__name__} monitors {monitor!r}, which is not in the epoch logs "
            f"{sorted(logs or {})}; pass validation data to fit or monitor 'loss'"
        )
    return logs[monitor]


class _Monitor:
    """Tracks the best value of a monitored metric: mode "min", "max" or "auto"
    ("max" for accuracies, else "min"); an improvement must beat the best by min_delta."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if monitor.endswith(("acc", "accuracy")) else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(float(min_delta))
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
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
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
    """What ``fit(verbose=...)`` shows: 1 a tqdm bar per epoch (batches, then the
    epoch's logs), 2 one line per epoch. Written to stderr."""

    def __init__(self, verbose: int = 1):
        self.verbose = verbose
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose == 1:
            self._bar = tqdm(
                total=self.params["steps"], desc=f"Epoch {epoch + 1}/{self.params['epochs']}",
                unit="batch", leave=True,
            )

    def on_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update()

    def on_epoch_end(self, epoch, logs=None):
        text = " - ".join(f"{k}: {v:.4g}" for k, v in (logs or {}).items())
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            tqdm.write(f"Epoch {epoch + 1}/{self.params['epochs']} - {text}")

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
