"""How honest are a model's error bars: calibration metrics and recalibration.

Every function takes the true targets ``y``, the predicted means ``mean`` and the
predicted standard deviations ``sigma`` as (n_rows,) arrays in the target's unit
(e.g. eV/atom), and reads (mean, sigma) as a Gaussian predictive distribution.

The central idea is each row's *level*: the coverage of the smallest central interval
mean ± z·sigma that contains y, u = 2 Φ(|y - mean| / sigma) - 1 in [0, 1]. For a
calibrated model u is uniform, so the fraction of rows with u <= p (the observed
coverage of the central p interval) equals p for every p: the calibration curve is the
diagonal. Metrics (Tran et al. 2020; Kuleshov et al. 2018):

- coverage of the central 68% and 95% intervals;
- miscalibration area: the area between the observed-vs-expected coverage curve and the
  diagonal, integrated exactly over p in [0, 1] (0 for a perfect model; 0.5 at worst);
- Gaussian negative log-likelihood per row (lower is better; in nats);
- sharpness: the root mean square sigma (the target's unit; smaller is sharper);
- Spearman's rank correlation between sigma and |error| (do larger bars mark larger errors?).

Recalibration (:func:`fit_recalibration`) is fitted on validation rows only and then
applied to any other rows: a sigma scale factor s (the closed-form minimiser of the
Gaussian NLL, s² = mean((y - mean)² / sigma²)) or an isotonic map of the levels
(Kuleshov et al. 2018). A :class:`Recalibration` is a small JSON-serialisable object, stored in
a model card. With fewer than :data:`MIN_CALIBRATION_ROWS` rows it warns and keeps the raw
sigma.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special, stats
from sklearn.isotonic import IsotonicRegression

from stoichnet.util.checks import check_choice, check_int, check_real

LEVELS = (0.68, 0.95)
"""The central intervals whose coverage is reported."""

METHODS = ("scale", "isotonic")
"""Recalibration methods of :func:`fit_recalibration`."""

MIN_CALIBRATION_ROWS = 20
"""Fewest validation rows a recalibration is fitted on (fewer: a warning, raw sigma kept)."""

MAX_KNOTS = 256
"""Most points an isotonic recalibration keeps, evenly spaced in rank among its fitted
points (so the map moves by about 1/255 in level between two): a model card holds a few
kB, not one point per validation row."""

ONE_SIGMA = math.erf(1 / math.sqrt(2))
"""0.6827: the level of the interval mean ± sigma."""


def _rows(y, mean, sigma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays as float64 (n,), checked: equal lengths, finite, sigma >= 0."""
    arrays = []
    for name, values in (("y", y), ("mean", mean), ("sigma", sigma)):
        a = np.asarray(values, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has {int((~np.isfinite(a)).sum())} NaN or infinite value(s)")
        arrays.append(a)
    y, mean, sigma = arrays
    if not len(y) == len(mean) == len(sigma):
        raise ValueError(f"y, mean and sigma differ in length: {len(y)}, {len(mean)}, {len(sigma)}")
    if (sigma < 0).any():
        raise ValueError(f"sigma must be >= 0, got {sigma.min():g}")
    return y, mean, sigma


def standardized_errors(y, mean, sigma) -> np.ndarray:
    """(n,) |y - mean| / sigma; a row with sigma 0 gives 0 if its error is 0, else inf."""
    y, mean, sigma = _rows(y, mean, sigma)
    error = np.abs(y - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = error / sigma
    return np.where(error == 0, 0.0, z)


def levels(y, mean, sigma) -> np.ndarray:
    """(n,) each row's level u = 2 Φ(|y - mean| / sigma) - 1: the coverage of the smallest
    central Gaussian interval that contains y (uniform on [0, 1] when calibrated)."""
    return special.erf(standardized_errors(y, mean, sigma) / math.sqrt(2))


def z_of_level(level) -> np.ndarray:
    """Half-width in sigmas of the central interval of coverage ``level``: Φ⁻¹(½ + level/2)
    (1.96 for 0.95)."""
    return math.sqrt(2) * special.erfinv(np.asarray(level, dtype=np.float64))


def interval_coverage(y, low, high) -> float:
    """Fraction of the (n,) ``y`` inside their intervals [low, high] ((n,) each), for
    intervals that are not mean ± z·sigma (e.g. a forest's tree quantiles)."""
    y, low, high = (np.asarray(a, dtype=np.float64) for a in (y, low, high))
    if not y.shape == low.shape == high.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"y, low and high must be non-empty 1-D arrays of one length, got "
                         f"shapes {y.shape}, {low.shape}, {high.shape}")
    return float(np.mean((low <= y) & (y <= high)))


def coverage_curve(u, expected) -> np.ndarray:
    """Observed coverage of each expected level: the fraction of rows with u <= p, for
    each p in ``expected``. u: (n,) levels (:func:`levels`); expected: (m,) in [0, 1]."""
    u = np.sort(np.asarray(u, dtype=np.float64))
    return np.searchsorted(u, np.asarray(expected, dtype=np.float64), side="right") / len(u)


def area_from_levels(u) -> float:
    """∫₀¹ |F(p) - p| dp, exact, for F the empirical CDF of the (n,) levels ``u``.

    Between consecutive sorted levels F is constant (j / n), and the integral of
    |c - p| from a to b is (sgn(b - c)(b - c)² - sgn(a - c)(a - c)²) / 2."""
    u = np.sort(np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0))
    n = len(u)
    edges = np.concatenate([[0.0], u, [1.0]])
    a, b, c = edges[:-1], edges[1:], np.arange(n + 1) / n
    return float(np.sum(np.sign(b - c) * (b - c) ** 2 - np.sign(a - c) * (a - c) ** 2) / 2)


def miscalibration_area(y, mean, sigma) -> float:
    """Area between the observed-vs-expected coverage curve of the central intervals and
    the diagonal (0 = calibrated, 0.5 = worst)."""
    return area_from_levels(levels(y, mean, sigma))


def gaussian_nll(y, mean, sigma) -> float:
    """Mean over rows of -log N(y; mean, sigma²) (nats; inf if a sigma is 0 where the
    error is not)."""
    y, mean, sigma = _rows(y, mean, sigma)
    z = standardized_errors(y, mean, sigma)
    with np.errstate(divide="ignore"):
        return float(np.mean(0.5 * math.log(2 * math.pi) + np.log(sigma) + 0.5 * z * z))


def sharpness(sigma) -> float:
    """Root mean square of the (n,) sigmas, in the target's unit."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return float(np.sqrt(np.mean(sigma * sigma)))


def error_rank_correlation(y, mean, sigma) -> float:
    """Spearman's correlation between sigma and |y - mean| (NaN when sigma is constant)."""
    y, mean, sigma = _rows(y, mean, sigma)
    if np.ptp(sigma) == 0 or np.ptp(np.abs(y - mean)) == 0:
        return math.nan
    return float(stats.spearmanr(sigma, np.abs(y - mean)).statistic)


@dataclass(frozen=True)
class Recalibration:
    """A map from raw to calibrated uncertainty, fitted on validation rows.

    Attributes:
        method: "none" (raw sigma), "scale" (sigma <- scale * sigma) or "isotonic"
            (a row's level is g(z), g the piecewise-linear monotone map through
            (``knots``, ``observed``) from (0, 0), z = |y - mean| / sigma).
        scale: the sigma factor of "scale" (1 otherwise).
        knots, observed: the isotonic map's points, standardized errors z and the
            fraction of validation rows at or below them (empty otherwise; at most
            :data:`MAX_KNOTS` of the fitted points). The map is
            fitted on z rather than on the raw levels 2 Φ(z) - 1, the same map in exact
            arithmetic, because those round to 1 beyond z = 8.
        n_rows: validation rows it was fitted on.
        note: why it is "none" when a fit was asked for ("" otherwise).
    """

    method: str = "none"
    scale: float = 1.0
    knots: tuple[float, ...] = ()
    observed: tuple[float, ...] = ()
    n_rows: int = 0
    note: str = ""

    def levels(self, z) -> np.ndarray:
        """The recalibrated levels of rows with standardized errors ``z`` (n,)
        (:func:`standardized_errors`; taken rather than the raw levels, which round to 1
        beyond z = 8 and would lose what a large scale brings back)."""
        z = np.asarray(z, dtype=np.float64)
        if self.method == "isotonic":  # beyond the last knot: 1, outside every interval
            return np.interp(z, self.knots, self.observed, right=1.0)
        return special.erf(z / (self.scale * math.sqrt(2)))

    def factor(self, level: float) -> float:
        """Raw sigma -> recalibrated sigma factor for the central ``level`` interval: its
        half-width is z_of_level(level) * factor(level) * sigma. Level-independent for
        "scale"; for "isotonic" the raw level whose image is ``level``, in sigmas."""
        if self.method == "scale":
            return self.scale
        if self.method == "none":
            return 1.0
        # invert g on its strictly increasing points: the smallest z mapped to level
        observed, first = np.unique(np.asarray(self.observed), return_index=True)
        z = float(np.interp(level, observed, np.asarray(self.knots)[first]))
        return z / float(z_of_level(level))

    def sigma(self, sigma) -> np.ndarray:
        """The recalibrated (n,) sigma: the half-width of the recalibrated 1-sigma (68.27%)
        interval (for "isotonic" the intervals of other levels scale differently; use
        :meth:`interval` for them)."""
        return np.asarray(sigma, dtype=np.float64) * self.factor(ONE_SIGMA)

    def interval(self, mean, sigma, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) bounds of the recalibrated central ``level`` interval, (n,) each."""
        level = check_real("level", level, 0, 1, low_open=True)
        half = z_of_level(level) * self.factor(level) * np.asarray(sigma, dtype=np.float64)
        mean = np.asarray(mean, dtype=np.float64)
        return mean - half, mean + half

    def to_dict(self) -> dict:
        """JSON-serialisable form (for a model card); :meth:`from_dict` reads it back."""
        return asdict(self) | {"knots": list(self.knots), "observed": list(self.observed)}

    @classmethod
    def from_dict(cls, data: dict) -> Recalibration:
        check_choice("recalibration method", data.get("method"), ("none", *METHODS))
        return cls(data["method"], float(data.get("scale", 1.0)),
                   tuple(map(float, data.get("knots", ()))),
                   tuple(map(float, data.get("observed", ()))),
                   int(data.get("n_rows", 0)), str(data.get("note", "")))


def fit_recalibration(y_val, mean_val, sigma_val, method: str = "scale",
                      min_rows: int = MIN_CALIBRATION_ROWS) -> Recalibration:
    """Fit a :class:`Recalibration` on validation rows (never on the test rows).

    Args:
        y_val, mean_val, sigma_val: (n_val,) targets, predicted means and sigmas.
        method: "scale" (s = sqrt(mean(z²)), z = (y - mean) / sigma, which minimises the
            Gaussian NLL of s * sigma) or "isotonic" (scikit-learn's
            ``IsotonicRegression`` from each row's |z| (equivalently its level) to the
            fraction of rows at or below it, Kuleshov et al. 2018).
        min_rows: fewest rows to fit on.
    Warns (``UserWarning``) and returns ``Recalibration("none", note=...)`` (raw sigma) when
    there are fewer than ``min_rows`` rows, or the scale cannot be fitted (every sigma 0,
    or a sigma of 0 on a row with an error).
    """
    check_choice("method", method, METHODS)
    min_rows = check_int("min_rows", min_rows, 2)
    z = standardized_errors(y_val, mean_val, sigma_val)
    n = len(z)
    note = ""
    if n < min_rows:
        note = (f"calibration set too small: {n} validation row(s), at least {min_rows} are "
                "needed to fit a recalibration; the raw sigma is kept")
    elif not np.isfinite(z).all():
        note = (f"{int((~np.isfinite(z)).sum())} validation row(s) have sigma 0 and a nonzero "
                "error: no recalibration covers them; the raw sigma is kept")
    elif method == "scale" and not (z > 0).any():
        note = "every validation error is 0: no scale can be fitted; the raw sigma is kept"
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
        return Recalibration(n_rows=n, note=note)
    if method == "scale":
        return Recalibration("scale", float(np.sqrt(np.mean(z * z))), n_rows=n)
    z = np.sort(z)
    observed = np.arange(1, n + 1) / n
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(z, observed)
    knots = np.concatenate([[0.0], iso.X_thresholds_])
    values = np.concatenate([[0.0], iso.y_thresholds_])
    # np.interp needs increasing knots: of equal ones keep the last (the fitted, not (0, 0))
    keep = np.flatnonzero(np.concatenate([np.diff(knots) > 0, [True]]))
    keep = keep[np.unique(np.linspace(0, len(keep) - 1, min(len(keep), MAX_KNOTS)).round()
                          .astype(int))]  # the first (0, 0) and the last point stay
    return Recalibration("isotonic", knots=tuple(knots[keep].tolist()),
                         observed=tuple(values[keep].tolist()), n_rows=n)


def calibration_report(y, mean, sigma, recalibration: Recalibration | None = None) -> dict:
    """The calibration metrics of (y, mean, sigma), recalibrated first if given.

    Returns {"rows", "coverage 68%", "coverage 95%", "miscalibration area", "NLL",
    "sharpness", "Spearman(sigma, |error|)"}: coverages are fractions of rows; with an
    isotonic recalibration NLL and sharpness use its 1-sigma interval's sigma.
    """
    recalibration = recalibration or Recalibration()
    y, mean, sigma = _rows(y, mean, sigma)
    u = recalibration.levels(standardized_errors(y, mean, sigma))
    calibrated = recalibration.sigma(sigma)
    report = {"rows": len(y)}
    for level in LEVELS:
        report[f"coverage {level:.0%}"] = float(np.mean(u <= level))
    return report | {
        "miscalibration area": area_from_levels(u),
        "NLL": gaussian_nll(y, mean, calibrated),
        "sharpness": sharpness(calibrated),
        "Spearman(sigma, |error|)": error_rank_correlation(y, mean, sigma),
    }
