"""Every bad input named in the engine issue raises a typed error that names the
argument and what was received."""

import numpy as np
import pytest

from stoichnet.nn import Dense, Dropout, Sequential, gradcheck

X = np.random.default_rng(0).normal(size=(10, 3))
Y = np.arange(10.0)


def compiled(loss="mse", **kwargs):
    model = Sequential([Dense(4, "relu", **kwargs), Dense(1)], seed=0)
    model.compile("sgd", loss)
    return model


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"X": X[:9]}, ValueError, r"X and y have different numbers of samples: 9 and 10"),
        ({"X": X[:, :2]}, ValueError, r"X has per-sample shape \(2,\) but the model was built for \(3,\)"),
        ({"X": np.where(X > 1, np.nan, X)}, ValueError, r"X contains NaN or inf .* row\(s\), the first at row"),
        ({"y": np.r_[Y[:9], np.inf]}, ValueError, r"y contains NaN or inf .* first at row 9"),
        ({"X": np.full((10, 3), "a")}, TypeError, r"X must be numeric, got an array of dtype <U1"),
        ({"y": np.array(["1.5"] * 10, dtype=object)}, TypeError, r"y must be numeric.*object.*'1.5'"),
        ({"X": [[1.0, 2.0, 3.0]] * 9 + [[1.0]]}, ValueError, r"X is not a rectangular array"),
        ({"X": np.empty((0, 3)), "y": np.empty(0)}, ValueError, r"X is empty \(shape \(0, 3\)\)"),
        ({"X": X[:, 0]}, ValueError, r"X must have shape \(n_samples, n_features\), got shape \(10,\)"),
        ({"y": np.ones((10, 2))}, ValueError, r"y has per-sample shape \(2,\) but the model outputs \(1,\)"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an int >= 1, got 0"),
        ({"batch_size": 2.5}, TypeError, r"batch_size must be an int, got 2.5"),
        ({"epochs": -1}, ValueError, r"epochs must be an int >= 0, got -1"),
        ({"validation_split": 1.0}, ValueError, r"validation_split must be in \[0, 1\), got 1.0"),
        ({"validation_split": 0.01}, ValueError, r"leaves 0 for validation"),
        ({"validation_data": (X, Y[:3])}, ValueError, r"validation_data\[0\] and validation_data\[1\] have different"),
        ({"validation_data": X}, TypeError, r"validation_data must be a pair"),
        ({"callbacks": ["early"]}, TypeError, r"callbacks must be Callback instances, got 'early'"),
        ({"verbose": 3}, ValueError, r"verbose must be one of \(0, 1, 2\), got 3"),
    ],
)
def test_fit_rejects(kwargs, error, pattern):
    model = compiled(input_dim=3)
    args = {"X": X, "y": Y, "verbose": 0, **kwargs}
    with pytest.raises(error, match=pattern):
        model.fit(args.pop("X"), args.pop("y"), **args)


def test_object_array_of_numbers_is_accepted():
    model = compiled(input_dim=3)
    model.fit(X.astype(object), Y, verbose=0)


def test_values_that_overflow_float32_are_reported_as_inf():
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(after conversion to float32\)"):
        compiled(input_dim=3).fit(np.full((2, 3), 1e300), np.ones(2), verbose=0)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: Dense(4, "swish"), r"unknown activation 'swish'; valid activations are \[.*'relu'"),
        (lambda: compiled(loss="rmse"), r"unknown loss 'rmse'; valid losses are \[.*'mse'"),
        (lambda: Sequential([Dense(1)]).compile("adamw2", "mse"), r"unknown optimizer 'adamw2'.*adam"),
        (lambda: Sequential([Dense(1)]).compile("sgd", "mse", ["r2"]), r"unknown metric 'r2'"),
        (lambda: Sequential(dtype="float16"), r"dtype must be one of \('float32', 'float64'\), got 'float16'"),
        (lambda: Dense(0), r"units must be an int >= 1, got 0"),
        (lambda: Dense(3, input_dim=-2), r"input_dim must be an int >= 1, got -2"),
        (lambda: Dropout(1.0), r"rate must be in \[0, 1\), got 1.0"),
        (lambda: Dense(3, kernel_regularizer="l1"), r"kernel_regularizer must be None, a number"),
    ],
)
def test_constructors_reject(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_add_refuses_what_is_not_a_layer():
    with pytest.raises(TypeError, match=r"Sequential.add expects a Layer .*got str: 'dense'"):
        Sequential().add("dense")
    layer = Dense(2)
    Sequential([layer, Dense(1)]).build((3,))
    with pytest.raises(ValueError, match="already built"):
        Sequential([layer])


def test_predict_before_the_model_is_built():
    model = Sequential([Dense(1)])
    with pytest.raises(ValueError, match=r"predict needs a built model.*input_dim.*fit it first"):
        model.predict(X)


def test_fit_before_compile():
    with pytest.raises(ValueError, match=r"fit needs a compiled model: call compile"):
        Sequential([Dense(1, input_dim=3)]).fit(X, Y)


def test_sparse_labels_must_be_class_indices():
    model = Sequential([Dense(3, "softmax", input_dim=3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"integer class indices 0..2 .* values in \[0.0, 3.0\]"):
        model.fit(X[:4], [0, 1, 2, 3], verbose=0)
    with pytest.raises(ValueError, match=r"integer class indices"):
        model.fit(X[:2], [0.5, 1], verbose=0)


def test_set_weights_checks_count_and_shapes():
    model = compiled(input_dim=3)
    with pytest.raises(ValueError, match=r"set_weights needs 4 arrays, got 1"):
        model.set_weights([np.zeros((3, 4))])
    weights = model.get_weights()
    weights[0] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"weights for dense.W must have shape \(3, 4\), got \(4, 3\)"):
        model.set_weights(weights)


def test_lazy_build_from_the_first_input():
    model = compiled()
    assert not model.built
    model.fit(X, Y, verbose=0)
    assert model.input_shape == (3,) and model.count_params() == 3 * 4 + 4 + 4 + 1


def test_declared_input_dim_must_match_what_the_layer_receives():
    with pytest.raises(ValueError, match=r"dense_1 declares input shape \(5,\) but receives \(4,\)"):
        Sequential([Dense(4, input_dim=3), Dense(2, input_dim=5)])
    with pytest.raises(ValueError, match=r"X has per-sample shape \(2,\) but the model was built for \(3,\)"):
        compiled(input_dim=3).predict(np.ones((1, 2)))


@pytest.mark.parametrize(("eps", "error"), [(0.0, ValueError), (-1e-6, ValueError), ("1e-6", TypeError)])
def test_gradcheck_refuses_a_bad_step(eps, error):
    model = Sequential([Dense(2, input_dim=3)], dtype="float64", seed=0)
    model.compile("sgd", "mse")
    with pytest.raises(error, match="eps must be"):
        gradcheck(model, X, np.ones((10, 2)), eps=eps)
