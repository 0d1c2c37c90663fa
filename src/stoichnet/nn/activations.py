"""Activation functions σ and their derivatives σ', as small pure functions.

Every activation has ``value(z, out=None) -> a`` and, for the elementwise ones,
``derivative(z, a, out=None) -> σ'(z)`` (given both z and a = σ(z), because
σ' is cheapest from one or the other: sigmoid' = a(1 - a), tanh' = 1 - a²).
``backward(da, z, a, out=None)`` returns dz = da · σ'(z); for softmax, whose
derivative is a Jacobian, it returns the Jacobian-vector product instead.
``out=`` lets a layer reuse its buffers; results keep the dtype of ``z``.
Arrays are (n_samples, n_units); softmax normalises over the last axis.

Activations flagged ``in_place`` (linear, relu, leaky_relu, tanh) may be computed with
``out=z``: their derivative reads only ``a`` (relu, leaky_relu: z > 0 exactly where
a > 0), so a layer need not keep a separate z buffer.

ReLU, the hidden activation of ElemNet, and leaky ReLU, Roost's, also have two fused forms
that make one pass over memory instead of two: ``relu_plus_bias`` / ``leaky_relu_plus_bias``
and ``relu_backward`` / ``leaky_relu_backward`` run numba kernels from
``stoichnet.nn.kernels``; ``relu``, ``leaky_relu`` and their derivatives are the plain
references.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from stoichnet.nn import kernels

LEAKY_RELU_ALPHA = 0.01  # PyTorch's default slope (Keras' LeakyReLU layer uses 0.3)
ELU_ALPHA = 1.0


def _ensure(out, like):
    return np.empty_like(like) if out is None else out


def linear(z, out=None):
    """a = z."""
    if out is None:
        return z.copy()
    if out is not z:
        np.copyto(out, z)
    return out


def linear_derivative(z, a, out=None):
    """σ'(z) = 1."""
    out = _ensure(out, a)
    out.fill(1)
    return out


def linear_backward(da, z, a, out=None):
    """dz = da (one copy instead of building σ' = 1 and multiplying)."""
    if out is None:
        return da.copy()
    np.copyto(out, da)
    return out


def sigmoid(z, out=None):
    """a = 1 / (1 + e^-z), computed as exp(-log(1 + e^-z)) so it never overflows."""
    out = _ensure(out, z)
    np.negative(z, out=out)
    np.logaddexp(0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def sigmoid_derivative(z, a, out=None):
    """σ'(z) = a (1 - a)."""
    out = _ensure(out, a)
    np.subtract(1, a, out=out)
    return np.multiply(out, a, out=out)


def tanh(z, out=None):
    """a = tanh(z)."""
    return np.tanh(z, out=_ensure(out, z))


def tanh_derivative(z, a, out=None):
    """σ'(z) = 1 - a²."""
    out = _ensure(out, a)
    np.multiply(a, a, out=out)
    return np.subtract(1, out, out=out)


def relu(z, out=None):
    """a = max(z, 0)."""
    return np.maximum(z, 0, out=_ensure(out, z))


def relu_derivative(z, a, out=None):
    """σ'(z) = 1 where a > 0 (i.e. z > 0), else 0 (0 at the kink, as in PyTorch)."""
    return np.greater(a, 0, out=_ensure(out, a), casting="unsafe")


def relu_plus_bias(z, b):
    """a = relu(z + b) written over z, in one pass. z: (n, units); b: (units,)."""
    kernels.relu_plus_bias(z, b, z.dtype.type(0))
    return z


def relu_backward(da, z, a, out=None):
    """dz = da · relu_derivative(z, a) (da where a > 0, else 0) in one pass. da, a, out: one
    shape; z is not read."""
    return _fused_backward(da, a, 0, out)


def _fused_backward(da, a, slope, out):
    """dz = da where a > 0, else slope · da, by ``kernels.relu_backward``; into ``out``."""
    dz = out if out is not None and out.flags.c_contiguous else np.empty(a.shape, a.dtype)
    # reshape: views if contiguous
    kernels.relu_backward(da.reshape(-1), a.reshape(-1), a.dtype.type(slope), dz.reshape(-1))
    if out is not None and dz is not out:
        np.copyto(out, dz)
        return out
    return dz


def leaky_relu(z, out=None):
    """a = z where z > 0, else 0.01 z (= max(z, 0.01 z); valid with out=z)."""
    return np.maximum(z, LEAKY_RELU_ALPHA * z, out=_ensure(out, z))


def leaky_relu_derivative(z, a, out=None):
    """σ'(z) = 1 where a > 0 (i.e. z > 0), else 0.01."""
    out = _ensure(out, a)
    np.greater(a, 0, out=out, casting="unsafe")
    return np.maximum(out, LEAKY_RELU_ALPHA, out=out)


def leaky_relu_plus_bias(z, b):
    """a = leaky_relu(z + b) written over z, in one pass. z: (n, units); b: (units,)."""
    kernels.relu_plus_bias(z, b, z.dtype.type(LEAKY_RELU_ALPHA))
    return z


def leaky_relu_backward(da, z, a, out=None):
    """dz = da · leaky_relu_derivative(z, a) (da where a > 0, else 0.01 da) in one pass."""
    return _fused_backward(da, a, LEAKY_RELU_ALPHA, out)


def elu(z, out=None):
    """a = z where z > 0, else α (e^z - 1), α = 1."""
    out = _ensure(out, z)
    np.minimum(z, 0, out=out)
    np.expm1(out, out=out)
    np.multiply(out, ELU_ALPHA, out=out)
    np.copyto(out, z, where=z > 0)
    return out


def elu_derivative(z, a, out=None):
    """σ'(z) = 1 where z > 0, else α e^z = a + α."""
    out = _ensure(out, a)
    np.add(a, ELU_ALPHA, out=out)
    np.copyto(out, 1, where=z > 0)
    return out


def softmax(z, out=None):
    """a_j = e^(z_j) / Σ_k e^(z_k) over the last axis, shifted by max(z) against overflow."""
    out = _ensure(out, z)
    np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def softmax_backward(da, z, a, out=None):
    """dz = a ⊙ (da - Σ_j da_j a_j): the softmax Jacobian times da, per sample."""
    out = _ensure(out, a)
    np.multiply(da, a, out=out)
    dot = out.sum(axis=-1, keepdims=True)
    np.subtract(da, dot, out=out)
    return np.multiply(out, a, out=out)


@dataclass(frozen=True)
class ActivationFunction:
    """One registry entry: the function, its derivative and the backward rule.

    ``jacobian_product`` (softmax; linear, whose Jacobian is the identity; relu, as one
    fused pass) replaces the elementwise σ' · da when given. ``in_place``:
    ``value(z, out=z)`` is valid and the backward never reads z (it may then be passed
    as None). ``plus_bias(z, b)``, when given, writes σ(z + b) over z in one pass.
    """

    name: str
    value: Callable[..., np.ndarray]
    derivative: Callable[..., np.ndarray] | None
    jacobian_product: Callable[..., np.ndarray] | None = None
    in_place: bool = False
    plus_bias: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def backward(self, da, z, a, out=None):
        """dz = da · σ'(z) (elementwise), or the Jacobian-vector product."""
        if self.jacobian_product is not None:
            return self.jacobian_product(da, z, a, out)
        dz = self.derivative(z, a, out=out)
        return np.multiply(dz, da, out=dz)


ACTIVATIONS: dict[str, ActivationFunction] = {
    f.name: f
    for f in (
        ActivationFunction("linear", linear, linear_derivative, linear_backward, in_place=True),
        ActivationFunction("sigmoid", sigmoid, sigmoid_derivative),
        ActivationFunction("tanh", tanh, tanh_derivative, in_place=True),
        ActivationFunction("relu", relu, relu_derivative, relu_backward, in_place=True,
                           plus_bias=relu_plus_bias),
        ActivationFunction("leaky_relu", leaky_relu, leaky_relu_derivative, leaky_relu_backward,
                           in_place=True, plus_bias=leaky_relu_plus_bias),
        ActivationFunction("elu", elu, elu_derivative),
        ActivationFunction("softmax", softmax, None, softmax_backward),
    )
}


def get(name: str | None) -> ActivationFunction:
    """The activation called ``name`` (None means linear, case is ignored); a non-string
    raises TypeError, an unknown name ValueError."""
    key = "linear" if name is None else name
    if not isinstance(key, str):
        raise TypeError(f"activation must be a name or None, got {name!r} ({type(name).__name__})")
    if key.lower() not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; valid activations are {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key.lower()]
