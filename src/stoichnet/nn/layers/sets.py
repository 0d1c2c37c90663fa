"""Layers over sets of members of varying size (the elements of a formula, to ``chem``).

Design note
-----------
*The set layout.* A batch of sets is ONE numeric array ``X: (n, m, 2)``, so that
``Sequential.fit(X, y)`` shuffles, batches and hashes it like any other input: sample
``s`` is a set of up to ``m`` members padded to ``m``; ``X[s, i, 0]`` is member i's
token id (an integer-valued float, ``1 ..``; **0 marks padding**) and ``X[s, i, 1]`` is
its weight (e.g. its fraction; 0 at padding). The mask ``id >= 0.5`` is derived from
the ids, so it travels with the data. Between set layers the activations keep this
layout and carry their features behind the two metadata channels: ``(n, m, 2 + d)``,
channels 0-1 copied from the input, channels ``2:`` the member's features, **zero at
padded members** (an invariant every set layer keeps, so nothing downstream can read a
padded member, and no gradient reaches one). Only the layers that need the set read
the metadata: ``Embedding`` (ids), attention (mask), pooling (mask, weights); per-member
layers (``Dense``, ``LayerNorm``, ``ResidualDense``, ``Dropout``) are wrapped in
``PerMember`` and run on the ``(n_members, d)`` rows of the unpadded members only. A
pooling layer ends the set stage with ``(n, d)``, after which plain layers follow. A
model is therefore an ordinary ``Sequential``, e.g. a small CrabNet-like encoder::

    Sequential([Embedding(119, 64), TransformerEncoderBlock(64, heads=4, hidden=128),
                TransformerEncoderBlock(64, heads=4, hidden=128), SetPooling("mean"),
                Dense(1)])

and Roost-like: ``Embedding(table=..., trainable=False), PerMember(Dense(63)),
AppendWeight(), RoostMessage(64, heads=3) x 3, WeightedAttentionPooling(heads=3),
ResidualDense(...), Dense(1)``.

*Gradients w.r.t. the input* follow the layout too: the metadata channels pass their
gradient through unchanged (each layer copies them), the token id has no other
gradient (the lookup is piecewise constant), the weight gets one where it enters the
math (``WeightedAttentionPooling``'s wᵖ, ``SetPooling("weighted")``,
``AppendWeight``).

*No per-sample Python.* Per-member work is a matmul over the stacked rows of all
members of the batch (``SetBatch.rows``: flat indices of the unpadded members);
attention and pooling are batched over ``(n, heads, m, m)`` with the mask; groups are
summed by scattering into the padded array and reducing an axis, never by a loop.

*Width.* The parameters do not depend on ``m``, but ``Sequential`` checks the
per-sample shape, so a model is built for one ``m``; pad every input (fit and predict)
to that ``m`` (the largest set it should accept).
"""

from __future__ import annotations

import numpy as np

from stoichnet.util.checks import check_choice, check_int

from .. import activations, initializers, kernels
from .base import Layer, register_layer
from .composite import Composite, layer_config, layer_from_config
from .dense import Dense

TOKEN, WEIGHT = 0, 1
N_META = 2  # channels 0 (token id) and 1 (weight) of the set layout


def check_set_shape(layer: Layer, input_shape, n_features: int | None = None) -> int:
    """The feature width d of a per-sample set shape ``(m, 2 + d)``; ValueError otherwise
    (and when ``n_features`` is given and d differs)."""
    shape = tuple(input_shape)
    if len(shape) != 2 or shape[1] < N_META:
        raise ValueError(
            f"{type(layer).__name__} expects sets of per-sample shape (m, 2 + d): token id, "
            f"weight, d features per member; got {shape}"
        )
    d = shape[1] - N_META
    if n_features is not None and d != n_features:
        raise ValueError(f"{type(layer).__name__} expects {n_features} features per member, got {d}")
    return d


def masked_softmax(s: np.ndarray, mask: np.ndarray, axis: int = -1) -> np.ndarray:
    """aᵢ = exp(sᵢ) / Σⱼ exp(sⱼ), the sum over the entries where ``mask`` is True along
    ``axis``; masked entries get exactly 0, and a slice with no unmasked entry all 0.

    s: any shape; mask: bool, broadcastable to s. Returns a new array like s.
    """
    s = np.where(mask, s, -np.inf)
    top = s.max(axis=axis, keepdims=True)
    top[~np.isfinite(top)] = 0.0  # a fully masked slice: exp(-inf) = 0 everywhere
    a = np.exp(s - top)
    total = a.sum(axis=axis, keepdims=True)
    return np.divide(a, total, out=np.zeros_like(a), where=total > 0)


def masked_softmax_backward(da: np.ndarray, a: np.ndarray, axis: int = -1) -> np.ndarray:
    """ds = a ⊙ (da - Σⱼ daⱼ aⱼ): the softmax Jacobian times da; 0 where a is masked (a = 0)."""
    return a * (da - (da * a).sum(axis=axis, keepdims=True))


class SetBatch:
    """Where the members of a set batch ``x: (n, m, 2 + d)`` are.

    Attributes:
        shape: (n, m); mask: (n, m) bool, True at members (token id >= 0.5);
        rows: (n_members,) flat indices into n·m of the members, sample-major;
        weights: (n, m) the weight channel (a view of x).
    """

    def __init__(self, x: np.ndarray):
        self.shape = x.shape[:2]
        self.mask = x[..., TOKEN] >= 0.5
        self.rows = np.flatnonzero(self.mask)
        self.weights = x[..., WEIGHT]

    def features(self, x: np.ndarray) -> np.ndarray:
        """The members' features from the set layout x (n, m, 2 + d): (n_members, d), a new
        contiguous array."""
        return x.reshape(-1, x.shape[-1])[self.rows, N_META:]

    def features_of(self, h: np.ndarray) -> np.ndarray:
        """The members' rows of padded features h (n, m, d): (n_members, d), a new array."""
        return h.reshape(-1, h.shape[-1])[self.rows]

    def member_weights(self) -> np.ndarray:
        """The members' weights, (n_members,)."""
        return self.weights.reshape(-1)[self.rows]

    def padded(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``rows`` (n_members, d) back to (n, m, d), zeros at padded members."""
        if out is None:
            out = np.empty((*self.shape, rows.shape[-1]), dtype=rows.dtype)
        out.fill(0)
        out.reshape(-1, rows.shape[-1])[self.rows] = rows
        return out

    def to_set(self, meta: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The set layout ``out`` (n, m, 2 + d): channels 0-1 from ``meta`` (n, m, >= 2),
        the members' features from ``rows`` (n_members, d), zeros at padded members."""
        out[..., :N_META] = meta[..., :N_META]
        out[..., N_META:] = 0
        out.reshape(-1, out.shape[-1])[self.rows, N_META:] = rows
        return out


@register_layer
class Embedding(Layer):
    """Token id -> a learned (or fixed) vector: the first layer of a set model.

    Args:
        input_dim: number of table rows, token ids 0 .. input_dim - 1; row 0 belongs to
            the padding id and is never read (as ``torch.nn.Embedding(padding_idx=0)``).
        output_dim: the vector's length d.
        table: an (input_dim, d) array to start from (e.g. element vectors); then
            input_dim and output_dim may be omitted. Stored in the config, so keep it small.
        trainable: whether the table is a parameter (``E``) trained with the model; a
            fixed table (False, needs ``table``) is no parameter at all.
        embeddings_initializer: initializer of a trainable table without ``table``.
    Input: sets (n, m, 2) (see the module) -> (n, m, 2 + d): features E[id], 0 at padding.
    An id outside 0 .. input_dim - 1 raises ValueError.
    """

    def __init__(self, input_dim: int | None = None, output_dim: int | None = None,
                 table=None, trainable: bool = True,
                 embeddings_initializer: str = "glorot_uniform", name: str | None = None):
        super().__init__(name)
        if table is not None:
            table = np.array(table, dtype=np.float64)
            if table.ndim != 2 or table.shape[0] < 2 or table.shape[1] < 1:
                raise ValueError(f"table must be a 2-D (input_dim >= 2, d >= 1) array, got shape {table.shape}")
            if not np.isfinite(table).all():
                raise ValueError("table contains NaN or inf")
            for arg, value, size in (("input_dim", input_dim, table.shape[0]),
                                     ("output_dim", output_dim, table.shape[1])):
                if value is not None and check_int(arg, value, 1) != size:
                    raise ValueError(f"{arg}={value} disagrees with the table's shape {table.shape}")
            input_dim, output_dim = table.shape
        elif input_dim is None or output_dim is None:
            raise ValueError("Embedding needs input_dim and output_dim, or a table")
        self.input_dim = check_int("input_dim", input_dim, 2)
        self.output_dim = check_int("output_dim", output_dim, 1)
        self.table = table
        self.trainable = bool(trainable)
        if not self.trainable and table is None:
            raise ValueError("a fixed (trainable=False) Embedding needs its table")
        self.embeddings_initializer = initializers.get(embeddings_initializer).__name__
        self.fixed = None

    def output_shape(self, input_shape):
        if check_set_shape(self, input_shape) != 0:
            raise ValueError(f"Embedding expects raw sets (m, 2), got per-sample shape {tuple(input_shape)}")
        return (input_shape[0], N_META + self.output_dim)

    def build(self, input_shape, rng, dtype) -> None:
        self.output_shape(input_shape)
        shape = (self.input_dim, self.output_dim)
        if self.trainable:
            E = (self.table.astype(dtype) if self.table is not None
                 else initializers.get(self.embeddings_initializer)(shape, rng, dtype))
            self.params = {"E": E}
            self.grads = {"E": np.zeros_like(E)}
        else:
            self.fixed = self.table.astype(dtype)
        super().build(input_shape, rng, dtype)

    def _E(self) -> np.ndarray:
        return self.params["E"] if self.trainable else self.fixed

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (n, m, 2) -> (n, m, 2 + d)."""
        ids = np.rint(x[..., TOKEN]).astype(np.intp)
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            bad = ids[(ids < 0) | (ids >= self.input_dim)][0]
            raise ValueError(f"{self.name}: token id {bad} is outside 0 .. {self.input_dim - 1}")
        self.batch = SetBatch(x)
        self.ids = ids.reshape(-1)[self.batch.rows]
        out = self._buffer("a", (*x.shape[:2], N_META + self.output_dim), self.dtype)
        return self.batch.to_set(x, self._E()[self.ids], out)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """dE[t] = Σ over members with id t of dC/d(features); the input gets the metadata
        channels' gradient back (the lookup itself is piecewise constant in the id)."""
        if self.trainable:
            dE = self.grads["E"]
            dE.fill(0)
            np.add.at(dE, self.ids, self.batch.features(grad_out))
        return grad_out[..., :N_META].copy()

    def get_config(self) -> dict:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim,
                "table": None if self.table is None else self.table.tolist(),
                "trainable": self.trainable,
                "embeddings_initializer": self.embeddings_initializer, "name": self.name}


@register_layer
class PerMember(Composite):
    """Applies a per-sample layer (``Dense``, ``LayerNorm``, ``ResidualDense``, ``Dropout``,
    ...) to every member of every set: a 1-D per-sample layer run on the
    (n_members, d) stacked rows of the unpadded members.

    Args:
        layer: the layer (unbuilt), or its ``{"class_name", "config"}`` (from a config).
    Input (n, m, 2 + d) -> (n, m, 2 + d_out), d_out = layer's output width; 0 at padding.
    """

    def __init__(self, layer, name: str | None = None):
        super().__init__(name)
        layer = layer_from_config(layer)
        self.add_child(layer, layer.name or "layer")

    @property
    def layer(self) -> Layer:
        return self.children[0]

    def output_shape(self, input_shape):
        d = check_set_shape(self, input_shape)
        (d_out,) = self.layer.output_shape((d,))
        return (input_shape[0], N_META + d_out)

    def build(self, input_shape, rng, dtype) -> None:
        self.layer.build((check_set_shape(self, input_shape),), rng, dtype)
        super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        self.batch = SetBatch(x)
        a = self.layer.forward(self.batch.features(x), training)
        out = self._buffer("a", (*x.shape[:2], N_META + a.shape[-1]), self.dtype)
        return self.batch.to_set(x, a, out)

    def backward(self, grad_out):
        da_prev = self.layer.backward(self.batch.features(grad_out))
        d = self.input_shape[-1]
        dx = self._buffer("da_prev", (*grad_out.shape[:2], d), self.dtype)
        return self.batch.to_set(grad_out, da_prev, dx)

    def get_config(self) -> dict:
        return {"layer": layer_config(self.layer), "name": self.name}


@register_layer
class AppendWeight(Layer):
    """Appends each member's weight as one more feature (Roost concatenates the fraction
    to the embedded element). (n, m, 2 + d) -> (n, m, 2 + d + 1); 0 at padding."""

    def output_shape(self, input_shape):
        return (input_shape[0], N_META + check_set_shape(self, input_shape) + 1)

    def forward(self, x, training=False):
        self.mask = x[..., TOKEN] >= 0.5
        out = self._buffer("a", (*x.shape[:2], x.shape[2] + 1), self.dtype)
        out[..., :-1] = x
        out[..., -1] = x[..., WEIGHT]
        out[..., N_META:] *= self.mask[..., None]
        return out

    def backward(self, grad_out):
        dx = grad_out[..., :-1].copy()
        dx[..., N_META:] *= self.mask[..., None]
        dx[..., WEIGHT] += np.where(self.mask, grad_out[..., -1], 0)
        return dx


@register_layer
class MaskedSoftmax(Layer):
    """Softmax over the members of each set, per feature channel: aᵢₖ = exp(hᵢₖ) /
    Σ_{members j} exp(hⱼₖ). (n, m, 2 + d) -> same shape; 0 at padding."""

    def output_shape(self, input_shape):
        check_set_shape(self, input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        mask = (x[..., TOKEN] >= 0.5)[..., None]
        out = self._buffer("a", x.shape, self.dtype)
        out[..., :N_META] = x[..., :N_META]
        out[..., N_META:] = masked_softmax(x[..., N_META:], mask, axis=1)
        self.a = out[..., N_META:]
        return out

    def backward(self, grad_out):
        dx = self._buffer("da_prev", grad_out.shape, self.dtype)
        dx[..., :N_META] = grad_out[..., :N_META]
        dx[..., N_META:] = masked_softmax_backward(grad_out[..., N_META:], self.a, axis=1)
        return dx


@register_layer
class SetPooling(Layer):
    """One vector per set from its members' features h (n, m, 2 + d) -> (n, d):

    - "mean": Σᵢ hᵢ / (number of members) (CrabNet's average over the elements);
    - "sum": Σᵢ hᵢ;
    - "weighted": Σᵢ wᵢ hᵢ with the members' weights w (a fraction-weighted mean).
    """

    MODES = ("mean", "sum", "weighted")

    def __init__(self, mode: str = "mean", name: str | None = None):
        super().__init__(name)
        self.mode = check_choice("mode", mode, self.MODES)

    def output_shape(self, input_shape):
        return (check_set_shape(self, input_shape),)

    def forward(self, x, training=False):
        mask = x[..., TOKEN] >= 0.5
        if self.mode == "mean":
            c = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        elif self.mode == "sum":
            c = mask.astype(x.dtype)
        else:
            c = np.where(mask, x[..., WEIGHT], 0)
        self.mask, self.c, self.h = mask, c.astype(x.dtype, copy=False), x[..., N_META:]
        return np.matmul(self.c[:, None, :], self.h)[:, 0, :]  # (n, 1, m) @ (n, m, d)

    def backward(self, grad_out):
        """dhᵢ = cᵢ · dC/d(pooled); with "weighted" also dwᵢ = hᵢ · dC/d(pooled)."""
        dx = np.zeros((*self.c.shape, N_META + grad_out.shape[1]), dtype=self.dtype)
        dx[..., N_META:] = self.c[..., None] * grad_out[:, None, :]
        if self.mode == "weighted":
            dx[..., WEIGHT] = np.where(self.mask, np.matmul(self.h, grad_out[..., None])[..., 0], 0)
        return dx

    def get_config(self) -> dict:
        return {"mode": self.mode, "name": self.name}


def _mlp(owner: Composite, prefix: str, hidden, units: int, activation: str) -> list[Layer]:
    """Dense(h, activation) for each width in ``hidden``, then a linear Dense(units),
    owned by ``owner`` as ``<prefix>_0``, ``<prefix>_1``, ... (Roost's SimpleNetwork)."""
    widths = [*hidden, units]
    return [owner.add_child(Dense(w, activation if i < len(hidden) else None), f"{prefix}_{i}")
            for i, w in enumerate(widths)]


def _build_chain(layers: list[Layer], width: int, rng, dtype) -> int:
    shape = (width,)
    for layer in layers:
        layer.build(shape, rng, dtype)
        shape = layer.output_shape(shape)
    return shape[0]


def _chain_forward(layers, x, training):
    for layer in layers:
        x = layer.forward(x, training)
    return x


def _chain_backward(layers, grad):
    for layer in reversed(layers):
        grad = layer.backward(grad)
    return grad


def _widths(name: str, value) -> list[int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of layer widths, got {value!r}")
    return [check_int(f"{name}[{i}]", w, 1) for i, w in enumerate(value)]


def group_softmax(s: np.ndarray, starts: np.ndarray, group: np.ndarray) -> np.ndarray:
    """aᵣ = exp(sᵣ) / Σ_{r' in r's group} exp(sᵣ'), for rows sorted by group.

    s: (R,) scores; starts: (G,) first row of each group (increasing, ``starts[0] = 0``);
    group: (R,) the group of each row. Returns a new (R,) array.
    """
    a = np.exp(s - np.maximum.reduceat(s, starts)[group])
    return a / np.add.reduceat(a, starts)[group]


def group_softmax_backward(da: np.ndarray, a: np.ndarray, starts: np.ndarray,
                           group: np.ndarray) -> np.ndarray:
    """ds = a ⊙ (da - Σ_{group} da a): the group softmax's Jacobian times da (R,)."""
    return a * (da - np.add.reduceat(da * a, starts)[group])


def run_sums(x: np.ndarray, starts: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Σ of the rows of x (R, k) over each run starting at ``starts`` (G,), rows taken in
    ``order`` (default: as they are): (G, k), ``np.add.reduceat(x[order], starts, axis=0)``
    as one fused loop (``kernels.run_sums``)."""
    out = np.empty((len(starts), x.shape[1]), dtype=x.dtype)
    kernels.run_sums(x, np.arange(len(x)) if order is None else order, starts, out)
    return out


class _SoftAttention(Composite):
    """Roost's weighted soft attention, shared by the set pooling and the message layer.

    ``heads`` independent heads, each a gate network (-> 1 score eᵣ) and a message
    network (-> ``units``) applied to rows r, and a learnable power pₕ. The rows that
    exist (pairs of members, or members; never padding) come sorted into groups (the
    (sample, query) each row is attended from), contiguous runs of rows; within a group
    the weights are  αᵣ = w_k(r)^p · exp(eᵣ) / Σ_{r' in group} w_k(r')^p · exp(eᵣ'),
    i.e. the softmax of e + p · ln w, and the group's output is Σᵣ αᵣ · messageᵣ.
    The heads are averaged (as Roost does). Sums over a group are sums over its run
    (``run_sums``): no padded (n, Q, K) arrays, no per-sample Python.
    """

    def __init__(self, units: int | None, heads: int, gate_hidden, message_hidden,
                 activation: str, name: str | None):
        super().__init__(name)
        self.units = None if units is None else check_int("units", units, 1)
        self.heads = check_int("heads", heads, 1)
        self.gate_hidden = _widths("gate_hidden", gate_hidden)
        self.message_hidden = _widths("message_hidden", message_hidden)
        self.activation = activations.get(activation).name
        self.gates, self.messages = [], []

    def _make_heads(self, width_in: int, units: int, rng, dtype) -> None:
        for h in range(self.heads):
            gate = _mlp(self, f"gate{h}", self.gate_hidden, 1, self.activation)
            message = _mlp(self, f"message{h}", self.message_hidden, units, self.activation)
            _build_chain(gate, width_in, rng, dtype)
            _build_chain(message, width_in, rng, dtype)
            self.gates.append(gate)
            self.messages.append(message)
        # Roost: torch.randn(1) per head
        self.own_params = {"pow": rng.standard_normal(self.heads).astype(dtype)}
        self.own_grads = {"pow": np.zeros(self.heads, dtype=dtype)}

    def _head_forward(self, chain: list[Layer], src: np.ndarray, training: bool) -> np.ndarray:
        """One gate or message network on the rows: src is the rows (R, f) themselves."""
        return _chain_forward(chain, src, training)

    def _head_backward(self, chain: list[Layer], grad: np.ndarray) -> np.ndarray:
        """dC/d src from dC/d output (R, out) of ``_head_forward``."""
        return _chain_backward(chain, grad)

    def _attend(self, src, starts, log_w, training):
        """src: what the heads read (``_head_forward``); starts: (G,) first row of each
        group, the R rows sorted by group; log_w: (R,) ln of each row's key weight.
        Returns (G, units): each group's attention-weighted message, heads averaged."""
        R = len(log_w)
        self.starts, self.log_w = starts, log_w
        self.group = np.repeat(np.arange(len(starts)), np.diff(starts, append=R))
        self.alphas, self.hidden = [], []
        out = np.zeros((len(starts), self.units_out), dtype=log_w.dtype)
        if R == 0:
            return out
        p = self.own_params["pow"]
        for h in range(self.heads):
            e = self._head_forward(self.gates[h], src, training)[:, 0]
            alpha = group_softmax(e + p[h] * log_w, starts, self.group)
            # the message network ends linear: Σᵣ αᵣ (aᵣ W + b) = (Σᵣ αᵣ aᵣ) W + b as the
            # α of a group sum to 1, so its last layer runs on the G groups, not the R rows
            hidden = self._head_forward(self.messages[h][:-1], src, training)  # (R, k)
            out += self.messages[h][-1].forward(run_sums(alpha[:, None] * hidden, starts),
                                                training)
            self.alphas.append(alpha)
            self.hidden.append(hidden)
        out /= self.heads
        return out

    def _attend_backward(self, grad):
        """grad: (G, units) -> (dC/d src, dC/d ln w (R,)); fills the grads."""
        d_src = None
        d_log_w = np.zeros_like(self.log_w)
        p, dp = self.own_params["pow"], self.own_grads["pow"]
        dp[...] = 0
        for h, (alpha, hidden) in enumerate(zip(self.alphas, self.hidden, strict=True)):
            # dC/d(Σᵣ αᵣ aᵣ) of each group, to each of its rows: (R, k)
            d_pooled = self.messages[h][-1].backward(grad / self.heads)[self.group]
            # dC/dαᵣ = aᵣ · d_pooled (+ b · grad of the group, the same for all its rows,
            # which the softmax's Jacobian sends to 0)
            d_alpha = np.einsum("rk,rk->r", hidden, d_pooled)
            ds = group_softmax_backward(d_alpha, alpha, self.starts, self.group)
            dp[h] = np.dot(ds, self.log_w)
            d_log_w += p[h] * ds
            d_gate = self._head_backward(self.gates[h], ds[:, None])
            d_src = d_gate.copy() if d_src is None else np.add(d_src, d_gate, out=d_src)
            d_src += self._head_backward(self.messages[h][:-1], np.multiply(
                d_pooled, alpha[:, None], out=d_pooled))
        return d_src, d_log_w

    @staticmethod
    def _log_weights(batch: SetBatch, layer_name: str) -> np.ndarray:
        """ln w of the members, (n_members,)."""
        w = batch.member_weights()
        if (w <= 0).any():
            raise ValueError(f"{layer_name}: every member needs a weight > 0 (ln w enters the attention)")
        return np.log(w)

    def _config(self) -> dict:
        return {"units": self.units, "heads": self.heads, "gate_hidden": self.gate_hidden,
                "message_hidden": self.message_hidden, "activation": self.activation,
                "name": self.name}


@register_layer
class WeightedAttentionPooling(_SoftAttention):
    """Roost's weighted soft-attention pooling of a set (Goodall & Lee 2020, Nat. Commun.
    11, 6280): each member i gets a gate eᵢ = gate_net(hᵢ) and a message message_net(hᵢ);
    pooled = Σᵢ αᵢ · messageᵢ, αᵢ = wᵢᵖ exp(eᵢ) / Σⱼ wⱼᵖ exp(eⱼ) over the members, with w
    the members' weights (fractions, > 0) and p a learnable power per head; heads averaged.
    Roost adds 1e-10 to the denominator; here it is exact (the softmax of e + p · ln w).

    Args:
        units: output width (default: the input's feature width d).
        heads: number of attention heads (Roost: 3).
        gate_hidden, message_hidden: hidden widths of the two networks (Roost: [256]).
        activation: their hidden activation (Roost: leaky_relu, slope 0.01).
    Parameters: ``pow`` (heads,) ~ N(0, 1), and each head's Dense layers. Input (n, m, 2 + d)
    -> (n, units).
    """

    def __init__(self, units: int | None = None, heads: int = 1, gate_hidden=(256,),
                 message_hidden=(256,), activation: str = "leaky_relu", name: str | None = None):
        super().__init__(units, heads, gate_hidden, message_hidden, activation, name)

    def output_shape(self, input_shape):
        d = check_set_shape(self, input_shape)
        return (self.units or d,)

    def build(self, input_shape, rng, dtype) -> None:
        d = check_set_shape(self, input_shape)
        self.units_out = self.units or d
        self._make_heads(d, self.units_out, rng, dtype)
        super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        self.batch = b = SetBatch(x)
        sample = b.rows // b.shape[1]  # members are sample-major: one run per non-empty set
        starts = np.flatnonzero(np.diff(sample, prepend=-1))
        self.samples = sample[starts]
        out = np.zeros((b.shape[0], self.units_out), dtype=self.dtype)
        out[self.samples] = self._attend(b.features(x), starts, self._log_weights(b, self.name),
                                         training)
        return out

    def backward(self, grad_out):
        """Returns dC/dx: the members' features, and their weights via dC/dwᵢ = dC/d ln wᵢ / wᵢ."""
        b = self.batch
        d_rows, d_log_w = self._attend_backward(grad_out[self.samples])
        dx = np.zeros((*b.shape, self.input_shape[-1]), dtype=self.dtype)
        flat = dx.reshape(-1, dx.shape[-1])
        flat[b.rows, N_META:] = d_rows
        flat[b.rows, WEIGHT] = d_log_w / b.member_weights()
        return dx

    def get_config(self) -> dict:
        return self._config()


@register_layer
class RoostMessage(_SoftAttention):
    """Roost's message-passing layer: every member i of a set attends to every member j
    (itself included) of the same set. For each pair the row is [hᵢ, hⱼ] (2d features);
    hᵢ' = hᵢ + mean over heads of Σⱼ αᵢⱼ · message([hᵢ, hⱼ]), αᵢⱼ ∝ wⱼᵖ exp(gate([hᵢ, hⱼ]))
    normalised over j (see ``WeightedAttentionPooling``; Roost: ``MessageLayer``).

    Args: heads, gate_hidden, message_hidden, activation as in ``WeightedAttentionPooling``
    (Roost: 3 heads, [256] and [256]). Input (n, m, 2 + d) -> (n, m, 2 + d); 0 at padding.
    """

    def __init__(self, heads: int = 1, gate_hidden=(256,), message_hidden=(256,),
                 activation: str = "leaky_relu", name: str | None = None):
        super().__init__(None, heads, gate_hidden, message_hidden, activation, name)
        if not self.message_hidden:  # the pair rows [hᵢ, hⱼ] exist only inside the first layer
            raise ValueError(f"{type(self).__name__} needs at least one hidden layer in "
                             f"message_hidden (Roost: [256]), got {message_hidden!r}")

    def output_shape(self, input_shape):
        check_set_shape(self, input_shape)
        return tuple(input_shape)

    def build(self, input_shape, rng, dtype) -> None:
        d = check_set_shape(self, input_shape)
        self.units_out = d
        self._make_heads(2 * d, d, rng, dtype)
        super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        self.batch = b = SetBatch(x)
        n, m = b.shape
        # pairs (q, k) of members of one set, q-major: member q's run is its k_s pairs
        counts = np.bincount(b.rows // m, minlength=n)[b.rows // m]  # (M,) members of q's set
        first = np.arange(len(b.rows)) - b.rows % m  # (M,) first member of q's set
        starts = np.cumsum(counts) - counts  # (M,) first pair of each query member
        self.query = np.repeat(np.arange(len(b.rows)), counts)  # (R,)
        self.key = first[self.query] + np.arange(len(self.query)) - starts[self.query]
        self.key_order = np.argsort(self.key, kind="stable")  # runs of one key, same lengths
        log_w = self._log_weights(b, self.name)
        self.h = b.features(x)  # (M, d)
        self.pair_z = {}  # first layer's name -> its (z, a) on the pairs
        update = self._attend(self.h, starts, log_w[self.key], training)  # (M, d)
        out = self._buffer("a", x.shape, self.dtype)
        out[...] = x
        out[..., N_META:] *= b.mask[..., None]
        out.reshape(-1, x.shape[-1])[b.rows, N_META:] += update
        return out

    def _head_forward(self, chain, h, training):
        """The first Dense layer of a gate or message network, on the pair rows [hq, hk]
        without building them: [hq, hk] · W = hq · W_top + hk · W_bottom, two products on
        the M members instead of one on the R ≈ M²/n pairs; the rest of the chain on the
        pair rows."""
        first, d = chain[0], h.shape[1]
        W = first.params["W"]
        z = np.empty((len(self.query), first.units), dtype=h.dtype)
        kernels.gather_add(np.matmul(h, W[:d]), np.matmul(h, W[d:]), self.query, self.key, z)
        z, a = first.activate(z)
        self.pair_z[first.name] = (z, a)
        return _chain_forward(chain[1:], a, training)

    def _head_backward(self, chain, grad):
        """dC/dh (M, d) through the chain and its first layer: dz summed over the pairs of
        each query member (its run) and of each key member (its run in ``key_order``)."""
        first = chain[0]
        z, a = self.pair_z[first.name]
        dz = first.sigma.backward(_chain_backward(chain[1:], grad), z, a)
        dq = run_sums(dz, self.starts)  # (M, units): Σ over each query's pairs
        dk = run_sums(dz, self.starts, self.key_order)
        d = self.h.shape[1]
        W, dW = first.params["W"], first.grads["W"]
        np.matmul(self.h.T, dq, out=dW[:d])
        np.matmul(self.h.T, dk, out=dW[d:])
        if first.use_bias:
            np.sum(dq, axis=0, out=first.grads["b"])
        return np.matmul(dq, W[:d].T) + np.matmul(dk, W[d:].T)

    def backward(self, grad_out):
        """The residual passes grad_out through; the attention's gradient reaches each member
        as a query and as a key (``_head_backward``), its weight through ln w of the keys."""
        b = self.batch
        C = grad_out.shape[-1]
        d_h, d_log_w = self._attend_backward(grad_out.reshape(-1, C)[b.rows, N_META:])
        dx = grad_out.copy()
        dx[..., N_META:] *= b.mask[..., None]
        flat = dx.reshape(-1, C)
        flat[b.rows, N_META:] += d_h
        flat[b.rows, WEIGHT] += (np.add.reduceat(d_log_w[self.key_order], self.starts)
                                 / b.member_weights())
        return dx

    def get_config(self) -> dict:
        config = self._config()
        del config["units"]
        return config
