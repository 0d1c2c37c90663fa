"""Transfer learning (``init=``, ``freeze=``, ``init_lr_scale=``): the hidden layers come
from the source network, the output layer is new, frozen layers never move, bad inputs
are refused before training, and fine-tuning keeps the resume and determinism guarantees."""

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error

from stoichnet.models import NeuralNetClassifier, NeuralNetRegressor, transfer_weights
from stoichnet.models.elemnet import elemnet
from stoichnet.nn import Dense, save_model

RNG = np.random.default_rng(0)
X_SOURCE = RNG.uniform(-1, 1, size=(2000, 6)).astype(np.float32)
W_TRUE = RNG.normal(size=6)


def source_property(X):
    """A smooth non-linear function of the inputs, the 'pretraining' property."""
    return np.tanh(X @ W_TRUE) + 0.5 * np.sin(3 * X[:, 0])


def related_property(X):
    """Another property built on the same hidden structure (another unit and offset)."""
    return 40.0 * source_property(X) + 100.0


@pytest.fixture(scope="module")
def source_file(tmp_path_factory):
    source = NeuralNetRegressor("32x2-1", epochs=60, batch_size=64, patience=None,
                                standardize_target=True, random_state=0)
    source.fit(X_SOURCE, source_property(X_SOURCE))
    path = tmp_path_factory.mktemp("source") / "source.npz"
    save_model(source.model_, path)
    return path, source


def finetune(path, **kwargs):
    settings = {"epochs": 30, "batch_size": 8, "patience": None, "standardize_target": True,
                "random_state": 1, "validation_fraction": 0.0} | kwargs
    return NeuralNetRegressor("32x2-1", init=path, **settings)


def dense(estimator):
    return [layer for layer in estimator.model_.layers if isinstance(layer, Dense)]


def test_hidden_layers_are_copied_frozen_ones_stay_and_the_output_layer_is_new(source_file):
    path, source = source_file
    X = X_SOURCE[:60]
    tuned = finetune(path, freeze=1, epochs=2).fit(X, related_property(X))
    ours, theirs = dense(tuned), [layer for layer in source.model_.layers
                                  if isinstance(layer, Dense)]
    for key in ("W", "b"):  # frozen: bit for bit the source's
        assert ours[0].params[key].tobytes() == theirs[0].params[key].tobytes()
    assert not np.array_equal(ours[1].params["W"], theirs[1].params["W"])  # fine-tuned
    assert [layer.trainable for layer in ours] == [False, True, True]
    assert [layer.lr_scale for layer in ours] == [0.1, 0.1, 1.0]
    assert tuned.init_source_ == f"the model file {str(path)!r}"


def test_transfer_beats_training_from_scratch_on_a_small_related_set(source_file):
    """40 rows of a property that shares the source's hidden structure: the fine-tuned
    network's test error is well below the one trained from random weights."""
    path, _ = source_file
    X, X_test = X_SOURCE[:40], X_SOURCE[1000:]
    y, y_test = related_property(X), related_property(X_test)
    tuned = finetune(path, epochs=100).fit(X, y)
    scratch = finetune(None, epochs=100).fit(X, y)
    tuned_mae = mean_absolute_error(y_test, tuned.predict(X_test))
    scratch_mae = mean_absolute_error(y_test, scratch.predict(X_test))
    assert tuned_mae < 0.6 * scratch_mae, (tuned_mae, scratch_mae)


def test_a_classifier_gets_a_new_sigmoid_head(source_file):
    path, _ = source_file
    X = X_SOURCE[:80]
    y = (source_property(X) > 0).astype(int)
    clf = NeuralNetClassifier("32x2-1", init=path, epochs=5, batch_size=16,
                              random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (80, 2)
    assert dense(clf)[-1].activation == "sigmoid"


def test_fine_tuning_is_deterministic_and_resumes_bit_identically(source_file, tmp_path):
    path, _ = source_file
    X = X_SOURCE[:64]
    y = related_property(X)
    full = finetune(path, freeze=1, epochs=4).fit(X, y)
    again = finetune(path, freeze=1, epochs=4).fit(X, y)
    assert full.model_.flat_params.tobytes() == again.model_.flat_params.tobytes()
    ckpt = tmp_path / "tune.ckpt"
    finetune(path, freeze=1, epochs=2).fit(X, y, checkpoint=ckpt)
    resumed = finetune(path, freeze=1, epochs=4).fit(X, y, checkpoint=ckpt, resume=ckpt)
    assert resumed.model_.flat_params.tobytes() == full.model_.flat_params.tobytes()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"freeze": 3}, ValueError, r"freeze=3 is deeper than the network's 2 hidden layers"),
    ({"arch": "16x2-1"}, ValueError, r"hidden layers 32 relu-32 relu, this network "
                                     r"16 relu-16 relu"),
    ({"freeze": -1}, ValueError, "freeze must be an int >= 0"),
    ({"init_lr_scale": 0.0}, ValueError, "init_lr_scale"),
    ({"init": None, "freeze": 1}, ValueError, "needs init"),
    ({"init": 3}, TypeError, "init must be 'pretrained'"),
])
def test_bad_transfer_settings_are_refused(source_file, kwargs, error, message):
    path, _ = source_file
    settings = {"init": path} | kwargs
    arch = settings.pop("arch", "32x2-1")
    with pytest.raises(error, match=message):
        NeuralNetRegressor(arch, epochs=1, **settings).fit(X_SOURCE[:20], X_SOURCE[:20, 0])


def test_other_input_features_are_refused(source_file):
    path, _ = source_file
    with pytest.raises(ValueError, match=r"takes inputs of shape \(6,\), this network \(7,\)"):
        NeuralNetRegressor("32x2-1", init=path, epochs=1).fit(
            np.zeros((10, 7), np.float32), np.zeros(10))


def test_transfer_weights_between_elemnet_networks_with_dropout():
    """Dense layers correspond in order whatever Dropout layers lie between them."""
    source = elemnet("16x2D-8-1", dropout=0.2, seed=0)
    target = elemnet("16x2D-8-1", dropout=(), seed=1)
    transfer_weights(source, target, freeze=2, lr_scale=0.5)
    theirs = [layer for layer in source.layers if isinstance(layer, Dense)]
    ours = [layer for layer in target.layers if isinstance(layer, Dense)]
    for a, b in zip(ours[:-1], theirs[:-1], strict=True):
        np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(ours[-1].params["W"], theirs[-1].params["W"])
    assert [(layer.trainable, layer.lr_scale) for layer in ours] == [
        (False, 0.5), (False, 0.5), (True, 0.5), (True, 1.0)]
