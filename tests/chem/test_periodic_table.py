import re

import pytest

from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS, atomic_number


def test_symbols_are_118_distinct_from_hydrogen_to_oganesson():
    assert len(SYMBOLS) == 118
    assert len(set(SYMBOLS)) == 118
    assert (SYMBOLS[0], SYMBOLS[-1]) == ("H", "Og")
    assert all(re.fullmatch(r"[A-Z][a-z]?", symbol) for symbol in SYMBOLS)


@pytest.mark.parametrize(
    ("symbol", "z"),
    [("H", 1), ("He", 2), ("C", 6), ("O", 8), ("Fe", 26), ("Kr", 36), ("I", 53), ("W", 74),
     ("Pb", 82), ("U", 92), ("Pu", 94), ("Og", 118)],
)  # fmt: skip
def test_atomic_numbers_hand_checked(symbol, z):
    assert atomic_number(symbol) == z
    assert ATOMIC_NUMBERS[symbol] == z
    assert SYMBOLS[z - 1] == symbol


@pytest.mark.parametrize("bad", ["Xx", "fe", "FE", "", "D"])
def test_unknown_symbol_raises_naming_it(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        atomic_number(bad)


@pytest.mark.oracle
def test_symbols_match_pymatgen():
    from pymatgen.core import Element

    assert [Element.from_Z(z).symbol for z in range(1, 119)] == list(SYMBOLS)
