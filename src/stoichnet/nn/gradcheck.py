"""Gradient checking: compare backpropagation with central finite differences."""

from __future__ import annotations

import numpy as np

from stoichnet.util.checks import check_real


def _relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both vanish."""
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


def gradcheck(model, X, y, eps: float = 1e-6, details: bool = False):
    """Check a compiled float64 model's backward pass against central differences.

    For every parameter θ and every input entry x, the numeric derivative is
    (C(θ + eps) - C(θ - eps)) / (2 eps), with C the total cost (loss plus
    regularization) in inference mode (dropout off). The error of each block
    (every parameter array, and the input X) is ||analytic - numeric|| /
    (||analytic|| + ||numeric||); values below ~1e-7 mean the gradients agree.

    Args:
        model: a compiled ``Sequential`` with dtype "float64" (float32 is too
            coarse for finite differences); built from X if needed.
        X, y: a small batch (the cost is evaluated 2 × (n_params + X.size) times).
        eps: the finite-difference step, a float > 0.
    Returns the largest block error, or with ``details`` a dict
    ``{"dense/W": err, ..., "X": err}``.
    """
    eps = check_real("eps", eps, 0.0, low_open=True)
    if model.dtype != np.float64:
        raise ValueError(
            f"gradcheck needs a float64 model, got {model.dtype}: build it with "
            "Sequential(..., dtype='float64')"
        )
    model._require_compiled("gradcheck")
    X, y = model._check_xy(X, y, build=True)
    fused = model._fused()

    def cost() -> float:
        y_pred = model._forward(X, training=False)
        return model._cost(y_pred, y, fused) + model._regularization()

    def numeric(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(-1)
        grad = np.empty_like(flat)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = cost()
            flat[i] = saved - eps
            minus = cost()
            flat[i] = saved
            grad[i] = (plus - minus) / (2 * eps)
        return grad.reshape(values.shape)

    y_pred = model._forward(X, training=False)
    dX = model._backward(y_pred, y, fused).copy()
    analytic = model.flat_grads.copy()

    errors = {}
    offset = 0
    for layer in model.layers:
        for key, value in layer.params.items():
            block = analytic[offset : offset + value.size].reshape(value.shape)
            errors[f"{layer.name}/{key}"] = _relative_error(block, numeric(value))
            offset += value.size
    errors["X"] = _relative_error(dX, numeric(X))
    return errors if details else max(errors.values())
