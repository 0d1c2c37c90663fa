"""Exceptions raised by the engine."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model file cannot be read: truncated, corrupted, foreign, of an unsupported
    format version, or carrying pickled data. The message names the file and the problem."""


class TrainingDivergedError(FloatingPointError):
    """The loss or gradient became NaN/inf during training.

    Raised before the optimizer applies the bad step, so the model keeps the
    weights it had before that batch. Attributes: ``epoch`` and ``batch``
    (0-based; None outside ``fit``) and ``loss`` (the offending value).
    """

    def __init__(self, message: str, epoch: int | None, batch: int | None, loss: float):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.loss = loss


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or ``Sequential.interrupt()``) stopped ``fit`` after a complete batch.

    Attributes: ``epoch`` and ``batch`` (0-based epoch in progress, batches of it done)
    and ``checkpoint`` (the path written, to pass as ``fit(resume=...)``, or None when
    ``fit`` had no ``checkpoint``).
    """

    def __init__(self, message: str, epoch: int, batch: int, checkpoint):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.checkpoint = checkpoint
