"""Weight initializers, drawn from an explicit ``numpy.random.Generator``.

Each initializer is ``init(shape, rng, dtype) -> array``. Fans follow Keras:
for a kernel of shape (..., n_in, n_out) the receptive field is the product of
the leading axes, fan_in = n_in · field and fan_out = n_out · field (a Dense
kernel (n_in, n_out) has fan_in = n_in, fan_out = n_out). The normal variants
are untruncated normals with Glorot's / He's standard deviation, as PyTorch's
``xavier_normal_`` / ``kaiming_normal_`` (Keras truncates at two sigmas).
"""

from __future__ import annotations

import math

import numpy as np


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel ``shape`` (Keras' rule); a vector has fan_in = fan_out."""
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


def _uniform(limit, shape, rng, dtype):
    return rng.uniform(-limit, limit, size=shape).astype(dtype, copy=False)


def _normal(std, shape, rng, dtype):
    return (rng.standard_normal(size=shape) * std).astype(dtype, copy=False)


def glorot_uniform(shape, rng, dtype):
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = compute_fans(shape)
    return _uniform(math.sqrt(6.0 / (fan_in + fan_out)), shape, rng, dtype)


def glorot_normal(shape, rng, dtype):
    """N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = compute_fans(shape)
    return _normal(math.sqrt(2.0 / (fan_in + fan_out)), shape, rng, dtype)


def he_uniform(shape, rng, dtype):
    """U(-l, l), l = sqrt(6 / fan_in) (He et al. 2015), for ReLU layers."""
    fan_in, _ = compute_fans(shape)
    return _uniform(math.sqrt(6.0 / fan_in), shape, rng, dtype)


def he_normal(shape, rng, dtype):
    """N(0, 2 / fan_in) (He et al. 2015), for ReLU layers."""
    fan_in, _ = compute_fans(shape)
    return _normal(math.sqrt(2.0 / fan_in), shape, rng, dtype)


def zeros(shape, rng, dtype):
    """All zeros (draws nothing from ``rng``)."""
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng, dtype):
    """All ones (draws nothing from ``rng``)."""
    return np.ones(shape, dtype=dtype)


INITIALIZERS = {
    f.__name__: f for f in (glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones)
}


def get(name: str):
    """The initializer called ``name`` (case is ignored); a non-string raises TypeError, an
    unknown name ValueError listing the valid ones."""
    if not isinstance(name, str):
        raise TypeError(f"initializer must be a name, got {name!r} ({type(name).__name__})")
    if name.lower() not in INITIALIZERS:
        raise ValueError(
            f"unknown initializer {name!r}; valid initializers are {sorted(INITIALIZERS)}"
        )
    return INITIALIZERS[name.lower()]
