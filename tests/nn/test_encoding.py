"""FractionalEncoding: central differences for its scales and the features below it; a
padded member changes nothing."""

import numpy as np

from stoichnet.nn import Dense, FractionalEncoding, PerMember, Sequential, SetPooling
from stoichnet.nn.gradcheck import gradcheck


def sets(n=6, m=4, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, m, 2 + d))
    for s, k in enumerate(rng.integers(1, m + 1, n)):
        x[s, :k, 0] = rng.integers(1, 9, k)
        w = rng.random(k) + 0.05
        x[s, :k, 1] = w / w.sum()
        x[s, :k, 2:] = rng.normal(size=(k, d))
    return x


def model_for(x, seed=0):
    model = Sequential([PerMember(Dense(4, "tanh")), FractionalEncoding(resolution=40),
                        SetPooling("mean"), Dense(1)], dtype="float64", seed=seed)
    model.build(x.shape[1:])
    model.layers[1].params["scale"][...] = (0.7, 1.4, 0.3)  # gradients of the scales != 0
    model.compile("sgd", "mse")
    return model


def test_gradients_match_central_differences():
    x = sets()
    y = np.random.default_rng(1).normal(size=(len(x), 1))
    errors = gradcheck(model_for(x), x, y, details=True)
    assert max(errors.values()) < 1e-7, errors


def test_padded_members_change_nothing():
    x = sets()
    model = model_for(x)
    before = model.predict(x)
    changed = x.copy()
    pad = changed[..., 0] == 0
    changed[..., 2:][pad] = 5.0  # features of padded members (ids 0) never read
    np.testing.assert_array_equal(model.predict(changed), before)
