"""Estimators pass checkpoint/resume through to the engine: a fit continued from a
checkpoint ends with the weights and history of an uninterrupted fit."""

import numpy as np

from stoichnet.models import NeuralNetRegressor
from stoichnet.nn import load_checkpoint

rng = np.random.default_rng(0)
X = rng.normal(size=(120, 6))
Y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


def net(epochs: int) -> NeuralNetRegressor:
    return NeuralNetRegressor("16x2-1", dropout=0.2, inference_dropout="mc", mc_samples=3,
                              epochs=epochs, batch_size=16, patience=5, learning_rate=3e-3,
                              random_state=3)


def test_fit_resumed_from_a_checkpoint_equals_an_uninterrupted_fit(tmp_path):
    path = tmp_path / "net.ckpt"
    reference = net(epochs=8).fit(X, Y)
    net(epochs=3).fit(X, Y, checkpoint=path, checkpoint_every=2)
    assert load_checkpoint(path)[0]["progress"]["epoch"] == 3  # the last epoch is saved too
    resumed = net(epochs=8).fit(X, Y, checkpoint=path, resume=path)
    assert resumed.model_.flat_params.tobytes() == reference.model_.flat_params.tobytes()
    assert resumed.history_.history == reference.history_.history
    assert "val_mc_loss" in resumed.history_.history
    assert np.array_equal(resumed.predict(X[:5]), reference.predict(X[:5]))
