"""The contract every layer follows.

A layer maps a batch ``x`` of shape ``(n_samples, *input_shape)`` to a batch of
shape ``(n_samples, *output_shape)``. ``forward`` keeps what ``backward`` needs;
``backward(grad_out)`` receives dC/d(output), fills ``self.grads`` (same keys and
shapes as ``self.params``) and returns dC/d(input). No autograd tape: each layer
writes its own chain rule.
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
    """

    def __init__(self, name: str | None = None):
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: tuple[int, ...] | None = None
        self.built = False

    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator, dtype) -> None:
        """Create the parameters for a per-sample ``input_shape``, drawing from ``rng``."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.built = True

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample ``input_shape``."""
        return tuple(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def regularization_loss(self) -> float:
        """Penalty this layer adds to the cost (e.g. L2 on its kernel); 0 by default."""
        return 0.0

    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments: ``type(self)(**get_config())`` rebuilds it."""
        return {"name": self.name}

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"
