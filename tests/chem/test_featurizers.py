"""CompositionFeaturizer and the element tables: hand-checked numbers, labels, errors,
impute and drop reports. Equality with CBFV itself is in test_cbfv_oracle.py."""

import warnings
from importlib.resources import files

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline

import stoichnet.chem.featurizers as featurizers
from stoichnet.chem.element_tables import PRESETS, element_table
from stoichnet.chem.featurizers import STATS, CompositionFeaturizer, MissingPropertyError
from stoichnet.chem.formula import Composition, FormulaError, parse_formula
from stoichnet.chem.fractions import UnsupportedElementError
from stoichnet.chem.periodic_table import SYMBOLS


def magpie_number(formulas, **kwargs) -> pd.DataFrame:
    """The six statistics of magpie's "Number" (atomic number Z) per formula."""
    frame = CompositionFeaturizer("magpie", **kwargs).transform(formulas, as_frame=True)
    return frame[[c for c in frame.columns if c.endswith(" Number")]]


# --- element tables ---------------------------------------------------------------


def test_tables_are_indexed_by_atomic_number():
    magpie = element_table("magpie")
    assert magpie.values.shape == (118, 22) and magpie.supported.sum() == 97
    assert magpie.elements[0] == "H" and magpie.elements[-1] == "Bk"
    # magpie's "Number" and oliynyk's "Atomic_Number" are Z: a check on the row mapping.
    z = np.arange(1, 119)
    assert np.array_equal(magpie.values[magpie.supported, 0], z[magpie.supported])
    oliynyk = element_table("oliynyk")
    assert oliynyk.properties[0] == "Atomic_Number"
    assert np.array_equal(oliynyk.values[oliynyk.supported, 0], z[oliynyk.supported])
    assert np.isnan(magpie.values[~magpie.supported]).all()


def test_onehot_table_is_the_identity_after_its_dummy_column():
    onehot = element_table("onehot")
    assert onehot.supported.all() and onehot.properties[0] == "0"
    np.testing.assert_array_equal(onehot.values[:, 1:], np.eye(118))
    np.testing.assert_array_equal(onehot.values[:, 0], 0.0)


def test_missing_values_stay_missing():
    table = element_table("oliynyk").to_frame()
    raw = pd.read_csv(files("CBFV") / "element_properties" / "oliynyk.csv", index_col="element")
    assert table.isna().sum().sum() == raw.isna().sum().sum() == 14
    assert np.isnan(table.loc["H", "Miracle_Radius_[pm]"])
    pd.testing.assert_frame_equal(table, raw.loc[table.index].astype(float), check_names=False)


def test_tables_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        element_table("magpie").values[0, 0] = 1.0


def test_unknown_preset():
    with pytest.raises(ValueError, match="'random_200'.*magpie, oliynyk"):
        element_table("random_200")


# --- hand-checked statistics --------------------------------------------------------


def test_fe2o3_atomic_number_statistics():
    # Fe (Z=26) 2/5, O (Z=8) 3/5: avg 0.4*26 + 0.6*8 = 15.2 (matminer's check);
    # dev 0.4*|26-15.2| + 0.6*|8-15.2| = 8.64; O is the most abundant, so mode = 8.
    row = magpie_number(["Fe2O3"]).iloc[0]
    expected = {"avg": 15.2, "dev": 8.64, "range": 18, "max": 26, "min": 8, "mode": 8}
    for stat, value in expected.items():
        assert row[f"magpie {stat} Number"] == pytest.approx(value, rel=1e-6)


def test_mode_takes_the_smaller_value_among_equally_abundant_elements():
    frame = magpie_number(["AlNi", "NaCl", "Al0.5Ni0.5", "Ni3Al"])
    np.testing.assert_array_equal(frame["magpie mode Number"], [13, 11, 13, 28])


def test_single_element():
    row = magpie_number(["Fe"]).iloc[0]
    np.testing.assert_array_equal(row.to_numpy(), [26, 0, 0, 26, 26, 26])


def test_extended_sum_uses_amounts_as_written():
    frame = magpie_number(["Fe2O3", "Fe4O6"], extended=True)
    assert list(frame.columns[:2]) == ["magpie sum Number", "magpie avg Number"]
    np.testing.assert_allclose(frame["magpie sum Number"], [2 * 26 + 3 * 8, 4 * 26 + 6 * 8])
    np.testing.assert_allclose(frame["magpie avg Number"], [15.2, 15.2], rtol=1e-6)


def test_brackets_and_hydrates_expand_before_featurising():
    # Ca(OH)2 = Ca O2 H2: avg Z = (20 + 2*8 + 2*1) / 5 = 7.6.
    frame = magpie_number(["Ca(OH)2", "CuSO4·5H2O"])
    # CuSO4·5H2O = Cu S O9 H10: avg Z = (29 + 16 + 9*8 + 10*1) / 21.
    np.testing.assert_allclose(frame["magpie avg Number"], [7.6, 127 / 21], rtol=1e-6)


# --- output shape, labels, inputs ------------------------------------------------------


def test_labels_and_shape():
    featurizer = CompositionFeaturizer()
    labels = featurizer.feature_labels()
    assert len(labels) == 132 and labels[0] == "magpie avg Number"
    assert labels[22] == "magpie dev Number" and labels[-1] == "magpie mode SpaceGroupNumber"
    X = featurizer.transform(["Fe2O3", "NaCl"])
    assert X.dtype == np.float32 and X.shape == (2, 132)
    assert list(featurizer.get_feature_names_out()) == labels


@pytest.mark.parametrize("preset", PRESETS)
def test_citations_name_the_table_source_and_cbfv(preset):
    citations = CompositionFeaturizer(preset).citations()
    assert any("CBFV" in c for c in citations)
    # every preset but the one-hot encoding cites the paper its table comes from
    assert len(citations) == (1 if preset == "onehot" else 2)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_has_six_stats_per_property(preset):
    featurizer = CompositionFeaturizer(preset)
    n_properties = len(element_table(preset).properties)
    assert len(featurizer.feature_labels()) == 6 * n_properties
    assert featurizer.transform(["SiO2"]).shape == (1, 6 * n_properties)


def test_stats_subset_and_order():
    featurizer = CompositionFeaturizer(stats=("max", "avg"))
    full = CompositionFeaturizer().transform(["Fe2O3"], as_frame=True)
    subset = featurizer.transform(["Fe2O3"], as_frame=True)
    assert subset.shape == (1, 44) and subset.columns[0] == "magpie max Number"
    pd.testing.assert_frame_equal(subset, full[subset.columns])


def test_row_order_survives_grouping_by_element_count():
    formulas = ["Fe", "NaCl", "Fe2O3", "LiFePO4", "Fe", "Ba2YCu3O7", "NaCl", "Mg3(PO4)2", "Au"]
    together = CompositionFeaturizer().transform(formulas)
    one_by_one = np.vstack([CompositionFeaturizer().transform([f]) for f in formulas])
    np.testing.assert_array_equal(together, one_by_one)


def test_small_blocks_give_the_same_features(monkeypatch):
    formulas = ["Fe2O3", "NaCl", "LiFePO4", "Ba2YCu3O7", "Au", "SiO2", "CaTiO3"] * 3
    expected = CompositionFeaturizer("jarvis").transform(formulas)
    monkeypatch.setattr(featurizers, "_CHUNK_CELLS", 1)
    np.testing.assert_array_equal(CompositionFeaturizer("jarvis").transform(formulas), expected)


def test_accepts_list_array_series_and_compositions():
    formulas = ["Fe2O3", "NaCl"]
    expected = CompositionFeaturizer().transform(formulas)
    featurizer = CompositionFeaturizer()
    for values in (
        tuple(formulas),
        np.array(formulas, dtype=object),
        pd.Series(formulas),
        [parse_formula(f) for f in formulas],
        [parse_formula("Fe2O3"), "NaCl"],
    ):
        np.testing.assert_array_equal(featurizer.transform(values), expected)


def test_frame_keeps_the_series_index():
    series = pd.Series(["Fe2O3", "NaCl"], index=["a", "b"])
    frame = CompositionFeaturizer().transform(series, as_frame=True)
    assert list(frame.index) == ["a", "b"]
    assert list(frame.columns) == CompositionFeaturizer().feature_labels()


@pytest.mark.parametrize("extended", [False, True])
def test_one_batch_parse_per_transform(monkeypatch, extended):
    """Strings reach the project's batch parser once (parse_formulas, or fraction_matrix
    which parses each distinct string once); it is never called per formula."""
    calls = []

    def counting(function):
        def wrapper(values, *args, **kwargs):
            calls.append((function.__name__, [type(v).__name__ for v in values]))
            return function(values, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(featurizers, "parse_formulas", counting(featurizers.parse_formulas))
    monkeypatch.setattr(featurizers, "fraction_matrix", counting(featurizers.fraction_matrix))
    X = CompositionFeaturizer(extended=extended).transform(["Fe2O3"] * 50 + ["NaCl"] * 50)
    string_calls = [name for name, types in calls if "str" in types]
    assert string_calls == (["parse_formulas"] if extended else ["fraction_matrix"])
    assert len(calls) == (2 if extended else 1)
    assert X.shape == (100, 154 if extended else 132)
    np.testing.assert_array_equal(X[:50], np.broadcast_to(X[0], X[:50].shape))
    assert not np.array_equal(X[0], X[50])


def test_empty_input():
    X = CompositionFeaturizer().transform([])
    assert X.shape == (0, 132) and X.dtype == np.float32


def test_scikit_learn_clone_and_pipeline():
    featurizer = CompositionFeaturizer("oliynyk", stats=("avg", "max"), impute="median")
    copy = clone(featurizer)
    assert copy is not featurizer and copy.get_params() == featurizer.get_params()
    formulas = ["Fe2O3", "NaCl", "SiO2", "Al2O3", "MgO", "CaTiO3", "HCl", "LiF"]
    y = np.arange(len(formulas), dtype=float)
    model = make_pipeline(
        CompositionFeaturizer(), RandomForestRegressor(n_estimators=5, random_state=0)
    )
    assert model.fit(formulas, y).predict(formulas).shape == (len(formulas),)


def test_fit_is_a_no_op_for_pipelines():
    featurizer = CompositionFeaturizer()
    assert featurizer.fit(["Fe2O3"]) is featurizer
    np.testing.assert_array_equal(
        featurizer.fit_transform(["Fe2O3"]), featurizer.transform(["Fe2O3"])
    )


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"preset": "random_200"}, ValueError, "preset='random_200'"),
        ({"stats": "avg"}, TypeError, "stats='avg'"),
        ({"stats": ()}, ValueError, "at least one"),
        ({"stats": ("avg", "avg")}, ValueError, "distinct"),
        ({"stats": ("sum",)}, ValueError, "extended=True"),
        ({"stats": ("mean",)}, ValueError, "'mean'"),
        ({"extended": "yes"}, TypeError, "extended='yes'"),
        ({"impute": "knn"}, ValueError, "impute='knn'"),
        ({"on_unsupported": "skip"}, ValueError, "on_unsupported='skip'"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    featurizer = CompositionFeaturizer(**kwargs)  # scikit-learn style: stored as given
    with pytest.raises(error, match=match):
        featurizer.fit()
    with pytest.raises(error, match=match):
        featurizer.transform(["Fe2O3"])


def test_single_string_is_refused():
    with pytest.raises(TypeError, match="list"):
        CompositionFeaturizer().transform("Fe2O3")


@pytest.mark.parametrize("bad", [None, np.nan, "", "Fe2Q3", "fe2o3"])
def test_bad_formula_names_its_row(bad):
    with pytest.raises(FormulaError, match="row 1"):
        CompositionFeaturizer().transform(["NaCl", bad, "Fe2O3"])


def test_unsupported_element_raises_naming_row_and_element():
    with pytest.raises(UnsupportedElementError, match=r"row 1 'PuO2' has Pu") as raised:
        CompositionFeaturizer("oliynyk").transform(["NaCl", "PuO2", "Fe2O3", "PuO2"])
    assert list(raised.value.rows) == [1, 3]


def test_unsupported_element_dropped_with_report():
    featurizer = CompositionFeaturizer("jarvis", on_unsupported="drop")
    series = pd.Series(["NaCl", "XeF2", "Fe2O3", "EuO"], index=[10, 11, 12, 13])
    with pytest.warns(UserWarning, match="dropped 2 of 4 rows.*Xe.*Eu"):
        frame = featurizer.transform(series, as_frame=True)
    report = featurizer.report_
    assert list(frame.index) == [10, 12]
    np.testing.assert_array_equal(report.dropped.kept, [0, 2])
    np.testing.assert_array_equal(report.dropped.rows, [1, 3])
    assert report.dropped.formulas == ["XeF2", "EuO"]
    assert report.dropped.unsupported == [("Xe",), ("Eu",)]
    np.testing.assert_array_equal(
        frame.to_numpy(), CompositionFeaturizer("jarvis").transform(["NaCl", "Fe2O3"])
    )


def test_missing_property_raises_naming_elements_and_properties():
    with pytest.raises(MissingPropertyError) as raised:
        CompositionFeaturizer("oliynyk").transform(["NaCl", "HCl", "KrF2"])
    message = str(raised.value)
    assert "H lacks Miracle_Radius_[pm] (1 rows)" in message
    assert "Cl lacks Miracle_Radius_[pm] (2 rows)" in message
    assert "Kr lacks Miracle_Radius_[pm], crystal_radius, MB_electonegativity, Mulliken_EN" in (
        message
    )
    assert "impute=" in message


def test_no_warning_and_empty_report_when_nothing_is_dropped_or_imputed():
    featurizer = CompositionFeaturizer("oliynyk", impute="median", on_unsupported="drop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        featurizer.transform(["Na2O", "Fe2O3"])
    assert len(featurizer.report_.dropped) == 0 and featurizer.report_.imputed.empty


def _raw_oliynyk_column(name: str) -> pd.Series:
    raw = pd.read_csv(files("CBFV") / "element_properties" / "oliynyk.csv", index_col="element")
    return raw[name].loc[[s for s in raw.index if s in SYMBOLS]]


@pytest.mark.parametrize(
    ("impute", "fill"),
    [
        ("mean", lambda column: column.mean()),
        ("median", lambda column: column.median()),
        ("zero", lambda column: 0.0),
    ],
)
def test_impute_fills_from_the_table_and_reports(impute, fill):
    column = "Miracle_Radius_[pm]"
    value = fill(_raw_oliynyk_column(column))  # pandas skips NaN: the oracle for the fill
    featurizer = CompositionFeaturizer("oliynyk", impute=impute)
    with pytest.warns(UserWarning, match="imputed 2 missing property values of H, Cl"):
        frame = featurizer.transform(["HCl", "NaCl", "H2O"], as_frame=True)
    imputed = featurizer.report_.imputed
    assert list(imputed["element"]) == ["H", "Cl"]
    assert list(imputed["property"]) == [column, column]
    np.testing.assert_allclose(imputed["value"], [value, value])
    assert list(imputed["rows"]) == [2, 2]
    na = _raw_oliynyk_column(column)["Na"]
    o = _raw_oliynyk_column(column)["O"]
    # HCl: both filled; NaCl: (Na + fill) / 2; H2O: (2 * fill + O) / 3.
    np.testing.assert_allclose(
        frame[f"oliynyk avg {column}"], [value, (na + value) / 2, (2 * value + o) / 3], rtol=1e-6
    )
    np.testing.assert_allclose(frame[f"oliynyk range {column}"][0], 0.0)


# --- properties over random compositions --------------------------------------------------

_MAGPIE_ELEMENTS = element_table("magpie").elements
_compositions = st.dictionaries(
    st.sampled_from(_MAGPIE_ELEMENTS),
    st.floats(min_value=0.01, max_value=100, allow_nan=False),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(_compositions, st.randoms(use_true_random=False))
def test_features_depend_on_fractions_not_order_or_scale(amounts, rng):
    shuffled = list(amounts.items())
    rng.shuffle(shuffled)
    scaled = Composition({e: 3 * a for e, a in shuffled})
    featurizer = CompositionFeaturizer(extended=True)
    X = featurizer.transform([Composition(amounts), scaled]).astype(np.float64)
    n = len(element_table("magpie").properties)
    np.testing.assert_allclose(X[1, n:], X[0, n:], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(X[1, :n], 3 * X[0, :n], rtol=1e-5, atol=1e-9)  # sum block


@settings(max_examples=60, deadline=None)
@given(_compositions)
def test_statistics_are_ordered(amounts):
    frame = CompositionFeaturizer().transform([Composition(amounts)], as_frame=True)
    stat = {s: frame.filter(like=f"magpie {s} ").to_numpy()[0] for s in STATS}
    slack = 1e-5 * np.abs(stat["max"]) + 1e-6
    assert (stat["min"] <= stat["avg"] + slack).all() and (stat["avg"] <= stat["max"] + slack).all()
    assert (stat["min"] <= stat["mode"]).all() and (stat["mode"] <= stat["max"]).all()
    assert (stat["dev"] >= 0).all() and (stat["dev"] <= stat["range"] + slack).all()
    assert (np.abs(stat["range"] - (stat["max"] - stat["min"])) <= slack).all()  # float32


@settings(max_examples=60, deadline=None)
@given(_compositions)
def test_onehot_average_is_the_fraction_vector(amounts):
    composition = Composition(amounts)
    avg = CompositionFeaturizer("onehot", stats=("avg", "max")).transform([composition])[0]
    expected = np.zeros(119)
    for element, fraction in composition.fractions().items():
        expected[SYMBOLS.index(element) + 1] = fraction  # column 0 is onehot's "Dummy"
    np.testing.assert_allclose(avg[:119], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(avg[119:], expected > 0)  # max: which elements occur
