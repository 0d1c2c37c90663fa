"""Calibration metrics and recalibration against scipy / numpy computations on synthetic
Gaussian data whose true noise is known."""

import json
import math

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats
from sklearn.isotonic import IsotonicRegression

from stoichnet.evaluate import uncertainty as unc


def gaussian_rows(n, seed=0, reported=1.0):
    """(y, mean, sigma): heteroscedastic Gaussian noise of true sd sigma_true; the model
    reports sigma = sigma_true * ``reported``."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=n)
    sigma_true = rng.uniform(0.1, 2.0, n)
    y = mean + sigma_true * rng.standard_normal(n)
    return y, mean, sigma_true * reported


def test_coverage_of_a_calibrated_model_is_the_nominal_level():
    """On 40,000 rows drawn from the predicted Gaussians, the 68% and 95% intervals (from
    scipy's norm.interval) cover 68% and 95% of the rows, as the report says."""
    y, mean, sigma = gaussian_rows(40_000)
    report = unc.calibration_report(y, mean, sigma)
    for level in (0.68, 0.95):
        low, high = stats.norm.interval(level, mean, sigma)
        expected = np.mean((y >= low) & (y <= high))
        assert report[f"coverage {level:.0%}"] == pytest.approx(expected, abs=1e-12)
        # the binomial standard error at 40,000 rows is below 0.0025
        assert abs(expected - level) < 0.01
    assert report["miscalibration area"] < 0.01


def test_levels_are_the_central_interval_that_just_contains_y():
    y, mean, sigma = gaussian_rows(50, seed=1)
    u = unc.levels(y, mean, sigma)
    # the central interval of level u has y on its boundary
    low, high = stats.norm.interval(u, mean, sigma)
    assert np.allclose(np.where(y < mean, low, high), y, atol=1e-9)


def test_miscalibration_area_is_the_exact_integral():
    """The closed form equals a fine trapezoid of |ECDF(p) - p| (numpy), and the area of
    a model whose sigma is 3 times too small matches its population value
    ∫|erf(3 erfinv(p)) - p| dp (scipy quad)."""
    rng = np.random.default_rng(2)
    u = rng.uniform(size=37) ** 2
    grid = np.linspace(0, 1, 2_000_001)
    ecdf = np.searchsorted(np.sort(u), grid, side="right") / len(u)
    assert unc.area_from_levels(u) == pytest.approx(np.trapezoid(np.abs(ecdf - grid), grid),
                                                    abs=1e-5)
    y, mean, sigma = gaussian_rows(40_000, seed=3, reported=1 / 3)
    population = integrate.quad(lambda p: abs(special.erf(3 * special.erfinv(p)) - p), 0, 1)[0]
    bad = unc.miscalibration_area(y, mean, sigma)
    assert bad > 0.25 and bad == pytest.approx(population, abs=0.01)
    assert unc.area_from_levels(np.full(10, 1.0)) == pytest.approx(0.5)  # all outside: worst


def test_nll_sharpness_and_spearman_against_scipy():
    y, mean, sigma = gaussian_rows(500, seed=4)
    assert unc.gaussian_nll(y, mean, sigma) == pytest.approx(
        -stats.norm.logpdf(y, mean, sigma).mean(), rel=1e-12)
    assert unc.sharpness(sigma) == pytest.approx(np.sqrt(np.mean(sigma**2)))
    rho = unc.error_rank_correlation(y, mean, sigma)
    assert rho == pytest.approx(stats.spearmanr(sigma, np.abs(y - mean)).statistic)
    assert rho > 0.3  # heteroscedastic noise: the bars rank the errors
    assert math.isnan(unc.error_rank_correlation(y, mean, np.ones_like(y)))


def test_scale_recalibration_recovers_a_known_scale_on_validation_rows_only():
    """A model reporting sigma 2.5 times too small: the scale fitted on validation rows is
    2.5 (within sampling error), it minimises the Gaussian NLL (scipy's minimiser), and
    held-out test rows are then covered at the nominal levels."""
    y, mean, sigma = gaussian_rows(5000, seed=5, reported=1 / 2.5)
    recal = unc.fit_recalibration(y, mean, sigma, "scale")
    assert recal.method == "scale" and recal.scale == pytest.approx(2.5, rel=0.03)
    best = optimize.minimize_scalar(lambda s: -stats.norm.logpdf(y, mean, s * sigma).mean(),
                                    bounds=(0.1, 10), method="bounded", options={"xatol": 1e-8})
    assert recal.scale == pytest.approx(best.x, rel=1e-5)
    y_t, mean_t, sigma_t = gaussian_rows(20_000, seed=6, reported=1 / 2.5)
    raw = unc.calibration_report(y_t, mean_t, sigma_t)
    fixed = unc.calibration_report(y_t, mean_t, sigma_t, recal)
    assert raw["coverage 95%"] < 0.7
    assert abs(fixed["coverage 95%"] - 0.95) < 0.01 and abs(fixed["coverage 68%"] - 0.68) < 0.015
    assert fixed["miscalibration area"] < 0.01 < raw["miscalibration area"]
    assert fixed["NLL"] < raw["NLL"]
    assert np.allclose(recal.sigma(sigma_t), 2.5 * sigma_t, rtol=0.03)
    # rows 10 to 30 raw sigmas out (raw level 1.0 in floating point) are covered by a large
    # enough scale: the recalibration works on the errors, not on the rounded levels
    far = unc.Recalibration("scale", 40.0)
    assert np.array_equal(far.levels(np.array([10.0, 30.0])) <= 0.95, [True, True])
    low, high = recal.interval(mean_t, sigma_t, 0.95)
    assert np.mean((y_t >= low) & (y_t <= high)) == fixed["coverage 95%"]


def test_isotonic_recalibration_is_sklearns_map_and_fixes_heavy_tails():
    """Student-t (3 dof) errors reported as unit Gaussians: the isotonic map is
    scikit-learn's IsotonicRegression of |z| -> empirical frequency, and after it the
    68% and 95% intervals (and their bounds) cover held-out rows at the nominal levels."""
    rng = np.random.default_rng(7)

    def rows(n):
        mean = rng.normal(size=n)
        sigma = rng.uniform(0.5, 1.5, n)
        return mean + sigma * rng.standard_t(3, n), mean, sigma

    y, mean, sigma = rows(10_000)
    recal = unc.fit_recalibration(y, mean, sigma, "isotonic")
    z = unc.standardized_errors(y, mean, sigma)
    oracle = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        np.sort(z), np.arange(1, len(z) + 1) / len(z))
    # the map keeps MAX_KNOTS of the oracle's points, and moves ~1/255 in level between two
    assert len(recal.knots) == unc.MAX_KNOTS < len(oracle.X_thresholds_)
    knots = np.array(recal.knots[1:])  # the first is the map's own start, (0, 0)
    assert np.allclose(recal.levels(knots), oracle.predict(knots), atol=1e-12)
    probe = rng.uniform(z.min(), z.max(), 100)
    assert np.allclose(recal.levels(probe), oracle.predict(probe), atol=1.5 / unc.MAX_KNOTS)
    y_t, mean_t, sigma_t = rows(20_000)
    raw = unc.calibration_report(y_t, mean_t, sigma_t)
    fixed = unc.calibration_report(y_t, mean_t, sigma_t, recal)
    # sampling error of the fitted map (10,000 rows) and of the test coverage: ~0.006
    assert abs(raw["coverage 68%"] - 0.68) > 0.05
    assert abs(fixed["coverage 95%"] - 0.95) < 0.015 and abs(fixed["coverage 68%"] - 0.68) < 0.02
    assert fixed["miscalibration area"] < 0.01 < raw["miscalibration area"]
    for level in (0.68, 0.95):
        low, high = recal.interval(mean_t, sigma_t, level)
        covered = np.mean((y_t >= low) & (y_t <= high))
        assert covered == pytest.approx(fixed[f"coverage {level:.0%}"], abs=1e-3)


def test_recalibration_round_trips_through_json():
    y, mean, sigma = gaussian_rows(300, seed=8, reported=0.5)
    for method in unc.METHODS:
        recal = unc.fit_recalibration(y, mean, sigma, method)
        again = unc.Recalibration.from_dict(json.loads(json.dumps(recal.to_dict())))
        assert again == recal
        assert np.array_equal(again.sigma(sigma), recal.sigma(sigma))


def test_a_calibration_set_too_small_warns_and_keeps_the_raw_sigma():
    y, mean, sigma = gaussian_rows(5, seed=9, reported=0.2)
    with pytest.warns(UserWarning, match=r"calibration set too small: 5 validation row"):
        recal = unc.fit_recalibration(y, mean, sigma)
    assert recal.method == "none" and "raw sigma is kept" in recal.note
    assert np.array_equal(recal.sigma(sigma), sigma)
    with pytest.warns(UserWarning, match=r"1 validation row\(s\) have sigma 0"):
        unc.fit_recalibration(np.arange(30.0), np.arange(30.0) + 1, np.r_[0.0, np.ones(29)])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"sigma must be >= 0"):
        unc.levels([1.0], [1.0], [-1.0])
    with pytest.raises(ValueError, match=r"differ in length: 2, 2, 1"):
        unc.levels([1.0, 2.0], [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"method must be one of \('scale', 'isotonic'\)"):
        unc.fit_recalibration([1.0], [1.0], [1.0], "platt")


@pytest.mark.parametrize("method", unc.METHODS)
def test_recalibration_reaches_errors_far_beyond_the_raw_sigma(method):
    """Sigma reported 50 times too small: most raw levels round to 1.0 (z > 8), yet both
    recalibrations, which work on the standardized errors, bring the held-out coverage
    back to the nominal levels."""
    y, mean, sigma = gaussian_rows(5000, seed=11, reported=1 / 50)
    assert np.mean(unc.levels(y, mean, sigma) == 1.0) > 0.8
    recal = unc.fit_recalibration(y, mean, sigma, method)
    report = unc.calibration_report(*gaussian_rows(20_000, seed=12, reported=1 / 50), recal)
    assert abs(report["coverage 95%"] - 0.95) < 0.015
    assert abs(report["coverage 68%"] - 0.68) < 0.02


def test_interval_coverage_counts_rows_inside_closed_intervals():
    from stoichnet.evaluate.uncertainty import interval_coverage

    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert interval_coverage(y, [0, 0, 0, 0], [0, 2, 1, 5]) == 0.75  # ends included
    with pytest.raises(ValueError, match="one length"):
        interval_coverage(y, [0, 0], [1, 1])
