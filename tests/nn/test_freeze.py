"""Frozen layers and per-layer learning rates (``Layer.trainable``, ``Layer.lr_scale``):
training equals PyTorch with ``requires_grad=False`` and parameter groups, frozen weights
never move, and the settings survive model files and checkpoints."""

import numpy as np
import pytest
import torch

from stoichnet.nn import Dense, Sequential, load_model
from stoichnet.nn.optimizers import AdamW

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 5))
Y = np.sin(X.sum(axis=1, keepdims=True))


def make_model(dtype="float64", frozen=(0,), scales=None):
    model = Sequential([Dense(8, "tanh", input_dim=5), Dense(6, "relu"), Dense(4, "tanh"),
                        Dense(1)], dtype=dtype, seed=3)
    for i in frozen:
        model.layers[i].trainable = False
    for i, scale in (scales or {}).items():
        model.layers[i].lr_scale = scale
    model.compile(AdamW(learning_rate=0.01, weight_decay=0.1), "mse")
    return model


@pytest.mark.oracle
def test_training_equals_torch_with_frozen_layers_and_parameter_groups():
    model = make_model(frozen=(0,), scales={1: 0.1, 2: 0.1})
    initial = model.get_weights()
    torch_layers = [torch.nn.Linear(a, b, dtype=torch.float64)
                    for a, b in ((5, 8), (8, 6), (6, 4), (4, 1))]
    with torch.no_grad():
        for layer, (W, b) in zip(torch_layers, zip(initial[::2], initial[1::2], strict=True),
                                 strict=True):
            layer.weight.copy_(torch.tensor(W.T))
            layer.bias.copy_(torch.tensor(b))
    torch_layers[0].requires_grad_(False)
    groups = [{"params": [*torch_layers[1].parameters(), *torch_layers[2].parameters()],
               "lr": 0.001},
              {"params": list(torch_layers[3].parameters()), "lr": 0.01}]
    opt = torch.optim.AdamW(groups, weight_decay=0.1, eps=1e-7)  # Keras' epsilon
    x, y = torch.tensor(X), torch.tensor(Y)
    for start in range(0, 40, 10):
        h = torch.tanh(torch_layers[0](x[start:start + 10]))
        h = torch.relu(torch_layers[1](h))
        h = torch.tanh(torch_layers[2](h))
        loss = torch.nn.functional.mse_loss(torch_layers[3](h), y[start:start + 10])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.fit(X, Y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    ours = model.get_weights()
    theirs = [t.detach().numpy() for layer in torch_layers
              for t in (layer.weight.T, layer.bias)]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the frozen layer did not move, weight decay included
    assert ours[0].tobytes() == initial[0].tobytes() and ours[1].tobytes() == initial[1].tobytes()


def test_an_unfrozen_unscaled_model_trains_as_before():
    plain, marked = make_model(frozen=()), make_model(frozen=(), scales={1: 1.0})
    for model in (plain, marked):
        model.fit(X, Y, epochs=2, batch_size=8, seed=1, verbose=0)
    assert plain.flat_params.tobytes() == marked.flat_params.tobytes()
    assert plain.trainable_segments() == [(0, plain.count_params(), 1.0)]


def test_layers_below_the_first_trainable_one_get_no_backward_pass():
    model = make_model(frozen=(0, 1))
    model.fit(X, Y, epochs=1, batch_size=8, seed=1, verbose=0)
    frozen = model.layers[0].n_params + model.layers[1].n_params
    assert not model.flat_grads[:frozen].any()
    assert model.flat_grads[frozen:].any()
    assert model.trainable_segments() == [(frozen, model.count_params(), 1.0)]


def test_every_layer_frozen_is_refused():
    model = make_model(frozen=(0, 1, 2, 3))
    with pytest.raises(ValueError, match="nothing to train"):
        model.fit(X, Y, epochs=1, verbose=0)


@pytest.mark.parametrize("value, error", [("yes", TypeError), (0.0, ValueError)])
def test_a_bad_lr_scale_or_trainable_is_refused(value, error):
    model = make_model(frozen=())
    if isinstance(value, str):
        model.layers[1].trainable = value
    else:
        model.layers[1].lr_scale = value
    with pytest.raises(error, match="dense_1"):
        model.fit(X, Y, epochs=1, verbose=0)


def test_model_files_keep_frozen_layers_and_scales(tmp_path):
    model = make_model(frozen=(0,), scales={2: 0.25})
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert [layer.trainable for layer in loaded.layers] == [False, True, True, True]
    assert [layer.lr_scale for layer in loaded.layers] == [1.0, 1.0, 0.25, 1.0]
    assert "Frozen params: 48" in loaded.summary(print_fn=lambda _: None)


def test_resume_with_frozen_layers_is_bit_identical_and_another_freeze_is_refused(tmp_path):
    full = make_model(frozen=(0,), scales={1: 0.1})
    full.fit(X, Y, epochs=4, batch_size=8, seed=5, verbose=0)
    path = tmp_path / "run.ckpt"
    first = make_model(frozen=(0,), scales={1: 0.1})
    first.fit(X, Y, epochs=2, batch_size=8, seed=5, verbose=0, checkpoint=path)
    resumed = make_model(frozen=(0,), scales={1: 0.1})
    resumed.fit(X, Y, epochs=4, batch_size=8, seed=5, verbose=0, resume=path)
    assert resumed.flat_params.tobytes() == full.flat_params.tobytes()
    with pytest.raises(ValueError, match="another architecture"):
        make_model(frozen=()).fit(X, Y, epochs=4, batch_size=8, seed=5, verbose=0, resume=path)
