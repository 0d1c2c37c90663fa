"""Roost's residual dense block (ResidualNetwork's hidden step)."""

from __future__ import annotations

import numpy as np

from stoichnet.util.checks import check_int

from .. import activations, initializers
from .base import register_layer
from .composite import Composite
from .dense import Dense


@register_layer
class ResidualDense(Composite):
    """a = σ(x · W + b) + x · P, with P a bias-free projection when the widths differ and
    the identity when they agree (aviary's ``ResidualNetwork``: ``act(fc(x)) + res_fc(x)``).

    Args:
        units: output width.
        activation: σ (Roost: relu).
        kernel_initializer: of both kernels.
    Children: ``dense`` (W, b) and, when n_in != units, ``projection`` (W). Input
    (n, n_in) -> (n, units); for the members of sets wrap it: ``PerMember(ResidualDense(..))``.
    """

    def __init__(self, units: int, activation: str = "relu",
                 kernel_initializer: str = "glorot_uniform", name: str | None = None):
        super().__init__(name)
        self.units = check_int("units", units, 1)
        self.activation = activations.get(activation).name
        self.kernel_initializer = initializers.get(kernel_initializer).__name__
        self.dense = self.add_child(Dense(units, activation, kernel_initializer=kernel_initializer),
                                    "dense")
        self.projection = None

    def output_shape(self, input_shape):
        return self.dense.output_shape(input_shape)

    def build(self, input_shape, rng, dtype) -> None:
        self.dense.build(input_shape, rng, dtype)
        if int(input_shape[0]) != self.units:
            self.projection = self.add_child(
                Dense(self.units, use_bias=False, kernel_initializer=self.kernel_initializer),
                "projection")
            self.projection.build(input_shape, rng, dtype)
        super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        out = self._buffer("a", (x.shape[0], self.units), self.dtype)
        np.copyto(out, self.dense.forward(x, training))
        out += x if self.projection is None else self.projection.forward(x, training)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """The two paths' gradients add: dC/dx = dense's + (grad_out or projection's)."""
        dx = self._buffer("da_prev", (grad_out.shape[0], self.input_shape[0]), self.dtype)
        np.copyto(dx, self.dense.backward(grad_out))
        dx += grad_out if self.projection is None else self.projection.backward(grad_out)
        return dx

    def get_config(self) -> dict:
        return {"units": self.units, "activation": self.activation,
                "kernel_initializer": self.kernel_initializer, "name": self.name}
