import numpy as np
import pytest

from stoichnet.evaluate import metrics


def _noisy(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(size=n)


def test_regression_metrics_match_their_definitions():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 5.0])
    assert metrics.mae(y, p) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert metrics.r2(y, p) == pytest.approx(1 - 2.25 / 5.0)


def test_classification_metrics_match_hand_counts():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 0])
    assert metrics.accuracy(y, p) == pytest.approx(3 / 5)
    # positive class 1: tp=2, fp=1, fn=1 -> precision = recall = 2/3
    assert metrics.f1(y, p) == pytest.approx(2 / 3)
    # one of the 2 x 3 (negative, positive) pairs is ranked wrongly
    assert metrics.roc_auc(y, [0.1, 0.6, 0.7, 0.8, 0.5]) == pytest.approx(5 / 6)


def test_bootstrap_interval_contains_value_and_shrinks_with_n():
    widths = []
    for n in (100, 2000):
        y, p = _noisy(n)
        est = metrics.bootstrap_ci(metrics.mae, y, p, n_resamples=400, seed=1)
        assert est.low <= est.value <= est.high
        widths.append(est.high - est.low)
    assert widths[1] < widths[0] / 3  # ~ 1/sqrt(20) = 0.22 expected


def test_bootstrap_width_matches_normal_theory():
    # errors ~ N(0, 1): |e| has standard deviation sqrt(1 - 2/pi), so the 95% interval of
    # the MAE is about +-1.96 * sqrt((1 - 2/pi) / n) wide
    n = 4000
    rng = np.random.default_rng(3)
    y = np.zeros(n)
    p = rng.normal(size=n)
    est = metrics.bootstrap_ci(metrics.mae, y, p, n_resamples=1000, seed=0)
    expected = 2 * 1.96 * np.sqrt((1 - 2 / np.pi) / n)
    assert est.high - est.low == pytest.approx(expected, rel=0.15)


def test_bootstrap_is_seeded():
    y, p = _noisy(300)
    a = metrics.bootstrap_ci(metrics.rmse, y, p, n_resamples=100, seed=7)
    b = metrics.bootstrap_ci(metrics.rmse, y, p, n_resamples=100, seed=7)
    c = metrics.bootstrap_ci(metrics.rmse, y, p, n_resamples=100, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_regression_report_has_intervals_for_each_metric():
    y, p = _noisy(200)
    report = metrics.regression_report(y, p, n_resamples=200)
    assert set(report) == {"MAE", "RMSE", "R2"}
    assert report["MAE"].value == pytest.approx(metrics.mae(y, p))
    for est in report.values():
        assert est.low <= est.value <= est.high
        assert est.confidence == 0.95


def test_classification_report_from_probabilities():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, size=300), 0, 1)
    report = metrics.classification_report(y, score, n_resamples=200)
    assert set(report) == {"accuracy", "ROC-AUC", "F1"}
    assert report["ROC-AUC"].value == pytest.approx(metrics.roc_auc(y, score))
    assert report["accuracy"].value == pytest.approx(metrics.accuracy(y, (score > 0.5) * 1))
    for est in report.values():
        assert est.low <= est.value <= est.high


def test_classification_report_multiclass_string_labels():
    rng = np.random.default_rng(1)
    classes = np.array(["a", "b", "c"])
    y = classes[rng.integers(0, 3, size=150)]
    proba = rng.dirichlet(np.ones(3), size=150)
    proba[np.arange(150), np.searchsorted(classes, y)] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    report = metrics.classification_report(y, proba, classes, n_resamples=50)
    assert report["accuracy"].value > 0.8
    assert report["ROC-AUC"].value > 0.9


def test_stratified_bootstrap_survives_a_rare_class():
    # 3 positives in 200 rows: plain resamples would often lose them and ROC-AUC would fail
    y = np.zeros(200, dtype=int)
    y[:3] = 1
    score = np.linspace(1, 0, 200)
    est = metrics.bootstrap_ci(metrics.roc_auc, y, score, n_resamples=200, stratify=True)
    assert est.value == 1.0


def test_intervals_overlap():
    a = metrics.Estimate(0.10, 0.09, 0.11, 0.95)
    assert a.overlaps(metrics.Estimate(0.12, 0.105, 0.13, 0.95))
    assert not a.overlaps(metrics.Estimate(0.2, 0.15, 0.25, 0.95))


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([1.0, 2.0], [1.0], "2 rows but y_pred has 1"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 2.0], "non-finite"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "one-dimensional"),
    ],
)
def test_bad_regression_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        metrics.mae(y, p)


def test_bad_bootstrap_arguments():
    with pytest.raises(ValueError, match="n_resamples"):
        metrics.bootstrap_ci(metrics.mae, [1.0, 2.0], [1.0, 2.0], n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        metrics.bootstrap_ci(metrics.mae, [1.0, 2.0], [1.0, 2.0], confidence=95)
    with pytest.raises(TypeError, match="real numbers"):
        metrics.mae(["a", "b"], [1.0, 2.0])


def test_bad_classification_input():
    with pytest.raises(ValueError, match="two classes"):
        metrics.roc_auc([1, 1, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="shape"):
        metrics.classification_report([0, 1, 0], np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match="not in classes"):
        metrics.classification_report([0, 1, 2], np.ones((3, 2)) / 2, classes=[0, 1])


def test_error_by_element_counts_each_formula_for_each_of_its_elements():
    table = metrics.error_by_element(["Fe2O3", "FeO", "NaCl"], [1.0, 2.0, 3.0], [1.5, 1.0, 3.25])
    assert list(table.index) == ["O", "Na", "Cl", "Fe"]  # atomic number order
    assert table.loc["Fe", "mae"] == pytest.approx((0.5 + 1.0) / 2)
    assert table.loc["O", "n_formulas"] == 2
    assert table.loc["Na", "mae"] == pytest.approx(0.25)


def test_error_by_element_rejects_bad_rows():
    from stoichnet.chem import FormulaError

    with pytest.raises(FormulaError):
        metrics.error_by_element(["Fe2O3", "Xx"], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 rows but y_true has 3"):
        metrics.error_by_element(["Fe2O3", "NaCl"], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
