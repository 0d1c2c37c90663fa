"""Composite layers: a layer that owns sub-layers and writes its forward/backward by
calling theirs (no autograd: the composite states its own chain rule, e.g. a residual
``a = x + f(x)`` adds the two paths' gradients in ``backward``).

To ``Sequential`` a composite is one layer. Its ``params``/``grads`` are *mappings*
over its own parameters and its children's, the children's under the prefixed names
``"<child name>/<key>"`` (nested composites nest the prefixes). Reading an entry reads
the child's array; assigning one (what ``Sequential._assemble`` does to put every
parameter into the flat buffers) rebinds the child's entry, so the children then read
and write views of the model's buffers like any top-level layer. ``rng`` is handed
down to every child (dropout inside a block draws from the model's generator), and
the regularization loss is the children's sum.

A subclass creates its children in ``__init__`` (``self.add_child``), builds them in
``build`` with the shapes it feeds them, then calls ``super().build``; its
``get_config`` lists its own hyper-parameters, or, for a wrapper of arbitrary layers
(``PerMember``), nests the child's ``{"class_name", "config"}`` (see ``layer_config``
and ``layer_from_config``), so ``save_model``/``load_model`` and checkpoints work
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import numpy as np

from .base import LAYERS, Layer


def layer_config(layer: Layer) -> dict:
    """``{"class_name", "config"}`` of ``layer``: what ``layer_from_config`` rebuilds."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def layer_from_config(entry) -> Layer:
    """A new layer from ``layer_config``'s dict (only classes in the ``LAYERS`` registry
    can be named), or ``entry`` itself if it is already an unbuilt ``Layer``."""
    if isinstance(entry, Layer):
        if entry.built:
            raise ValueError(f"{entry!r} is already built; give a new layer")
        return entry
    if not isinstance(entry, dict) or set(entry) != {"class_name", "config"}:
        raise TypeError(f"a layer must be a Layer or a {{'class_name', 'config'}} dict, got {entry!r}")
    cls = LAYERS.get(entry["class_name"])
    if cls is None:
        raise ValueError(f"unknown layer class {entry['class_name']!r}; known layers are {sorted(LAYERS)}")
    return cls(**entry["config"])


class _PrefixedArrays(MutableMapping):
    """The composite's own ``own_<kind>`` entries, then each child's ``<kind>`` under
    ``"<child>/<key>"``; ``kind`` is "params" or "grads". Assigning rebinds the owner's
    or the child's entry (never adds a key)."""

    def __init__(self, owner: Composite, kind: str):
        self._owner, self._kind = owner, kind

    def _entries(self) -> Iterator[tuple[str, dict, str]]:
        for key in getattr(self._owner, "own_" + self._kind):
            yield key, getattr(self._owner, "own_" + self._kind), key
        for child in self._owner.children:
            arrays = getattr(child, self._kind)
            for key in arrays:
                yield f"{child.name}/{key}", arrays, key

    def _find(self, name: str) -> tuple[dict, str]:
        for full, arrays, key in self._entries():
            if full == name:
                return arrays, key
        raise KeyError(name)

    def __getitem__(self, name):
        arrays, key = self._find(name)
        return arrays[key]

    def __setitem__(self, name, value):
        arrays, key = self._find(name)
        arrays[key] = value

    def __delitem__(self, name):
        raise TypeError("a composite layer's parameters cannot be removed")

    def __iter__(self):
        return (full for full, _, _ in self._entries())

    def __len__(self):
        return sum(1 for _ in self._entries())


class Composite(Layer):
    """Base class of layers made of sub-layers (see the module docstring).

    Attributes:
        children: the sub-layers, in parameter order; each has a unique ``name``.
        own_params, own_grads: the composite's own parameters (e.g. a pooling power),
            listed before the children's in ``params``/``grads``.
    """

    def __init__(self, name: str | None = None):
        self.children: list[Layer] = []
        super().__init__(name)
        self.own_params: dict[str, np.ndarray] = {}
        self.own_grads: dict[str, np.ndarray] = {}
        self.params = _PrefixedArrays(self, "params")
        self.grads = _PrefixedArrays(self, "grads")

    def add_child(self, layer: Layer, name: str) -> Layer:
        """Own ``layer`` under ``name`` (unique among the children); returns it."""
        if any(child.name == name for child in self.children):
            raise ValueError(f"{type(self).__name__} already has a child named {name!r}")
        layer.name = name
        self.children.append(layer)
        return layer

    @property
    def rng(self) -> np.random.Generator | None:
        return self._rng

    @rng.setter
    def rng(self, rng: np.random.Generator | None) -> None:
        # Sequential hands a new generator to its layers (fit(seed=...)): pass it down
        self._rng = rng
        for child in self.children:
            child.rng = rng

    def regularization_loss(self) -> float:
        return sum(child.regularization_loss() for child in self.children)
