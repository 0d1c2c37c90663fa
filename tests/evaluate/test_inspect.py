"""Looking inside a network (``stoichnet.evaluate.inspect``): the probes against
scikit-learn's RidgeCV and cross-validation, projections against NumPy's SVD, dead
units and the element map on constructed networks, chemical labels checked by hand,
and the files."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, PredefinedSplit

from stoichnet.chem import ELEMNET_ELEMENTS, ElementFractions, element_table
from stoichnet.evaluate.inspect import (
    DESCRIPTORS,
    FILES,
    RIDGE_ALPHAS,
    _probe,
    inspect_network,
    ridge_loo,
    write_inspection,
)
from stoichnet.nn import Dense, Dropout, Sequential

N_EL = len(ELEMNET_ELEMENTS)
MAGPIE = element_table("magpie").to_frame()


def random_formulas(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        elements = rng.choice(ELEMNET_ELEMENTS, size=rng.integers(1, 4), replace=False)
        out.append("".join(f"{e}{rng.integers(1, 5)}" for e in elements))
    return out


FORMULAS = random_formulas(240)
# a target that depends on the chemistry: the mean electronegativity, in NumPy
Y = ElementFractions().transform(FORMULAS) @ MAGPIE.loc[list(ELEMNET_ELEMENTS),
                                                        "Electronegativity"].to_numpy()


def small_model(seed: int = 0) -> Sequential:
    model = Sequential([Dense(16, "relu", input_dim=N_EL), Dropout(0.2), Dense(8, "tanh"),
                        Dense(1)], seed=seed)
    model.compile("adam", "mae")
    model.fit(ElementFractions().transform(FORMULAS), Y, epochs=3, batch_size=32, verbose=0,
              seed=seed)
    return model


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def result(model):
    return inspect_network(model, FORMULAS, Y, folds=4, seed=3, unit="Pauling")


@pytest.mark.parametrize("n, p, k", [(120, 10, 1), (80, 150, 3), (300, 40, 4)])
def test_ridge_loo_is_sklearns_ridgecv(n, p, k):
    rng = np.random.default_rng(n)
    X = np.maximum(rng.normal(size=(n, p)), 0) * rng.uniform(0.1, 5, size=p)
    Y = X @ rng.normal(size=(p, k)) + rng.normal(size=(n, k)) * np.logspace(-2, 2, k)
    X_new = rng.normal(size=(20, p))
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=k > 1).fit(X, Y if k > 1 else Y[:, 0])
    expected = ridge.predict(X_new).reshape(20, k)
    np.testing.assert_allclose(ridge_loo(X, Y, X_new), expected, rtol=1e-9,
                               atol=1e-9 * np.abs(expected).max())


def test_probes_are_cross_validated_ridge_r2(model, result):
    X = ElementFractions().transform(FORMULAS)
    hidden = model.activations(X, layers=["dense"])["dense"].astype(np.float64)
    folds = KFold(4, shuffle=True, random_state=3)
    for layer, A in [("input", X.astype(np.float64)), ("dense", hidden)]:
        expected = []
        for train, test in folds.split(A):  # scikit-learn's ridge on one scale per layer
            scale = np.sqrt(np.mean((A[train] - A[train].mean(axis=0)) ** 2))
            ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(A[train] / scale, Y[train])
            expected.append(r2_score(Y[test], ridge.predict(A[test] / scale)))
        # (the fractions sum to 1: a singular X^T X, solved differently, agrees to ~1e-8)
        assert result.probes.loc[layer, "target"] == pytest.approx(np.mean(expected), rel=1e-6)
        assert result.probe_std.loc[layer, "target"] == pytest.approx(np.std(expected), rel=1e-5)
    assert list(result.probes.columns) == ["target", *DESCRIPTORS]


def test_a_rarely_firing_unit_does_not_wreck_a_probe():
    """A unit that fires faintly on one training row and strongly on test rows: scaled by
    its own tiny standard deviation it would dominate the test predictions (R² -849 with
    StandardScaler here); one scale for the whole layer leaves the probe as it is."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(250, 5))
    t = A @ rng.normal(size=5) + 0.3 * rng.normal(size=250)
    rare = np.zeros((250, 1))
    rare[0], rare[200:205] = 1e-3, 1.0
    split = PredefinedSplit(np.r_[np.full(200, -1), np.zeros(50, dtype=int)])  # 200 | 50
    plain, _ = _probe(A, t[:, None], split)
    with_rare, _ = _probe(np.hstack([A, rare]), t[:, None], split)
    assert plain[0] > 0.95 and with_rare[0] == pytest.approx(plain[0], abs=1e-3)


def test_layers_widths_dead_units_and_projections(model, result):
    assert result.layers == ["input", "dense", "dense_1", "dense_2"]  # not the dropout
    assert result.widths == [N_EL, 16, 8, 1]
    acts = model.activations(ElementFractions().transform(FORMULAS))
    assert result.dead_units[1:] == [int((~acts[name].any(axis=0)).sum())
                                     for name in result.layers[1:]]
    assert set(result.projections) == {"input", "dense", "dense_1"}  # 1 unit: no 2-D
    A = acts["dense_1"].astype(np.float64)
    A = A - A.mean(axis=0)
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    expected = A @ vt[:2].T
    got = result.projections["dense_1"]
    signs = np.sign((got * expected).sum(axis=0))  # a principal axis has no sign
    np.testing.assert_allclose(got * signs, expected, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(result.explained_variance["dense_1"], s[:2] ** 2 / (s ** 2).sum(),
                               rtol=1e-6)


def test_dead_units_of_a_constructed_network():
    model = Sequential([Dense(10, "relu", input_dim=N_EL), Dense(1)], seed=0)
    W, b, W2, b2 = model.get_weights()
    W[:, :4], b[:4] = -1.0, -0.5  # fractions are >= 0: these 4 units never fire
    b[4:] = 2.0
    W[:, 4:] = np.abs(W[:, 4:])  # and these always do
    model.set_weights([W, b, W2, b2])
    result = inspect_network(model, FORMULAS, Y, folds=3)
    assert result.dead_units == [None, 4, 0]
    table = result.table()
    assert table.loc[1, "dead_fraction"] == pytest.approx(0.4)


def test_chemical_labels_checked_by_hand(model):
    formulas = ["Fe2O3", "NaCl", "Fe3Al", "CaF2", "MgO", "LiH"]
    result = inspect_network(model, formulas, np.arange(6.0), folds=2)
    # the most electronegative element: O (group 16), Cl (17), Fe (1.83 > Al's 1.61: 8),
    # F (17), O (16), H (2.20 > Li's 0.98: group 1)
    assert list(result.labels["anion_group"]) == [16, 17, 8, 17, 16, 1]
    assert list(result.labels["oxide"]) == ["yes", "no", "no", "no", "yes", "no"]


def test_element_map_finds_groups_a_network_is_built_to_know():
    groups = MAGPIE.loc[list(ELEMNET_ELEMENTS), "Column"].to_numpy().astype(int)
    model = Sequential([Dense(18, "relu", input_dim=N_EL), Dense(1)], seed=0)
    W, b, W2, b2 = model.get_weights()
    W[:] = 0.0
    W[np.arange(N_EL), groups - 1] = 5.0  # a pure element lights up its group's unit only
    b[:] = 0.0
    model.set_weights([W, b, W2, b2])
    result = inspect_network(model, FORMULAS, Y, folds=3)
    assert result.element_agreement["dense"] == 1.0  # every group has two elements or more
    assert list(result.elements["symbol"]) == list(ELEMNET_ELEMENTS)
    assert list(result.elements["group"]) == list(groups)
    # chance: a nearest neighbour drawn at random shares the group; checked by shuffling
    rng = np.random.default_rng(0)
    neighbour = np.roll(np.arange(N_EL), 1)
    shuffled = [np.mean(g[neighbour] == g) for g in (rng.permutation(groups)
                                                     for _ in range(20000))]
    assert result.element_chance == pytest.approx(np.mean(shuffled), abs=0.003)


def test_a_layer_that_maps_every_element_alike_agrees_by_chance_only():
    model = Sequential([Dense(4, "relu", input_dim=N_EL), Dense(3, "relu"), Dense(1)], seed=0)
    W, b, W2, b2, W3, b3 = model.get_weights()
    W[:], b[:] = 0.0, 1.0  # the same output for every input
    W2[:], b2[:] = 0.0, -1.0  # dead: all zeros
    model.set_weights([W, b, W2, b2, W3, b3])
    result = inspect_network(model, FORMULAS, Y, folds=3)
    assert result.element_agreement["dense"] == pytest.approx(result.element_chance)
    assert result.element_agreement["dense_1"] == pytest.approx(result.element_chance)
    assert 0.05 < result.element_chance < 0.2


def test_sampling_is_seeded_and_reported(model):
    first = inspect_network(model, FORMULAS, Y, sample=100, seed=1, folds=3)
    again = inspect_network(model, FORMULAS, Y, sample=100, seed=1, folds=3)
    other = inspect_network(model, FORMULAS, Y, sample=100, seed=2, folds=3)
    assert len(first.formulas) == 100 and set(first.formulas) <= set(FORMULAS)
    assert first.formulas == again.formulas and first.formulas != other.formulas
    pd.testing.assert_frame_equal(first.table(), again.table())
    assert any("100 of the 240" in note for note in first.notes)


def test_unsupported_formulas_are_dropped_and_counted(model):
    result = inspect_network(model, [*FORMULAS[:20], "HeNe", "Ar2O"], np.arange(22.0), folds=3)
    assert len(result.formulas) == 20
    assert any("dropped 2 of 22" in note for note in result.notes)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="86 element fractions"):
        inspect_network(Sequential([Dense(1, input_dim=5)]), FORMULAS, Y)
    with pytest.raises(ValueError, match="numeric target"):
        inspect_network(model, FORMULAS, np.array(["a"] * len(FORMULAS)))
    with pytest.raises(ValueError, match="one target per formula"):
        inspect_network(model, FORMULAS, Y[:5])
    with pytest.raises(ValueError, match="element_layer"):
        inspect_network(model, FORMULAS, Y, element_layer="dropout")
    with pytest.raises(ValueError, match="projection"):
        inspect_network(model, FORMULAS, Y, projection="tsne")
    with pytest.raises(TypeError, match="sample"):
        inspect_network(model, FORMULAS, Y, sample=1.5)


def test_umap_is_optional(model):
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install umap-learn"):
            inspect_network(model, FORMULAS, Y, projection="umap")
    else:
        result = inspect_network(model, FORMULAS, Y, projection="umap", folds=3)
        assert result.projections["dense"].shape == (len(FORMULAS), 2)


def test_written_files(result, tmp_path):
    out = tmp_path / "inspect"
    paths = write_inspection(result, out, info={"model": "m.npz"})
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES) == sorted(p.name for p in paths)
    summary = json.loads((out / "inspect.json").read_text())
    assert summary["model"] == "m.npz" and summary["samples"] == len(FORMULAS)
    assert [row["layer"] for row in summary["layers"]] == result.layers
    assert summary["layers"][0]["dead_units"] is None
    assert summary["layers"][1]["r2 target"] == result.probes.loc["dense", "target"]
    table = pd.read_csv(out / "inspect.csv")
    assert list(table["layer"]) == result.layers
    assert {"width", "dead_fraction", "r2 target", "r2 mean electronegativity"} <= set(table)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_inspection(result, out)


def test_figures_show_the_results(result):
    (probes,) = result.probe_figure().axes
    curves = [line for line in probes.lines if not line.get_label().startswith("_")]
    assert [line.get_label() for line in curves] == ["target", *DESCRIPTORS]
    for line, column in zip(curves, result.probes.columns, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), result.probes[column].to_numpy())
    grid = result.projection_figure("anion_group")
    panels = [ax for ax in grid.axes if ax.collections]
    assert [ax.get_title().split()[0] for ax in panels] == list(result.projections)
    np.testing.assert_array_equal(panels[1].collections[0].get_offsets(),
                                  result.projections["dense"])
    (elements, _) = result.element_figure().axes  # the map and its colour bar
    assert sorted(t.get_text() for t in elements.texts) == sorted(ELEMNET_ELEMENTS)
