import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import stoichnet.chem.formula as formula_module
from stoichnet.chem import (
    ELEMNET_ELEMENTS,
    ElementFractions,
    FormulaError,
    UnsupportedElementError,
    fraction_matrix,
    parse_formula,
)

# `elements_tl` of elemnet/data_utils.py in NU-CUCIS/ElemNet, the 86 inputs of ElemNet.
ELEMNET_SOURCE_ORDER = [
    "H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K",
    "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au",
    "Hg", "Tl", "Pb", "Bi", "Ac", "Th", "Pa", "U", "Np", "Pu",
]  # fmt: skip


def column(symbol):
    return ELEMNET_ELEMENTS.index(symbol)


def test_elemnet_elements_are_elemnets_86_in_its_order():
    assert len(ELEMNET_ELEMENTS) == 86
    assert list(ELEMNET_ELEMENTS) == ELEMNET_SOURCE_ORDER
    assert not {"He", "Ne", "Ar", "Po", "At", "Rn", "Fr", "Ra", "Am"} & set(ELEMNET_ELEMENTS)


def test_transform_hand_checked_fractions():
    features = ElementFractions().transform(["Fe2O3", "NaCl", "K4[Fe(CN)6]"])
    assert features.dtype == np.float32 and features.shape == (3, 86)
    expected = np.zeros((3, 86), dtype=np.float32)
    expected[0, [column("Fe"), column("O")]] = [0.4, 0.6]
    expected[1, [column("Na"), column("Cl")]] = [0.5, 0.5]
    expected[2, [column("K"), column("Fe"), column("C"), column("N")]] = np.array([4, 1, 6, 6]) / 17
    np.testing.assert_array_equal(features, expected)


def test_transform_accepts_lists_arrays_series_and_compositions():
    expected = ElementFractions().transform(["CuSO4·5H2O", "Al0.5Ni0.5"])
    for values in [np.array(["CuSO4·5H2O", "Al0.5Ni0.5"], dtype=object), ("CuSO4·5H2O", "Al0.5Ni0.5"),
                   pd.Series(["CuSO4·5H2O", "Al0.5Ni0.5"]),
                   [parse_formula("CuSO4·5H2O"), parse_formula("Al0.5Ni0.5")]]:  # fmt: skip
        np.testing.assert_array_equal(ElementFractions().transform(values), expected)


def test_each_distinct_formula_is_parsed_once(monkeypatch):
    batches, one_at_a_time = [], []
    read_simple, parse_amounts = formula_module._read_simple, formula_module._parse_amounts
    monkeypatch.setattr(
        formula_module, "_read_simple", lambda ts: batches.append(ts) or read_simple(ts)
    )
    monkeypatch.setattr(
        formula_module, "_parse_amounts", lambda t: one_at_a_time.append(t) or parse_amounts(t)
    )
    features = ElementFractions().transform(["NaCl", "Fe2O3", "NaCl", "Ca(OH)2", "NaCl"])
    assert batches == [["NaCl", "Fe2O3", "Ca(OH)2"]] and one_at_a_time == ["Ca(OH)2"]
    np.testing.assert_array_equal(features[0], features[2])


def test_as_frame_keeps_the_series_index_and_labels_columns():
    frame = ElementFractions().transform(
        pd.Series(["Fe2O3", "NaCl"], index=["a", "b"]), as_frame=True
    )
    assert list(frame.columns) == list(ELEMNET_ELEMENTS) == ElementFractions().feature_labels()
    assert list(frame.index) == ["a", "b"]
    assert frame.loc["a", "O"] == np.float32(0.6) and frame.loc["b", "Cl"] == np.float32(0.5)
    assert (frame.dtypes == np.float32).all()


def test_unsupported_elements_raise_by_default_naming_row_formula_and_element():
    with pytest.raises(UnsupportedElementError) as info:
        ElementFractions().transform(["Fe2O3", "HeO2", "NaCl", "PoAtRn", "HeO2"])
    error = info.value
    assert error.rows.tolist() == [1, 3, 4]
    assert error.formulas == ["HeO2", "PoAtRn", "HeO2"]
    assert error.unsupported == [("He",), ("Po", "At", "Rn"), ("He",)]
    message = str(error)
    assert "3 row(s)" in message and "outside the 86 supported" in message
    assert "row 1 'HeO2' has He" in message and "row 3 'PoAtRn' has Po, At, Rn" in message
    assert "on_unsupported='drop'" in message


def test_drop_removes_rows_and_reports_how_many_and_which():
    featurizer = ElementFractions(on_unsupported="drop")
    with pytest.warns(UserWarning, match=r"dropped 2 of 4 rows .*He \(1\), Po \(1\)"):
        features = featurizer.transform(pd.Series(["Fe2O3", "HeO2", "NaCl", "Po"]))
    report = featurizer.dropped_
    assert len(report) == 2
    assert report.rows.tolist() == [1, 3] and report.kept.tolist() == [0, 2]
    assert report.formulas == ["HeO2", "Po"] and report.unsupported == [("He",), ("Po",)]
    np.testing.assert_array_equal(features, ElementFractions().transform(["Fe2O3", "NaCl"]))
    with pytest.warns(UserWarning, match="dropped 1 of 2 rows"):
        frame = featurizer.transform(pd.Series(["HeO2", "NaCl"], index=[5, 6]), as_frame=True)
    assert list(frame.index) == [6]


def test_drop_with_nothing_to_drop_is_silent_and_reports_zero():
    featurizer = ElementFractions(on_unsupported="drop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        featurizer.transform(["Fe2O3"])
    assert len(featurizer.dropped_) == 0 and featurizer.dropped_.kept.tolist() == [0]


def test_bad_formulas_raise_formula_error_naming_the_row():
    with pytest.raises(FormulaError, match="^row 2: missing formula"):
        ElementFractions().transform(["Fe2O3", "NaCl", None])
    with pytest.raises(FormulaError, match="^row 1: cannot parse formula 'Fe2Q'"):
        ElementFractions(on_unsupported="drop").transform(["Fe2O3", "Fe2Q"])


def test_custom_elements_and_bad_parameters():
    featurizer = ElementFractions(elements=["O", "Fe"])
    np.testing.assert_allclose(featurizer.fit_transform(["Fe2O3"]), [[0.6, 0.4]])
    with pytest.raises(ValueError, match="on_unsupported='ignore'"):
        ElementFractions(on_unsupported="ignore").transform(["Fe2O3"])
    with pytest.raises(ValueError, match="'Xx', which is not a symbol"):
        ElementFractions(elements=["Fe", "Xx"]).transform(["Fe2O3"])
    with pytest.raises(ValueError, match="'Fe' twice"):
        ElementFractions(elements=["Fe", "Fe"]).fit()
    with pytest.raises(TypeError, match="sequence of element symbols"):
        ElementFractions(elements="FeO").fit()


def test_fraction_matrix_is_sparse_rows_of_fractions():
    matrix = fraction_matrix(["Fe2O3", parse_formula("NaCl"), "Fe2O3"], ["O", "Fe", "Na", "Cl"])
    assert scipy.sparse.issparse(matrix) and matrix.format == "csr"
    assert matrix.dtype == np.float64 and matrix.shape == (3, 4) and matrix.nnz == 6
    np.testing.assert_array_equal(
        matrix.toarray(), [[0.6, 0.4, 0, 0], [0, 0, 0.5, 0.5], [0.6, 0.4, 0, 0]]
    )
    # fraction-weighted mean atomic number of Fe2O3: 0.4 * 26 + 0.6 * 8 = 15.2
    np.testing.assert_allclose(matrix @ np.array([8.0, 26.0, 11.0, 17.0]), [15.2, 14.0, 15.2])


def test_fraction_matrix_rejects_elements_outside_the_columns():
    with pytest.raises(UnsupportedElementError, match="row 1 'NaCl' has Na, Cl") as info:
        fraction_matrix(["Fe2O3", "NaCl"], ["O", "Fe"])
    assert info.value.rows.tolist() == [1]


def test_is_a_scikit_learn_transformer_and_handles_empty_input():
    from sklearn.base import clone
    from sklearn.dummy import DummyRegressor
    from sklearn.pipeline import make_pipeline

    featurizer = clone(ElementFractions(elements=["O", "Fe"], on_unsupported="drop"))
    assert featurizer.get_params() == {"elements": ["O", "Fe"], "on_unsupported": "drop"}
    assert featurizer.transform([]).shape == (0, 2) and len(featurizer.dropped_) == 0
    assert fraction_matrix([], ["O"]).shape == (0, 1)
    pipeline = make_pipeline(ElementFractions(), DummyRegressor()).fit(
        ["Fe2O3", "NaCl"], [1.0, 3.0]
    )
    assert pipeline.predict(["FeO"]).tolist() == [2.0]
