"""CompositionFeaturizer against CBFV 1.1.0's generate_features, the featurization oracle.

CBFV runs in its own pinned environment (tests/oracles/); the session fixture builds it
and the reference features for 10,000 formulas of the shared data when they are missing
or stale, and fails - never skips - when it cannot.

Where CBFV is wrong the tests document what it does and assert stoichnet's behaviour:
it featurises elements missing from its table as zeros, fills missing property values
with the dataset median, drops formulas containing "x" without a word, and crashes on
missing values and unknown symbols.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from stoichnet.chem.element_tables import PRESETS, element_table
from stoichnet.chem.featurizers import CompositionFeaturizer, MissingPropertyError
from stoichnet.chem.formula import FormulaError, parse_formula
from stoichnet.chem.fractions import UnsupportedElementError

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

_ORACLE_MODULE = Path(__file__).resolve().parents[1] / "oracles" / "cbfv_oracle.py"


def _load_oracle_module():
    spec = importlib.util.spec_from_file_location("cbfv_oracle", _ORACLE_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cbfv_reference(data_dir) -> Path:
    oracle = _load_oracle_module()
    try:
        return oracle.reference_dir(data_dir)
    except (oracle.CBFVOracleError, OSError) as error:
        pytest.fail(
            f"could not build the CBFV reference: {error}\nBuild it by hand: "
            f"{oracle.BUILD_BY_HAND}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def sample(cbfv_reference) -> list[str]:
    return json.loads((cbfv_reference / "formulas.json").read_text())


def _meta(reference: Path, preset: str) -> dict:
    """CBFV's column names, rows_kept, skipped (see make_cbfv_reference.py)."""
    return json.loads((reference / f"{preset}.json").read_text())


def _cbfv(reference: Path, preset: str) -> tuple[np.ndarray, dict]:
    return np.load(reference / f"{preset}.features.npy"), _meta(reference, preset)


def _assert_close(ours: np.ndarray, cbfv: np.ndarray) -> None:
    """1e-6 relative; values whose exact result is 0 come out of CBFV as round-off
    (|x| ~ 1e-17 times the column's scale), hence the tiny column-scaled atol."""
    scale = np.abs(cbfv).max(axis=0, initial=0.0)
    err = np.abs(ours.astype(np.float64) - cbfv)
    bad = err > 1e-6 * np.abs(cbfv) + 1e-12 * scale
    assert not bad.any(), (
        f"{bad.sum()} values differ from CBFV, e.g. ours {ours[bad][:5]} vs {cbfv[bad][:5]}"
    )


def _elements_with_missing_values(preset: str) -> set[str]:
    table = element_table(preset).to_frame()
    return set(table.index[table.isna().any(axis=1)])


def test_a_failed_reference_build_is_an_error_with_the_command_to_rerun(tmp_path, monkeypatch):
    """What the fixture turns into a test failure: here the data folder has no CSVs."""
    oracle = _load_oracle_module()
    oracle.cbfv_python()  # the environment itself is shared with the real reference
    monkeypatch.setattr(oracle, "CACHE_DIR", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    with pytest.raises(oracle.CBFVOracleError) as raised:
        oracle.reference_dir(tmp_path / "no-data")
    message = str(raised.value)
    assert "no composition CSVs" in message and oracle.BUILD_BY_HAND in message
    assert not list((tmp_path / "cache").glob("cbfv-reference-*"))  # no partial left


def test_sample_is_large_and_distinct(sample):
    assert len(sample) >= 10_000
    assert len(set(sample)) == len(sample)
    assert "NaN" in sample  # sodium nitride occurs in the shared data


@pytest.mark.parametrize("preset", PRESETS)
def test_labels_follow_cbfv_columns(cbfv_reference, preset):
    meta = _meta(cbfv_reference, preset)
    labels = CompositionFeaturizer(preset).feature_labels()
    prefix = f"{preset} "
    assert all(label.startswith(prefix) for label in labels)
    assert [label[len(prefix) :].replace(" ", "_", 1) for label in labels] == meta["columns"]


@pytest.mark.parametrize("preset", PRESETS)
def test_equals_cbfv_where_cbfv_is_right(cbfv_reference, sample, preset):
    """Equal to 1e-6 on every row CBFV returns, except those where it silently
    zero-fills an element it lacks or median-fills a missing property value."""
    cbfv, meta = _cbfv(cbfv_reference, preset)
    # CBFV returned every sampled row, in order (the sample has no "x" and no all-NaN row).
    assert meta["rows_kept"] == list(range(len(sample)))
    lacking = _elements_with_missing_values(preset)
    zero_filled = set(meta["skipped"])
    clean = [
        i
        for i, formula in enumerate(sample)
        if formula not in zero_filled and not lacking & set(parse_formula(formula))
    ]
    # oliynyk lacks values for H and the halogens, in a fifth of the sample.
    assert len(clean) >= 7_500
    ours = CompositionFeaturizer(preset).transform([sample[i] for i in clean])
    assert ours.dtype == np.float32 and ours.shape == (len(clean), cbfv.shape[1])
    _assert_close(ours, cbfv[clean])


def test_extended_equals_cbfv_sum_feat(cbfv_reference, sample):
    """extended=True is CBFV's sum_feat=True: a "sum" block of amount-weighted sums
    (amounts as written, brackets expanded) before the six statistics."""
    cbfv, meta = _cbfv(cbfv_reference, "magpie-sum")
    assert meta["rows_kept"] == list(range(len(sample))) and meta["skipped"] == []
    featurizer = CompositionFeaturizer("magpie", extended=True)
    labels = [label[len("magpie ") :].replace(" ", "_", 1) for label in featurizer.feature_labels()]
    assert labels == meta["columns"] and labels[0] == "sum_Number"
    _assert_close(featurizer.transform(sample), cbfv)


@pytest.mark.parametrize("preset", ["oliynyk", "jarvis"])
def test_elements_missing_from_table_raise_or_drop_where_cbfv_uses_zeros(
    cbfv_reference, sample, preset
):
    """CBFV lists such formulas in its `skipped` return value but keeps their rows,
    featurised as if the missing element's properties were all zero."""
    meta = _meta(cbfv_reference, preset)
    zero_filled = set(meta["skipped"])
    assert len(zero_filled) > 100
    assert set(meta["rows_kept"]) >= {sample.index(f) for f in zero_filled}

    with pytest.raises(UnsupportedElementError) as raised:
        CompositionFeaturizer(preset, impute="median").transform(sample)
    assert set(raised.value.formulas) == zero_filled

    featurizer = CompositionFeaturizer(preset, impute="median", on_unsupported="drop")
    with pytest.warns(UserWarning, match="dropped"):
        features = featurizer.transform(sample)
    dropped = featurizer.report_.dropped
    assert set(dropped.formulas) == zero_filled
    assert len(features) == len(dropped.kept) == len(sample) - len(zero_filled)
    table = element_table(preset)
    for formula, elements in zip(dropped.formulas, dropped.unsupported, strict=True):
        assert elements and set(elements) <= set(parse_formula(formula))
        assert all(e not in table.elements for e in elements)


def test_missing_property_values_raise_where_cbfv_fills_the_dataset_median(cbfv_reference, sample):
    """oliynyk lacks e.g. Miracle_Radius for H, F, Cl, Br, I. CBFV turns every feature
    of such a property into NaN for a formula with those elements, then fills it with
    the column's median over the other formulas in the same call: a formula's features
    depend on what else was featurised. stoichnet raises, or imputes in the table."""
    preset = "oliynyk"
    cbfv, meta = _cbfv(cbfv_reference, preset)
    table = element_table(preset).to_frame()
    columns = meta["columns"]
    elements = [set(parse_formula(f)) for f in sample]
    median_filled = 0
    for prop in table.columns[table.isna().any()]:
        lacking = set(table.index[table[prop].isna()])
        nan_rows = np.array([bool(lacking & e) for e in elements])
        median_filled += nan_rows.sum()
        # (mode is NaN only when a most abundant element lacks the value)
        for stat in ("avg", "dev", "range", "max", "min"):
            j = columns.index(f"{stat}_{prop}")
            np.testing.assert_array_equal(cbfv[nan_rows, j], np.median(cbfv[~nan_rows, j]))
    assert median_filled > 1_000

    zero_filled = set(meta["skipped"])
    rows = [i for i, f in enumerate(sample) if f not in zero_filled]
    cbfv = cbfv[rows]
    compositions = [elements[i] for i in rows]
    clean_formulas = [sample[i] for i in rows]
    with pytest.raises(MissingPropertyError, match="Miracle_Radius") as raised:
        CompositionFeaturizer(preset).transform(clean_formulas)
    for element in ("H", "F", "Cl", "Br", "I"):
        assert f"{element} lacks" in str(raised.value)

    featurizer = CompositionFeaturizer(preset, impute="median")
    with pytest.warns(UserWarning, match="imputed"):
        ours = featurizer.transform(clean_formulas)
    imputed = featurizer.report_.imputed
    filled = set(zip(imputed["element"], imputed["property"], strict=True))
    present = set().union(*compositions)
    expected = {(e, p) for p in table.columns for e in table.index[table[p].isna()] if e in present}
    assert filled == expected
    # The columns of properties with no missing values are unaffected and equal CBFV.
    complete_properties = set(table.columns[table.notna().all()])
    complete = [j for j, c in enumerate(columns) if c.split("_", 1)[1] in complete_properties]
    _assert_close(ours[:, complete], cbfv[:, complete])


@pytest.fixture(scope="module")
def edge_cases(cbfv_reference) -> dict:
    cases = json.loads((cbfv_reference / "edge_cases.json").read_text())
    return {case["formula"]: case for case in cases}


def test_nan_text_is_sodium_nitride_in_both(edge_cases):
    case = edge_cases["NaN"]
    assert case["rows_kept"] == [0, 1] and case["skipped"] == []
    ours = CompositionFeaturizer("magpie").transform(["Fe2O3", "NaN"])
    _assert_close(ours, np.array(case["features"]))
    assert dict(parse_formula("NaN")) == {"Na": 1.0, "N": 1.0}


def test_missing_value_raises_formula_error_where_cbfv_crashes(edge_cases):
    assert edge_cases[None]["error"].startswith("TypeError")
    with pytest.raises(FormulaError, match="row 1: missing formula"):
        CompositionFeaturizer("magpie").transform(["Fe2O3", None])


def test_variable_x_raises_where_cbfv_drops_the_row_silently(edge_cases):
    case = edge_cases["Li1-xCoO2"]
    assert "error" not in case and case["rows_kept"] == [0] and case["skipped"] == []
    with pytest.raises(FormulaError, match="row 1"):
        CompositionFeaturizer("magpie").transform(["Fe2O3", "Li1-xCoO2"])


def test_unknown_symbol_raises_formula_error_where_cbfv_crashes(edge_cases):
    assert edge_cases["D2O"]["error"].startswith("ValueError")
    with pytest.raises(FormulaError, match="row 1.*unknown element symbol 'D'"):
        CompositionFeaturizer("magpie").transform(["Fe2O3", "D2O"])


def test_element_outside_table_is_zero_in_cbfv_and_raises_here(edge_cases):
    """Og has no magpie row: CBFV keeps Og2O with Og's properties as 0, so its mean
    atomic number is (2 * 0 + 8) / 3 instead of (2 * 118 + 8) / 3."""
    case = edge_cases["Og2O"]
    assert case["rows_kept"] == [0, 1] and case["skipped"] == ["Og2O"]
    row = dict(zip(case["columns"], case["features"][1], strict=True))
    assert row["avg_Number"] == pytest.approx(8 / 3)
    assert row["min_Number"] == 0.0
    with pytest.raises(UnsupportedElementError, match="Og"):
        CompositionFeaturizer("magpie").transform(["Fe2O3", "Og2O"])
    featurizer = CompositionFeaturizer("magpie", on_unsupported="drop")
    with pytest.warns(UserWarning, match="Og"):
        ours = featurizer.transform(["Fe2O3", "Og2O"])
    assert featurizer.report_.dropped.formulas == ["Og2O"]
    _assert_close(ours, np.array(case["features"][:1]))
