"""Set layers and composite blocks: finite differences for every layer (parameters and
inputs), padded members never reach a result, composite parameters are views of the
model's buffers, model files and checkpoints work as for Dense models, bad input raises."""

import copy

import numpy as np
import pytest
import torch

from stoichnet.nn import (
    AppendWeight,
    Callback,
    Composite,
    Dense,
    Dropout,
    Embedding,
    LayerNorm,
    MaskedSoftmax,
    MultiHeadAttention,
    PerMember,
    ResidualDense,
    RoostMessage,
    Sequential,
    SetPooling,
    TrainingInterrupted,
    TransformerEncoderBlock,
    WeightedAttentionPooling,
    gradcheck,
    load_model,
    optimizers,
)
from stoichnet.nn.layers.sets import masked_softmax, masked_softmax_backward


def make_sets(n, m, vocab, d=0, seed=0):
    """Sets (n, m, 2 + d) of sizes 1 .. m (both present): ids 1 .. vocab - 1, positive
    weights summing to 1, features N(0, 1), zeros at padding."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, m, 2 + d))
    sizes = rng.integers(1, m + 1, n)
    sizes[:2] = (1, m)
    for s, k in enumerate(sizes):
        x[s, :k, 0] = rng.integers(1, vocab, k)
        w = rng.random(k) + 0.2
        x[s, :k, 1] = w / w.sum()
        x[s, :k, 2:] = rng.normal(size=(k, d))
    return x


# layers that map sets (n, m, 2 + 3) to sets; each is checked inside a small model
SET_LAYERS = {
    "per_member_dense": lambda: PerMember(Dense(4, "tanh")),
    "per_member_layer_norm": lambda: PerMember(LayerNorm()),
    "per_member_residual": lambda: PerMember(ResidualDense(5, "elu")),
    "append_weight": AppendWeight,
    "masked_softmax": MaskedSoftmax,
    "attention_1_head": lambda: MultiHeadAttention(1),
    "attention_3_heads": lambda: MultiHeadAttention(3),
    "post_norm_block": lambda: TransformerEncoderBlock(3, hidden=4, activation="tanh"),
    "pre_norm_block": lambda: TransformerEncoderBlock(1, hidden=5, activation="elu", norm_first=True),
    "roost_message": lambda: RoostMessage(heads=2, gate_hidden=[3], message_hidden=[4]),
}
# layers that end the set stage: sets -> (n, d)
POOLINGS = {
    "mean": lambda: SetPooling("mean"),
    "sum": lambda: SetPooling("sum"),
    "weighted": lambda: SetPooling("weighted"),
    "attention_pooling": lambda: WeightedAttentionPooling(2, heads=2, gate_hidden=[3],
                                                          message_hidden=[]),
}


def assert_gradcheck(model, X, y):
    """Every block agrees with central differences, except a gradient that is exactly 0
    (the last bias of a gate network shifts all scores of a softmax alike): relative
    errors of rounding noise mean nothing there, so its analytic value must be ~0."""
    errors = gradcheck(model, X, y, details=True)
    model.compute_gradients(X, y)
    grads = {f"{layer.name}/{key}": layer.grads[key] for layer in model.layers
             for key in layer.grads}
    for key, error in errors.items():
        if error > 1e-6:
            assert "/gate" in key and key.endswith("/b") and np.abs(grads[key]).max() < 1e-12, key


@pytest.mark.parametrize("name", sorted(SET_LAYERS))
def test_set_layer_gradients(name):
    X = make_sets(5, 4, vocab=6, d=3, seed=1)
    y = np.random.default_rng(2).normal(size=(5, 1))
    model = Sequential([SET_LAYERS[name](), SetPooling("weighted"), Dense(1)],
                       dtype="float64", seed=0)
    model.compile("sgd", "mse")
    assert_gradcheck(model, X, y)


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_pooling_gradients(name):
    X = make_sets(6, 4, vocab=6, d=3, seed=3)
    y = np.random.default_rng(2).normal(size=(6, 2))
    model = Sequential([POOLINGS[name](), Dense(2, "tanh")], dtype="float64", seed=0)
    model.compile("sgd", "mse")
    assert_gradcheck(model, X, y)


@pytest.mark.parametrize("trainable", [True, False])
def test_embedding_gradients(trainable):
    table = np.random.default_rng(4).normal(size=(7, 3))
    X = make_sets(5, 3, vocab=7, seed=5)
    y = np.random.default_rng(6).normal(size=5)
    model = Sequential([Embedding(table=table, trainable=trainable), SetPooling("weighted"), Dense(1)],
                       dtype="float64", seed=0)
    model.compile("sgd", "mse")
    assert_gradcheck(model, X, y)
    assert model.count_params() == 4 + (21 if trainable else 0)


@pytest.mark.parametrize("units", [4, 6])  # identity skip and projection
def test_plain_layer_norm_and_residual_dense_gradients(units):
    X = np.random.default_rng(0).normal(size=(6, 4))
    y = np.random.default_rng(1).normal(size=(6, 2))
    model = Sequential([ResidualDense(units, "tanh"), LayerNorm(), ResidualDense(units, "sigmoid"),
                        Dense(2)], dtype="float64", seed=0)
    model.compile("sgd", "mse")
    assert_gradcheck(model, X, y)
    assert ("projection" in [c.name for c in model.layers[0].children]) == (units != 4)


def run(layer, x, G):
    """(output, dx, {param: grad}) of one forward and backward, as copies."""
    out = layer.forward(x).copy()
    dx = layer.backward(G).copy()
    return out, dx, {k: v.copy() for k, v in layer.grads.items()}


@pytest.mark.parametrize("name", sorted(SET_LAYERS) + sorted(POOLINGS) + ["embedding"])
def test_padded_members_change_nothing(name):
    """Whatever a padded member holds (features, weight) and whatever gradient arrives at
    it, every output, every parameter gradient and every member's input gradient stay
    the same, bit for bit; a padded member's features come out 0 and get gradient 0."""
    rng = np.random.default_rng(7)
    if name == "embedding":
        layer, x = Embedding(6, 3), make_sets(6, 4, vocab=6, seed=8)
    else:
        layer = {**SET_LAYERS, **POOLINGS}[name]()
        x = make_sets(6, 4, vocab=6, d=3, seed=8)
    layer.build(x.shape[1:], np.random.default_rng(0), np.float64)
    pad = x[..., 0] == 0
    assert pad.any()
    out_shape = (x.shape[0], *layer.output_shape(x.shape[1:]))
    G = rng.normal(size=out_shape)
    out, dx, grads = run(layer, x, G)
    x2, G2 = x.copy(), G.copy()
    x2[..., 1:][pad] = rng.normal(size=x2[..., 1:][pad].shape) * 5
    if G.ndim == 3:
        G2[pad] = rng.normal(size=G2[pad].shape)
    out2, dx2, grads2 = run(layer, x2, G2)
    live = ~pad
    if out.ndim == 3:
        assert np.array_equal(out[live], out2[live])
        assert not out[..., 2:][pad].any() and not out2[..., 2:][pad].any()
    else:
        assert np.array_equal(out, out2)
    assert all(np.array_equal(grads[k], grads2[k]) for k in grads)
    assert np.array_equal(dx[live], dx2[live])
    assert not dx[..., 2:][pad].any() and not dx2[..., 2:][pad].any()


def test_masked_softmax_matches_torch_and_handles_empty_slices():
    rng = np.random.default_rng(0)
    s = rng.normal(scale=30, size=(4, 5))
    mask = rng.random((4, 5)) < 0.6
    mask[0] = True
    mask[1] = False
    a = masked_softmax(s, mask, axis=1)
    expected = torch.softmax(torch.tensor(s).masked_fill(torch.tensor(~mask), -torch.inf), 1)
    expected = torch.nan_to_num(expected).numpy()  # torch: NaN for the empty row
    np.testing.assert_allclose(a, expected, rtol=1e-14, atol=0)
    assert not a[~mask].any() and not a[1].any()
    da = rng.normal(size=s.shape)
    st = torch.tensor(s, requires_grad=True)
    at = torch.softmax(st.masked_fill(torch.tensor(~mask), -torch.inf), 1)
    (torch.nan_to_num(at)[mask.any(1)] * torch.tensor(da)[mask.any(1)]).sum().backward()
    np.testing.assert_allclose(masked_softmax_backward(da, a, axis=1), st.grad.numpy(), atol=1e-14)


# --- composites inside Sequential ------------------------------------------------------------
VOCAB, M = 7, 4


def crabnet_like(dropout=0.0, seed=1):
    return Sequential(
        [Embedding(VOCAB, 6), PerMember(Dense(6, "relu")), TransformerEncoderBlock(2, hidden=8, dropout=dropout),
         PerMember(Dropout(dropout)), SetPooling("mean"), Dense(4, "relu"), Dense(1)], seed=seed)


def roost_like(seed=1):
    table = np.random.default_rng(3).normal(size=(VOCAB, 5))
    return Sequential(
        [Embedding(table=table, trainable=False), PerMember(Dense(5)), AppendWeight(),
         RoostMessage(heads=2, gate_hidden=[4], message_hidden=[4]),
         WeightedAttentionPooling(heads=2, gate_hidden=[4], message_hidden=[5]),
         ResidualDense(8), Dense(1)], seed=seed)


def toy_data(n=120, seed=0):
    """y = Σ wᵢ · value(idᵢ): a fraction-weighted property, learnable by both."""
    X = make_sets(n, M, vocab=VOCAB, seed=seed)
    values = np.linspace(-1, 1, VOCAB)
    return X, (X[..., 1] * values[X[..., 0].astype(int)]).sum(1)


def leaf_arrays(layer):
    """(parameter, gradient) pairs of every leaf layer under ``layer``."""
    if isinstance(layer, Composite):
        pairs = [(layer.own_params[k], layer.own_grads[k]) for k in layer.own_params]
        for child in layer.children:
            pairs += leaf_arrays(child)
        return pairs
    return [(layer.params[k], layer.grads[k]) for k in layer.params]


@pytest.mark.parametrize("build", [crabnet_like, roost_like])
def test_parameters_are_views_of_the_flat_buffers(build):
    """What each child reads and writes is a view of the model's buffers, in order."""
    model = build()
    model.build((M, 2))
    pairs = [pair for layer in model.layers for pair in leaf_arrays(layer)]
    offset = 0
    for param, grad in pairs:
        assert np.shares_memory(param, model.flat_params) and np.shares_memory(grad, model.flat_grads)
        assert np.array_equal(param.reshape(-1), model.flat_params[offset:offset + param.size])
        offset += param.size
    assert offset == model.count_params()
    clone = copy.deepcopy(model)  # __setstate__ re-points the clone's children at its buffer
    X, _ = toy_data(8)
    before = model.predict(X)
    assert np.array_equal(clone.predict(X), before)
    clone.flat_params[...] = 0
    assert all(not param.any() for layer in clone.layers for param, _ in leaf_arrays(layer))
    assert np.array_equal(model.predict(X), before)


@pytest.mark.parametrize("build", [crabnet_like, roost_like])
def test_both_learn_a_weighted_property_and_round_trip_through_a_file(build, tmp_path):
    X, y = toy_data()
    model = build()
    model.compile(optimizers.Adam(learning_rate=0.01), "mse")
    baseline = float(np.mean((y - y.mean()) ** 2))
    model.fit(X, y, epochs=40, batch_size=16, verbose=0, seed=0)
    assert model.evaluate(X, y) < 0.2 * baseline
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.get_config() == model.get_config()
    assert np.array_equal(loaded.predict(X), model.predict(X))


class InterruptAt(Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.interrupt()


def test_checkpoint_resume_is_bit_identical_with_dropout_inside_blocks(tmp_path):
    """The blocks' dropouts draw from the model's generator (handed down to the children),
    so a run resumed from a checkpoint, mid-epoch or at a boundary, ends bit-identical."""
    X, y = toy_data(60)
    fit = {"epochs": 4, "batch_size": 16, "verbose": 0, "seed": 3}

    def make():
        model = crabnet_like(dropout=0.3)
        model.compile(optimizers.Adam(learning_rate=0.01), "mse")
        return model

    reference = make()
    reference.fit(X, y, **fit)
    other_seed = make()
    other_seed.fit(X, y, **{**fit, "seed": 4})
    assert other_seed.flat_params.tobytes() != reference.flat_params.tobytes()  # dropout is live

    path = tmp_path / "run.ckpt"
    first = make()
    first.fit(X, y, checkpoint=path, **{**fit, "epochs": 2})
    resumed = make()
    resumed.fit(X, y, resume=path, **fit)
    assert resumed.flat_params.tobytes() == reference.flat_params.tobytes()

    path = tmp_path / "interrupted.ckpt"
    with pytest.raises(TrainingInterrupted):
        make().fit(X, y, checkpoint=path, callbacks=[InterruptAt(2, 1)], **fit)
    resumed = make()
    resumed.fit(X, y, resume=path, callbacks=[InterruptAt(-1, -1)], **fit)
    assert resumed.flat_params.tobytes() == reference.flat_params.tobytes()


@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: MultiHeadAttention("2"), TypeError, "heads must be an int"),
    (lambda: TransformerEncoderBlock(2, dropout=1.5), ValueError, "dropout must be in"),
    (lambda: TransformerEncoderBlock(2, norm_first=1), TypeError, "norm_first must be True or False"),
    (lambda: SetPooling("max"), ValueError, "mode must be one of"),
    (lambda: WeightedAttentionPooling(gate_hidden="256"), TypeError, "gate_hidden must be a list"),
    (lambda: WeightedAttentionPooling(message_hidden=[0]), ValueError, r"message_hidden\[0\] must be"),
    (lambda: RoostMessage(message_hidden=[]), ValueError, r"at least one hidden layer in message_hidden"),
    (lambda: Embedding(5), ValueError, "needs input_dim and output_dim"),
    (lambda: Embedding(table=np.ones((4, 2)), trainable=False, input_dim=5), ValueError, "disagrees"),
    (lambda: LayerNorm(epsilon=0), ValueError, "epsilon must be in"),
    (lambda: ResidualDense(0), ValueError, "units must be an int >= 1"),
])
def test_constructors_check_their_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_bad_sets_raise():
    X = make_sets(4, 3, vocab=5, d=4)
    with pytest.raises(ValueError, match="divisible"):
        Sequential([MultiHeadAttention(3)]).build(X.shape[1:])
    with pytest.raises(ValueError, match=r"per-sample shape \(m, 2 \+ d\)"):
        Sequential([SetPooling()]).build((5,))
    model = Sequential([Embedding(5, 2), SetPooling()], seed=0)
    model.build((3, 2))
    bad = make_sets(4, 3, vocab=5, seed=1)
    bad[1, 0, 0] = 5
    with pytest.raises(ValueError, match="token id 5 is outside 0 .. 4"):
        model.predict(bad)
    pooling = Sequential([WeightedAttentionPooling(heads=1)], seed=0)
    pooling.build(X.shape[1:])
    X[0, 0, 1] = 0.0
    with pytest.raises(ValueError, match="weight > 0"):
        pooling.predict(X)
