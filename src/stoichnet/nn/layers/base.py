"""The contract every layer follows.

A layer maps a batch ``x`` of shape ``(n_samples, *input_shape)`` to a batch of
shape ``(n_samples, *output_shape)``. ``forward`` keeps what ``backward`` needs;
``backward(grad_out)`` receives dC/d(output), fills ``self.grads`` (same keys and
shapes as ``self.params``) and returns dC/d(input). No autograd tape: each layer
writes its own chain rule.

Parameters live in one flat buffer per model. ``build`` creates ``self.params``
and ``self.grads`` as ordinary arrays (so a layer also works on its own); a
``Sequential`` then copies them into its contiguous ``flat_params`` /
``flat_grads`` buffers and replaces every entry by a reshaped *view* of those
buffers, so one optimizer step updates the whole model. Therefore, after
``build``:

- never rebind ``self.params[k]`` or ``self.grads[k]``; write into them in
  place (``np.matmul(a_prev.T, dz, out=self.grads["W"])``, ``g[...] = ...``);
- do not keep other references to them (read ``self.params["W"]`` when needed);
- ``backward`` overwrites (does not accumulate into) every gradient.

Arrays returned by ``forward``/``backward`` may be buffers the layer reuses on
its next call (see ``_buffer``): callers copy what they keep.
"""

from __future__ import annotations

import numpy as np

LAYERS: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer constructible by name from a saved config."""
    LAYERS[cls.__name__] = cls
    return cls


class Layer:
    """Base class of all layers.

    Attributes:
        params: name -> parameter array (e.g. ``{"W": (n_in, n_out), "b": (n_out,)}``).
        grads: name -> gradient array, same keys and shapes as ``params``.
        input_shape: per-sample input shape (no batch axis), set by ``build``.
        declared_input_shape: per-sample input shape given to the constructor
            (e.g. ``Dense(input_dim=86)`` -> ``(86,)``), or None: then the model
            builds the layer lazily from the first input it sees.
        rng: the model's ``numpy.random.Generator``, handed over by ``build``
            (and replaced by ``Sequential.fit(seed=...)``); stochastic layers
            (dropout) draw from it.
        dtype: parameter and activation dtype, set by ``build``.
        trainable: whether the optimizer updates this layer's parameters (Keras'
            ``layer.trainable``); a frozen layer still passes gradients back to the
            trainable layers below it, and the layers below the first trainable one get
            no backward pass at all.
        lr_scale: factor on the optimizer's learning rate for this layer (e.g. 0.1 for
            pretrained layers fine-tuned under a new output layer).
    """

    def __init__(self, name: str | None = None):
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: tuple[int, ...] | None = None
        self.declared_input_shape: tuple[int, ...] | None = None
        self.rng: np.random.Generator | None = None
        self.dtype = None
        self.built = False
        self.trainable = True
        self.lr_scale = 1.0
        self._buffers: dict[str, np.ndarray] = {}

    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator, dtype) -> None:
        """Create the parameters for a per-sample ``input_shape``, drawing from ``rng``.

        Subclasses create ``params`` and ``grads`` and then call ``super().build``.
        """
        self.input_shape = tuple(int(d) for d in input_shape)
        self.rng = rng
        self.dtype = np.dtype(dtype)
        self.built = True

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample ``input_shape``."""
        return tuple(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward_params(self, grad_out: np.ndarray) -> None:
        """``backward`` for the first layer of a model in training: fill ``self.grads``;
        dC/d(input) is not needed, so a layer may skip computing it (Dense does)."""
        self.backward(grad_out)

    def regularization_loss(self) -> float:
        """Penalty this layer adds to the cost (e.g. L2 on its kernel); 0 by default."""
        return 0.0

    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments: ``type(self)(**get_config())`` rebuilds it."""
        return {"name": self.name}

    def _buffer(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A reusable scratch array of ``shape``: the first ``shape[0]`` rows of a buffer
        kept under ``key``, reallocated only when a larger batch arrives. Contents are
        undefined."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] or buf.dtype != dtype:
            buf = self._buffers[key] = np.empty(shape, dtype=dtype)
        return buf[: shape[0]]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_buffers"] = {}  # scratch space, not worth pickling
        return state

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"
