"""Layer normalization (Ba, Kiros & Hinton 2016)."""

from __future__ import annotations

import numpy as np

from stoichnet.util.checks import check_real

from .base import Layer, register_layer


@register_layer
class LayerNorm(Layer):
    """Normalises each sample's last axis: μ and σ² = mean((x - μ)²) over its d entries,
    x̂ = (x - μ) / sqrt(σ² + eps), a = γ ⊙ x̂ + β; as ``torch.nn.LayerNorm(d, eps=1e-5)``.

    Args:
        epsilon: added to the variance (PyTorch's eps).
    Parameters: ``gamma`` (d,) starting at 1 and ``beta`` (d,) at 0 (torch's weight, bias).
    Input (n, ..., d) -> same shape. For the members of sets wrap it: ``PerMember(LayerNorm())``.
    """

    def __init__(self, epsilon: float = 1e-5, name: str | None = None):
        super().__init__(name)
        self.epsilon = check_real("epsilon", epsilon, 0.0, low_open=True)

    def build(self, input_shape, rng, dtype) -> None:
        d = int(input_shape[-1])
        self.params = {"gamma": np.ones(d, dtype=dtype), "beta": np.zeros(d, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        var = np.mean(xc * xc, axis=-1, keepdims=True)
        self.inv_std = 1.0 / np.sqrt(var + self.epsilon)
        self.x_hat = xc * self.inv_std
        return self.x_hat * self.params["gamma"] + self.params["beta"]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """dγ = Σ dC/da ⊙ x̂, dβ = Σ dC/da (over all but the last axis); with g = dC/da ⊙ γ,
        dC/dx = (g - mean(g) - x̂ · mean(g ⊙ x̂)) / sqrt(σ² + eps)."""
        axes = tuple(range(grad_out.ndim - 1))
        np.sum(grad_out * self.x_hat, axis=axes, out=self.grads["gamma"])
        np.sum(grad_out, axis=axes, out=self.grads["beta"])
        g = grad_out * self.params["gamma"]
        mean_g = g.mean(axis=-1, keepdims=True)
        mean_gx = np.mean(g * self.x_hat, axis=-1, keepdims=True)
        return (g - mean_g - self.x_hat * mean_gx) * self.inv_std

    def get_config(self) -> dict:
        return {"epsilon": self.epsilon, "name": self.name}
