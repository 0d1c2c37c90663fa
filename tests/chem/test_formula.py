import math
import pickle

import numpy as np
import pandas as pd
import pytest

import stoichnet.chem.formula as formula_module
from stoichnet.chem import MAX_FORMULA_LENGTH, Composition, FormulaError, parse_formula
from stoichnet.chem.formula import _parse_general, parse_formulas

# Amounts counted by hand.
VALID = {
    "Fe2O3": {"Fe": 2, "O": 3},
    "NaCl": {"Na": 1, "Cl": 1},
    "Ca(OH)2": {"Ca": 1, "O": 2, "H": 2},
    "Mg3(PO4)2": {"Mg": 3, "P": 2, "O": 8},
    "Ag(W3Br7)2": {"Ag": 1, "W": 6, "Br": 14},
    "K4[Fe(CN)6]": {"K": 4, "Fe": 1, "C": 6, "N": 6},
    "K4{Fe(CN)6}": {"K": 4, "Fe": 1, "C": 6, "N": 6},
    "{[(H)2]3}5": {"H": 30},
    "Al0.5Ni0.5": {"Al": 0.5, "Ni": 0.5},
    "Li0.05Fe0.95PO4": {"Li": 0.05, "Fe": 0.95, "P": 1, "O": 4},
    "CH3COOH": {"C": 2, "H": 4, "O": 2},
    "Fe1O1": {"Fe": 1, "O": 1},
    "  Fe2O3\t\n": {"Fe": 2, "O": 3},
    "Fe2 O3": {"Fe": 2, "O": 3},
    "CuSO4·5H2O": {"Cu": 1, "S": 1, "O": 9, "H": 10},
    "CuSO4*5H2O": {"Cu": 1, "S": 1, "O": 9, "H": 10},
    "CuSO4 · 5 H2O": {"Cu": 1, "S": 1, "O": 9, "H": 10},
    "CaSO4·0.5H2O": {"Ca": 1, "S": 1, "O": 4.5, "H": 1},
    "Na2CO3·H2O": {"Na": 2, "C": 1, "O": 4, "H": 2},
    "NaN": {"Na": 1, "N": 1},
    "H.5O": {"H": 0.5, "O": 1},
    "H1e-3O2.5e+1": {"H": 0.001, "O": 25},
    "Og118": {"Og": 118},
}


@pytest.mark.parametrize(("text", "expected"), VALID.items())
def test_parses_hand_checked_amounts(text, expected):
    composition = parse_formula(text)
    assert dict(composition) == pytest.approx(expected, rel=1e-15)
    assert list(composition) == list(expected)  # order of first appearance
    total = sum(expected.values())
    assert composition.num_atoms == pytest.approx(total, rel=1e-15)
    assert composition.fractions() == pytest.approx(
        {symbol: amount / total for symbol, amount in expected.items()}, rel=1e-15
    )
    assert composition.elements == tuple(expected)


@pytest.mark.parametrize("text", [t for t in VALID if t.strip() == t and " " not in t])
def test_general_parser_agrees_with_the_fast_path(text):
    amounts, num_atoms = _parse_general(text)
    assert amounts == dict(parse_formula(text))
    assert num_atoms == parse_formula(text).num_atoms


def test_fractions_of_fe2o3():
    assert parse_formula("Fe2O3").fractions() == {"Fe": 0.4, "O": 0.6}


@pytest.mark.parametrize(
    ("text", "reduced"),
    [("Fe2O3", "Fe2O3"), ("Fe4O6", "Fe2O3"), ("Al0.5Ni0.5", "AlNi"), ("CH3COOH", "CH2O"),
     ("Li0.05Fe0.95PO4", "LiFe19P20O80"), ("Mg3(PO4)2", "Mg3P2O8"), ("O2", "O"),
     ("Fe1O1", "FeO"), ("H0.333O0.5", "H333O500"), ("(H0.1)3O", "HO3.333333333333333")],
)  # fmt: skip
def test_reduced_formula(text, reduced):
    assert parse_formula(text).reduced_formula() == reduced


def test_composition_is_an_immutable_hashable_mapping():
    a, b = parse_formula("Fe2O3"), parse_formula("O3Fe2")
    assert a == b and hash(a) == hash(b)
    assert a == {"Fe": 2.0, "O": 3.0}
    assert a != parse_formula("FeO") and a != "Fe2O3"
    assert len({a, b, parse_formula("Fe4O6")}) == 2
    assert "Fe" in a and "Na" not in a and len(a) == 2 and a["O"] == 3.0
    with pytest.raises(TypeError):
        a["Fe"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        a.extra = 1  # type: ignore[attr-defined]
    assert repr(a) == "Composition('Fe2O3')" and str(a) == "Fe2O3"
    assert pickle.loads(pickle.dumps(a)) == a


def test_formula_round_trips_exactly():
    for text in ["Li0.05Fe0.95PO4", "H1e-3O2.5e+1", "(H0.1)3", "C6H12O6", "H123456789012345678O"]:
        composition = parse_formula(text)
        assert parse_formula(composition.formula) == composition
    assert parse_formula("H1e20O999").formula == "H1e+20O999"


def test_composition_constructor_validates():
    assert Composition({"Fe": 2, "O": 3}) == parse_formula("Fe2O3")
    assert Composition([("Na", 1), ("Cl", 1)]) == parse_formula("NaCl")
    with pytest.raises(ValueError, match="'Xx'"):
        Composition({"Xx": 1})
    with pytest.raises(ValueError, match="amount of O is 0"):
        Composition({"Fe": 1, "O": 0})
    with pytest.raises(ValueError, match="amount of O is inf"):
        Composition({"Fe": 1, "O": math.inf})
    with pytest.raises(ValueError, match="amount of O is nan"):
        Composition({"Fe": 1, "O": math.nan})
    with pytest.raises(ValueError, match="amount of O is 'two'"):
        Composition({"Fe": 1, "O": "two"})
    with pytest.raises(ValueError, match="amount of O is None"):
        Composition({"Fe": 1, "O": None})
    with pytest.raises(ValueError, match="given twice"):
        Composition([("O", 1), ("O", 2)])
    with pytest.raises(ValueError, match="at least one element"):
        Composition({})


# (text, position, words in `expected`, words in the message's problem, suggestion)
ERRORS = [
    ("", 0, "a formula", "empty formula", None),
    ("   ", 0, "a formula", "blank formula", None),
    ("Xx2O3", 0, "element symbol", "unknown element symbol 'Xx'", None),
    ("Fe2Q", 3, "element symbol", "unknown element symbol 'Q'", None),
    ("fe2o3", 0, "capital letter", "lowercase letter 'f'", "Fe2O3"),
    ("FE2O3", 1, "element symbol", "unknown element symbol 'E'", "Fe2O3"),
    ("NACL", 1, "element symbol", "unknown element symbol 'A'", "NaCl"),
    ("Cuo", 0, "element symbol", "unknown element symbol 'Cuo'", "CuO"),
    ("Ca(OH", 5, "')' to close the '(' at position 2", "end of formula", None),
    ("Ca(OH]2", 5, "')' to close the '(' at position 2", "']'", None),
    ("Ca)OH(", 2, "opening bracket", "closing ')' without an opening bracket", None),
    ("Fe2O3()", 6, "inside the brackets", "empty brackets ()", None),
    ("K4[]", 3, "inside the brackets", "empty brackets []", None),
    ("2H2O", 0, "before an amount", "amount '2' without an element", None),
    ("Fe2 3O", 4, "before an amount", "amount '3' without an element", None),
    ("Fe 2O3", 3, "before an amount", "amount '2' without an element", None),
    ("(H2O)3 4", 7, "before an amount", "amount '4' without an element", None),
    ("Fe0O3", 2, "an amount > 0", "zero amount '0'", None),
    ("Fe2O0.0", 4, "an amount > 0", "zero amount '0.0'", None),
    ("(Fe2O3)0", 7, "an amount > 0", "zero amount '0'", None),
    ("Fe-2O3", 2, "amount > 0", "'-' (negative amounts", None),
    ("H1e400", 1, "below 1.8e308", "amount '1e400' overflows", None),
    ("H" + "9" * 400, 1, "below 1.8e308", "overflows", None),
    ("H1e-400", 1, "an amount > 0", "amount '1e-400' underflows to zero", None),
    ("(H1e300)1e300", 1, "finite and > 0", "the amount of H overflows once multiplied", None),
    ("(H1e-300)1e-300", 1, "finite and > 0", "the amount of H underflows to zero", None),
    ("H1e308H1e308", 6, "finite and > 0", "the amount of H overflows", None),
    ("H1e308O1e308", 12, "total is finite", "the total number of atoms overflows", None),
    ("Fe2O3$", 5, "an element symbol, a bracket", "unexpected character '$' (U+0024)", None),
    ("Fe2O3.", 5, "digits after a decimal point", "'.' without digits", None),
    ("H𝟐O", 1, "ASCII digits 0-9", "non-ASCII digit '𝟐' (U+1D7D0)", "H2O"),
    ("Fe₂O₃", 2, "ASCII digits 0-9", "non-ASCII digit '₂' (U+2082)", "Fe2O3"),
    ("fe₂o₃", 0, "capital letter", "lowercase letter 'f'", "Fe2O3"),
    ("H٢O", 1, "ASCII digits 0-9", "non-ASCII digit '٢' (U+0662)", "H2O"),
    ("FeＯ", 2, "ASCII letters", "non-ASCII letter 'Ｏ' (U+FF2F)", "FeO"),
    ("Fe2\u200bO3", 3, "an element symbol, a bracket", "unexpected character '\\u200b' (U+200B)", None),
    ("CuSO4·", 6, "after the hydrate dot", "end of formula", None),
    ("·5H2O", 0, "before the hydrate dot", "hydrate dot '·'", None),
    ("CuSO4··H2O", 6, "before the hydrate dot", "hydrate dot '·'", None),
    ("(CuSO4·5H2O)", 6, "')' to close the '(' at position 0", "hydrate dot '·'", None),
    ("H" * (MAX_FORMULA_LENGTH + 1), MAX_FORMULA_LENGTH, "at most 32,768 characters",
     "text of 32,769 characters", None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "position", "expected", "problem", "suggestion"), ERRORS)
def test_errors_name_formula_position_expected_and_suggestion(
    text, position, expected, problem, suggestion
):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.formula, error.position, error.suggestion, error.row) == (
        text, position, suggestion, None
    )  # fmt: skip
    assert expected in error.expected
    assert problem in error.problem
    message = str(error)
    assert f"at position {position}" in message and expected in message and problem in message
    assert f"formula {text[:20]!r}"[:-1] in message
    if suggestion is not None:
        assert f"did you mean {suggestion!r}?" in message


def test_message_has_a_caret_under_the_position():
    with pytest.raises(FormulaError) as info:
        parse_formula("Fe2Q")
    assert str(info.value).endswith("\n    Fe2Q\n       ^")


def test_formula_error_pickles_with_its_attributes():
    with pytest.raises(FormulaError) as info:
        parse_formula("fe2o3")
    copy = pickle.loads(pickle.dumps(info.value.at_row(7)))
    assert (copy.formula, copy.position, copy.suggestion, copy.row) == ("fe2o3", 0, "Fe2O3", 7)
    assert str(copy).startswith("row 7: cannot parse formula 'fe2o3'")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "None"), (math.nan, "NaN"), (np.float32("nan"), "NaN"), (pd.NA, "<NA>"),
     (pd.NaT, "NaT")],
)  # fmt: skip
def test_missing_values_are_reported_as_missing(value, shown):
    with pytest.raises(FormulaError, match=f"missing formula \\({shown}\\)") as info:
        parse_formula(value)
    assert info.value.position is None and info.value.expected == "a formula string"


@pytest.mark.parametrize("value", [5, 2.5, b"Fe2O3", ["Fe2O3"]])
def test_non_strings_are_rejected(value):
    with pytest.raises(FormulaError, match=f"not a string: {type(value).__name__}"):
        parse_formula(value)


def test_parse_formulas_parses_each_distinct_string_once(monkeypatch):
    # the batch reader gets the distinct strings once; it leaves "Ca(OH)2" to _parse_amounts
    calls = {"batch": [], "one": []}
    read_simple, parse_amounts = formula_module._read_simple, formula_module._parse_amounts
    monkeypatch.setattr(
        formula_module, "_read_simple", lambda ts: calls["batch"].append(ts) or read_simple(ts)
    )
    monkeypatch.setattr(
        formula_module, "_parse_amounts", lambda t: calls["one"].append(t) or parse_amounts(t)
    )
    values = ["Fe2O3", "NaCl", "Fe2O3", "NaN", "Ca(OH)2", "NaCl", "Fe2O3", "Ca(OH)2"]
    parsed = parse_formulas(values)
    assert calls == {"batch": [["Fe2O3", "NaCl", "NaN", "Ca(OH)2"]], "one": ["Ca(OH)2"]}
    assert [str(c) for c in parsed.compositions] == ["Fe2O3", "NaCl", "NaN", "CaO2H2"]
    assert parsed.inverse.tolist() == [0, 1, 0, 2, 3, 1, 0, 3]
    assert parsed.inverse.dtype == np.int64
    assert parsed.errors == {}
    assert parsed.values.tolist() == values


# Whether the batch reader reads a text itself (True) or leaves it to the one-string
# parser; either way a batch must give what parse_formula gives.
BATCH_CASES = {
    "Fe2O3": True,
    "Li0.05Fe0.95PO4": True,
    "H007": True,
    "H123456789012345": True,  # 15 digits, exact as an integer over a power of ten
    "H1.23456789012345": True,
    "H0.00000000000001": True,
    "H9.99999999999999O0.1": True,
    "H1234567890123456": False,  # 16 digits
    "H0.000000000000001": False,
    "CH3COOH": False,  # a repeated element
    "Ca(OH)2": False,
    "CuSO4·5H2O": False,
    " Fe2O3": False,
    "Fe2 O3": False,
    "Fe2O3\nNaCl": False,  # a newline inside a text must not split it into two
    "\n": False,
    "H1e3": False,
    "H.5": False,
    "H5.": False,
    "H1.5.5": False,
    "H0": False,
    "H0.0": False,
    "": False,
    "fe2o3": False,
    "Xx2": False,
    "Fee": False,
    "2H": False,
    "Fe₂O₃": False,
    "Fé": False,
    "H\ud800": False,  # a lone surrogate
    "H" * (MAX_FORMULA_LENGTH + 1): False,
}


@pytest.mark.parametrize(
    ("text", "read_by_batch"), BATCH_CASES.items(), ids=[repr(t[:20]) for t in BATCH_CASES]
)
def test_a_batch_reads_each_text_as_parse_formula_does(text, read_by_batch):
    texts = ["NaCl", text, "Al0.5Ni0.5"]  # neighbours: a misaligned text would change them
    assert formula_module._read_simple(texts)[0].tolist() == [True, read_by_batch, True]
    parsed = parse_formulas(texts, errors="collect")
    try:
        expected = parse_formula(text)
    except FormulaError as error:
        assert parsed.errors == {1: str(error.at_row(1))}
    else:
        composition = parsed.compositions[parsed.inverse[1]]
        assert list(composition.items()) == list(expected.items())
        assert composition.num_atoms == expected.num_atoms
    neighbours = [parsed.compositions[i] for i in parsed.inverse[[0, 2]]]
    assert neighbours == [{"Na": 1.0, "Cl": 1.0}, {"Al": 0.5, "Ni": 0.5}]


def test_num_atoms_is_the_left_to_right_sum_on_every_path():
    # 0.1 + 0.2 + 0.3 is 0.6000000000000001 left to right, 0.6 when compensated or exact
    text = "H0.1He0.2Li0.3"
    assert parse_formula(text).num_atoms == (0.1 + 0.2) + 0.3 != 0.6
    assert _parse_general(text)[1] == (0.1 + 0.2) + 0.3
    assert parse_formulas([text]).compositions[0].num_atoms == (0.1 + 0.2) + 0.3
    assert Composition({"H": 0.1, "He": 0.2, "Li": 0.3}).num_atoms == (0.1 + 0.2) + 0.3


def test_parse_formulas_accepts_series_arrays_tuples_and_compositions():
    fe2o3 = parse_formula("Fe2O3")
    for values in [pd.Series(["NaCl", "Fe2O3"], index=[10, 20]), np.array(["NaCl", "Fe2O3"]),
                   ("NaCl", "Fe2O3"), ["NaCl", fe2o3], iter(["NaCl", "Fe2O3"])]:  # fmt: skip
        parsed = parse_formulas(values)
        assert [parsed.compositions[i] for i in parsed.inverse] == [parse_formula("NaCl"), fe2o3]
    assert parse_formulas([]).inverse.shape == (0,)


def test_parse_formulas_raise_names_the_first_failing_row():
    with pytest.raises(FormulaError) as info:
        parse_formulas(["Fe2O3", "NaCl", "Fe2Q", None, "Fe2Q"])
    assert info.value.row == 2 and info.value.formula == "Fe2Q"
    assert str(info.value).startswith("row 2: cannot parse formula 'Fe2Q'")
    with pytest.raises(FormulaError, match=r"^row 1: missing formula \(None\)"):
        parse_formulas(["Fe2O3", None, "Fe2Q"])


def test_parse_formulas_collect_reports_every_failed_row():
    values = pd.Series(["Fe2O3", None, "Xx", "NaCl", math.nan, "Xx", "NaN", pd.NA, 5])
    parsed = parse_formulas(values, errors="collect")
    assert [str(c) for c in parsed.compositions] == ["Fe2O3", "NaCl", "NaN"]
    assert parsed.inverse.tolist() == [0, -1, -1, 1, -1, -1, 2, -1, -1]
    assert sorted(parsed.errors) == [1, 2, 4, 5, 7, 8]
    assert parsed.errors[1] == "row 1: missing formula (None): expected a formula string"
    assert parsed.errors[4] == "row 4: missing formula (NaN): expected a formula string"
    assert parsed.errors[7] == "row 7: missing formula (<NA>): expected a formula string"
    assert parsed.errors[8] == "row 8: not a string: int 5: expected a formula string"
    assert parsed.errors[5].startswith("row 5: cannot parse formula 'Xx': unknown element")


def test_parse_formulas_rejects_bad_arguments():
    with pytest.raises(ValueError, match="errors='ignore'"):
        parse_formulas(["Fe2O3"], errors="ignore")
    with pytest.raises(TypeError, match="single formula"):
        parse_formulas("Fe2O3")
    with pytest.raises(TypeError, match="DataFrame"):
        parse_formulas(pd.DataFrame({"formula": ["Fe2O3"]}))
    with pytest.raises(ValueError, match="one-dimensional"):
        parse_formulas(np.array([["Fe2O3"]]))


@pytest.mark.parametrize(
    ("dtype", "shown"), [("str", "NaN"), ("string", "<NA>"), ("category", "NaN")]
)
def test_parse_formulas_reports_missing_values_of_typed_series(dtype, shown):
    values = pd.Series(["Fe2O3", None, "NaN"], dtype=dtype)
    parsed = parse_formulas(values, errors="collect")
    assert parsed.inverse.tolist() == [0, -1, 1]
    assert [str(c) for c in parsed.compositions] == ["Fe2O3", "NaN"]
    assert parsed.errors == {1: f"row 1: missing formula ({shown}): expected a formula string"}
