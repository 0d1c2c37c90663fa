"""Activations and costs: derivatives against central finite differences (float64)
and values against PyTorch."""

import numpy as np
import pytest

from stoichnet.nn import activations, initializers, losses

RNG = np.random.default_rng(42)
EPS = 1e-6


def numeric_gradient(f, x, eps=EPS):
    """Central differences of the scalar f at x (float64)."""
    grad = np.empty_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f(x)
        flat[i] = saved - eps
        minus = f(x)
        flat[i] = saved
        g[i] = (plus - minus) / (2 * eps)
    return grad


def rel_err(a, b):
    return np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))


def away_from_zero(shape):
    """Values in ±[0.1, 3]: keeps the relu/leaky/elu kink out of the finite differences."""
    return RNG.uniform(0.1, 3, shape) * RNG.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_activation_backward_matches_finite_differences(name):
    sigma = activations.get(name)
    z = away_from_zero((5, 4))
    da = RNG.normal(size=z.shape)
    dz = sigma.backward(da, z, sigma.value(z))
    numeric = numeric_gradient(lambda zz: float(np.sum(da * sigma.value(zz))), z)
    assert rel_err(dz, numeric) < 1e-6


@pytest.mark.parametrize("name", sorted(set(activations.ACTIVATIONS) - {"softmax"}))
def test_activation_derivative_is_the_elementwise_slope(name):
    sigma = activations.get(name)
    z = away_from_zero((3, 4))
    numeric = numeric_gradient(lambda zz: float(np.sum(sigma.value(zz))), z)
    assert rel_err(sigma.derivative(z, sigma.value(z)), numeric) < 1e-6


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_activations_keep_float32_and_write_into_out(name):
    sigma = activations.get(name)
    z = RNG.normal(size=(4, 3)).astype(np.float32)
    out = np.empty_like(z)
    a = sigma.value(z, out=out)
    assert a is out and a.dtype == np.float32
    dz = sigma.backward(np.ones_like(z), z, a, out=np.empty_like(z))
    assert dz.dtype == np.float32


def test_sigmoid_and_softmax_do_not_overflow():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    assert np.array_equal(activations.sigmoid(z), [[0.0, 0.5, 1.0]])
    assert np.allclose(activations.softmax(z), [[0, 0, 1]])


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*relu.*sigmoid"):
        activations.get("swish")


def loss_case(name):
    """(y_pred, y_true) for a loss, with y_pred in the loss's domain."""
    if name == "sparse_categorical_crossentropy":
        return activations.softmax(RNG.normal(size=(6, 4))), RNG.integers(0, 4, 6)
    if name == "categorical_crossentropy":
        return activations.softmax(RNG.normal(size=(6, 4))), np.eye(4)[RNG.integers(0, 4, 6)]
    if name == "binary_crossentropy":
        return RNG.uniform(0.05, 0.95, (6, 2)), RNG.integers(0, 2, (6, 2)).astype(float)
    if losses.get(name).distributional:  # 2 targets: [mean, mean, log scale, log scale]
        mu, y = RNG.normal(size=(6, 2)), RNG.normal(size=(6, 2))
        return np.hstack([mu, RNG.uniform(-1, 1, (6, 2))]), y
    return RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_gradient_matches_finite_differences(name):
    loss = losses.get(name)
    a, y = loss_case(name)
    numeric = numeric_gradient(lambda aa: loss.value(aa, y), a)
    assert rel_err(loss.gradient(a, y), numeric) < 1e-6


@pytest.mark.parametrize("name", [n for n, l in losses.LOSSES.items() if l.fused_activation])
def test_fused_loss_gradient_matches_finite_differences(name):
    loss = losses.get(name)
    sigma = activations.get(loss.fused_activation)
    z = RNG.normal(scale=2, size=(6, 4))
    y = loss_case(name)[1] if name != "binary_crossentropy" else RNG.integers(0, 2, z.shape) * 1.0
    numeric = numeric_gradient(lambda zz: loss.value_from_logits(zz, y), z)
    assert rel_err(loss.gradient_from_logits(z, sigma.value(z), y), numeric) < 1e-6
    # the fused value is the plain loss of the activated output
    assert np.isclose(loss.value_from_logits(z, y), loss.value(sigma.value(z), y), rtol=1e-9)


def test_fused_cross_entropy_is_finite_where_the_plain_one_clips():
    z = np.array([[200.0, -200.0]])
    loss = losses.get("categorical_crossentropy")
    assert np.isclose(loss.value_from_logits(z, np.array([[0.0, 1.0]])), 400.0)


def test_sum_squares_is_the_lecture_cost():
    a = np.array([[1.0, 2.0], [0.0, 0.0]])
    y = np.array([[0.0, 0.0], [1.0, 1.0]])
    # sample 1: 1 + 4 = 5; sample 2: 1 + 1 = 2; averaged over the 2 samples
    assert losses.sum_squares(a, y) == 3.5


def test_unknown_loss_and_metric_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown loss 'rmse'.*huber.*mae"):
        losses.get("rmse")
    with pytest.raises(ValueError, match=r"unknown metric 'r2'.*accuracy"):
        losses.get_metric("r2", losses.get("mse"))


def test_names_that_are_not_strings_raise_type_error():
    with pytest.raises(TypeError, match=r"activation must be a name or None, got 3 \(int\)"):
        activations.get(3)
    with pytest.raises(TypeError, match=r"loss must be a name or a Loss, got None"):
        losses.get(None)
    with pytest.raises(TypeError, match=r"metric must be a name, got <built-in function abs>"):
        losses.get_metric(abs, losses.get("mse"))
    with pytest.raises(TypeError, match=r"initializer must be a name, got 1.0 \(float\)"):
        initializers.get(1.0)


def test_metrics_follow_the_label_encoding_of_the_loss():
    """With class-index labels, mae/mse compare the probability rows with one-hot rows
    (this used to fail on broadcasting); a sparse metric under a one-hot loss gets indices."""
    a = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    sparse, one_hot = np.array([0, 1]), np.array([[1.0, 0, 0], [0, 1.0, 0]])
    sparse_loss, one_hot_loss = (losses.get("sparse_categorical_crossentropy"),
                                 losses.get("categorical_crossentropy"))
    # |0.7-1| + 0.2 + 0.1 + 0.1 + |0.1-1| + 0.8 = 2.4 over 6 entries
    assert np.isclose(losses.get_metric("mae", sparse_loss)(a, sparse), 0.4)
    assert np.isclose(losses.get_metric("mse", sparse_loss)(a, sparse),
                      losses.mse(a, one_hot))
    assert np.isclose(losses.get_metric("sparse_categorical_crossentropy", one_hot_loss)(
        a, one_hot), -(np.log(0.7) + np.log(0.1)) / 2)


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_values_equal_torch(name):
    import torch  # the oracle: a missing torch fails, never skips
    F = torch.nn.functional
    a, y = loss_case(name)
    ta, ty = torch.tensor(a), torch.tensor(y)
    expected = {
        "sum_squares": lambda: ((ta - ty) ** 2).sum(1).mean(),
        "mse": lambda: F.mse_loss(ta, ty),
        "mae": lambda: F.l1_loss(ta, ty),
        "huber": lambda: F.huber_loss(ta, ty, delta=1.0),
        "binary_crossentropy": lambda: F.binary_cross_entropy(ta, ty),
        "categorical_crossentropy": lambda: -(ty * ta.log()).sum(1).mean(),
        "sparse_categorical_crossentropy": lambda: F.nll_loss(ta.log(), ty),
        "gaussian_nll": lambda: torch.nn.GaussianNLLLoss(full=True)(
            ta[:, :2], ty, torch.exp(2 * ta[:, 2:])),
        "laplace_nll": lambda: torch_laplace_nll(ta, ty),
    }[name]().item()
    assert np.isclose(losses.get(name).value(a, y), expected, rtol=1e-12)


def test_accuracy_for_one_output_several_outputs_and_class_indices():
    assert losses.accuracy(np.array([[0.9], [0.2], [0.6]]), np.array([[1.0], [0.0], [0.0]])) == 2 / 3
    probs = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert losses.accuracy(probs, np.array([[0.0, 1.0], [0.0, 1.0]])) == 0.5
    assert losses.accuracy(probs, np.array([1, 0]), sparse_labels=True) == 1.0


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_fused_relu_kernels_match_the_two_pass_numpy_rules(name):
    """The fused forms of relu and leaky_relu (plus_bias and backward, one numba pass each)
    give the NumPy references' values (value, and derivative times da) for 2-D and 4-D
    arrays, into a strided ``out`` too, and let NaN through where the rule does."""
    sigma = activations.get(name)
    rng = np.random.default_rng(4)

    def reference_backward(da, a):
        return sigma.derivative(None, a) * da

    for shape in [(7, 5), (3, 4, 4, 2)]:
        z, da = rng.standard_normal(shape), rng.standard_normal(shape)
        a = sigma.value(z)
        np.testing.assert_array_equal(sigma.backward(da, None, a), reference_backward(da, a))
        out = np.empty(shape[::-1]).T  # Fortran order: not C-contiguous
        result = sigma.backward(da, None, a, out=out)
        assert result is out
        np.testing.assert_array_equal(out, reference_backward(da, a))
        da.reshape(-1)[:3] = [np.inf, -np.inf, np.nan]  # non-finite stays non-finite
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(sigma.backward(da, None, a), reference_backward(da, a))
    z, b = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    z[0, 0] = np.nan
    expected = sigma.value(z + b)
    result = sigma.plus_bias(z, b)
    assert result is z and result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)  # NaN in the same place
    assert np.isnan(result[0, 0])
    assert (result < 0).any() == (name == "leaky_relu")  # the slope is applied


def torch_laplace_nll(a, y):
    """-log Laplace(y; mu, b = e^s) averaged over entries, a = [mu | s] (written in torch)."""
    import torch
    k = y.shape[1]
    mu, s = a[:, :k], a[:, k:]
    return (torch.log(torch.tensor(2.0, dtype=a.dtype)) + s + (y - mu).abs() * torch.exp(-s)).mean()


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["gaussian_nll", "laplace_nll"])
def test_likelihood_gradients_equal_torch_autograd(name):
    """dC/d[mu | log sigma] of the likelihood losses is autograd's (float64), with
    torch.nn.GaussianNLLLoss(full=True) and var = exp(2 log sigma) as the Gaussian oracle."""
    import torch
    rng = np.random.default_rng(7)
    a = np.hstack([rng.normal(size=(9, 3)), rng.uniform(-2, 2, (9, 3))])
    y = rng.normal(size=(9, 3))
    ta, ty = torch.tensor(a, requires_grad=True), torch.tensor(y)
    if name == "gaussian_nll":
        cost = torch.nn.GaussianNLLLoss(full=True)(ta[:, :3], ty, torch.exp(2 * ta[:, 3:]))
    else:
        cost = torch_laplace_nll(ta, ty)
    cost.backward()
    loss = losses.get(name)
    assert np.isclose(loss.value(a, y), cost.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.gradient(a, y), ta.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_gaussian_nll_is_the_normal_log_density():
    """The Gaussian likelihood loss is -mean(log N(y; mu, sigma)) of scipy's density, and its
    log-sigma gradient vanishes where sigma equals the absolute error (the MLE of sigma)."""
    from scipy import stats
    rng = np.random.default_rng(3)
    mu, y, s = rng.normal(size=(5, 1)), rng.normal(size=(5, 1)), rng.uniform(-1, 1, (5, 1))
    expected = -stats.norm.logpdf(y, mu, np.exp(s)).mean()
    assert np.isclose(losses.gaussian_nll(np.hstack([mu, s]), y), expected, rtol=1e-12)
    at_mle = np.hstack([mu, np.log(np.abs(y - mu))])
    assert np.allclose(losses.gaussian_nll_gradient(at_mle, y)[:, 1], 0, atol=1e-12)
    expected = -stats.laplace.logpdf(y, mu, np.exp(s)).mean()
    assert np.isclose(losses.laplace_nll(np.hstack([mu, s]), y), expected, rtol=1e-12)


def test_point_metrics_under_a_likelihood_loss_score_the_means():
    """With a [mu | log sigma] output, "mae" compares mu with y (not the log sigma column);
    a likelihood metric under a point loss is refused, naming both."""
    a = np.array([[1.0, 0.5], [3.0, -2.0]])
    y = np.array([[0.0], [1.0]])
    assert losses.get_metric("mae", losses.get("gaussian_nll"))(a, y) == 1.5  # (1 + 2) / 2
    with pytest.raises(ValueError, match=r"metric 'laplace_nll'.*loss 'mse'"):
        losses.get_metric("laplace_nll", losses.get("mse"))
