"""Multi-head scaled dot-product self-attention over sets, and the transformer encoder
block built from it (Vaswani et al. 2017; CrabNet, Wang et al. 2021, npj Comput. Mater.
7, 77, runs such blocks over the elements of a formula). Inputs are sets in the layout
of ``layers.sets``: (n, m, 2 + d), token id 0 marking padded members."""

from __future__ import annotations

import math

import numpy as np

from stoichnet.util.checks import check_bool, check_int, check_real

from .. import activations, initializers
from .base import Layer, register_layer
from .composite import Composite
from .dense import Dense
from .dropout import Dropout
from .norm import LayerNorm
from .sets import SetBatch, check_set_shape, masked_softmax, masked_softmax_backward


@register_layer
class MultiHeadAttention(Layer):
    """Self-attention of every member to every member of its set, ``heads`` heads of
    width dₖ = d / heads, as ``torch.nn.MultiheadAttention(d, heads, batch_first=True)``
    called with ``key_padding_mask``:

        [Q K V] = h · W_in + b_in,  per head  A = softmax_keys(Q Kᵀ / sqrt(dₖ)) over the
        set's members,  O = A V,  y = [O₁ … O_H] · W_out + b_out.

    Parameters: ``W_in`` (d, 3d), ``b_in`` (3d,), ``W_out`` (d, d), ``b_out`` (d,): torch's
    ``in_proj_weight``/``out_proj.weight`` transposed (kernels are (n_in, n_out) here),
    the same packing (columns q | k | v, head h at columns h·dₖ … (h+1)·dₖ of each).
    Initial kernels glorot_uniform (torch: xavier_uniform for in_proj), biases 0.
    Input (n, m, 2 + d) -> (n, m, 2 + d): y, 0 at padded members.
    ``attend``/``attend_backward`` are the same math on the members' stacked rows.
    """

    def __init__(self, heads: int = 1, use_bias: bool = True, name: str | None = None):
        super().__init__(name)
        self.heads = check_int("heads", heads, 1)
        self.use_bias = check_bool("use_bias", use_bias)

    def output_shape(self, input_shape):
        check_set_shape(self, input_shape)
        return tuple(input_shape)

    def build(self, input_shape, rng, dtype) -> None:
        d = check_set_shape(self, input_shape)
        if d % self.heads:
            raise ValueError(f"{self.heads} heads need a feature width divisible by them, got {d}")
        glorot = initializers.glorot_uniform
        self.params = {"W_in": glorot((d, 3 * d), rng, dtype)}
        if self.use_bias:
            self.params["b_in"] = np.zeros(3 * d, dtype=dtype)
        self.params["W_out"] = glorot((d, d), rng, dtype)
        if self.use_bias:
            self.params["b_out"] = np.zeros(d, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        super().build(input_shape, rng, dtype)

    def attend(self, h: np.ndarray, batch: SetBatch) -> np.ndarray:
        """h: (n_members, d) the members' features, stacked (``batch.features``) -> y: the
        same shape. The projections run on the members' rows only; the scores and
        weights on the padded (n, heads, m, m) layout, padded keys masked out."""
        n, m = batch.shape
        d = h.shape[1]
        H, dk = self.heads, d // self.heads
        self.h, self.batch = h, batch
        qkv = batch.padded(self._project(h, "W_in", "b_in"))  # padded members: q = k = v = 0
        q, k, v = qkv.reshape(n, m, 3, H, dk).transpose(2, 0, 3, 1, 4)  # each (n, H, m, dk)
        self.q, self.k, self.v = q, k, v
        scores = np.matmul(q, k.swapaxes(-1, -2)) / math.sqrt(dk)  # (n, H, m, m)
        self.a = masked_softmax(scores, batch.mask[:, None, None, :], axis=-1)  # over the keys
        o = np.matmul(self.a, v)  # (n, H, m, dk)
        self.o = batch.features_of(o.transpose(0, 2, 1, 3).reshape(n, m, d))  # heads side by side
        return self._project(self.o, "W_out", "b_out")

    def _project(self, x, W, b):
        y = x @ self.params[W]
        if self.use_bias:
            y += self.params[b]
        return y

    def attend_backward(self, dy: np.ndarray) -> np.ndarray:
        """dy: (n_members, d) = dC/dy -> dC/dh, (n_members, d); fills the grads."""
        batch = self.batch
        n, m = batch.shape
        d = dy.shape[1]
        H, dk = self.heads, d // self.heads
        np.matmul(self.o.T, dy, out=self.grads["W_out"])
        if self.use_bias:
            np.sum(dy, axis=0, out=self.grads["b_out"])
        do = batch.padded(dy @ self.params["W_out"].T).reshape(n, m, H, dk).transpose(0, 2, 1, 3)
        da = np.matmul(do, self.v.swapaxes(-1, -2))  # (n, H, m, m)
        dv = np.matmul(self.a.swapaxes(-1, -2), do)
        ds = masked_softmax_backward(da, self.a, axis=-1) / math.sqrt(dk)
        dq = np.matmul(ds, self.k)
        dk_ = np.matmul(ds.swapaxes(-1, -2), self.q)
        dqkv = batch.features_of(np.stack([dq, dk_, dv]).transpose(1, 3, 0, 2, 4).reshape(n, m, 3 * d))
        np.matmul(self.h.T, dqkv, out=self.grads["W_in"])
        if self.use_bias:
            np.sum(dqkv, axis=0, out=self.grads["b_in"])
        return dqkv @ self.params["W_in"].T

    def forward(self, x, training=False):
        batch = SetBatch(x)
        y = self.attend(batch.features(x), batch)
        return batch.to_set(x, y, self._buffer("a", x.shape, self.dtype))

    def backward(self, grad_out):
        dh = self.attend_backward(self.batch.features(grad_out))
        return self.batch.to_set(grad_out, dh, self._buffer("da_prev", grad_out.shape, self.dtype))

    def get_config(self) -> dict:
        return {"heads": self.heads, "use_bias": self.use_bias, "name": self.name}


@register_layer
class TransformerEncoderBlock(Composite):
    """One transformer encoder layer over the members of each set, as
    ``torch.nn.TransformerEncoderLayer(d, heads, hidden, dropout, activation,
    batch_first=True, norm_first)`` with a key padding mask:

        post-norm (norm_first=False, torch's default and CrabNet's):
            u = LN₁(h + drop(MHA(h))),   a = LN₂(u + drop(FF(u)))
        pre-norm (norm_first=True):
            u = h + drop(MHA(LN₁(h))),   a = u + drop(FF(LN₂(u)))
        FF(u) = Dense(d)(drop(σ(Dense(hidden)(u)))).

    Args:
        heads: attention heads (d must be divisible by them).
        hidden: width of the feed-forward network (torch's dim_feedforward).
        dropout: rate of the three dropouts (torch also drops attention weights; this
            block does not).
        activation: σ of the feed-forward network (torch: relu).
        norm_first: pre-norm instead of post-norm.
        epsilon: the LayerNorms' eps.
    Children: ``attention``, ``norm1``, ``norm2``, ``ff1``, ``ff2`` (+ parameter-free
    dropouts). Input (n, m, 2 + d) -> same shape, 0 at padded members; every step runs on
    the stacked rows of the unpadded members (the attention's scores on the padded layout).
    """

    def __init__(self, heads: int = 1, hidden: int = 2048, dropout: float = 0.0,
                 activation: str = "relu", norm_first: bool = False, epsilon: float = 1e-5,
                 name: str | None = None):
        super().__init__(name)
        self.heads = check_int("heads", heads, 1)
        self.hidden = check_int("hidden", hidden, 1)
        self.dropout = check_real("dropout", dropout, 0.0, 1.0)
        self.activation = activations.get(activation).name
        self.norm_first = check_bool("norm_first", norm_first)
        self.epsilon = check_real("epsilon", epsilon, 0.0, low_open=True)
        self.attention = self.add_child(MultiHeadAttention(heads), "attention")
        self.norm1 = self.add_child(LayerNorm(epsilon), "norm1")
        self.norm2 = self.add_child(LayerNorm(epsilon), "norm2")
        self.ff1 = self.add_child(Dense(hidden, self.activation), "ff1")
        self.ff2 = None  # its width is d, known at build
        self.drop_attention = self.add_child(Dropout(self.dropout), "drop_attention")
        self.drop_hidden = self.add_child(Dropout(self.dropout), "drop_hidden")
        self.drop_ff = self.add_child(Dropout(self.dropout), "drop_ff")

    def output_shape(self, input_shape):
        check_set_shape(self, input_shape)
        return tuple(input_shape)

    def build(self, input_shape, rng, dtype) -> None:
        d = check_set_shape(self, input_shape)
        self.ff2 = self.add_child(Dense(d), "ff2")
        self.attention.build(input_shape, rng, dtype)
        for layer in (self.norm1, self.norm2):
            layer.build((d,), rng, dtype)
        self.ff1.build((d,), rng, dtype)
        self.ff2.build((self.hidden,), rng, dtype)
        for layer in (self.drop_attention, self.drop_hidden, self.drop_ff):
            layer.build((d,), rng, dtype)
        super().build(input_shape, rng, dtype)

    # the two sub-layers, on the members' rows
    def _sa(self, rows, training):
        return self.drop_attention.forward(self.attention.attend(rows, self.batch), training)

    def _sa_backward(self, grad):
        return self.attention.attend_backward(self.drop_attention.backward(grad))

    def _ff(self, rows, training):
        hidden = self.drop_hidden.forward(self.ff1.forward(rows, training), training)
        return self.drop_ff.forward(self.ff2.forward(hidden, training), training)

    def _ff_backward(self, grad):
        d_hidden = self.ff2.backward(self.drop_ff.backward(grad))
        return self.ff1.backward(self.drop_hidden.backward(d_hidden))

    def forward(self, x, training=False):
        self.batch = SetBatch(x)
        h = self.batch.features(x)
        if self.norm_first:
            u = h + self._sa(self.norm1.forward(h, training), training)
            a = u + self._ff(self.norm2.forward(u, training), training)
        else:
            u = self.norm1.forward(h + self._sa(h, training), training)
            a = self.norm2.forward(u + self._ff(u, training), training)
        return self.batch.to_set(x, a, self._buffer("a", x.shape, self.dtype))

    def backward(self, grad_out):
        """Each residual adds its two paths' gradients."""
        da = self.batch.features(grad_out)
        if self.norm_first:
            du = da + self.norm2.backward(self._ff_backward(da))
            dh = du + self.norm1.backward(self._sa_backward(du))
        else:
            dv = self.norm2.backward(da)  # v = u + FF(u)
            du = self.norm1.backward(dv + self._ff_backward(dv))  # du of u's input h + SA(h)
            dh = du + self._sa_backward(du)
        return self.batch.to_set(grad_out, dh, self._buffer("da_prev", grad_out.shape, self.dtype))

    def get_config(self) -> dict:
        return {"heads": self.heads, "hidden": self.hidden, "dropout": self.dropout,
                "activation": self.activation, "norm_first": self.norm_first,
                "epsilon": self.epsilon, "name": self.name}
