"""Sinusoidal encodings of the members' weights (CrabNet's "fractional encoding", Wang et
al. 2021, npj Comput. Mater. 7, 77; after the positional encoding of Vaswani et al. 2017):
the weight w of a member (in CrabNet its atomic fraction) takes the place of a position."""

from __future__ import annotations

import math

import numpy as np

from stoichnet.util.checks import check_int

from .base import Layer, register_layer
from .sets import SetBatch, check_set_shape


def sinusoid_table(resolution: int, d: int) -> np.ndarray:
    """(resolution, d) float64: row x, column j = sin(x / 50^(2j/d)) for even j and
    cos(x / 50^(2j/d)) for odd j (CrabNet's table: base 50, not the 10,000 of positions)."""
    x = np.arange(resolution, dtype=np.float64)[:, None]
    j = np.arange(d, dtype=np.float64)[None, :]
    angle = x / 50.0 ** (2.0 * j / d)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle))


def weight_rows(w: np.ndarray, resolution: int, log: bool) -> np.ndarray:
    """The table row of each weight w > 0: round(resolution · clip(v, 1/resolution, 1)) - 1
    with v = w (linear) or v = 0.0025 · (log₂ w)² (log, which spreads the small fractions).
    CrabNet clips the same way (fractions never exceed 1 there). w: any shape -> int64 of
    the same shape, in 0 .. resolution - 1."""
    v = w.astype(np.float64)
    if log:
        v = 0.0025 * np.log2(v) ** 2
    v = np.clip(v, 1.0 / resolution, 1.0)
    return np.rint(v * resolution).astype(np.int64) - 1


@register_layer
class FractionalEncoding(Layer):
    """Adds sinusoidal encodings of each member's weight to its features, scaled:

        h' = 2^s_emb · h + [2^((1 - s_lin)²) · PE(w) , 2^((1 - s_log)²) · PE_log(w)]

    PE is :func:`sinusoid_table` row :func:`weight_rows` (linear) on the first d/2
    features, PE_log the log-scaled row on the last d/2 (CrabNet's ``pe`` and ``ple``);
    s_emb, s_lin, s_log are scalars learned with the model, starting at 1 (so h is first
    doubled and both encodings enter unscaled, as in CrabNet's ``Encoder``).

    Args:
        resolution: table rows (CrabNet: 5000); weights are resolved to 1/resolution.
    Parameters: ``scale`` (3,) = (s_emb, s_lin, s_log). Input (n, m, 2 + d), d even, the
    weights > 0 (fractions: (0, 1]) -> same shape, 0 at padded members. The encodings are piecewise
    constant in w, so no gradient reaches the weights.
    """

    def __init__(self, resolution: int = 5000, name: str | None = None):
        super().__init__(name)
        self.resolution = check_int("resolution", resolution, 2)

    def output_shape(self, input_shape):
        check_set_shape(self, input_shape)
        return tuple(input_shape)

    def build(self, input_shape, rng, dtype) -> None:
        d = check_set_shape(self, input_shape)
        if d % 2:
            raise ValueError(f"FractionalEncoding needs an even feature width, got {d}")
        self.table = sinusoid_table(self.resolution, d // 2).astype(dtype)
        self.params = {"scale": np.ones(3, dtype=dtype)}
        self.grads = {"scale": np.zeros(3, dtype=dtype)}
        super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        self.batch = b = SetBatch(x)
        w = b.member_weights()
        if (w <= 0).any():
            raise ValueError(f"{self.name}: member weights must be > 0 to be encoded")
        half = self.table.shape[1]
        self.encodings = np.concatenate(
            [self.table[weight_rows(w, self.resolution, log)] for log in (False, True)], axis=1)
        self.h = b.features(x)
        factors = self._factors().astype(self.dtype)
        rows = factors[0] * self.h
        rows[:, :half] += factors[1] * self.encodings[:, :half]
        rows[:, half:] += factors[2] * self.encodings[:, half:]
        return b.to_set(x, rows, self._buffer("a", x.shape, self.dtype))

    def _factors(self) -> np.ndarray:
        """(2^s_emb, 2^((1 - s_lin)²), 2^((1 - s_log)²))."""
        s = self.params["scale"].astype(np.float64)
        return np.exp2(np.array([s[0], (1 - s[1]) ** 2, (1 - s[2]) ** 2]))

    def backward(self, grad_out):
        """dh = 2^s_emb · dh'; d s_emb = ln 2 · 2^s_emb · Σ dh' ⊙ h; d s_lin = -2 ln 2 ·
        (1 - s_lin) · 2^((1 - s_lin)²) · Σ dh'[:d/2] ⊙ PE (s_log likewise on the last d/2)."""
        b = self.batch
        g = b.features(grad_out)
        half = self.table.shape[1]
        s = self.params["scale"].astype(np.float64)
        factors = self._factors()
        ln2 = math.log(2.0)
        self.grads["scale"][...] = (
            ln2 * factors[0] * np.vdot(g, self.h),
            -2 * ln2 * (1 - s[1]) * factors[1] * np.vdot(g[:, :half], self.encodings[:, :half]),
            -2 * ln2 * (1 - s[2]) * factors[2] * np.vdot(g[:, half:], self.encodings[:, half:]),
        )
        # the metadata channels' gradient passes through: the encodings are constant in w
        return b.to_set(grad_out, (factors[0] * g).astype(self.dtype, copy=False),
                        self._buffer("da_prev", grad_out.shape, self.dtype))

    def get_config(self) -> dict:
        return {"resolution": self.resolution, "name": self.name}

