"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from stoichnet.util.checks import check_real

from .base import Layer, register_layer


@register_layer
class Dropout(Layer):
    """Inverted dropout: in training, each unit is zeroed with probability ``rate`` and
    the survivors are scaled by 1 / (1 - rate), so inference needs no rescaling and is
    the identity.

    Args:
        rate: fraction of units dropped, 0 <= rate < 1.
        mc_dropout: keep dropout on at inference too (Monte-Carlo dropout; every
            ``predict`` is then one random draw). ``Sequential.predict(X, mc_samples=k)``
            averages k such passes without setting this flag.
    The mask is drawn from the model's generator ``self.rng``; input (n, *shape) ->
    output of the same shape.
    """

    def __init__(self, rate: float, mc_dropout: bool = False, name: str | None = None):
        super().__init__(name)
        self.rate = check_real("rate", rate, 0.0, 1.0)
        self.mc_dropout = bool(mc_dropout)
        self.mask = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not (training or self.mc_dropout) or self.rate == 0:
            self.mask = None
            return x
        if self.rng is None:
            raise ValueError(f"{self!r} is not built: it needs the model's generator for its masks")
        # mask = keep / (1 - rate): one buffer holding the scaled Bernoulli draw
        mask = self._buffer("mask", x.shape, x.dtype)
        self.rng.random(dtype=mask.dtype, out=mask)
        np.greater_equal(mask, self.rate, out=mask, casting="unsafe")
        mask *= 1.0 / (1.0 - self.rate)
        self.mask = mask
        return np.multiply(x, mask, out=self._buffer("a", x.shape, x.dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """dC/dx = dC/da · mask (the identity when the last forward did not drop)."""
        if self.mask is None:
            return grad_out
        return np.multiply(grad_out, self.mask, out=self._buffer("da_prev", grad_out.shape, grad_out.dtype))

    def get_config(self) -> dict:
        return {"rate": self.rate, "mc_dropout": self.mc_dropout, "name": self.name}
