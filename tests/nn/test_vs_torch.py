"""A multi-layer network's forward pass, cost and every gradient equal PyTorch's on
the same weights (float64 to 1e-10, float32 to 1e-4), for each cost."""

import numpy as np
import pytest
import torch

from stoichnet.nn import Activation, Dense, Dropout, Sequential, activations

F = torch.nn.functional
pytestmark = pytest.mark.oracle

TORCH_ACTIVATIONS = {
    "linear": lambda t: t,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.01),
    "elu": F.elu,
    "softmax": lambda t: torch.softmax(t, dim=-1),
}


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_activation_values_equal_torch(name):
    z = np.random.default_rng(0).normal(scale=3, size=(6, 5))
    expected = TORCH_ACTIVATIONS[name](torch.tensor(z)).numpy()
    np.testing.assert_allclose(activations.get(name).value(z), expected, rtol=1e-12, atol=1e-15)

# output activation and torch cost (on the output a, or on the last z when fused)
CASES = {
    "sum_squares": ("linear", lambda a, z, y: ((a - y) ** 2).sum(1).mean()),
    "mse": ("linear", lambda a, z, y: F.mse_loss(a, y)),
    "mae": ("tanh", lambda a, z, y: F.l1_loss(a, y)),
    "huber": ("linear", lambda a, z, y: F.huber_loss(a, y, delta=1.0)),
    "binary_crossentropy": ("sigmoid", lambda a, z, y: F.binary_cross_entropy_with_logits(z, y)),
    "categorical_crossentropy": ("softmax", lambda a, z, y: F.cross_entropy(z, y)),
    "sparse_categorical_crossentropy": ("softmax", lambda a, z, y: F.cross_entropy(z, y)),
}
L2_FACTOR = 0.01


def build(loss: str, dtype: str):
    output, _ = CASES[loss]
    n_out = 1 if loss == "binary_crossentropy" else 4
    model = Sequential(
        [
            Dense(16, "relu", input_dim=6),
            Dropout(0.3),
            Dense(12, "elu", kernel_regularizer=L2_FACTOR),
            Dense(10, "leaky_relu"),
            Dense(8),
            Activation("sigmoid"),
            Dense(8, "tanh"),
            Dense(n_out, output),
        ],
        dtype=dtype,
        seed=1,
    )
    model.compile("sgd", loss)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(32, 6))
    if loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, n_out, 32)
    elif loss in ("categorical_crossentropy",):
        y = np.eye(n_out)[rng.integers(0, n_out, 32)]
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, (32, 1)).astype(float)
    else:
        y = rng.normal(size=(32, n_out))
    return model, X, y


def torch_reference(model, X, y, loss, dtype):
    """The same network written directly in torch: z = a_prev @ W + b, a = σ(z)."""
    tdtype = getattr(torch, dtype)
    params = [
        torch.tensor(p.astype(dtype), dtype=tdtype, requires_grad=True)
        for layer in model.layers
        for p in layer.params.values()
    ]
    x = torch.tensor(np.asarray(X, dtype=dtype), requires_grad=True)
    a, z, it, penalty = x, None, iter(params), 0
    for layer in model.layers:
        if isinstance(layer, Dense):
            W, b = next(it), next(it)
            z = a @ W + b
            a = TORCH_ACTIVATIONS[layer.activation](z)
            if layer.kernel_regularizer is not None:
                penalty = penalty + layer.kernel_regularizer.l2 * (W**2).sum()
        elif isinstance(layer, Activation):
            z, a = a, TORCH_ACTIVATIONS[layer.activation](a)
    ty = torch.tensor(y) if loss == "sparse_categorical_crossentropy" else torch.tensor(y, dtype=tdtype)
    cost = CASES[loss][1](a, z, ty) + penalty
    cost.backward()
    return a.detach().numpy(), cost.item(), [p.grad.numpy() for p in params], x.grad.numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", sorted(CASES))
def test_network_forward_cost_and_gradients_equal_torch(loss, dtype):
    model, X, y = build(loss, dtype)
    rtol = 1e-10 if dtype == "float64" else 1e-4
    a_ref, cost_ref, grads_ref, dX_ref = torch_reference(model, X, y, loss, dtype)

    np.testing.assert_allclose(model.predict(X), a_ref, rtol=rtol, atol=rtol * np.abs(a_ref).max())
    cost, dX = model.compute_gradients(X, y)
    assert np.isclose(cost, cost_ref, rtol=rtol)
    grads = [g for layer in model.layers for g in layer.grads.values()]
    assert len(grads) == len(grads_ref)
    for mine, ref in zip(grads, grads_ref, strict=True):
        assert mine.dtype == np.dtype(dtype)
        np.testing.assert_allclose(mine, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    np.testing.assert_allclose(dX, dX_ref, rtol=rtol, atol=rtol * np.abs(dX_ref).max())
