"""Convolutional layers for channels-last images: Conv2D, MaxPool2D, Flatten.

Images are batches of shape ``(n_samples, height, width, channels)``, as in Keras.
Conv2D is im2col + one matrix product: every receptive field of the (padded)
input becomes one row of ``cols`` (n_samples, out_h, out_w, kh * kw * in_channels),
so the layer is ``z = cols @ W + b`` with the kernel ``W`` reshaped to
``(kh * kw * in_channels, filters)``, and ``a = activation(z)``. Backpropagation
is the dense layer's: ``dW = colsᵀ · dz``, ``db = Σ dz``, ``dcols = dz · Wᵀ``;
``dcols`` is scattered back onto the input pixels (col2im) one kernel offset
at a time. Few, large matrix products keep multi-threaded BLAS efficient.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stoichnet.util.checks import check_choice, check_int

from .. import activations, initializers
from .base import Layer, register_layer

PADDINGS = ("valid", "same")


def _pair(value, name: str) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 2)`` stays; each an int >= 1. TypeError for anything else
    (a triple too), ValueError below 1."""
    if not isinstance(value, (tuple, list)):
        value = check_int(name, value, 1)
        return value, value
    if len(value) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return check_int(f"{name}[0]", value[0], 1), check_int(f"{name}[1]", value[1], 1)


def _image_shape(input_shape, layer: str) -> tuple[int, int, int]:
    """Validate a per-sample channels-last shape ``(height, width, channels)`` of ints >= 1."""
    expected = f"{layer} expects per-sample input_shape (height, width, channels) of positive ints"
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{expected}, got {input_shape!r} ({type(input_shape).__name__})")
    if len(input_shape) != 3:
        raise ValueError(f"{expected}, got {input_shape!r}")
    return tuple(check_int(f"{layer} input_shape[{i}]", d, 1) for i, d in enumerate(input_shape))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after), the odd pixel after.

    The output has ``ceil(size / stride)`` positions.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output positions along one axis for "valid" or "same" padding."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def im2col(
    x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """Receptive fields of a padded batch as rows.

    Args:
        x: (n, height, width, channels), already padded.
        out: optional (n, out_h, out_w, kh * kw * channels) array to fill.
    Returns:
        (n, out_h, out_w, kh * kw * channels), contiguous; the last axis is ordered
        (kernel row, kernel column, channel) like a Keras kernel.
    """
    kh, kw = kernel
    sh, sw = strides
    # view (n, out_h, out_w, channels, kh, kw) -> rows ordered (kh, kw, channels)
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    n, out_h, out_w, c = windows.shape[:4]
    if out is None:
        out = np.empty((n, out_h, out_w, kh * kw * c), dtype=x.dtype)
    np.copyto(out.reshape(n, out_h, out_w, kh, kw, c), windows.transpose(0, 1, 2, 4, 5, 3))
    return out


def col2im(
    dcols: np.ndarray,
    padded_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every row's entries back onto the pixels it came from.

    Args:
        dcols: (n, out_h, out_w, kh * kw * channels).
        padded_shape: (n, height, width, channels) of the padded input.
        out: optional array of ``padded_shape`` to fill (overwritten).
    Returns:
        (n, height, width, channels), the dtype of ``dcols``.
    """
    kh, kw = kernel
    sh, sw = strides
    n, out_h, out_w, _ = dcols.shape
    dcols = dcols.reshape(n, out_h, out_w, kh, kw, padded_shape[3])
    if out is None:
        out = np.empty(padded_shape, dtype=dcols.dtype)
    out.fill(0)
    # one strided slice per kernel offset; neighbouring windows overlap, hence +=
    for i in range(kh):
        for j in range(kw):
            out[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] += dcols[
                :, :, :, i, j
            ]
    return out


@register_layer
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in Keras and PyTorch), channels-last.

    Args:
        filters: number of output channels.
        kernel_size: int or (kh, kw).
        strides: int or (rows, cols).
        padding: "valid" (no padding) or "same" (TensorFlow's rule: output
            ``ceil(size / stride)``, the odd padding pixel at the bottom/right).
        activation: name of a fused activation (as for ``Dense``); None is linear.
        input_shape: per-sample (height, width, channels) of a first layer.
        kernel_initializer: initializer name; fans are kh*kw*in_channels and
            kh*kw*filters, as in Keras.
    Parameters: ``W`` (kh, kw, in_channels, filters) and ``b`` (filters,), Keras' layout.
    Input (n, height, width, in_channels) -> output (n, out_h, out_w, filters); ``z``
    and ``a`` of the last forward are kept as attributes.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        activation: str | None = None,
        input_shape=None,
        kernel_initializer: str = "glorot_uniform",
        name: str | None = None,
    ):
        super().__init__(name)
        self.filters = check_int("filters", filters, 1)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = check_choice("padding", padding, PADDINGS)
        self._activation = activations.get(activation)
        self.activation = self._activation.name
        self.kernel_initializer = initializers.get(kernel_initializer).__name__
        self.declared_input_shape = (
            None if input_shape is None else _image_shape(input_shape, "Conv2D")
        )

    def _pads(self, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int]]:
        if self.padding == "valid":
            return (0, 0), (0, 0)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        return same_padding(h, kh, sh), same_padding(w, kw, sw)

    def output_shape(self, input_shape):
        h, w, _ = _image_shape(input_shape, "Conv2D")
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "valid" and (h < kh or w < kw):
            raise ValueError(
                f"Conv2D kernel_size {self.kernel_size} is larger than the input image "
                f"({h}, {w}) with padding='valid'"
            )
        return (
            conv_output_size(h, kh, sh, self.padding),
            conv_output_size(w, kw, sw, self.padding),
            self.filters,
        )

    def build(self, input_shape, rng, dtype) -> None:
        _, _, c = _image_shape(input_shape, "Conv2D")
        self.output_shape(input_shape)
        kh, kw = self.kernel_size
        self.params = {
            "W": initializers.get(self.kernel_initializer)((kh, kw, c, self.filters), rng, dtype),
            "b": np.zeros(self.filters, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (n, height, width, in_channels) -> a: (n, out_h, out_w, filters)."""
        x = _check_batch(x, self)
        self._x_shape = x.shape
        (pt, pb), (pl, pr) = self._pads(x.shape[1], x.shape[2])
        if pt or pb or pl or pr:
            x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        self._padded_shape = x.shape
        self._crop = (pt, pl)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        n, c = x.shape[0], x.shape[3]
        out_h, out_w = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
        cols = self._buffer("cols", (n, out_h, out_w, kh * kw * c), self.dtype)
        im2col(x, self.kernel_size, self.strides, out=cols)
        # 2-D operands: one BLAS call over the whole batch
        self._cols = cols.reshape(-1, kh * kw * c)
        z = self._buffer("z", (n, out_h, out_w, self.filters), self.dtype)
        np.matmul(
            self._cols, self.params["W"].reshape(-1, self.filters), out=z.reshape(-1, self.filters)
        )
        z += self.params["b"]
        self.z = z
        self.a = self._activation.value(z, out=self._buffer("a", z.shape, self.dtype))
        return self.a

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out: dC/da (n, out_h, out_w, filters) -> dC/dx (n, height, width, in_channels).

        Writes dC/dW and dC/db into ``self.grads``.
        """
        dz = self._activation.backward(
            grad_out, self.z, self.a, out=self._buffer("dz", self.z.shape, self.dtype)
        )
        W = self.params["W"]
        dz_rows = dz.reshape(-1, self.filters)
        self.grads["W"][...] = (self._cols.T @ dz_rows).reshape(W.shape)
        np.sum(dz_rows, axis=0, out=self.grads["b"])
        n_rows = self._cols.shape[1]
        dcols = self._buffer("dcols", self._cols.shape, self.dtype)
        np.matmul(dz_rows, W.reshape(n_rows, self.filters).T, out=dcols)
        da_prev = col2im(
            dcols.reshape(*dz.shape[:3], n_rows),
            self._padded_shape,
            self.kernel_size,
            self.strides,
            out=self._buffer("da_prev", self._padded_shape, self.dtype),
        )
        (pt, pl), (_, h, w, _) = self._crop, self._x_shape
        return da_prev[:, pt : pt + h, pl : pl + w]

    def get_config(self) -> dict:
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "activation": self.activation,
            "input_shape": None
            if self.declared_input_shape is None
            else list(self.declared_input_shape),
            "kernel_initializer": self.kernel_initializer,
            "name": self.name,
        }


@register_layer
class MaxPool2D(Layer):
    """Max pooling over ``pool_size`` windows, "valid" padding, like Keras.

    Args:
        pool_size: int or (rows, cols).
        strides: int or (rows, cols); defaults to ``pool_size``.
    Input (n, height, width, channels) -> output (n, out_h, out_w, channels) with
    ``out = (size - pool) // stride + 1``. The gradient goes to the first maximum
    of each window (as in PyTorch).
    """

    def __init__(self, pool_size=2, strides=None, name: str | None = None):
        super().__init__(name)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")

    def output_shape(self, input_shape):
        h, w, c = _image_shape(input_shape, "MaxPool2D")
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if h < ph or w < pw:
            raise ValueError(
                f"MaxPool2D pool_size {self.pool_size} is larger than the input image ({h}, {w})"
            )
        return (h - ph) // sh + 1, (w - pw) // sw + 1, c

    def build(self, input_shape, rng, dtype) -> None:
        self.output_shape(input_shape)
        super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (n, height, width, channels) -> (n, out_h, out_w, channels)."""
        x = _check_batch(x, self)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        windows = sliding_window_view(x, (ph, pw), axis=(1, 2))[:, ::sh, ::sw]
        windows = windows.reshape(*windows.shape[:4], ph * pw)
        self._argmax = windows.argmax(axis=-1)
        self._x_shape = x.shape
        return np.take_along_axis(windows, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out: (n, out_h, out_w, channels) -> dC/dx (n, height, width, channels)."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        n, out_h, out_w, _ = grad_out.shape
        da_prev = np.zeros(self._x_shape, dtype=grad_out.dtype)
        for k in range(ph * pw):
            i, j = divmod(k, pw)
            da_prev[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] += (
                np.where(self._argmax == k, grad_out, 0)
            )
        return da_prev

    def get_config(self) -> dict:
        return {
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "name": self.name,
        }


@register_layer
class Flatten(Layer):
    """(n, d1, d2, ...) -> (n, d1 * d2 * ...), in C order (Keras' channels-last order)."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"Flatten expects per-sample shape {self.input_shape}, got {tuple(x.shape[1:])}"
            )
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._x_shape)


def _check_batch(x: np.ndarray, layer: Layer) -> np.ndarray:
    """A batch (n, height, width, channels) matching the layer's built input shape."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(
            f"{type(layer).__name__} expects a 4-D batch (n, height, width, channels), got "
            f"{type(x).__name__} of shape {getattr(x, 'shape', None)}"
        )
    if layer.input_shape is not None and tuple(x.shape[1:]) != layer.input_shape:
        raise ValueError(
            f"{type(layer).__name__} was built for images {layer.input_shape}, "
            f"got {tuple(x.shape[1:])}"
        )
    return x
