"""Learning happens (XOR, sin, the lecture's single-node chain), reproducibly, in float32,
and a diverging run stops with a clear error instead of NaN weights."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest

from stoichnet.nn import (
    Activation,
    Dense,
    Dropout,
    Sequential,
    TrainingDivergedError,
    activations,
    gradcheck,
    load_model,
    optimizers,
)


def test_xor_with_sigmoid_units():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0], dtype=float)
    model = Sequential([Dense(4, "sigmoid", input_dim=2), Dense(1, "sigmoid")], seed=0)
    model.compile(optimizers.Adam(learning_rate=0.1), "binary_crossentropy", ["accuracy"])
    history = model.fit(X, y, epochs=300, batch_size=4, verbose=0, seed=0)
    assert history.history["accuracy"][-1] == 1.0
    assert np.array_equal(model.predict(X)[:, 0] > 0.5, y > 0.5)


def test_sin_regressed_to_mse_below_1e_3():
    x = np.linspace(-np.pi, np.pi, 200).reshape(-1, 1)
    model = Sequential([Dense(32, "tanh", input_dim=1), Dense(32, "tanh"), Dense(1)], seed=0)
    model.compile(optimizers.Adam(learning_rate=0.01), "mse")
    model.fit(x, np.sin(x), epochs=400, batch_size=20, verbose=0, seed=0)
    assert model.evaluate(x, np.sin(x)) < 1e-3


def sigma(z):
    return 1 / (1 + math.exp(-z))


def test_lecture_chain_of_single_node_layers_term_by_term():
    """C = (a(L) - y)²; dC/dw(L) = a(L-1) σ'(z(L)) 2(a(L) - y), dC/db(L) = σ'(z(L)) 2(a(L) - y),
    and one layer further back through dC/da(L-1) = w(L) σ'(z(L)) 2(a(L) - y)."""
    model = Sequential(
        [Dense(1, "sigmoid", input_dim=1)] + [Dense(1, "sigmoid") for _ in range(3)],
        dtype="float64",
        seed=3,
    )
    model.compile("sgd", "sum_squares")
    x, y = 0.7, 0.2
    model.compute_gradients([[x]], [[y]])

    # recompute the chain by hand from the weights alone
    a, zs, acts = x, [], [x]
    for layer in model.layers:
        z = layer.params["W"].item() * a + layer.params["b"].item()
        a = sigma(z)
        zs.append(z)
        acts.append(a)
    d_sigma = [sigma(z) * (1 - sigma(z)) for z in zs]
    dC_da = 2 * (acts[-1] - y)
    for L in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[L]
        assert np.isclose(layer.grads["W"].item(), acts[L] * d_sigma[L] * dC_da, rtol=1e-12)
        assert np.isclose(layer.grads["b"].item(), d_sigma[L] * dC_da, rtol=1e-12)
        dC_da = layer.params["W"].item() * d_sigma[L] * dC_da  # dC/da(L-1)
    assert np.isclose(model.layers[-1].z.item(), zs[-1])


def dropout_net(seed=0):
    model = Sequential(
        [Dense(32, "relu", input_dim=5), Dropout(0.3), Dense(16, "relu"), Dropout(0.2), Dense(1)],
        seed=seed,
    )
    model.compile("adam", "mae", ["mse"])
    return model


def data(n=300):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(n, 5))
    return X, X @ rng.normal(size=5) + 0.1 * rng.normal(size=n)


def test_same_seed_gives_bit_identical_weights():
    X, y = data()
    runs = []
    for _ in range(2):
        model = dropout_net()
        model.fit(X, y, epochs=3, batch_size=16, verbose=0, seed=5)
        runs.append(model.flat_params.copy())
    assert np.array_equal(runs[0], runs[1])
    other = dropout_net()
    other.fit(X, y, epochs=3, batch_size=16, verbose=0, seed=6)
    assert not np.array_equal(runs[0], other.flat_params)


def test_fit_seed_alone_makes_a_lazily_built_model_reproducible():
    X, y = data()
    runs = []
    for _ in range(2):
        model = Sequential([Dense(8, "relu"), Dropout(0.5), Dense(1)])  # no seed, no input_dim
        model.compile("adam", "mse")
        model.fit(X, y, epochs=2, verbose=0, seed=9)
        runs.append(model.flat_params.copy())
    assert np.array_equal(runs[0], runs[1])


def test_fit_seed_on_an_eagerly_built_unseeded_model_warns(tmp_path):
    """Decision for issue 12, item 14: fit's seed never redraws weights that exist (a
    model built from Sequential(seed=...) keeps its results); it warns when they came
    from Sequential(seed=None) and were never trained, set or loaded."""
    X, y = data(60)
    unseeded = [dropout_net(seed=None) for _ in range(2)]
    for model in unseeded:
        with pytest.warns(UserWarning, match=r"Sequential\(seed=None\).*pass seed to Sequential"):
            model.fit(X, y, epochs=1, verbose=0, seed=5)
    # what the warning is about: the same script, the same fit seed, other weights
    assert unseeded[0].flat_params.tobytes() != unseeded[1].flat_params.tobytes()
    path = tmp_path / "m.npz"
    unseeded[0].save(path)
    set_weights = dropout_net(seed=None)
    set_weights.set_weights(unseeded[1].get_weights())
    quiet = [
        unseeded[0],  # trained already: fit continues from its weights
        dropout_net(seed=0),  # seeded build
        Sequential([Dense(8, "relu"), Dense(1)]),  # lazily built by fit, from its seed
        set_weights,
        load_model(path),
    ]
    quiet[2].compile("adam", "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dropout_net(seed=None).fit(X, y, epochs=1, verbose=0)  # no fit seed: nothing promised
        for model in quiet:
            model.fit(X, y, epochs=1, verbose=0, seed=5)


def test_float32_end_to_end():
    X, y = data()  # float64 inputs are cast once
    model = dropout_net()
    model.fit(X, y, epochs=1, batch_size=32, verbose=0, validation_split=0.2)
    arrays = [model.flat_params, model.flat_grads, model.predict(X)]
    for layer in model.layers:
        arrays += list(layer.params.values()) + list(layer.grads.values())
        arrays += list(layer._buffers.values())
    assert all(a.dtype == np.float32 for a in arrays), {a.dtype for a in arrays}
    assert len(arrays) > 20
    moments = [v for v in model.optimizer.state_dict().values() if isinstance(v, np.ndarray) and v.ndim]
    assert moments and all(m.dtype == np.float32 for m in moments)


def test_validation_split_takes_the_last_samples():
    X, y = data(100)
    split = dropout_net().fit(X, y, epochs=2, batch_size=10, verbose=0, validation_split=0.2, seed=1)
    explicit = dropout_net().fit(
        X[:80], y[:80], epochs=2, batch_size=10, verbose=0, validation_data=(X[80:], y[80:]), seed=1
    )
    assert split.history == explicit.history
    assert set(split.history) == {"loss", "mse", "val_loss", "val_mse"}
    assert len(split.history["val_loss"]) == 2


def test_divergence_stops_with_epoch_batch_and_cause_and_keeps_finite_weights():
    X, y = data()
    model = Sequential([Dense(16, "relu", input_dim=5), Dense(1)], seed=0)
    model.compile(optimizers.SGD(learning_rate=1e4), "mse")
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+, batch \d+.*learning rate") as info:
        model.fit(X, 1e3 * y, epochs=50, batch_size=10, verbose=0, seed=0)
    assert info.value.epoch is not None and info.value.batch is not None
    assert np.isfinite(model.flat_params).all()


def test_mc_dropout_prediction_averages_stochastic_passes():
    X, y = data(50)
    model = dropout_net()
    deterministic = model.predict(X)
    assert np.array_equal(deterministic, model.predict(X))
    one = model.predict(X, mc_samples=1)
    assert not np.allclose(one, deterministic)
    many = model.predict(X, mc_samples=200)
    # averaging many dropout passes approaches the expectation; for a network this
    # small, that is close to the inference-mode output
    assert np.abs(many - deterministic).mean() < np.abs(one - deterministic).mean()


def test_mc_prediction_with_a_seed_is_reproducible_and_leaves_the_model_generator_alone():
    X, _ = data(20)
    model = dropout_net()
    state = model.rng.bit_generator.state
    first = model.predict(X, mc_samples=3, seed=7)
    assert model.rng.bit_generator.state == state
    assert all(layer.rng is model.rng for layer in model.layers)
    np.testing.assert_array_equal(first, model.predict(X, mc_samples=3, seed=7))
    assert not np.array_equal(first, model.predict(X, mc_samples=3, seed=8))
    assert not np.array_equal(model.predict(X, mc_samples=3), model.predict(X, mc_samples=3))


def test_predict_passes_are_the_passes_predict_averages():
    """predict_passes returns the Monte-Carlo passes one by one: the same masks as
    predict with the same seed (their mean is predict's output), in small batches too;
    each pass is the dropout network run once with its own masks."""
    X, _ = data(30)
    model = dropout_net()
    passes = model.predict_passes(X, mc_samples=4, seed=3, batch_size=7)
    assert passes.shape == (4, 30, 1) and passes.dtype == model.dtype
    np.testing.assert_allclose(passes.mean(axis=0), model.predict(X, 7, mc_samples=4, seed=3),
                               rtol=1e-6)
    one = model.predict_passes(X[:7], mc_samples=4, seed=3)  # the first batch of 7
    np.testing.assert_array_equal(one, passes[:, :7])
    assert np.ptp(passes, axis=0).max() > 0  # the masks differ from pass to pass


def test_mc_dropout_flag_keeps_dropout_on_in_predict():
    model = Sequential([Dense(8, "relu", input_dim=3), Dropout(0.5, mc_dropout=True), Dense(1)], seed=0)
    X = np.ones((4, 3))
    assert not np.array_equal(model.predict(X), model.predict(X))


def test_train_on_batch_returns_the_loss_and_steps():
    X, y = data(32)
    model = dropout_net()
    before = model.flat_params.copy()
    loss = model.train_on_batch(X, y)
    assert isinstance(loss, float) and loss > 0
    assert not np.array_equal(before, model.flat_params)
    assert model.optimizer.iterations == 1


def test_leaky_relu_slope_is_pytorch_default():
    assert activations.leaky_relu(np.array([-1.0])) == -0.01


@pytest.mark.parametrize("last", ["dense", "activation_layer"])
def test_in_place_sigmoid_with_binary_crossentropy_matches_the_plain_run(monkeypatch, last):
    """The fused loss asks the layer for its logits: an activation flagged ``in_place``
    (its output overwrites z) trains exactly as the one that keeps z."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(float)

    def run():
        tail = [Dense(1, "sigmoid")] if last == "dense" else [Dense(1), Activation("sigmoid")]
        model = Sequential([Dense(8, "tanh", input_dim=4), *tail], seed=2)
        model.compile(optimizers.Adam(learning_rate=0.05), "binary_crossentropy")
        history = model.fit(X, y, epochs=5, batch_size=16, verbose=0, seed=3)
        return model, history.history["loss"]

    plain, plain_loss = run()
    assert plain._fused()
    sigmoid = activations.get("sigmoid")
    monkeypatch.setitem(activations.ACTIVATIONS, "sigmoid", replace(sigmoid, in_place=True))
    in_place, in_place_loss = run()
    assert in_place.layers[-1].sigma.in_place and in_place._fused()
    assert in_place_loss[-1] < in_place_loss[0]
    assert in_place_loss == plain_loss
    assert in_place.flat_params.tobytes() == plain.flat_params.tobytes()


@pytest.mark.parametrize("loss", ["gaussian_nll", "laplace_nll"])
def test_likelihood_head_backpropagates_through_the_network(loss):
    """A network with 2 outputs per target ([mu | log sigma]) trained on a likelihood: y has
    one column per target, the backward pass agrees with finite differences, and a y with
    the output's width is refused with the shape it needs."""
    rng = np.random.default_rng(5)
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(2)], dtype="float64",
                       seed=1)
    model.compile("adam", loss, metrics=["mae"])
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 1))
    assert gradcheck(model, X, y) < 1e-7
    scores = model.evaluate(X, y, return_dict=True)
    assert np.isclose(scores["mae"], np.mean(np.abs(model.predict(X)[:, :1] - y)))
    with pytest.raises(ValueError, match=r"y needs shape \(n_samples, 1\)"):
        model.evaluate(X, np.ones((7, 2)))
