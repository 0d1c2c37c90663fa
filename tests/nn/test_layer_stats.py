"""Looking inside a network: ``Sequential.activations`` against the layers' math in
NumPy, and ``fit(record="layers")`` (``LayerStats``): gradient norms equal those of a
direct loop of ``compute_gradients`` and SGD steps, dead units on a constructed network,
the weights unchanged by recording, and a resumed run recording the same."""

import numpy as np
import pytest

from stoichnet.nn import Callback, Dense, Dropout, Sequential, TrainingInterrupted, optimizers
from stoichnet.nn.callbacks import LAYER_STATS, layer_history

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 5))
Y = np.tanh(X[:, :2].sum(1, keepdims=True)) + 0.1 * X[:, 3:4]
ACT = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z}


def make_model(dtype="float64", dropout=0.0, seed=1) -> Sequential:
    layers = [Dense(8, "relu", input_dim=5, kernel_regularizer=0.01)]
    layers += [Dropout(dropout)] if dropout else []
    layers += [Dense(6, "tanh"), Dense(4, "relu"), Dense(1)]
    return Sequential(layers, dtype=dtype, seed=seed)


def test_activations_are_each_layers_output():
    model = make_model(dropout=0.5)
    out = model.activations(X, batch_size=10)
    assert list(out) == [layer.name for layer in model.layers]
    a = X
    weights = iter(model.get_weights())
    for layer in model.layers:
        if isinstance(layer, Dense):  # a = σ(a_prev · W + b), in plain NumPy
            a = ACT[layer.activation](a @ next(weights) + next(weights))
        # a Dropout layer is the identity at inference
        np.testing.assert_allclose(out[layer.name], a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[model.layers[-1].name], model.predict(X), rtol=1e-12)
    first = model.activations(X, layers=["dense"])
    assert list(first) == ["dense"] and first["dense"].shape == (64, 8)
    np.testing.assert_array_equal(first["dense"], out["dense"])
    with pytest.raises(ValueError, match="no_such"):
        model.activations(X, layers=["no_such"])


def sgd_oracle(epochs: int, batch_size: int, lr: float):
    """Per epoch and Dense layer: the mean over batches of ||dC/dθ|| from
    compute_gradients, and ||θ|| after the epoch's plain SGD steps θ -= lr · g."""
    model = make_model()
    model.compile(optimizers.SGD(learning_rate=lr), "mse")
    grad_norms, weight_norms = [], []
    for _ in range(epochs):
        sums = np.zeros(len(model.layers))
        batches = 0
        for start in range(0, len(X), batch_size):
            model.compute_gradients(X[start:start + batch_size], Y[start:start + batch_size])
            grads = [np.concatenate([g.ravel() for g in layer.grads.values()])
                     for layer in model.layers]
            sums += [np.sqrt(np.sum(g * g)) for g in grads]
            batches += 1
            model.set_weights([w - lr * g for w, g in zip(
                model.get_weights(), [g for layer in model.layers for g in layer.grads.values()],
                strict=True)])
        grad_norms.append(sums / batches)
        weight_norms.append([np.sqrt(sum(np.sum(p * p) for p in layer.params.values()))
                             for layer in model.layers])
    return np.array(grad_norms), np.array(weight_norms)


def test_gradient_and_weight_norms_equal_a_direct_computation():
    model = make_model()
    model.compile(optimizers.SGD(learning_rate=0.05), "mse")
    history = model.fit(X, Y, epochs=3, batch_size=16, shuffle=False, verbose=0, record="layers")
    stats = layer_history(history.history)
    assert list(stats) == [layer.name for layer in model.layers]
    assert all(set(s) == set(LAYER_STATS) for s in stats.values())
    grad_norms, weight_norms = sgd_oracle(epochs=3, batch_size=16, lr=0.05)
    recorded_grads = np.array([stats[layer.name]["grad_norm"] for layer in model.layers]).T
    recorded_weights = np.array([stats[layer.name]["weight_norm"] for layer in model.layers]).T
    np.testing.assert_allclose(recorded_grads, grad_norms, rtol=1e-10)
    np.testing.assert_allclose(recorded_weights, weight_norms, rtol=1e-10)
    assert history.history["loss"]  # the ordinary logs are still there


def test_dead_fraction_on_a_constructed_network():
    model = Sequential([Dense(6, "relu", input_dim=5), Dense(8, "relu"), Dense(1)], seed=3,
                       dtype="float64")
    W1, b1, W2, b2, W3, b3 = model.get_weights()
    W1[:, :3], b1[:3] = 0.0, -1.0  # units 0-2 are 0 for every input: dead
    b1[3:] = 10.0  # units 3-5 stay positive for these inputs: alive
    b2[:] = rng.normal(size=8) * 3
    model.set_weights([W1, b1, W2, b2, W3, b3])
    # learning rate 0: the weights stay, so "zero on every sample of the epoch" is
    # what one forward pass of all of X shows
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    history = model.fit(X, Y, epochs=2, batch_size=10, verbose=0, record="layers")
    stats = layer_history(history.history)
    assert stats["dense"]["dead_fraction"] == [0.5, 0.5]
    a1 = np.maximum(X @ W1 + b1, 0)
    dead2 = float(np.mean(np.all(np.maximum(a1 @ W2 + b2, 0) == 0, axis=0)))
    assert 0 < dead2 < 1  # the random biases leave some units dead, some alive
    assert stats["dense_1"]["dead_fraction"] == [dead2, dead2]
    assert stats["dense_2"]["dead_fraction"] == [0.0, 0.0]  # linear output


def test_dead_units_stay_dead_while_training():
    model = Sequential([Dense(6, "relu", input_dim=5), Dense(1)], seed=3)
    W1, b1, W2, b2 = model.get_weights()
    W1[:, :2], b1[:2] = 0.0, -1.0  # no gradient reaches them through relu'(z) = 0
    model.set_weights([W1, b1, W2, b2])
    model.compile(optimizers.Adam(learning_rate=0.01), "mse")
    history = model.fit(X, Y, epochs=3, batch_size=8, verbose=0, seed=0, record="layers")
    assert all(f >= 2 / 6 for f in layer_history(history.history)["dense"]["dead_fraction"])
    assert np.array_equal(model.get_weights()[0][:, :2], np.zeros((5, 2)))


def test_recording_leaves_the_weights_bit_identical():
    runs = []
    for record in (None, "layers"):
        model = make_model(dtype="float32", dropout=0.3)
        model.compile(optimizers.Adam(learning_rate=0.01), "mse", ["mae"])
        history = model.fit(X, Y, epochs=4, batch_size=8, validation_split=0.25, verbose=0,
                            seed=5, record=record)
        runs.append((model.flat_params.tobytes(), history.history))
    assert runs[0][0] == runs[1][0]
    plain, recorded = runs[0][1], runs[1][1]
    assert {k: v for k, v in recorded.items() if "/" not in k} == plain
    assert len(recorded) == len(plain) + 4 * 3  # 4 Dense layers x 3 statistics


class InterruptAt(Callback):
    def __init__(self, epoch: int, batch: int):
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.interrupt()


def test_a_run_resumed_mid_epoch_records_the_same(tmp_path):
    def fit(**kwargs):
        model = make_model(dropout=0.2)
        model.compile(optimizers.Adam(learning_rate=0.01), "mse")
        return model, model.fit(X, Y, epochs=3, batch_size=8, verbose=0, seed=2,
                                record="layers", **kwargs)

    reference, history = fit()
    path = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted):
        fit(callbacks=[InterruptAt(1, 3)], checkpoint=path)
    model, resumed = fit(callbacks=[InterruptAt(-1, -1)], resume=path)
    assert model.flat_params.tobytes() == reference.flat_params.tobytes()
    assert resumed.history == history.history


def test_progress_lines_leave_out_the_layer_keys(capsys):
    model = make_model()
    model.compile("sgd", "mse")
    model.fit(X, Y, epochs=1, verbose=2, record="layers")
    line = capsys.readouterr().out
    assert "loss:" in line and "grad_norm" not in line


def test_record_must_be_layers_or_none():
    model = make_model()
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="record"):
        model.fit(X, Y, record="weights")
