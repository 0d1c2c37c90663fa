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


@dataclass(frozen=True)
class Loss:
    """One registry entry: the cost, its gradient, and the fused-with-activation forms."""

    name: str
    value: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    fused_activation: str | None = None
    value_from_logits: Callable | None = None
    gradient_from_logits: Callable | None = None

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
    for a metric that compares whole output rows, and back). A non-string raises TypeError,
    an unknown name ValueError."""
    key = _key(name, "metric must be a name")
    if key in ("accuracy", "acc"):
        return lambda a, y: accuracy(a, y, loss.sparse_labels)
    if key not in LOSSES:
        raise ValueError(f"unknown metric {name!r}; valid metrics are {sorted(METRICS)}")
    metric = LOSSES[key]
    if loss.sparse_labels and not metric.sparse_labels:  # class indices -> one-hot rows
        return lambda a, y: metric.value(
            a, np.eye(a.shape[-1], dtype=a.dtype)[y.reshape(-1).astype(np.intp)])
    if metric.sparse_labels and not loss.sparse_labels:  # one-hot rows -> class indices
        return lambda a, y: metric.value(a, y.argmax(axis=-1))
    return metric.value

