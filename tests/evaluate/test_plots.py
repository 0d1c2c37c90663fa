import numpy as np
import pytest
from matplotlib.figure import Figure

from stoichnet.evaluate import plots


@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    y = rng.normal(size=80)
    return y, {"elemnet": y + 0.1 * rng.normal(size=80), "rf": y + 0.3 * rng.normal(size=80)}


def test_parity_plots_one_panel_per_model_with_identity_line(regression):
    y, preds = regression
    fig = plots.parity_plots(y, preds, unit="eV/atom")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["elemnet", "rf"]
    for ax, p in zip(fig.axes, preds.values(), strict=True):
        assert ax.get_xlim() == ax.get_ylim()
        assert "eV/atom" in ax.get_xlabel()
        (line,) = ax.get_lines()
        assert np.allclose(line.get_xdata(), line.get_ydata())
        text = ax.texts[0].get_text()
        assert f"{np.mean(np.abs(p - y)):.4g}" in text


def test_residual_histograms_share_bins_and_count_every_row(regression):
    y, preds = regression
    fig = plots.residual_histograms(y, preds, bins=10)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        heights = [patch.get_height() for patch in ax.patches]
        assert len(heights) == 10
        assert sum(heights) == len(y)
    lefts = [[patch.get_x() for patch in ax.patches] for ax in fig.axes]
    assert lefts[0] == lefts[1]


def test_learning_curves_from_history_objects_and_dicts():
    class History:  # what Sequential.fit returns: per-epoch lists in .history
        history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6]}

    fig = plots.learning_curves({"a": History(), "b": {"val_loss": [0.9, 0.8]}})
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"a (train)", "a (validation)", "b (validation)"}
    assert list(lines["a (validation)"].get_xdata()) == [1, 2, 3]
    assert list(lines["b (validation)"].get_ydata()) == [0.9, 0.8]
    assert ax.get_xlabel() == "epoch"


def test_metric_vs_value_numeric_and_categorical():
    fig = plots.metric_vs_value([1, 5, 17], [0.2, 0.1, 0.08], reference={"rf": 0.106})
    (ax,) = fig.axes
    assert list(ax.get_lines()[0].get_xdata()) == [1.0, 5.0, 17.0]
    assert any(line.get_label() == "rf" for line in ax.get_lines())
    fig = plots.metric_vs_value(["sgd", "adam"], [0.3, 0.1], errors=[(0.25, 0.35), (0.09, 0.11)])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["sgd", "adam"]


def test_roc_curves_report_auc():
    y = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.6, 0.7, 0.8, 0.2, 0.5])
    proba = np.column_stack([1 - score, score])
    fig = plots.roc_curves(y, {"rf": proba, "perfect": y.astype(float)})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "rf (AUC = 0.889)" in labels  # 8 of 9 (negative, positive) pairs ordered
    assert "perfect (AUC = 1.000)" in labels


def test_confusion_matrices_count_pairs():
    y = np.array(["metal", "metal", "insulator", "insulator"])
    fig = plots.confusion_matrices(y, {"net": np.array(["metal", "insulator"] * 2)})
    (ax,) = fig.axes
    assert ax.get_title() == "net"
    counts = sorted(t.get_text() for t in ax.texts)
    assert counts == ["1", "1", "1", "1"]


@pytest.mark.oracle
def test_periodic_table_positions_match_pymatgen():
    from pymatgen.core import Element

    from stoichnet.chem.periodic_table import SYMBOLS

    for z, symbol in enumerate(SYMBOLS, start=1):
        if 57 <= z <= 71 or 89 <= z <= 103:
            continue
        element = Element(symbol)
        assert plots._table_position(z) == (element.row - 1, element.group - 1), symbol
    assert plots._table_position(57) == (8, 2)
    assert plots._table_position(103) == (9, 16)


def test_periodic_table_heatmap_takes_error_by_element():
    from stoichnet.evaluate.metrics import error_by_element

    table = error_by_element(["Fe2O3", "NaCl"], [1.0, 2.0], [1.5, 2.0])
    fig = plots.periodic_table_heatmap(table["mae"])
    grey = (0.88, 0.88, 0.88, 1.0)
    assert sum(tuple(p.get_facecolor()) != grey for p in fig.axes[0].patches) == 4


def test_periodic_table_heatmap_colours_given_elements():
    fig = plots.periodic_table_heatmap({"Fe": 0.1, "O": 0.05, "U": 0.3}, label="MAE (eV/atom)")
    ax, colorbar = fig.axes
    assert len(ax.patches) == 118
    grey = (0.88, 0.88, 0.88, 1.0)
    coloured = [p for p in ax.patches if tuple(p.get_facecolor()) != grey]
    assert len(coloured) == 3
    assert colorbar.get_ylabel() == "MAE (eV/atom)"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: plots.parity_plots([1.0, 2.0], {"m": [1.0]}), ValueError, "expected 2 rows"),
        (lambda: plots.parity_plots([1.0, 2.0], [1.0, 2.0]), TypeError, "mapping"),
        (lambda: plots.parity_plots([], {"m": []}), ValueError, "non-empty"),
        (lambda: plots.learning_curves({"m": {"acc": [1]}}), ValueError, "no 'loss'"),
        (lambda: plots.roc_curves([0, 1, 2], {"m": [0.1, 0.2, 0.3]}), ValueError, "two classes"),
        (lambda: plots.periodic_table_heatmap({"Xx": 1.0}), ValueError, "Xx"),
        (lambda: plots.metric_vs_value([1, 2], [0.1]), ValueError, "equally long"),
        (lambda: plots.residual_histograms([1.0], {"m": [1.0]}, bins=0), ValueError, "bins"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_calibration_curves_follow_the_empirical_coverage():
    """Each curve is the fraction of rows inside the central interval of each expected
    level (scipy's norm.interval), and a recalibrated model adds a dashed curve."""
    from scipy import stats

    from stoichnet.evaluate.uncertainty import fit_recalibration

    rng = np.random.default_rng(1)
    mean, sigma = rng.normal(size=300), rng.uniform(0.5, 1.5, 300)
    y = mean + 2 * sigma * rng.standard_normal(300)
    with pytest.warns(UserWarning, match="too small"):
        tiny = fit_recalibration(y[:3], mean[:3], sigma[:3])
    fig = plots.calibration_curves(
        y, {"net": (mean, sigma), "rf": (mean, 2 * sigma)},
        recalibrations={"net": fit_recalibration(y, mean, sigma), "rf": tiny})
    diagonal, net_raw, net_recal, rf_raw = fig.axes[0].get_lines()
    assert net_recal.get_linestyle() == "--" and "scale-recalibrated" in net_recal.get_label()
    for p, observed in zip(net_raw.get_xdata()[1:-1:20], net_raw.get_ydata()[1:-1:20],
                           strict=True):
        low, high = stats.norm.interval(p, mean, sigma)
        assert observed == np.mean((y >= low) & (y <= high))
    assert np.all(rf_raw.get_ydata() >= net_raw.get_ydata())  # wider bars cover more


def test_error_vs_sigma_bins_rows_by_sigma():
    rng = np.random.default_rng(2)
    mean, sigma = np.zeros(100), np.linspace(0.1, 2, 100)
    y = sigma * rng.standard_normal(100)
    fig = plots.error_vs_sigma(y, {"net": (mean, sigma)}, unit="eV/atom", bins=4)
    reference, binned = fig.axes[0].get_lines()
    assert np.allclose(binned.get_xdata(), sigma.reshape(4, 25).mean(axis=1))
    assert np.allclose(binned.get_ydata(), np.abs(y).reshape(4, 25).mean(axis=1))
    assert "eV/atom" in fig.axes[0].get_xlabel()
    with pytest.raises(TypeError, match=r"pair \(mean, sigma\)"):
        plots.error_vs_sigma(y, {"net": mean})
