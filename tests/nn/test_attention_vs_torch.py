"""The set and attention layers equal PyTorch on the same weights, forward and backward
(inputs and every parameter): torch.nn.Embedding, LayerNorm, MultiheadAttention with a
key padding mask, TransformerEncoderLayer (post- and pre-norm), Roost's weighted
attention pooling and message layer written in torch the way aviary writes them (one
row per member or pair, scatter over an index: not our padded formulation), and whole
CrabNet- and Roost-like stacks trained through Sequential. float64 to 1e-10, float32 to
1e-5 (relative)."""

import numpy as np
import pytest
import torch

from stoichnet.nn import (
    AppendWeight,
    Dense,
    Embedding,
    LayerNorm,
    MultiHeadAttention,
    PerMember,
    ResidualDense,
    RoostMessage,
    Sequential,
    SetPooling,
    TransformerEncoderBlock,
    WeightedAttentionPooling,
)

pytestmark = pytest.mark.oracle
F = torch.nn.functional
TOL = {"float64": 1e-10, "float32": 1e-5}
DTYPES = sorted(TOL)


@pytest.fixture(autouse=True)
def _no_fast_path():
    """torch's inference fast path for attention computes in other kernels (and returns 0
    at padded rows); compare against the plain formulas."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(previous)


def make_sets(n, m, vocab, d=0, seed=0, dtype="float64"):
    """Sets (n, m, 2 + d) of sizes 1 .. m (both ends present), ids 1 .. vocab - 1,
    positive weights summing to 1, random features (0 at padding)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, m, 2 + d))
    sizes = rng.integers(1, m + 1, n)
    sizes[:2] = (1, m)
    for s, k in enumerate(sizes):
        x[s, :k, 0] = rng.integers(1, vocab, k)
        w = rng.random(k) + 0.2
        x[s, :k, 1] = w / w.sum()
        x[s, :k, 2:] = rng.normal(size=(k, d))
    return x.astype(dtype)


def rel(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    scale = np.linalg.norm(theirs)
    return float(np.linalg.norm(ours - theirs) / (scale if scale else 1.0))


def assert_grads(pairs, tol):
    """pairs: (name, ours, torch's); each within tol relative to its own norm, or to a
    tenth of the largest one's (a gradient that is 0 in exact arithmetic, e.g. of a gate's
    last bias, which shifts every score of a softmax alike, is rounding noise on both
    sides)."""
    scale = max(np.linalg.norm(np.asarray(t, dtype=np.float64)) for _, _, t in pairs)
    for name, ours, theirs in pairs:
        diff = np.linalg.norm(np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64))
        assert diff <= tol * max(np.linalg.norm(np.asarray(theirs, dtype=np.float64)), 0.1 * scale), name


def t(a, grad=False):
    return torch.tensor(np.array(a), requires_grad=grad)


def run_layer(layer, x, dtype, seed=1):
    """Build ``layer`` for x, forward, and backward of a random upstream gradient that is 0
    at padded members (their outputs are constants). Returns (out, G, dx)."""
    layer.build(x.shape[1:], np.random.default_rng(seed), dtype)
    out = layer.forward(x).copy()
    G = np.random.default_rng(seed + 1).normal(size=out.shape).astype(dtype)
    if out.ndim == 3:
        G *= (x[..., 0] > 0)[..., None]
        G[..., :2] = 0
    dx = layer.backward(G).copy()
    return out, G, dx


def linear_from(dense, dtype):
    """torch.nn.Linear holding a Dense layer's weights (W is (n_in, n_out) here)."""
    W = dense.params["W"]
    lin = torch.nn.Linear(*W.shape, bias=dense.use_bias, dtype=getattr(torch, dtype))
    with torch.no_grad():
        lin.weight.copy_(t(W.T))
        if dense.use_bias:
            lin.bias.copy_(t(dense.params["b"]))
    return lin


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm(dtype):
    x = np.random.default_rng(0).normal(3, 2, size=(7, 5)).astype(dtype)
    layer = LayerNorm()
    layer.build((5,), None, dtype)
    rng = np.random.default_rng(1)
    layer.params["gamma"][...] = rng.normal(size=5)
    layer.params["beta"][...] = rng.normal(size=5)
    out = layer.forward(x)
    G = rng.normal(size=out.shape).astype(dtype)
    dx = layer.backward(G)
    ref = torch.nn.LayerNorm(5, eps=1e-5, dtype=getattr(torch, dtype))
    with torch.no_grad():
        ref.weight.copy_(t(layer.params["gamma"]))
        ref.bias.copy_(t(layer.params["beta"]))
    xt = t(x, True)
    yt = ref(xt)
    (yt * t(G)).sum().backward()
    assert rel(out, yt.detach()) <= TOL[dtype]
    assert_grads([("x", dx, xt.grad), ("gamma", layer.grads["gamma"], ref.weight.grad),
                  ("beta", layer.grads["beta"], ref.bias.grad)], TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding(dtype):
    x = make_sets(9, 4, vocab=6, dtype=dtype)
    layer = Embedding(6, 3)
    out, G, dx = run_layer(layer, x, dtype)
    ref = torch.nn.Embedding(6, 3, padding_idx=0, dtype=getattr(torch, dtype))
    with torch.no_grad():
        ref.weight[1:] = t(layer.params["E"][1:])
    yt = ref(torch.tensor(x[..., 0].astype(np.int64)))
    (yt * t(G[..., 2:])).sum().backward()
    assert rel(out[..., 2:], yt.detach()) <= TOL[dtype]
    assert np.array_equal(out[..., :2], x)  # the metadata travels on
    assert rel(layer.grads["E"], ref.weight.grad) <= TOL[dtype]
    assert dx.shape == x.shape and not dx.any()  # G's metadata channels are 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", [1, 2])
def test_multi_head_attention(dtype, heads):
    x = make_sets(6, 5, vocab=9, d=4, dtype=dtype)
    layer = MultiHeadAttention(heads)
    out, G, dx = run_layer(layer, x, dtype)
    layer.params["b_in"][...] = np.random.default_rng(5).normal(size=12)  # nonzero biases
    layer.params["b_out"][...] = np.random.default_rng(6).normal(size=4)
    out = layer.forward(x).copy()
    dx = layer.backward(G).copy()
    ref = torch.nn.MultiheadAttention(4, heads, batch_first=True, dtype=getattr(torch, dtype))
    with torch.no_grad():
        ref.in_proj_weight.copy_(t(layer.params["W_in"].T))
        ref.in_proj_bias.copy_(t(layer.params["b_in"]))
        ref.out_proj.weight.copy_(t(layer.params["W_out"].T))
        ref.out_proj.bias.copy_(t(layer.params["b_out"]))
    mask = x[..., 0] > 0
    h = t(x[..., 2:], True)
    yt, _ = ref(h, h, h, key_padding_mask=torch.tensor(~mask), need_weights=False)
    (yt * t(G[..., 2:])).sum().backward()
    assert rel(out[..., 2:][mask], yt.detach().numpy()[mask]) <= TOL[dtype]
    assert not out[..., 2:][~mask].any()
    assert_grads([("x", dx[..., 2:], h.grad), ("W_in", layer.grads["W_in"], ref.in_proj_weight.grad.T),
                  ("b_in", layer.grads["b_in"], ref.in_proj_bias.grad),
                  ("W_out", layer.grads["W_out"], ref.out_proj.weight.grad.T),
                  ("b_out", layer.grads["b_out"], ref.out_proj.bias.grad)], TOL[dtype])


def torch_encoder_layer(block, d, dtype):
    """torch.nn.TransformerEncoderLayer holding ``block``'s weights."""
    ref = torch.nn.TransformerEncoderLayer(d, block.heads, block.hidden, dropout=0.0,
                                           batch_first=True, norm_first=block.norm_first,
                                           dtype=getattr(torch, dtype))
    attention = block.attention.params
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(t(attention["W_in"].T))
        ref.self_attn.in_proj_bias.copy_(t(attention["b_in"]))
        ref.self_attn.out_proj.weight.copy_(t(attention["W_out"].T))
        ref.self_attn.out_proj.bias.copy_(t(attention["b_out"]))
        for ours, theirs in ((block.ff1, ref.linear1), (block.ff2, ref.linear2)):
            theirs.weight.copy_(t(ours.params["W"].T))
            theirs.bias.copy_(t(ours.params["b"]))
        for ours, theirs in ((block.norm1, ref.norm1), (block.norm2, ref.norm2)):
            theirs.weight.copy_(t(ours.params["gamma"]))
            theirs.bias.copy_(t(ours.params["beta"]))
    return ref


def randomize(layer, seed):
    """Every parameter drawn anew (biases and LayerNorm's γ, β are not 0 / 1 then)."""
    rng = np.random.default_rng(seed)
    for value in layer.params.values():
        value[...] = rng.normal(scale=0.5, size=value.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_block(dtype, norm_first):
    d = 4
    x = make_sets(6, 5, vocab=9, d=d, dtype=dtype)
    block = TransformerEncoderBlock(heads=2, hidden=6, norm_first=norm_first)
    block.build(x.shape[1:], np.random.default_rng(0), dtype)
    randomize(block, 3)
    out = block.forward(x).copy()
    mask = x[..., 0] > 0
    G = np.random.default_rng(4).normal(size=out.shape).astype(dtype) * mask[..., None]
    G[..., :2] = 0
    dx = block.backward(G).copy()
    ref = torch_encoder_layer(block, d, dtype)
    h = t(x[..., 2:], True)
    yt = ref(h, src_key_padding_mask=torch.tensor(~mask))
    (yt * t(G[..., 2:])).sum().backward()
    assert rel(out[..., 2:][mask], yt.detach().numpy()[mask]) <= TOL[dtype]
    names = {id(p): name for name, p in ref.named_parameters()}
    assert len(names) == len(block.params)
    theirs = {
        "attention/W_in": ref.self_attn.in_proj_weight.grad.T,
        "attention/b_in": ref.self_attn.in_proj_bias.grad,
        "attention/W_out": ref.self_attn.out_proj.weight.grad.T,
        "attention/b_out": ref.self_attn.out_proj.bias.grad,
        "norm1/gamma": ref.norm1.weight.grad, "norm1/beta": ref.norm1.bias.grad,
        "norm2/gamma": ref.norm2.weight.grad, "norm2/beta": ref.norm2.bias.grad,
        "ff1/W": ref.linear1.weight.grad.T, "ff1/b": ref.linear1.bias.grad,
        "ff2/W": ref.linear2.weight.grad.T, "ff2/b": ref.linear2.bias.grad,
    }
    assert set(theirs) == set(block.grads)
    assert_grads([("x", dx[..., 2:], h.grad)]
                 + [(k, block.grads[k], v) for k, v in theirs.items()], TOL[dtype])


# --- Roost, the aviary way: rows and a scatter index -------------------------------------
def torch_mlp(layers, dtype):
    """aviary's SimpleNetwork from our Dense chain: Linear, LeakyReLU, ..., Linear."""
    mods = []
    for dense in layers:
        mods.append(linear_from(dense, dtype))
        if dense.activation == "leaky_relu":
            mods.append(torch.nn.LeakyReLU(0.01))
    return torch.nn.Sequential(*mods)


def torch_weighted_attention(rows, index, weights, gate, message, power, n_groups):
    """aviary.segments.WeightedAttentionPooling.forward (without its + 1e-10)."""
    e = gate(rows)
    top = torch.zeros(n_groups, 1, dtype=e.dtype).scatter_reduce(
        0, index[:, None], e, "amax", include_self=False)
    e = (weights[:, None] ** power) * (e - top[index]).exp()
    e = e / torch.zeros(n_groups, 1, dtype=e.dtype).index_add(0, index, e)[index]
    msg = message(rows)
    return torch.zeros(n_groups, msg.shape[1], dtype=e.dtype).index_add(0, index, e * msg)


def torch_heads(layer, dtype):
    gates = [torch_mlp(g, dtype) for g in layer.gates]
    messages = [torch_mlp(m, dtype) for m in layer.messages]
    power = t(layer.own_params["pow"], True)
    return gates, messages, power


def check_roost_grads(layer, gates, messages, power, pairs, tol):
    for h in range(layer.heads):
        for ours, theirs in ((layer.gates[h], gates[h]), (layer.messages[h], messages[h])):
            lins = [mod for mod in theirs if isinstance(mod, torch.nn.Linear)]
            for dense, lin in zip(ours, lins, strict=True):
                pairs.append((f"{dense.name}/W", dense.grads["W"], lin.weight.grad.T))
                pairs.append((f"{dense.name}/b", dense.grads["b"], lin.bias.grad))
    pairs.append(("pow", layer.own_grads["pow"], power.grad))
    assert_grads(pairs, tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_attention_pooling(dtype):
    x = make_sets(7, 4, vocab=9, d=3, dtype=dtype)
    layer = WeightedAttentionPooling(units=2, heads=2, gate_hidden=[5], message_hidden=[4, 3])
    out, G, dx = run_layer(layer, x, dtype)
    gates, messages, power = torch_heads(layer, dtype)
    mask = x[..., 0] > 0
    index = torch.tensor(np.nonzero(mask)[0])
    rows = t(x[..., 2:][mask], True)
    weights = t(x[..., 1][mask], True)
    heads = [torch_weighted_attention(rows, index, weights, gates[h], messages[h], power[h], 7)
             for h in range(2)]
    yt = torch.stack(heads).mean(0)
    (yt * t(G)).sum().backward()
    assert rel(out, yt.detach()) <= TOL[dtype]
    check_roost_grads(layer, gates, messages, power,
                      [("x", dx[..., 2:][mask], rows.grad), ("w", dx[..., 1][mask], weights.grad)],
                      TOL[dtype])
    assert not dx[~mask].any() and not dx[..., 0].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_roost_message(dtype):
    x = make_sets(6, 4, vocab=9, d=3, dtype=dtype)
    layer = RoostMessage(heads=2, gate_hidden=[5], message_hidden=[4])
    out, G, dx = run_layer(layer, x, dtype)
    gates, messages, power = torch_heads(layer, dtype)
    mask = x[..., 0] > 0
    # aviary's roost data: self_idx and nbr_idx over all ordered pairs of a set's members
    sample, member = np.nonzero(mask)
    self_idx, nbr_idx = [], []
    start = 0
    for k in mask.sum(1):
        for i in range(k):
            self_idx += [start + i] * k
            nbr_idx += list(range(start, start + k))
        start += k
    self_idx, nbr_idx = torch.tensor(self_idx), torch.tensor(nbr_idx)
    h = t(x[..., 2:][mask], True)
    w = t(x[..., 1][mask], True)
    message = torch.cat([h[self_idx], h[nbr_idx]], dim=1)
    heads = [torch_weighted_attention(message, self_idx, w[nbr_idx], gates[k], messages[k],
                                      power[k], h.shape[0]) for k in range(2)]
    yt = torch.stack(heads).mean(0) + h
    (yt * t(G[..., 2:][mask])).sum().backward()
    assert rel(out[..., 2:][mask], yt.detach()) <= TOL[dtype]
    assert np.array_equal(out[..., :2], x[..., :2]) and not out[~mask].any()
    check_roost_grads(layer, gates, messages, power,
                      [("x", dx[..., 2:][mask], h.grad), ("w", dx[..., 1][mask], w.grad)],
                      TOL[dtype])


# --- whole stacks through Sequential -------------------------------------------------------
def _compare_model(model, torch_forward, torch_params, x, y, dtype):
    model.compile("sgd", "mse")
    loss, dx = model.compute_gradients(x, y)
    yt = torch_forward()
    loss_t = F.mse_loss(yt, t(y.reshape(-1, 1)))
    loss_t.backward()
    assert abs(loss - loss_t.item()) <= TOL[dtype] * abs(loss_t.item())
    grads = model.flat_grads
    theirs = np.concatenate([g.reshape(-1) for g in torch_params()])
    assert rel(grads, theirs) <= TOL[dtype]
    return dx


@pytest.mark.parametrize("dtype", DTYPES)
def test_crabnet_like_stack(dtype):
    d, vocab = 4, 8
    x = make_sets(8, 5, vocab=vocab, dtype=dtype)
    y = np.random.default_rng(9).normal(size=8).astype(dtype)
    model = Sequential([Embedding(vocab, d), TransformerEncoderBlock(2, hidden=6),
                        TransformerEncoderBlock(2, hidden=5, norm_first=True),
                        PerMember(ResidualDense(3)), SetPooling("mean"), Dense(1)],
                       dtype=dtype, seed=0)
    model.build(x.shape[1:])
    randomize(model.layers[1], 1)
    emb, b1, b2, per, _, out = model.layers
    ref_emb = torch.nn.Embedding(vocab, d, padding_idx=0, dtype=getattr(torch, dtype))
    with torch.no_grad():
        ref_emb.weight[1:] = t(emb.params["E"][1:])
    enc1, enc2 = torch_encoder_layer(b1, d, dtype), torch_encoder_layer(b2, d, dtype)
    res = per.layer
    fc, proj, head = linear_from(res.dense, dtype), linear_from(res.projection, dtype), linear_from(out, dtype)
    mask = torch.tensor(x[..., 0] > 0)

    def forward():
        h = ref_emb(torch.tensor(x[..., 0].astype(np.int64)))
        h = enc2(enc1(h, src_key_padding_mask=~mask), src_key_padding_mask=~mask)
        h = torch.relu(fc(h)) + proj(h)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return head(pooled)

    def params():
        enc_grads = []
        for ref in (enc1, enc2):
            enc_grads += [ref.self_attn.in_proj_weight.grad.T, ref.self_attn.in_proj_bias.grad,
                          ref.self_attn.out_proj.weight.grad.T, ref.self_attn.out_proj.bias.grad,
                          ref.norm1.weight.grad, ref.norm1.bias.grad,
                          ref.norm2.weight.grad, ref.norm2.bias.grad,
                          ref.linear1.weight.grad.T, ref.linear1.bias.grad,
                          ref.linear2.weight.grad.T, ref.linear2.bias.grad]
        return [ref_emb.weight.grad, *enc_grads, fc.weight.grad.T, fc.bias.grad,
                proj.weight.grad.T, head.weight.grad.T, head.bias.grad]

    _compare_model(model, forward, params, x, y, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_roost_like_stack(dtype):
    """Embedding from a fixed table, a trainable projection, the weight appended, one
    message layer, the pooling, a residual head: aviary's Roost in miniature."""
    vocab, d = 8, 4
    table = np.random.default_rng(2).normal(size=(vocab, 5))
    x = make_sets(8, 4, vocab=vocab, dtype=dtype)
    y = np.random.default_rng(9).normal(size=8).astype(dtype)
    model = Sequential([Embedding(table=table, trainable=False), PerMember(Dense(d - 1)), AppendWeight(),
                        RoostMessage(heads=2, gate_hidden=[5], message_hidden=[3]),
                        WeightedAttentionPooling(heads=2, gate_hidden=[3], message_hidden=[4]),
                        ResidualDense(5), Dense(1)], dtype=dtype, seed=0)
    model.build(x.shape[1:])
    _, per, _, msg, pool, res, out = model.layers
    embed = linear_from(per.layer, dtype)
    m_heads, p_heads = torch_heads(msg, dtype), torch_heads(pool, dtype)
    fc, proj, head = linear_from(res.dense, dtype), linear_from(res.projection, dtype), linear_from(out, dtype)
    mask = x[..., 0] > 0
    sample = torch.tensor(np.nonzero(mask)[0])
    ids = torch.tensor(x[..., 0][mask].astype(np.int64))
    w = t(x[..., 1][mask])
    self_idx, nbr_idx = [], []
    start = 0
    for k in mask.sum(1):
        for i in range(k):
            self_idx += [start + i] * k
            nbr_idx += list(range(start, start + k))
        start += k
    self_idx, nbr_idx = torch.tensor(self_idx), torch.tensor(nbr_idx)

    def forward():
        h = torch.cat([embed(t(table.astype(dtype))[ids]), w[:, None]], dim=1)
        pair = torch.cat([h[self_idx], h[nbr_idx]], dim=1)
        g, mm, pw = m_heads
        h = torch.stack([torch_weighted_attention(pair, self_idx, w[nbr_idx], g[k], mm[k], pw[k],
                                                  h.shape[0]) for k in range(2)]).mean(0) + h
        g, mm, pw = p_heads
        pooled = torch.stack([torch_weighted_attention(h, sample, w, g[k], mm[k], pw[k], 8)
                              for k in range(2)]).mean(0)
        return head(torch.relu(fc(pooled)) + proj(pooled))

    def linears(seq):
        grads = []
        for lin in seq:
            if isinstance(lin, torch.nn.Linear):
                grads += [lin.weight.grad.T, lin.bias.grad]
        return grads

    def params():
        grads = [embed.weight.grad.T, embed.bias.grad]
        for gates, messages, power in (m_heads, p_heads):
            grads.append(power.grad)
            for k in range(2):
                grads += linears(gates[k]) + linears(messages[k])
        return [*grads, fc.weight.grad.T, fc.bias.grad, proj.weight.grad.T,
                head.weight.grad.T, head.bias.grad]

    _compare_model(model, forward, params, x, y, dtype)

