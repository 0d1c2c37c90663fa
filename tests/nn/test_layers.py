"""Layers: backward against central finite differences (float64), dropout's
statistics, initializers, and gradcheck's own ability to catch a wrong backward."""

import numpy as np
import pytest

from stoichnet.nn import (
    L2,
    Activation,
    Dense,
    Dropout,
    Sequential,
    activations,
    gradcheck,
    initializers,
)

RNG = np.random.default_rng(7)


def model_with(*layers, loss="mse", n_in=3):
    model = Sequential(list(layers), dtype="float64", seed=0)
    model.compile("sgd", loss)
    return model, RNG.normal(size=(5, n_in))


@pytest.mark.parametrize("activation", sorted(activations.ACTIVATIONS))
def test_dense_gradients_for_every_activation(activation):
    model, X = model_with(Dense(4, activation, input_dim=3), Dense(2))
    # keep pre-activations off the relu kink so the differences are smooth
    model.layers[0].params["b"][...] = 0.3
    assert gradcheck(model, X, RNG.normal(size=(5, 2))) < 1e-6


def test_dense_without_bias_and_with_l2():
    model, X = model_with(
        Dense(4, "tanh", input_dim=3, use_bias=False, kernel_regularizer=L2(0.1)),
        Dense(1, kernel_regularizer=0.05),
    )
    errors = gradcheck(model, X, RNG.normal(size=(5, 1)), details=True)
    assert set(errors) == {"dense/W", "dense_1/W", "dense_1/b", "X"}
    assert max(errors.values()) < 1e-6


def test_l2_penalty_uses_keras_semantics():
    model, X = model_with(Dense(2, input_dim=3, kernel_regularizer=L2(0.5)))
    y = RNG.normal(size=(5, 2))
    W = model.layers[0].params["W"]
    plain = np.mean((X @ W - y) ** 2)
    assert np.isclose(model.compute_loss(X, y), plain + 0.5 * np.sum(W**2))


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "relu"])
def test_activation_layer_gradients(activation):
    model, X = model_with(Dense(4, input_dim=3), Activation(activation), Dense(2))
    model.layers[0].params["b"][...] = 0.3
    assert gradcheck(model, X, RNG.normal(size=(5, 2))) < 1e-6


@pytest.mark.parametrize("loss", ["binary_crossentropy", "categorical_crossentropy"])
def test_fused_output_gradients(loss):
    fused = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}[loss]
    model, X = model_with(Dense(4, "tanh", input_dim=3), Dense(3, fused), loss=loss)
    assert model._fused()
    y = np.eye(3)[RNG.integers(0, 3, 5)]
    assert gradcheck(model, X, y) < 1e-6


def test_sparse_categorical_gradients():
    model, X = model_with(
        Dense(4, "elu", input_dim=3), Dense(3), Activation("softmax"),
        loss="sparse_categorical_crossentropy",
    )
    assert gradcheck(model, X, RNG.integers(0, 3, 5)) < 1e-6


def test_dropout_backward_matches_finite_differences_with_a_frozen_mask():
    layer = Dropout(0.4)
    rng = np.random.default_rng(3)
    layer.build((6,), rng, np.float64)
    state = rng.bit_generator.state
    x = RNG.normal(size=(4, 6))
    g = RNG.normal(size=(4, 6))

    def cost(xx):
        rng.bit_generator.state = state  # the same mask for every evaluation
        return float(np.sum(g * layer.forward(xx, training=True)))

    eps, numeric = 1e-6, np.empty_like(x)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + eps
        plus = cost(x)
        x[idx] = saved - eps
        minus = cost(x)
        x[idx] = saved
        numeric[idx] = (plus - minus) / (2 * eps)
    cost(x)
    np.testing.assert_allclose(layer.backward(g), numeric, rtol=1e-7, atol=1e-9)
    assert 0 < np.count_nonzero(layer.mask) < layer.mask.size  # it really dropped some


def test_dropout_is_inverted_and_identity_at_inference():
    layer = Dropout(0.25)
    layer.build((1000,), np.random.default_rng(0), np.float32)
    x = np.ones((200, 1000), dtype=np.float32)
    out = layer.forward(x, training=True)
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01
    assert np.allclose(out[kept], 1 / 0.75)
    assert abs(out.mean() - 1) < 0.02
    assert layer.forward(x, training=False) is x
    assert Dropout(0.25, mc_dropout=True).get_config()["mc_dropout"] is True


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("glorot_uniform", np.sqrt(2 / (300 + 200))),
        ("glorot_normal", np.sqrt(2 / (300 + 200))),
        ("he_uniform", np.sqrt(2 / 300)),
        ("he_normal", np.sqrt(2 / 300)),
    ],
)
def test_initializer_scale(name, std):
    W = initializers.get(name)((300, 200), np.random.default_rng(0), np.float32)
    assert W.dtype == np.float32 and W.shape == (300, 200)
    assert abs(W.std() / std - 1) < 0.02 and abs(W.mean()) < 0.02 * std
    if name.endswith("uniform"):
        assert np.abs(W).max() <= np.sqrt(3) * std


def test_unknown_initializer_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown initializer 'lecun'.*he_normal"):
        Dense(3, kernel_initializer="lecun")


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        # one rule (stoichnet.util.checks): a wrong type is a TypeError, a value out of range a
        # ValueError, and the message names the argument, the value and what is allowed
        (lambda: Dense("3"), TypeError, r"units must be an int, got '3' \(str\)"),
        (lambda: Dense(True), TypeError, r"units must be an int, got True"),
        (lambda: Dense(0), ValueError, r"units must be an int >= 1, got 0"),
        (lambda: Dense(3, input_dim=2.0), TypeError, r"input_dim must be an int, got 2.0"),
        (lambda: Dense(3, input_dim=0), ValueError, r"input_dim must be an int >= 1, got 0"),
        (lambda: Dense(3, activation=3), TypeError, r"activation must be a name or None, got 3"),
        (lambda: Dense(3, kernel_initializer=None), TypeError, r"initializer must be a name"),
        (lambda: Dense(3, kernel_regularizer=[0.1]), TypeError,
         r"kernel_regularizer must be None, a number .*, got \[0.1\] \(list\)"),
        (lambda: Dense(3, kernel_regularizer={"l1": 0.1}), ValueError, r"kernel_regularizer"),
        (lambda: Dense(3, kernel_regularizer=-0.1), ValueError, r"l2 must be in \[0, inf\)"),
        (lambda: L2(True), TypeError, r"l2 must be a number, got True \(bool\)"),
        (lambda: Dropout("0.5"), TypeError, r"rate must be a number, got '0.5' \(str\)"),
        (lambda: Dropout(1.0), ValueError, r"rate must be in \[0, 1\), got 1.0"),
        (lambda: Activation(["relu"]), TypeError, r"activation must be a name or None"),
    ],
)
def test_constructors_check_types_and_ranges(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


class ForgetfulDense(Dense):
    """A deliberately wrong backward: it skips the activation's derivative."""

    def backward(self, grad_out):
        return self.backward_from_z(grad_out)


def test_gradcheck_catches_a_wrong_backward():
    model, X = model_with(ForgetfulDense(4, "tanh", input_dim=3), Dense(1))
    assert gradcheck(model, X, RNG.normal(size=(5, 1))) > 1e-2


def test_gradcheck_refuses_float32():
    model = Sequential([Dense(1, input_dim=2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="float64"):
        gradcheck(model, np.ones((2, 2)), np.ones(2))


def test_parameters_are_views_into_the_flat_buffers():
    model = Sequential([Dense(4, "relu", input_dim=3), Dropout(0.5), Dense(2)], seed=0)
    assert model.flat_params.size == 3 * 4 + 4 + 4 * 2 + 2
    for layer in model.layers:
        for key in layer.params:
            assert np.shares_memory(layer.params[key], model.flat_params)
            assert np.shares_memory(layer.grads[key], model.flat_grads)
    model.flat_params[:] = 0
    assert not model.layers[0].params["W"].any()
