"""A layer that applies an activation function: a = σ(z)."""

from __future__ import annotations

import numpy as np

from .. import activations
from .base import Layer, register_layer


@register_layer
class Activation(Layer):
    """Applies the activation called ``activation`` elementwise (softmax: over the last axis).

    Input (n, *shape) -> output of the same shape. The input ``z`` and output ``a``
    of the last forward are kept as attributes.
    """

    def __init__(self, activation: str, name: str | None = None):
        super().__init__(name)
        self.sigma = activations.get(activation)
        self.activation = self.sigma.name
        self.z = self.a = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.z = x
        self.a = self.sigma.value(x, out=self._buffer("a", x.shape, x.dtype))
        return self.a

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out = dC/da -> dC/dz = dC/da · σ'(z)."""
        return self.sigma.backward(
            grad_out, self.z, self.a, out=self._buffer("dz", self.z.shape, self.z.dtype)
        )

    def backward_from_z(self, dz: np.ndarray) -> np.ndarray:
        """Backward from dC/dz (used when the loss is fused with the activation)."""
        return dz

    def logits(self) -> np.ndarray:
        """z of the last forward (its input), for a loss fused with the activation."""
        return self.z

    def get_config(self) -> dict:
        return {"activation": self.activation, "name": self.name}
