"""The fully connected layer: z = a_prev · W + b, a = σ(z)."""

from __future__ import annotations

import numbers

import numpy as np

from stoichnet.util.checks import check_int, check_real

from .. import activations, initializers
from .base import Layer, register_layer


class L2:
    """L2 kernel penalty with Keras' semantics: cost += l2 · Σ W², so dC/dW += 2 · l2 · W.

    Note PyTorch's ``weight_decay`` adds ``weight_decay · W`` to the gradient,
    i.e. corresponds to ``l2 = weight_decay / 2``.
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = check_real("l2", l2, 0.0)

    def __call__(self, W: np.ndarray) -> float:
        return self.l2 * float(np.vdot(W, W))

    def add_gradient(self, W: np.ndarray, dW: np.ndarray, tmp: np.ndarray | None = None) -> None:
        """dW += 2 · l2 · W, in place; ``tmp`` (W's shape and dtype) is scratch space."""
        dW += np.multiply(W, 2.0 * self.l2, out=tmp)

    def get_config(self) -> dict:
        return {"l2": self.l2}

    def __repr__(self) -> str:
        return f"L2(l2={self.l2!r})"


def _regularizer(value) -> L2 | None:
    """None, an ``L2``, a number (the l2 factor), "l2" (factor 0.01) or {"l2": x}."""
    allowed = "None, a number (the L2 factor), 'l2', {'l2': x} or L2(x)"
    if value is None or isinstance(value, L2):
        return value
    if isinstance(value, str) and value.lower() == "l2":
        return L2()
    if isinstance(value, dict) and set(value) == {"l2"}:
        return L2(value["l2"])
    if isinstance(value, numbers.Real):
        return L2(value)  # which refuses bools and negative numbers
    error = ValueError if isinstance(value, str | dict) else TypeError
    raise error(f"kernel_regularizer must be {allowed}, got {value!r} ({type(value).__name__})")


@register_layer
class Dense(Layer):
    """Fully connected layer with an optional fused activation.

    Args:
        units: number of output units (n_out).
        activation: activation name (see ``stoichnet.nn.activations``); None is linear.
        input_dim: number of input features of a first layer; None builds lazily.
        kernel_initializer, bias_initializer: initializer names.
        use_bias: whether the layer has a bias ``b``.
        kernel_regularizer: L2 penalty on ``W`` (see ``L2``), or None.
    Parameters: ``W`` (n_in, n_out) and ``b`` (n_out,).
    Input (n, n_in) -> output (n, n_out); ``a`` of the last forward is kept as an
    attribute, and ``z`` too unless the activation is computed in place (relu,
    tanh, linear: ``z`` is then None and ``a`` reuses its buffer).

    ``forward`` and ``backward`` reuse buffers and fuse the bias with ReLU (one numba
    pass each way); ``reference_forward`` and ``reference_backward`` are the same layer
    in plain NumPy, the oracle the tests hold them to, bit for bit.
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        input_dim: int | None = None,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        use_bias: bool = True,
        kernel_regularizer=None,
        name: str | None = None,
    ):
        super().__init__(name)
        self.units = check_int("units", units, 1)
        input_dim = None if input_dim is None else check_int("input_dim", input_dim, 1)
        self.activation = activations.get(activation).name
        self.sigma = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer).__name__
        self.bias_initializer = initializers.get(bias_initializer).__name__
        self.use_bias = bool(use_bias)
        self.kernel_regularizer = _regularizer(kernel_regularizer)
        self.input_dim = input_dim
        self.declared_input_shape = None if input_dim is None else (self.input_dim,)
        self.z = self.a = self.a_prev = None

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects 1-D samples (n_features,), got per-sample shape "
                f"{tuple(input_shape)}; add a Flatten layer first"
            )
        return (self.units,)

    def build(self, input_shape, rng, dtype) -> None:
        self.output_shape(input_shape)
        shape = (int(input_shape[0]), self.units)
        self.params = {"W": initializers.get(self.kernel_initializer)(shape, rng, dtype)}
        if self.use_bias:
            self.params["b"] = initializers.get(self.bias_initializer)((self.units,), rng, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x = a_prev: (n, n_in) -> a: (n, n_out)."""
        self.a_prev = x
        z = np.matmul(x, self.params["W"], out=self._buffer("z", (x.shape[0], self.units),
                                                            self.dtype))
        self.z, self.a = self.activate(z)
        return self.a

    def activate(self, z: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(z + b, σ(z + b)) from z = a_prev · W (n, units), which it overwrites; the first
        is None when σ' reads only a (an in-place activation), as ``backward`` expects of
        ``self.z``. For a caller that computes a_prev · W itself (a factorised product)."""
        if self.use_bias and self.sigma.plus_bias is not None:
            return None, self.sigma.plus_bias(z, self.params["b"])  # one pass
        if self.use_bias:
            z += self.params["b"]
        if self.sigma.in_place:  # relu & co.: a overwrites z, backward reads only a
            return None, self.sigma.value(z, out=z)
        return z, self.sigma.value(z, out=self._buffer("a", z.shape, self.dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out = dC/da: (n, n_out) -> dC/da_prev: (n, n_in); fills dW, db."""
        return self.backward_from_z(self._dz(grad_out))

    def backward_params(self, grad_out: np.ndarray) -> None:
        """Fill dW, db only, skipping the dz · Wᵀ product (a first layer's da_prev is unused)."""
        self._param_gradients(self._dz(grad_out))

    def backward_from_z(self, dz: np.ndarray) -> np.ndarray:
        """Backward from dC/dz (used when the loss is fused with the activation)."""
        self._param_gradients(dz)
        W = self.params["W"]
        shape = (dz.shape[0], W.shape[0])
        return np.matmul(dz, W.T, out=self._buffer("da_prev", shape, self.dtype))

    def logits(self) -> np.ndarray:
        """z = a_prev · W + b of the last forward, (n, n_out), for a loss fused with the
        activation. An in-place activation overwrote z with a (nothing else reads z),
        so z is then recomputed, with the same operations, into a buffer of its own."""
        if self.z is not None:
            return self.z
        shape = (self.a_prev.shape[0], self.units)
        z = np.matmul(self.a_prev, self.params["W"], out=self._buffer("logits", shape, self.dtype))
        if self.use_bias:
            z += self.params["b"]
        return z

    def _dz(self, grad_out: np.ndarray) -> np.ndarray:
        """dz = dC/da · σ'(z), (n, n_out), in the layer's dz buffer."""
        return self.sigma.backward(
            grad_out, self.z, self.a, out=self._buffer("dz", self.a.shape, self.dtype)
        )

    def _param_gradients(self, dz: np.ndarray) -> None:
        """dW = a_prevᵀ · dz (+ the L2 term), db = Σ_samples dz, written in place."""
        np.matmul(self.a_prev.T, dz, out=self.grads["W"])
        if self.kernel_regularizer is not None:
            W = self.params["W"]
            self.kernel_regularizer.add_gradient(W, self.grads["W"], self._buffer("l2", W.shape, W.dtype))
        if self.use_bias:
            np.sum(dz, axis=0, out=self.grads["b"])

    # --- the same layer in plain NumPy: what forward/backward compute, without buffers ----
    def reference_forward(self, a_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z = a_prev · W + b and a = σ(z), as new arrays; the layer keeps nothing.

        a_prev: (n, n_in) -> (z, a), each (n, n_out).
        """
        z = a_prev @ self.params["W"]
        if self.use_bias:
            z = z + self.params["b"]
        return z, self.sigma.value(z)

    def reference_backward(self, a_prev: np.ndarray, z: np.ndarray,
                           da: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The chain rule from dC/da (n, n_out), given the input a_prev (n, n_in) and z.

        Returns (da_prev, grads): dz = da · σ'(z) (softmax: its Jacobian times da),
        dW = a_prevᵀ · dz (+ 2 · l2 · W), db = Σ_samples dz, da_prev = dz · Wᵀ.
        """
        a = self.sigma.value(z)
        if self.sigma.derivative is None:
            dz = self.sigma.backward(da, z, a)
        else:
            dz = da * self.sigma.derivative(z, a)
        W = self.params["W"]
        grads = {"W": a_prev.T @ dz}
        if self.kernel_regularizer is not None:
            grads["W"] = grads["W"] + 2 * self.kernel_regularizer.l2 * W
        if self.use_bias:
            grads["b"] = dz.sum(axis=0)
        return dz @ W.T, grads

    def regularization_loss(self) -> float:
        if self.kernel_regularizer is None:
            return 0.0
        return self.kernel_regularizer(self.params["W"])

    def get_config(self) -> dict:
        return {
            "units": self.units,
            "activation": self.activation,
            "input_dim": self.input_dim,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "use_bias": self.use_bias,
            "kernel_regularizer": None
            if self.kernel_regularizer is None
            else self.kernel_regularizer.get_config(),
            "name": self.name,
        }
