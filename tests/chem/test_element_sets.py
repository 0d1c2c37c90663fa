"""Formulas as sets of elements: token ids, fractions, widths and refusals by row; the
embedding equals CBFV's CSV read independently."""

from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from stoichnet.chem import ATOMIC_NUMBERS, FormulaError, UnsupportedElementError, parse_formula
from stoichnet.chem import element_sets as module
from stoichnet.chem.element_sets import (
    MIN_SET_WIDTH,
    ElementEmbedding,
    element_embedding,
    element_sets,
    set_width,
)


def test_mat2vec_rows_are_cbfvs_csv_by_atomic_number():
    csv = pd.read_csv(files("CBFV") / "element_properties" / "mat2vec.csv", index_col=0)
    emb = element_embedding("mat2vec")
    assert emb.table.shape == (119, 200) and emb.supported.all()
    assert not emb.table[0].any()  # the padding row
    for symbol in ("H", "He", "Ne", "Ar", "Fe", "Og"):
        np.testing.assert_array_equal(emb.table[ATOMIC_NUMBERS[symbol]], csv.loc[symbol].to_numpy())
    with pytest.raises(ValueError, match="unknown element embedding 'magpie'"):
        element_embedding("magpie")


def test_sets_hold_atomic_numbers_and_fractions_padded():
    formulas = ["Fe2O3", "HeNe", "Ar", "Li0.5Fe0.5PO4", "Fe2O3"]
    sets = element_sets(formulas, width=5, dtype="float64")
    assert sets.X.shape == (5, 5, 2) and sets.kept.tolist() == [0, 1, 2, 3, 4] and not sets.errors
    for row, formula in zip(sets.X, formulas, strict=True):
        fractions = parse_formula(formula).fractions()
        members = row[row[:, 0] > 0]
        assert {int(z): w for z, w in members} == pytest.approx(
            {ATOMIC_NUMBERS[e]: f for e, f in fractions.items()}, rel=1e-15)
        assert not row[len(members):].any()  # padding after the members
    assert element_sets(formulas).X.shape == (5, 4, 2)  # width: the widest formula


def test_too_wide_and_unparsable_rows_are_named_or_collected():
    with pytest.raises(ValueError, match=r"more than 3 elements.*row 1 'LiFePO4' has 4"):
        element_sets(["NaCl", "LiFePO4"], width=3)
    with pytest.raises(FormulaError, match="row 1"):
        element_sets(["NaCl", "Xx2"])
    sets = element_sets(["NaCl", "LiFePO4", "Xx2", "Ne"], width=3, errors="collect")
    assert sets.kept.tolist() == [0, 3] and sets.X.shape == (2, 3, 2)
    assert sets.errors[1] == "4 elements, more than the set width 3"
    assert "Xx" in sets.errors[2]


def test_elements_without_a_vector_are_refused_by_row(monkeypatch):
    real = element_embedding("mat2vec")
    supported = real.supported.copy()
    supported[ATOMIC_NUMBERS["He"] - 1] = False
    monkeypatch.setattr(module, "element_embedding",
                        lambda name: ElementEmbedding(name, real.table, supported))
    with pytest.raises(UnsupportedElementError, match="row 1 'HeNe' has He"):
        element_sets(["NaCl", "HeNe"])
    sets = element_sets(["NaCl", "HeNe"], errors="collect")
    assert sets.kept.tolist() == [0] and sets.errors == {1: "element(s) He have no mat2vec vector"}


def test_set_width_has_a_floor():
    assert set_width(3) == MIN_SET_WIDTH and set_width(MIN_SET_WIDTH + 2) == MIN_SET_WIDTH + 2
