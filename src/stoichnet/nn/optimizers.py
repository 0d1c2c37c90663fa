"""Optimizers: rules that step parameters against their gradients.

Contract used by ``Sequential``: ``step(params, grads)`` updates every array in
``params`` in place from the matching array in ``grads`` (same shape and dtype),
then increments ``iterations``. State (moments, accumulators) is created lazily
on the first step, in the parameters' dtype, and is exposed through
``state_dict()`` / ``load_state_dict()`` so checkpoints can resume bit-identically.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    """Base class.

    Args:
        learning_rate: a float, or a schedule (callable: step -> learning rate).
        weight_decay: L2 penalty coefficient added to the gradient (PyTorch's
            ``weight_decay``: g <- g + weight_decay * theta).
    Attributes:
        iterations: number of steps taken so far.
        lr_multiplier: factor applied on top of the (scheduled) rate; plateau
            reduction changes it.
    """

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.0):
        self.learning_rate = learning_rate
        self.weight_decay = float(weight_decay)
        self.iterations = 0
        self.lr_multiplier = 1.0

    @property
    def current_learning_rate(self) -> float:
        lr = self.learning_rate
        base = lr(self.iterations) if callable(lr) else lr
        return float(base) * self.lr_multiplier

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError
