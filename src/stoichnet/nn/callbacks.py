"""Callbacks: hooks that ``Sequential.fit`` calls during training."""

from __future__ import annotations


class Callback:
    """Base class. ``fit`` sets ``self.model`` before ``on_train_begin``.

    ``logs`` is a dict of the current metrics, e.g. ``{"loss": 0.12, "val_loss": 0.15}``.
    A callback stops training by setting ``self.model.stop_training = True``.
    """

    model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...

    def on_train_end(self, logs: dict | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
