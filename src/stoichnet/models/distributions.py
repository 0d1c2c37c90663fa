"""The arithmetic of predictive distributions, shared by the estimators, the ensembles and
the saved networks (``stoichnet predict``): from network outputs to a mean and a
standard deviation per row, in the target's unit.

Two rules, both the law of total variance of an equally weighted mixture:

- :func:`from_passes`: the passes of one network (one pass, or Monte-Carlo dropout's
  passes), each output [mean] or [mean, log scale] (an aleatoric head);
- :func:`mixture`: the members of an ensemble, each a (mean, sigma).
"""

from __future__ import annotations

import math

import numpy as np

STD_PER_SCALE = {"gaussian_nll": 1.0, "laplace_nll": math.sqrt(2)}
"""Standard deviation of the head's distribution per unit of its scale e^s: sigma for the
Gaussian, sqrt(2) b for the Laplace."""


def from_passes(passes, loss: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, epistemic, aleatoric), (n_samples,) float64 each, of a network's passes.

    Args:
        passes: (n_passes, n_samples, n_outputs) outputs: column 0 the mean, column 1 the
            log scale when ``loss`` is a likelihood (one of :data:`STD_PER_SCALE`).
        loss: the network's training loss name.
    Returns the mean of the passes' means, their standard deviation (0 for one pass) and
    the root mean over passes of the head's variance (0 without a head).
    """
    passes = np.asarray(passes, dtype=np.float64)
    means = passes[:, :, 0]
    mean, epistemic = means.mean(axis=0), means.std(axis=0)
    if loss in STD_PER_SCALE:
        aleatoric = STD_PER_SCALE[loss] * np.sqrt(np.mean(np.exp(2 * passes[:, :, 1]), axis=0))
    else:
        aleatoric = np.zeros_like(mean)
    return mean, epistemic, aleatoric


def mixture(means, sigmas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, epistemic, aleatoric) of K members' (K, n_samples) means and sigmas: the
    mean of the means, their standard deviation, and the root mean of the variances."""
    means = np.asarray(means, dtype=np.float64)
    sigmas = np.broadcast_to(np.asarray(sigmas, dtype=np.float64), means.shape)
    return means.mean(axis=0), means.std(axis=0), np.sqrt(np.mean(sigmas**2, axis=0))
