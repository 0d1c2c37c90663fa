"""roost() and crabnet() as the models module builds them (small widths) equal the same
networks written in PyTorch the way aviary and CrabNet write them, from the same weights:
loss and every parameter's gradient, float64 to 1e-10 (relative). The torch side follows
the published code: aviary's scatter over member and pair indices, CrabNet's fractional
encoder tables built with torch as in ``kingcrab.FractionalEncoder``, and its output
network run on every element before the average."""

import numpy as np
import pytest
import torch

from stoichnet.chem.element_sets import element_embedding, element_sets
from stoichnet.models import crabnet, roost
from stoichnet.nn import FractionalEncoding, Sequential

pytestmark = pytest.mark.oracle
F = torch.nn.functional
TOL = 1e-10
FORMULAS = ["Fe2O3", "He", "NeAr", "Li0.5Fe0.5PO4", "NaCl", "BaTiO3", "Xe2F4", "Al"]


@pytest.fixture(autouse=True)
def _plain_attention():
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(previous)


def t(a, grad=False):
    return torch.tensor(np.array(a, dtype=np.float64), requires_grad=grad)


def linear(dense):
    W = dense.params["W"]
    lin = torch.nn.Linear(*W.shape, bias=dense.use_bias, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(t(W.T))
        if dense.use_bias:
            lin.bias.copy_(t(dense.params["b"]))
    return lin


def randomize(model, seed):
    """Every parameter drawn anew, so no bias is 0 and no LayerNorm scale 1."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for value in layer.params.values():
            value[...] = rng.normal(scale=0.3, size=value.shape)


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def compare(model, X, y, torch_loss, torch_grads):
    """Our MSE loss and flat gradient against torch's (the flat order of the layers)."""
    model.compile("sgd", "mse")
    loss, _ = model.compute_gradients(X, y)
    reference = torch_loss()
    reference.backward()
    assert abs(loss - reference.item()) <= TOL * abs(reference.item())
    theirs = np.concatenate([g.detach().numpy().reshape(-1) for g in torch_grads()])
    assert model.flat_grads.shape == theirs.shape
    assert rel(model.flat_grads, theirs) <= TOL


# --- CrabNet --------------------------------------------------------------------------------
def crabnet_fractional_table(d, resolution, log, frac):
    """kingcrab.FractionalEncoder(d, resolution, log10=log).forward(frac), in float64."""
    half = d // 2
    x = torch.linspace(0, resolution - 1, resolution, dtype=torch.float64).view(resolution, 1)
    fraction = torch.linspace(0, half - 1, half, dtype=torch.float64).view(1, half).repeat(
        resolution, 1)
    pe = torch.zeros(resolution, half, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(x / torch.pow(50, 2 * fraction[:, 0::2] / half))
    pe[:, 1::2] = torch.cos(x / torch.pow(50, 2 * fraction[:, 1::2] / half))
    frac = frac.clone()
    if log:
        frac = torch.clamp(0.0025 * torch.log2(frac) ** 2, max=1)
    frac = torch.clamp(frac, min=1 / resolution)
    return pe[torch.round(frac * resolution).to(torch.long) - 1]


def test_fractional_encoding_is_crabnets():
    """The layer's encodings of fractions at the table's edges and in between are
    CrabNet's (the scales left at 1, features 0)."""
    w = np.array([1e-6, 2e-4, 0.0002, 0.01, 1 / 3, 0.5, 0.99999, 1.0])
    X = np.zeros((len(w), 1, 2 + 8))
    X[:, 0, 0], X[:, 0, 1] = 3, w
    layer = FractionalEncoding(resolution=5000)
    layer.build(X.shape[1:], None, "float64")
    out = layer.forward(X)[:, 0, 2:]
    frac = torch.tensor(w)
    np.testing.assert_allclose(out[:, :4], crabnet_fractional_table(8, 5000, False, frac), atol=1e-12)
    np.testing.assert_allclose(out[:, 4:], crabnet_fractional_table(8, 5000, True, frac), atol=1e-12)


def test_crabnet_equals_torch():
    d, heads = 8, 2
    sets = element_sets(FORMULAS, width=6, dtype="float64")
    X, y = sets.X, np.random.default_rng(1).normal(size=(len(FORMULAS), 1))
    model = crabnet(1, d_model=d, n_layers=2, heads=heads, hidden=12, dropout=0.0,
                    out_hidden=(10, 6), resolution=50, dtype="float64", seed=0)
    model.build(X.shape[1:])
    randomize(model, 2)
    _, embed, enc, block1, block2, res1, res2, _, out = model.layers
    table = t(element_embedding().table)
    ids = torch.tensor(X[..., 0].astype(np.int64))
    frac = torch.tensor(X[..., 1])
    mask = ids > 0
    emb_lin = linear(embed.layer)
    scale = t(enc.params["scale"], True)
    encoders = []
    for block in (block1, block2):
        ref = torch.nn.TransformerEncoderLayer(d, heads, 12, dropout=0.0, batch_first=True,
                                               dtype=torch.float64)
        att = block.attention.params
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(t(att["W_in"].T))
            ref.self_attn.in_proj_bias.copy_(t(att["b_in"]))
            ref.self_attn.out_proj.weight.copy_(t(att["W_out"].T))
            ref.self_attn.out_proj.bias.copy_(t(att["b_out"]))
            for ours, theirs in ((block.ff1, ref.linear1), (block.ff2, ref.linear2)):
                theirs.weight.copy_(t(ours.params["W"].T))
                theirs.bias.copy_(t(ours.params["b"]))
            for ours, theirs in ((block.norm1, ref.norm1), (block.norm2, ref.norm2)):
                theirs.weight.copy_(t(ours.params["gamma"]))
                theirs.bias.copy_(t(ours.params["beta"]))
        encoders.append(ref)
    residual = [(linear(r.layer.dense), linear(r.layer.projection)) for r in (res1, res2)]
    fc_out = linear(out)

    def loss():
        x = emb_lin(table[ids]) * 2 ** scale[0]
        pe = torch.zeros_like(x)
        ple = torch.zeros_like(x)
        pe[:, :, : d // 2] = crabnet_fractional_table(d, 50, False, frac) * 2 ** (1 - scale[1]) ** 2
        ple[:, :, d // 2:] = crabnet_fractional_table(d, 50, True, frac) * 2 ** (1 - scale[2]) ** 2
        x = x + pe + ple
        for ref in encoders:
            x = ref(x, src_key_padding_mask=~mask)
        x = x.masked_fill(~mask[..., None], 0)
        for fc, res in residual:
            x = F.leaky_relu(fc(x)) + res(x)
        x = fc_out(x).masked_fill(~mask[..., None], 0)  # CrabNet: output, then the average
        prediction = x.sum(1) / mask.sum(1, keepdim=True)
        return F.mse_loss(prediction, t(y))

    def grads():
        g = [emb_lin.weight.grad.T, emb_lin.bias.grad, scale.grad]
        for ref in encoders:
            g += [ref.self_attn.in_proj_weight.grad.T, ref.self_attn.in_proj_bias.grad,
                  ref.self_attn.out_proj.weight.grad.T, ref.self_attn.out_proj.bias.grad,
                  ref.norm1.weight.grad, ref.norm1.bias.grad, ref.norm2.weight.grad,
                  ref.norm2.bias.grad, ref.linear1.weight.grad.T, ref.linear1.bias.grad,
                  ref.linear2.weight.grad.T, ref.linear2.bias.grad]
        for fc, res in residual:
            g += [fc.weight.grad.T, fc.bias.grad, res.weight.grad.T]
        return [*g, fc_out.weight.grad.T, fc_out.bias.grad]

    compare(model, X, y, loss, grads)


# --- Roost ----------------------------------------------------------------------------------
def mlp(layers):
    """aviary's SimpleNetwork: Linear, LeakyReLU, ..., Linear."""
    mods = []
    for dense in layers:
        mods.append(linear(dense))
        if dense.activation == "leaky_relu":
            mods.append(torch.nn.LeakyReLU(0.01))
    return torch.nn.Sequential(*mods)


def weighted_attention(rows, index, weights, gate, message, power, n_groups):
    """aviary.segments.WeightedAttentionPooling.forward (without its + 1e-10)."""
    e = gate(rows)
    top = torch.zeros(n_groups, 1, dtype=e.dtype).scatter_reduce(
        0, index[:, None], e, "amax", include_self=False)
    e = weights[:, None] ** power * (e - top[index]).exp()
    e = e / torch.zeros(n_groups, 1, dtype=e.dtype).index_add(0, index, e)[index]
    msg = message(rows)
    return torch.zeros(n_groups, msg.shape[1], dtype=e.dtype).index_add(0, index, e * msg)


def heads_of(layer):
    return ([mlp(g) for g in layer.gates], [mlp(m) for m in layer.messages],
            t(layer.own_params["pow"], True))


def linear_grads(seq):
    return [g for lin in seq if isinstance(lin, torch.nn.Linear)
            for g in (lin.weight.grad.T, lin.bias.grad)]


def test_roost_equals_torch():
    sets = element_sets(FORMULAS, width=6, dtype="float64")
    X, y = sets.X, np.random.default_rng(1).normal(size=(len(FORMULAS), 1))
    model = roost(1, d=6, n_graph=2, heads=2, gate_hidden=(5,), message_hidden=(4,),
                  trunk_hidden=(7,), out_hidden=(5, 4), dtype="float64", seed=0)
    model.build(X.shape[1:])
    randomize(model, 3)
    layers = model.layers
    embed, graphs, pool = linear(layers[1].layer), layers[3:5], layers[5]
    trunk, trunk_out, out_res, out = layers[6], layers[7], layers[8], layers[9]
    graph_heads, pool_heads = [heads_of(g) for g in graphs], heads_of(pool)
    trunk_fc, trunk_res = linear(trunk.dense), linear(trunk.projection)
    trunk_lin = linear(trunk_out)
    out_fc, out_proj, fc_out = linear(out_res.dense), linear(out_res.projection), linear(out)
    mask = X[..., 0] > 0
    crystal = torch.tensor(np.nonzero(mask)[0])
    ids = torch.tensor(X[..., 0][mask].astype(np.int64))
    w = t(X[..., 1][mask])
    self_idx, nbr_idx, start = [], [], 0  # aviary's roost data: all ordered pairs of a set
    for k in mask.sum(1):
        for i in range(k):
            self_idx += [start + i] * k
            nbr_idx += list(range(start, start + k))
        start += k
    self_idx, nbr_idx = torch.tensor(self_idx), torch.tensor(nbr_idx)
    table = t(element_embedding().table)

    def loss():
        h = torch.cat([embed(table[ids]), w[:, None]], dim=1)
        for gates, messages, power in graph_heads:
            pairs = torch.cat([h[self_idx], h[nbr_idx]], dim=1)
            h = torch.stack([weighted_attention(pairs, self_idx, w[nbr_idx], gates[k],
                                                messages[k], power[k], len(h))
                             for k in range(2)]).mean(0) + h
        gates, messages, power = pool_heads
        x = torch.stack([weighted_attention(h, crystal, w, gates[k], messages[k], power[k],
                                            len(X)) for k in range(2)]).mean(0)
        x = F.relu(trunk_lin(F.relu(trunk_fc(x)) + trunk_res(x)))  # aviary's trunk_nn, relu
        x = fc_out(F.relu(out_fc(x)) + out_proj(x))  # aviary's output_nn
        return F.mse_loss(x, t(y))

    def grads():
        g = [embed.weight.grad.T, embed.bias.grad]
        for gates, messages, power in [*graph_heads, pool_heads]:
            g.append(power.grad)
            for k in range(2):
                g += linear_grads(gates[k]) + linear_grads(messages[k])
        return [*g, trunk_fc.weight.grad.T, trunk_fc.bias.grad, trunk_res.weight.grad.T,
                trunk_lin.weight.grad.T, trunk_lin.bias.grad, out_fc.weight.grad.T,
                out_fc.bias.grad, out_proj.weight.grad.T, fc_out.weight.grad.T, fc_out.bias.grad]

    compare(model, X, y, loss, grads)


def test_models_round_trip_their_config():
    """The built networks rebuild from their config (what a model file holds)."""
    for build in (lambda: roost(2, d=6, n_graph=1, heads=1, gate_hidden=(3,),
                                message_hidden=(3,), trunk_hidden=(4,), out_hidden=(4,)),
                  lambda: crabnet(2, d_model=4, n_layers=1, heads=2, hidden=6,
                                  out_hidden=(5,), resolution=20)):
        model = build()
        model.build((4, 2))
        copy = Sequential.from_config(model.get_config())
        copy.build((4, 2))
        copy.set_weights(model.get_weights())
        X = element_sets(FORMULAS, width=4, errors="collect").X
        np.testing.assert_array_equal(copy.predict(X), model.predict(X))
