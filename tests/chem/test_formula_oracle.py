"""stoichnet's parser against pymatgen's Composition, on every formula in the shared data."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from pymatgen.core import Composition as PymatgenComposition

from stoichnet.chem import SYMBOLS, FormulaError, fraction_matrix, parse_formula, parse_formulas
from stoichnet.chem.formula import _parse_general

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def data_formulas(data_dir):
    """Every distinct formula string of the composition CSVs in the shared data."""
    paths = sorted(data_dir.glob("benchmark/*/*.csv")) + sorted(data_dir.glob("matbench/*.csv"))
    assert len(paths) >= 30, f"expected the benchmark and matbench CSVs under {data_dir}"
    columns = [
        pd.read_csv(path, usecols=["formula"], dtype=str, keep_default_na=False)["formula"]
        for path in paths
    ]
    distinct = pd.unique(pd.concat(columns, ignore_index=True)).tolist()
    assert len(distinct) > 250_000
    return distinct


def pymatgen_fraction_matrix(formulas):
    """(n, 118) CSR of pymatgen's fractional_composition, columns in SYMBOLS order."""
    column_of = {symbol: i for i, symbol in enumerate(SYMBOLS)}
    rows, columns, values = [], [], []
    for row, text in enumerate(formulas):
        fractions = PymatgenComposition(text).fractional_composition.get_el_amt_dict()
        for symbol, fraction in fractions.items():
            rows.append(row)
            columns.append(column_of[symbol])
            values.append(fraction)
    shape = (len(formulas), len(SYMBOLS))
    return scipy.sparse.csr_matrix((values, (rows, columns)), shape=shape)


def assert_same_fractions(formulas, ours, theirs):
    assert ours.shape == theirs.shape
    difference = abs(ours - theirs).max(axis=1).toarray().ravel()
    worst = np.argsort(difference)[::-1][:5]
    assert difference.max() <= 1e-9, [(formulas[i], difference[i]) for i in worst]
    # the same elements, none dropped or added
    support = (ours != 0).astype(np.int8) - (theirs != 0).astype(np.int8)
    assert support.nnz == 0, formulas[support.nonzero()[0][0]]


@pytest.mark.slow
def test_fractions_equal_pymatgen_for_every_formula_in_the_shared_data(data_formulas):
    ours = fraction_matrix(data_formulas, SYMBOLS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about e.g. unusual oxidation states
        theirs = pymatgen_fraction_matrix(data_formulas)
    assert_same_fractions(data_formulas, ours, theirs)


@pytest.mark.slow
def test_fast_path_and_general_parser_agree_exactly_on_the_shared_data(data_formulas):
    for composition, text in zip(parse_formulas(data_formulas).compositions, data_formulas,
                                 strict=True):  # fmt: skip
        amounts, num_atoms = _parse_general(text)
        assert amounts == dict(composition), text
        assert num_atoms == composition.num_atoms, text


# Formulas pymatgen reads the same way (hydrates are written with brackets for it).
SAME_AS_PYMATGEN = {
    "Fe2O3": "Fe2O3",
    "NaCl": "NaCl",
    "Ca(OH)2": "Ca(OH)2",
    "Mg3(PO4)2": "Mg3(PO4)2",
    "Ag(W3Br7)2": "Ag(W3Br7)2",
    "K4[Fe(CN)6]": "K4[Fe(CN)6]",
    "K4{Fe(CN)6}": "K4{Fe(CN)6}",
    "Al0.5Ni0.5": "Al0.5Ni0.5",
    "Li0.05Fe0.95PO4": "Li0.05Fe0.95PO4",
    "CH3COOH": "CH3COOH",
    "Fe1O1": "Fe1O1",
    "  Fe2O3 ": "  Fe2O3 ",
    "NaN": "NaN",
    "H1e-3O2.5e1": "H1e-3O2.5e1",
    "CuSO4·5H2O": "CuSO4(H2O)5",
    "CuSO4*5H2O": "CuSO4(H2O)5",
    "CaSO4·0.5H2O": "CaSO4(H2O)0.5",
    "Na2CO3·H2O·2NaCl": "Na2CO3(H2O)(NaCl)2",
}


def test_fractions_equal_pymatgen_for_the_documented_cases():
    ours = fraction_matrix(list(SAME_AS_PYMATGEN), SYMBOLS)
    theirs = pymatgen_fraction_matrix(list(SAME_AS_PYMATGEN.values()))
    assert_same_fractions(list(SAME_AS_PYMATGEN), ours, theirs)


@pytest.mark.parametrize(
    "text",
    # unknown symbols (dummy species for pymatgen), isotopes, zero and infinite amounts,
    # a trailing decimal point
    ["Xx2O3", "Fe2Q", "Ee", "D2O", "Fe0O3", "H0O", "H1e400", "Fe2O3."],
)
def test_stoichnet_raises_where_pymatgen_is_lenient(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        PymatgenComposition(text)  # accepted without complaint
    with pytest.raises(FormulaError):
        parse_formula(text)
