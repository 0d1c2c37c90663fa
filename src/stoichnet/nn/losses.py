"""Cost functions C(a, y) and their gradients dC/da, as small pure functions, plus metrics.

``a`` (y_pred) is the network output (n_samples, n_outputs); ``y`` (y_true) has
the same shape, except for ``sparse_categorical_crossentropy`` where it holds
integer class indices (n_samples,). Every cost is averaged over the samples of
the batch and the gradients include that 1/n, so dC/da is the gradient of the
batch cost. Cross-entropies on probabilities clip them to [1e-7, 1 - 1e-7] as
Keras does; when the output layer's activation is the loss's
``fused_activation`` (sigmoid for binary, softmax for categorical), the model
instead uses ``value_from_logits`` / ``gradient_from_logits`` on z, which are
exact and stable (dC/dz = (a - y) / n).

The likelihood losses ``gaussian_nll`` and ``laplace_nll`` are for a network that
predicts a distribution: its output has two columns per target, a = [μ | s] with the k
means μ = a[:, :k] first and the k log scales s = a[:, k:] after them (s = log σ for the
Gaussian, log b for the Laplace), while y has the k targets (n_samples, k). They are
averaged over the n·k (sample, target) entries, as PyTorch's ``GaussianNLLLoss(full=True)``.
Training on them gives the network an aleatoric uncertainty (CrabNet's and Roost's
"robust" heads); ``Loss.outputs_per_target`` tells ``Sequential`` the widths differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPSILON = 1e-7
HUBER_DELTA = 1.0


def sum_squares(a, y):
    """C = Σ_j (a_j - y_j)² per sample, averaged over the n samples (the lecture's cost)."""
    d = a - y
    return float(np.vdot(d, d)) / a.shape[0]


def sum_squares_gradient(a, y):
    """dC/da = 2 (a - y) / n."""
    return (a - y) * (2.0 / a.shape[0])


def mse(a, y):
    """Mean of (a - y)² over all n·k entries (Keras' and PyTorch's MSE)."""
    d = a - y
    return float(np.vdot(d, d)) / a.size


def mse_gradient(a, y):
    """dC/da = 2 (a - y) / (n k)."""
    return (a - y) * (2.0 / a.size)


def mae(a, y):
    """Mean of |a - y| over all entries."""
    return float(np.abs(a - y).sum(dtype=np.float64)) / a.size


def mae_gradient(a, y):
    """dC/da = sign(a - y) / (n k) (0 where a == y, as in PyTorch)."""
    g = np.sign(a - y)
    g *= 1.0 / a.size
    return g


def huber(a, y):
    """Mean over entries of ½d² where |d| <= 1, else |d| - ½ (d = a - y, δ = 1)."""
    d = np.abs(a - y)
    quadratic = np.minimum(d, HUBER_DELTA)
    return float((0.5 * quadratic * quadratic + HUBER_DELTA * (d - quadratic)).sum(dtype=np.float64)) / a.size


def huber_gradient(a, y):
    """dC/da = clip(a - y, -1, 1) / (n k)."""
    g = np.clip(a - y, -HUBER_DELTA, HUBER_DELTA)
    g *= 1.0 / a.size
    return g


def binary_crossentropy(a, y):
    """-mean[y log a + (1 - y) log(1 - a)] over entries, a clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(a, EPSILON, 1 - EPSILON)
    return -float((y * np.log(p) + (1 - y) * np.log1p(-p)).sum(dtype=np.float64)) / a.size


def binary_crossentropy_gradient(a, y):
    """dC/da = (a - y) / (a (1 - a)) / (n k); 0 where the clip is active."""
    p = np.clip(a, EPSILON, 1 - EPSILON)
    g = (p - y) / (p * (1 - p)) * (1.0 / a.size)
    g[(a < EPSILON) | (a > 1 - EPSILON)] = 0
    return g


def binary_crossentropy_from_logits(z, y):
    """The same cost on logits z (a = sigmoid(z)): mean[max(z, 0) - z y + log(1 + e^-|z|)]."""
    c = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(c.sum(dtype=np.float64)) / z.size


def binary_crossentropy_logits_gradient(z, a, y):
    """dC/dz = (a - y) / (n k)."""
    return (a - y) * (1.0 / z.size)


def categorical_crossentropy(a, y):
    """-Σ_j y_j log a_j per sample (a clipped), averaged over samples; y one-hot or soft."""
    p = np.clip(a, EPSILON, 1 - EPSILON)
    return -float((y * np.log(p)).sum(dtype=np.float64)) / a.shape[0]


def categorical_crossentropy_gradient(a, y):
    """dC/da = -y / a / n; 0 where the clip is active."""
    p = np.clip(a, EPSILON, 1 - EPSILON)
    g = -y / p * (1.0 / a.shape[0])
    g[(a < EPSILON) | (a > 1 - EPSILON)] = 0
    return g


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def categorical_crossentropy_from_logits(z, y):
    """The same cost on logits (a = softmax(z)): -Σ_j y_j log_softmax(z)_j, averaged."""
    return -float((y * _log_softmax(z)).sum(dtype=np.float64)) / z.shape[0]


def categorical_crossentropy_logits_gradient(z, a, y):
    """dC/dz = (a Σ_j y_j - y) / n  (= (a - y) / n for one-hot y)."""
    return (a * y.sum(axis=-1, keepdims=True) - y) * (1.0 / z.shape[0])


def _label_index(y):
    return (np.arange(y.shape[0]), y.reshape(-1))


def sparse_categorical_crossentropy(a, y):
    """-log a[i, y_i] (a clipped), averaged; y: integer classes (n,)."""
    p = np.clip(a[_label_index(y)], EPSILON, 1 - EPSILON)
    return -float(np.log(p).sum(dtype=np.float64)) / a.shape[0]


def sparse_categorical_crossentropy_gradient(a, y):
    """dC/da = -1 / a[i, y_i] / n at the label, 0 elsewhere."""
    g = np.zeros_like(a)
    idx = _label_index(y)
    p = a[idx]
    inside = (p >= EPSILON) & (p <= 1 - EPSILON)
    g[idx] = np.where(inside, -1.0 / np.clip(p, EPSILON, 1), 0) * (1.0 / a.shape[0])
    return g


def sparse_categorical_crossentropy_from_logits(z, y):
    """The same cost on logits: -log_softmax(z)[i, y_i], averaged."""
    return -float(_log_softmax(z)[_label_index(y)].sum(dtype=np.float64)) / z.shape[0]


def sparse_categorical_crossentropy_logits_gradient(z, a, y):
    """dC/dz = (a - onehot(y)) / n."""
    g = a.copy()
    g[_label_index(y)] -= 1
    g *= 1.0 / z.shape[0]
    return g


LOG_2PI = float(np.log(2 * np.pi))
LOG_2 = float(np.log(2.0))


def split_distribution(a):
    """(μ, s): the means a[:, :k] and log scales a[:, k:] of a (n_samples, 2k) output."""
    k = a.shape[-1] // 2
    return a[..., :k], a[..., k:]


def gaussian_nll(a, y):
    """Mean over entries of -log N(y; μ, σ²) = ½ log 2π + s + ½ (y - μ)² e^(-2s), s = log σ.

    a: (n, 2k) = [μ | s]; y: (n, k). The value of ``torch.nn.GaussianNLLLoss(full=True)``
    with var = e^(2s) (without its clamp of var at 1e-6)."""
    mu, s = split_distribution(a)
    z = (y - mu) * np.exp(-s)
    return float((0.5 * LOG_2PI + s + 0.5 * z * z).sum(dtype=np.float64)) / y.size


def gaussian_nll_gradient(a, y):
    """dC/dμ = (μ - y) e^(-2s) / (n k); dC/ds = (1 - (y - μ)² e^(-2s)) / (n k)."""
    mu, s = split_distribution(a)
    inv_var = np.exp(-2 * s)
    r = mu - y
    return np.concatenate([r * inv_var, 1 - r * r * inv_var], axis=-1) * (1.0 / y.size)


def laplace_nll(a, y):
    """Mean over entries of -log Laplace(y; μ, b) = log 2 + s + |y - μ| e^(-s), s = log b.

    a: (n, 2k) = [μ | s]; y: (n, k). The robust L1 likelihood: at fixed b its μ-gradient
    is MAE's, scaled by 1/b."""
    mu, s = split_distribution(a)
    return float((LOG_2 + s + np.abs(y - mu) * np.exp(-s)).sum(dtype=np.float64)) / y.size


def laplace_nll_gradient(a, y):
    """dC/dμ = sign(μ - y) e^(-s) / (n k) (0 where μ == y); dC/ds = (1 - |y - μ| e^(-s)) / (n k)."""
    mu, s = split_distribution(a)
    inv_b = np.exp(-s)
    r = mu - y
    return np.concatenate([np.sign(r) * inv_b, 1 - np.abs(r) * inv_b], axis=-1) * (1.0 / y.size)


@dataclass(frozen=True)
class Loss:
    """One registry entry: the cost, its gradient, and the fused-with-activation forms."""

    name: str
    value: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    fused_activation: str | None = None
    value_from_logits: Callable | None = None
    gradient_from_logits: Callable | None = None
    outputs_per_target: int = 1

    @property
    def distributional(self) -> bool:
        """True when the network predicts a distribution, [μ | log scale] per target."""
        return self.outputs_per_target == 2

    @property
    def sparse_labels(self) -> bool:
        """True when y_true holds integer class indices rather than one column per output."""
        return self.name == "sparse_categorical_crossentropy"


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("sum_squares", sum_squares, sum_squares_gradient),
        Loss("mse", mse, mse_gradient),
        Loss("mae", mae, mae_gradient),
        Loss("huber", huber, huber_gradient),
        Loss(
            "binary_crossentropy",
            binary_crossentropy,
            binary_crossentropy_gradient,
            "sigmoid",
            binary_crossentropy_from_logits,
            binary_crossentropy_logits_gradient,
        ),
        Loss(
            "categorical_crossentropy",
            categorical_crossentropy,
            categorical_crossentropy_gradient,
            "softmax",
            categorical_crossentropy_from_logits,
            categorical_crossentropy_logits_gradient,
        ),
        Loss(
            "sparse_categorical_crossentropy",
            sparse_categorical_crossentropy,
            sparse_categorical_crossentropy_gradient,
            "softmax",
            sparse_categorical_crossentropy_from_logits,
            sparse_categorical_crossentropy_logits_gradient,
        ),
        Loss("gaussian_nll", gaussian_nll, gaussian_nll_gradient, outputs_per_target=2),
        Loss("laplace_nll", laplace_nll, laplace_nll_gradient, outputs_per_target=2),
    )
}

ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae"}


def _key(name, what: str) -> str:
    """``name`` lower-cased, an alias replaced by its loss; TypeError unless a string."""
    if not isinstance(name, str):
        raise TypeError(f"{what}, got {name!r} ({type(name).__name__})")
    return ALIASES.get(name.lower(), name.lower())


def get(name) -> Loss:
    """The loss called ``name`` (case is ignored; or a ``Loss``); another type raises
    TypeError, an unknown name ValueError listing the valid ones."""
    if isinstance(name, Loss):
        return name
    key = _key(name, "loss must be a name or a Loss")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses are {sorted(LOSSES)}")
    return LOSSES[key]


def accuracy(a, y, sparse_labels: bool = False):
    """Fraction of samples whose predicted class is right: argmax for several outputs
    (y one-hot, or class indices when ``sparse_labels``), a > 0.5 for one output."""
    if sparse_labels:
        return float(np.mean(a.argmax(axis=-1) == y.reshape(-1)))
    if a.shape[-1] == 1:
        return float(np.mean((a > 0.5) == (y > 0.5)))
    return float(np.mean(a.argmax(axis=-1) == y.argmax(axis=-1)))


METRICS = ("accuracy", *LOSSES)


def get_metric(name: str, loss: Loss) -> Callable[[np.ndarray, np.ndarray], float]:
    """metric(y_pred, y_true) -> float for a metric name ("mae", "mse", "accuracy" or any
    loss name); ``loss`` tells how labels are encoded (class indices are one-hot encoded
    for a metric that compares whole output rows, and back) and whether the outputs are
    distributions (a point metric such as "mae" then scores the means μ). A non-string
    raises TypeError, an unknown name ValueError (so does a likelihood metric under a
    point loss)."""
    key = _key(name, "metric must be a name")
    if key in ("accuracy", "acc"):
        return lambda a, y: accuracy(a, y, loss.sparse_labels)
    if key not in LOSSES:
        raise ValueError(f"unknown metric {name!r}; valid metrics are {sorted(METRICS)}")
    metric = LOSSES[key]
    if metric.distributional and not loss.distributional:
        raise ValueError(
            f"metric {name!r} scores a predicted distribution (mean and log scale per "
            f"target), but the loss {loss.name!r} trains one value per target"
        )
    if loss.distributional and not metric.distributional:  # score the predicted means
        return lambda a, y: metric.value(split_distribution(a)[0], y)
    if loss.sparse_labels and not metric.sparse_labels:  # class indices -> one-hot rows
        return lambda a, y: metric.value(
            a, np.eye(a.shape[-1], dtype=a.dtype)[y.reshape(-1).astype(np.intp)])
    if metric.sparse_labels and not loss.sparse_labels:  # one-hot rows -> class indices
        return lambda a, y: metric.value(a, y.argmax(axis=-1))
    return metric.value

