"""Chemical formulas: ``parse_formula`` -> ``Composition``, batch ``parse_formulas``.

This is the one formula parser of stoichnet; every featurizer and table reader goes
through ``parse_formulas``. The grammar::

    formula  := part (hydrate-dot part)*          hydrate dots: "·" "*" "•" "⋅"
    part     := [amount] unit+                    a leading amount only after a dot
    unit     := symbol [amount] | open unit+ close [amount]
    open     := "(" | "[" | "{"                   closed by the same kind
    amount   := ASCII digits with an optional decimal part and exponent:
                2  0.5  .5  1e-3  2.5e+2  (finite, > 0)

Whitespace is allowed around the formula and between units, not inside a symbol or
between a symbol and its amount. A "." is always a decimal point: write hydrates
with "·" or "*" ("CuSO4·5H2O"), since "CuSO4.5H2O" reads as O4.5.

Parsing is linear in the length of the text: an explicit stack instead of
recursion, and regular expressions that cannot backtrack (possessive quantifiers).

The general parser (``_parse_general``) reads every formula of the grammar and writes
every error message. Two fast readers take the common bracket-free formulas ("Fe2O3",
"Li0.05Fe0.95PO4") off its hands and pass it everything else: a regular expression for
one string (``parse_formula``) and array operations over a whole batch
(``parse_formulas``). All three give exactly the same amounts; ``num_atoms`` is always
their left-to-right sum (``_total``), so fractions do not depend on the path either.
"""

import functools
import math
import operator
import re
import unicodedata
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from fractions import Fraction
from itertools import repeat
from typing import NamedTuple

import numpy as np
import pandas as pd

from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS

MAX_FORMULA_LENGTH = 32_768
"""Longest formula text accepted (characters); longer text raises FormulaError at once.

Real formulas are far shorter; the bound keeps every call fast (10,000 nested
brackets still fit)."""

HYDRATE_DOTS = "·*•⋅"
"""Characters that join hydrate parts, as in "CuSO4·5H2O" (U+00B7, *, U+2022, U+22C5)."""

_CLOSER = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_CLOSER.values())
_INF = math.inf

# Fast path: a bracket-free formula of symbols with optional plain decimal amounts.
_SIMPLE_FORMULA = re.compile(r"(?:[A-Z][a-z]?+(?:[0-9]++(?:\.[0-9]++)?+)?+)++")
_SIMPLE_TOKEN = re.compile(r"([A-Z][a-z]?)([0-9.]*)")
# General path.
_AMOUNT_START = frozenset("0123456789.")
_AMOUNT = re.compile(r"(?:[0-9]++(?:\.[0-9]++)?+|\.[0-9]++)(?:e[+-]?+[0-9]++)?+")
_NONZERO_DIGIT = re.compile(r"[1-9]")
_SUGGEST_MAX_LENGTH = 200
_CARET_MAX_LENGTH = 120


class FormulaError(ValueError):
    """A formula that cannot be parsed, or a missing value where a formula was expected.

    Attributes:
        formula: the text (or value) given.
        position: 0-based index into ``formula`` where the problem is; None for a
            missing or non-string value.
        expected: what the parser expected at ``position``.
        problem: what it found instead.
        suggestion: a corrected formula for case slips ("fe2o3" -> "Fe2O3") and
            non-ASCII digits or letters ("Fe₂O₃" -> "Fe2O3"), or None.
        row: 0-based row number when raised from a batch (``parse_formulas``), else None.
    """

    def __init__(
        self,
        formula: object,
        position: int | None,
        expected: str,
        problem: str,
        suggestion: str | None = None,
        row: int | None = None,
    ):
        self.formula = formula
        self.position = position
        self.expected = expected
        self.problem = problem
        self.suggestion = suggestion
        self.row = row
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        if self.position is None:
            return f"{where}{self.problem}: expected {self.expected}"
        text = self.formula
        shown = text if len(text) <= _CARET_MAX_LENGTH else text[:_CARET_MAX_LENGTH] + "..."
        message = (
            f"{where}cannot parse formula {shown!r}: {self.problem} at position "
            f"{self.position}; expected {self.expected}"
        )
        if self.suggestion is not None:
            message += f"; did you mean {self.suggestion!r}?"
        if len(text) <= _CARET_MAX_LENGTH and text.isprintable() and text.strip():
            message += f"\n    {text}\n    {' ' * self.position}^"
        return message

    def __reduce__(self):
        return (
            type(self),
            (self.formula, self.position, self.expected, self.problem, self.suggestion, self.row),
        )

    def at_row(self, row: int) -> "FormulaError":
        """The same error, naming the batch row it came from."""
        return FormulaError(
            self.formula, self.position, self.expected, self.problem, self.suggestion, row
        )


class Composition(Mapping[str, float]):
    """An immutable, hashable mapping element symbol -> amount (atoms per formula unit).

    Elements keep the order of their first appearance in the formula. Amounts are
    finite positive floats; two compositions are equal when they have the same
    elements with exactly the same amounts (``Composition`` also compares equal to a
    plain mapping with those items).

    >>> c = parse_formula("Fe2O3")
    >>> c["Fe"], c.num_atoms, c.fractions()["O"]
    (2.0, 5.0, 0.6)
    """

    __slots__ = ("_amounts", "_num_atoms", "_hash")

    def __init__(self, amounts: Mapping[str, float] | Iterable[tuple[str, float]]):
        """Build from element -> amount pairs (use ``parse_formula`` for text).

        Raises ValueError for an unknown symbol, a repeated element, an amount that is
        not a finite number > 0, or no elements at all.
        """
        items = amounts.items() if isinstance(amounts, Mapping) else amounts
        checked: dict[str, float] = {}
        for symbol, amount in items:
            if symbol not in ATOMIC_NUMBERS:
                raise ValueError(f"unknown element symbol {symbol!r}: expected one of H..Og")
            if symbol in checked:
                raise ValueError(f"element {symbol!r} is given twice")
            try:
                value = float(amount)
            except (TypeError, ValueError):
                value = math.nan
            if not 0.0 < value < _INF:
                raise ValueError(f"amount of {symbol} is {amount!r}: expected a finite number > 0")
            checked[symbol] = value
        if not checked:
            raise ValueError("a Composition needs at least one element")
        self._amounts = checked
        self._num_atoms = _total(checked.values())
        if self._num_atoms == _INF:
            raise ValueError(f"the total number of atoms overflows: {checked}")
        self._hash = None

    @classmethod
    def _trusted(cls, amounts: dict[str, float], num_atoms: float) -> "Composition":
        """Wrap amounts the parser has already validated (no copy, no checks)."""
        self = object.__new__(cls)
        self._amounts = amounts
        self._num_atoms = num_atoms
        self._hash = None
        return self

    def __getitem__(self, symbol: str) -> float:
        return self._amounts[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._amounts)

    def __len__(self) -> int:
        return len(self._amounts)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._amounts

    # Read-only views of the underlying dict: much faster than Mapping's generic ones.
    def keys(self) -> KeysView[str]:
        return self._amounts.keys()

    def values(self) -> ValuesView[float]:
        return self._amounts.values()

    def items(self) -> ItemsView[str, float]:
        return self._amounts.items()

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._amounts.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Composition):
            return self._amounts == other._amounts
        if isinstance(other, Mapping):
            return self._amounts == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Composition({self.formula!r})"

    def __str__(self) -> str:
        return self.formula

    def __reduce__(self):
        return (type(self), (self._amounts,))

    @property
    def num_atoms(self) -> float:
        """Total number of atoms per formula unit (sum of the amounts)."""
        return self._num_atoms

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols in order of first appearance."""
        return tuple(self._amounts)

    @property
    def formula(self) -> str:
        """The composition written out, amounts of 1 omitted: "Fe2O3", "Al0.5Ni0.5".

        ``parse_formula(c.formula) == c`` holds exactly (amounts are written with
        ``repr``, which round-trips floats).
        """
        return "".join(symbol + _format_amount(a) for symbol, a in self._amounts.items())

    def fractions(self) -> dict[str, float]:
        """Atomic fractions element -> amount / num_atoms (they sum to 1)."""
        total = self._num_atoms
        return {symbol: amount / total for symbol, amount in self._amounts.items()}

    def reduced_formula(self) -> str:
        """The formula in its smallest whole-number ratio, elements in order of appearance.

        Amounts written as decimals are read exactly (0.05 is 1/20), so "Fe4O6" ->
        "Fe2O3", "Al0.5Ni0.5" -> "AlNi" and "Li0.05Fe0.95PO4" -> "LiFe19P20O80". When
        no ratio with amounts up to 10**6 exists (e.g. amounts that are products of
        inexact decimals), the amounts are divided by the smallest one instead.
        """
        exact = [Fraction(repr(a)) for a in self._amounts.values()]
        denominator = math.lcm(*(f.denominator for f in exact))
        integers = [int(f * denominator) for f in exact]
        divisor = math.gcd(*integers)
        reduced = [i // divisor for i in integers]
        if max(reduced) <= 10**6:
            amounts = [float(i) for i in reduced]
        else:
            smallest = min(self._amounts.values())
            amounts = [a / smallest for a in self._amounts.values()]
        return "".join(s + _format_amount(a) for s, a in zip(self._amounts, amounts, strict=True))


def _total(amounts: Iterable[float]) -> float:
    """The left-to-right float sum of ``amounts``: the one definition of ``num_atoms``.

    Not ``sum`` (compensated since Python 3.12) nor numpy's reductions (pairwise): the
    batch reader's ``_row_totals`` adds in this same order, so both paths agree exactly.
    """
    return functools.reduce(operator.add, amounts, 0.0)


def _format_amount(amount: float) -> str:
    if amount == 1.0:
        return ""
    if amount.is_integer() and amount < 1e16:  # larger ones read better as 1e+20
        return str(int(amount))
    return repr(amount)


def parse_formula(text: object) -> Composition:
    """Parse a chemical formula into a Composition.

    Accepts "Fe2O3", "Ca(OH)2", "K4[Fe(CN)6]", "Al0.5Ni0.5", "CuSO4·5H2O" and the
    rest of the grammar in this module's docstring; repeated elements are summed
    ("CH3COOH" -> C2H4O2).

    Raises FormulaError for anything else, including a missing value (None, NaN,
    pandas NA) or a value that is not a string. The string "NaN" is sodium nitride.
    """
    return Composition._trusted(*_parse_amounts(text))


def _parse_amounts(text: object) -> tuple[dict[str, float], float]:
    """``parse_formula``'s work: (element -> amount, num_atoms), without the wrapper."""
    if type(text) is not str:
        if not isinstance(text, str):
            raise _not_a_string(text)
        text = str(text)
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            text,
            MAX_FORMULA_LENGTH,
            f"a formula of at most {MAX_FORMULA_LENGTH:,} characters",
            f"text of {len(text):,} characters",
        )
    if _SIMPLE_FORMULA.fullmatch(text):
        amounts: dict[str, float] = {}
        for symbol, amount in _SIMPLE_TOKEN.findall(text):
            value = float(amount) if amount else 1.0
            if symbol not in ATOMIC_NUMBERS or value == 0.0 or value == _INF:
                break  # the general parser reports it with its position
            amounts[symbol] = amounts.get(symbol, 0.0) + value
        else:
            num_atoms = _total(amounts.values())
            if num_atoms != _INF:
                return amounts, num_atoms
    return _parse_general(text)


def _not_a_string(value: object) -> FormulaError:
    if value is None or value is pd.NA or value is pd.NaT:
        return FormulaError(value, None, "a formula string", f"missing formula ({value!r})")
    if isinstance(value, float | np.floating) and math.isnan(value):
        return FormulaError(value, None, "a formula string", "missing formula (NaN)")
    return FormulaError(
        value, None, "a formula string", f"not a string: {type(value).__name__} {value!r}"
    )


def _parse_general(text: str) -> tuple[dict[str, float], float]:
    """Parse any formula of the grammar; returns (amounts, num_atoms) or raises.

    Pass 1 tokenizes left to right, checks the grammar and gives every opening
    bracket the amount written after its closing bracket. Pass 2 walks the tokens
    with a stack of cumulative multipliers. Both are loops, never recursion.
    """
    n = len(text)
    end = len(text.rstrip())
    i = n - len(text.lstrip())
    if i == n:
        problem = "empty formula" if n == 0 else "blank formula"
        raise FormulaError(text, 0, "a formula such as 'Fe2O3'", problem)

    # Tokens in three parallel lists of scalars (no per-token containers, so no garbage
    # collector work on long input): what (an element symbol, or "(" ")" "." for an
    # opening bracket, a closing bracket, a hydrate dot), where, and the amount: the
    # element's, the one written after an opening bracket's closing bracket, or the
    # multiplier of the hydrate part after a dot.
    what: list[str] = []
    where: list[int] = []
    amount: list[float] = []
    unclosed: list[int] = []  # token indices of the opening brackets not yet closed
    part_is_empty = True
    while i < end:
        c = text[i]
        if "A" <= c <= "Z":
            j = i + 1
            while j < end and "a" <= text[j] <= "z":
                j += 1
            symbol = text[i:j]
            if symbol not in ATOMIC_NUMBERS:
                raise _unknown_symbol(text, i, symbol)
            what.append(symbol)
            where.append(i)
            if j < end and text[j] in _AMOUNT_START:
                value, i = _read_amount(text, j)
                amount.append(value)
            else:
                amount.append(1.0)
                i = j
            part_is_empty = False
        elif c in _CLOSER:
            unclosed.append(len(what))
            what.append("(")
            where.append(i)
            amount.append(1.0)
            i += 1
        elif c in _CLOSERS:
            if not unclosed:
                raise FormulaError(
                    text, i, "an element symbol or an opening bracket",
                    f"closing {c!r} without an opening bracket",
                )  # fmt: skip
            index = unclosed.pop()
            opener = text[where[index]]
            if c != _CLOSER[opener]:
                raise FormulaError(
                    text, i, f"{_CLOSER[opener]!r} to close the {opener!r} at position "
                    f"{where[index]}", f"{c!r}",
                )  # fmt: skip
            if index == len(what) - 1:
                raise FormulaError(
                    text, i, "an element symbol inside the brackets", f"empty brackets {opener}{c}"
                )
            what.append(")")
            where.append(i)
            amount.append(1.0)
            if i + 1 < end and text[i + 1] in _AMOUNT_START:
                amount[index], i = _read_amount(text, i + 1)
            else:
                i += 1
        elif c in HYDRATE_DOTS:
            if unclosed:
                opening = where[unclosed[-1]]
                raise FormulaError(
                    text, i, f"{_CLOSER[text[opening]]!r} to close the {text[opening]!r} at "
                    f"position {opening} before a hydrate dot", f"hydrate dot {c!r}",
                )  # fmt: skip
            if part_is_empty:
                raise FormulaError(
                    text, i, "an element symbol before the hydrate dot", f"hydrate dot {c!r}"
                )
            what.append(".")
            where.append(i)
            i += 1
            while i < end and text[i].isspace():
                i += 1
            if i < end and text[i] in _AMOUNT_START:
                value, i = _read_amount(text, i)
                amount.append(value)
            else:
                amount.append(1.0)
            part_is_empty = True
        elif c.isspace():
            i += 1
        else:
            raise _stray_character(text, i, c)
    if unclosed:
        opening = where[unclosed[-1]]
        raise FormulaError(
            text, end, f"{_CLOSER[text[opening]]!r} to close the {text[opening]!r} at position "
            f"{opening}", "end of formula",
        )  # fmt: skip
    if part_is_empty:
        raise FormulaError(text, end, "an element symbol after the hydrate dot", "end of formula")

    amounts: dict[str, float] = {}
    multipliers = [1.0]
    for symbol, position, value in zip(what, where, amount, strict=True):
        if symbol == "(":
            multipliers.append(multipliers[-1] * value)
        elif symbol == ")":
            multipliers.pop()
        elif symbol == ".":
            multipliers[0] = value
        else:
            value *= multipliers[-1]
            total = amounts.get(symbol, 0.0) + value
            if value == 0.0 or total == _INF:
                problem = "underflows to zero" if value == 0.0 else "overflows"
                raise FormulaError(
                    text, position, "amounts whose products and sums are finite and > 0",
                    f"the amount of {symbol} {problem} once multiplied out",
                )  # fmt: skip
            amounts[symbol] = total
    num_atoms = _total(amounts.values())
    if num_atoms == _INF:
        raise FormulaError(
            text, end, "amounts whose total is finite", "the total number of atoms overflows"
        )
    return amounts, num_atoms


def _read_amount(text: str, i: int) -> tuple[float, int]:
    """The amount starting at text[i] (1.0 if there is none) and the index after it."""
    match = _AMOUNT.match(text, i)
    if match is None:
        return 1.0, i
    literal = match.group()
    value = float(literal)
    if value == 0.0:
        problem = (
            f"amount {literal!r} underflows to zero"
            if _NONZERO_DIGIT.search(literal.partition("e")[0])
            else f"zero amount {literal!r}"
        )
        raise FormulaError(text, i, "an amount > 0", problem)
    if value == _INF:
        raise FormulaError(
            text, i, "an amount below 1.8e308", f"amount {_shorten(literal)} overflows"
        )
    return value, match.end()


def _shorten(text: object) -> str:
    """repr of a value, cut to its first 20 characters when longer than 30."""
    if not isinstance(text, str) or len(text) <= 30:
        return repr(text)
    return f"{text[:20]!r}... ({len(text)} characters)"


def _unknown_symbol(text: str, i: int, symbol: str) -> FormulaError:
    return FormulaError(
        text, i, "an element symbol H..Og", f"unknown element symbol {_shorten(symbol)}",
        _suggest_fix(text),
    )  # fmt: skip


def _stray_character(text: str, i: int, c: str) -> FormulaError:
    code = f"U+{ord(c):04X}"
    if c == "." and not _AMOUNT.match(text, i):
        return FormulaError(text, i, "digits after a decimal point", "'.' without digits")
    if c in "0123456789.":
        return FormulaError(
            text, i, "an element symbol or a closing bracket before an amount",
            f"amount {_shorten(_AMOUNT.match(text, i).group())} without an element",
        )  # fmt: skip
    if "a" <= c <= "z":
        return FormulaError(
            text, i, "an element symbol starting with a capital letter",
            f"lowercase letter {c!r}", _suggest_fix(text),
        )  # fmt: skip
    if c == "-":
        return FormulaError(
            text, i, "an element symbol, a bracket or an amount > 0",
            "'-' (negative amounts and ranges such as 'Zr1.05-1.08' are not formulas)",
        )  # fmt: skip
    if c.isdigit() or c.isnumeric():
        return FormulaError(
            text, i, "ASCII digits 0-9", f"non-ASCII digit {c!r} ({code})", _suggest_fix(text)
        )
    if c.isalpha():
        return FormulaError(
            text, i, "an element symbol in ASCII letters", f"non-ASCII letter {c!r} ({code})",
            _suggest_fix(text),
        )  # fmt: skip
    return FormulaError(
        text, i, "an element symbol, a bracket, an amount or a hydrate dot",
        f"unexpected character {c!r} ({code})", _suggest_fix(text),
    )  # fmt: skip


_LETTER_RUN = re.compile(r"[A-Za-z]++")
_SYMBOL_BY_LOWERCASE = {symbol.lower(): symbol for symbol in ATOMIC_NUMBERS}


def _suggest_fix(text: str) -> str | None:
    """A parseable formula that differs from ``text`` only in letter case or in how its
    digits and letters are encoded, or None.

    Non-ASCII digits and compatibility characters become ASCII ("Fe₂O₃", "H𝟐O",
    full-width letters), then each run of letters is re-read case-insensitively as
    element symbols, two-letter symbols first ("fe2o3" -> "Fe2O3", "NACL" -> "NaCl").
    """
    if len(text) > _SUGGEST_MAX_LENGTH:
        return None
    original = text
    text = unicodedata.normalize(
        "NFKC", "".join(_ascii_digit(c) if not c.isascii() else c for c in text)
    )
    pieces: list[str] = []
    last = 0
    for match in _LETTER_RUN.finditer(text):
        symbols = _segment_symbols(match.group().lower())
        if symbols is None:
            return None
        pieces += [text[last : match.start()], *symbols]
        last = match.end()
    pieces.append(text[last:])
    candidate = "".join(pieces)
    if candidate == original:
        return None
    try:
        parse_formula(candidate)
    except FormulaError:
        return None
    return candidate


def _ascii_digit(c: str) -> str:
    value = unicodedata.decimal(c, None)
    return c if value is None else str(value)


def _segment_symbols(letters: str) -> list[str] | None:
    """Split lowercase letters into element symbols, two-letter symbols first."""
    n = len(letters)
    # best[i]: symbols covering letters[i:], or None if impossible; filled right to left.
    best: list[list[str] | None] = [None] * n + [[]]
    for i in range(n - 1, -1, -1):
        for width in (2, 1):
            symbol = _SYMBOL_BY_LOWERCASE.get(letters[i : i + width])
            if symbol is not None and i + width <= n and best[i + width] is not None:
                best[i] = [symbol, *best[i + width]]
                break
    return best[0]


class ParsedFormulas(NamedTuple):
    """Result of ``parse_formulas``.

    compositions: one Composition per distinct formula string that parsed, in order of
        first appearance (two strings for the same composition, "Fe2O3" and "O3Fe2",
        give two equal entries).
    inverse: (n_rows,) int64; ``compositions[inverse[r]]`` is row r's composition,
        -1 where row r failed (only with errors="collect").
    errors: row -> FormulaError message for every failed row ({} with errors="raise").
    values: (n_rows,) object array of the input values, as given.
    """

    compositions: list[Composition]
    inverse: np.ndarray
    errors: dict[int, str]
    values: np.ndarray


def parse_formulas(values: Iterable[object], errors: str = "raise") -> ParsedFormulas:
    """Parse a batch of formulas, each distinct string once.

    values: list, tuple, array or pandas Series of formula strings or Compositions
        (Compositions are taken as they are); rows are counted 0, 1, ... in iteration
        order, whatever a Series' index is. Missing values fail like bad formulas.
    errors: "raise" raises the FormulaError of the first failing row, naming the row
        (``err.row``); "collect" returns every failure in ``errors`` and -1 in
        ``inverse`` for those rows.
    """
    distinct = _parse_distinct(values, errors)
    symbols = _SYMBOL_OF[distinct.atomic_numbers].tolist()
    amounts = distinct.amounts.tolist()
    bounds = distinct.indptr.tolist()
    compositions = [
        Composition._trusted(
            dict(zip(symbols[start:end], amounts[start:end], strict=True)), num_atoms
        )
        for start, end, num_atoms in zip(
            bounds[:-1], bounds[1:], distinct.num_atoms.tolist(), strict=True
        )
    ]
    return ParsedFormulas(compositions, distinct.inverse, distinct.errors, distinct.values)


_SYMBOL_OF = np.array(["", *SYMBOLS], dtype=object)  # Z -> symbol


class _DistinctAmounts(NamedTuple):
    """``ParsedFormulas`` with the distinct compositions as arrays, no objects.

    indptr: (n_distinct + 1,) int64; composition k is entries ``indptr[k]:indptr[k + 1]``
        of atomic_numbers ((n_entries,) int64, in order of first appearance) and amounts
        ((n_entries,) float64).
    num_atoms: (n_distinct,) float64, each composition's ``_total`` of its amounts.
    inverse, errors, values: as in ``ParsedFormulas``.
    """

    indptr: np.ndarray
    atomic_numbers: np.ndarray
    amounts: np.ndarray
    num_atoms: np.ndarray
    inverse: np.ndarray
    errors: dict[int, str]
    values: np.ndarray


def _parse_distinct(values: Iterable[object], errors: str) -> _DistinctAmounts:
    """The work of ``parse_formulas``, for batch featurizers that need no Composition
    objects: the bracket-free strings are read all at once by ``_read_simple``, every
    other distinct value one at a time by ``_parse_amounts``."""
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors={errors!r}: expected 'raise' or 'collect'")
    if isinstance(values, str | pd.DataFrame) or not isinstance(values, Iterable):
        raise TypeError(
            f"values must be a list, array or Series of formulas, got {type(values).__name__}"
            " (call parse_formula for a single formula)"
        )
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    items = list(values)
    # fromiter, not asarray: asarray would unpack each Composition as a sequence.
    array = np.fromiter(items, dtype=object, count=len(items))
    codes, uniques = pd.factorize(array, use_na_sentinel=True)
    is_text = np.fromiter(map(isinstance, uniques, repeat(str)), bool, len(uniques))
    texts = np.flatnonzero(is_text)
    simple, simple_indptr, simple_numbers, simple_amounts = _read_simple(uniques[texts].tolist())

    # The other distinct values, one at a time: their row of entries, elements, amounts.
    rest_rows: list[int] = []
    rest_numbers: list[int] = []
    rest_amounts: list[float] = []
    failures: dict[int, FormulaError] = {}
    rest = np.sort(np.concatenate([texts[~simple], np.flatnonzero(~is_text)]))
    for k, value in zip(rest.tolist(), uniques[rest].tolist(), strict=True):
        try:
            # `type(value) is str` first: isinstance against an ABC subclass is slow.
            if type(value) is not str and isinstance(value, Composition):
                amounts = value._amounts
            else:
                amounts, _ = _parse_amounts(value)
        except FormulaError as error:
            failures[k] = error
            continue
        rest_rows += [k] * len(amounts)
        rest_numbers += map(ATOMIC_NUMBERS.__getitem__, amounts)
        rest_amounts += amounts.values()

    # Merge both into one CSR layout, rows in order of first appearance. position_of[k]:
    # row of unique k, -1 for a failure; the extra last entry is where the NA code -1 points.
    parsed = np.ones(len(uniques) + 1, dtype=bool)
    parsed[list(failures)] = False
    parsed[-1] = False
    position_of = np.where(parsed, np.cumsum(parsed) - 1, -1)
    simple_rows = np.repeat(texts[simple], np.diff(simple_indptr))
    entry_rows = position_of[np.concatenate([simple_rows, np.array(rest_rows, dtype=np.int64)])]
    order = np.argsort(entry_rows, kind="stable")  # two sorted runs: a single merge
    n_rows = int(parsed.sum())
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_rows, minlength=n_rows), out=indptr[1:])
    atomic_numbers = np.concatenate([simple_numbers, np.array(rest_numbers, dtype=np.int64)])
    amounts = np.concatenate([simple_amounts, np.array(rest_amounts, dtype=np.float64)])
    atomic_numbers, amounts = atomic_numbers[order], amounts[order]

    inverse = position_of[codes]
    row_errors = {}
    for row in np.flatnonzero(inverse < 0).tolist():
        code = codes[row]
        error = failures[code] if code >= 0 else _not_a_string(array[row])
        if errors == "raise":
            raise error.at_row(row)
        row_errors[row] = str(error.at_row(row))
    num_atoms = _row_totals(amounts, indptr)
    return _DistinctAmounts(indptr, atomic_numbers, amounts, num_atoms, inverse, row_errors, array)


def _row_totals(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """(n_rows,) float64: each CSR row's ``_total`` (left to right, as in ``_total``)."""
    lengths = np.diff(indptr)
    totals = np.zeros(len(lengths))
    rows = np.arange(len(lengths))
    for j in range(lengths.max(initial=0)):
        rows = rows[lengths[rows] > j]
        totals[rows] += values[indptr[rows] + j]
    return totals


def _symbol_codes() -> np.ndarray:
    """(65536,) uint8: at ``256 * first + second``, the Z of the element symbol whose
    ASCII codes are first, second (second = 0 for a one-letter symbol); 0 elsewhere."""
    table = np.zeros(1 << 16, dtype=np.uint8)
    for symbol, z in ATOMIC_NUMBERS.items():
        first, second = (symbol.encode() + b"\0")[:2]
        table[first << 8 | second] = z
    return table


_Z_OF_SYMBOL_CODE = _symbol_codes()
_MAX_SIMPLE_DIGITS = 15
_POWERS_OF_TEN = 10.0 ** np.arange(_MAX_SIMPLE_DIGITS + 1)


def _read_simple(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the bracket-free formulas among ``texts`` all at once, with array operations.

    A text is read here when it is element symbols, none repeated, each with an optional
    amount of at most 15 digits and at most one decimal point inside them ("Fe2O3",
    "Li0.05Fe0.95PO4"); so it is shorter than MAX_FORMULA_LENGTH. Anything else
    (brackets, hydrate dots, whitespace, exponents, repeated elements, every error) is
    left to ``_parse_amounts``. An amount is its digits as an integer below 2**53
    divided by a power of ten up to 10**15: both exact, so the quotient is the correctly
    rounded decimal, the float that ``float()`` gives the other parsers.

    Returns (simple, indptr, atomic_numbers, amounts): simple, (n_texts,) bool, marks
    the texts read; the j-th of them has the entries ``indptr[j]:indptr[j + 1]`` of
    atomic_numbers ((n_entries,) int64) and amounts ((n_entries,) float64).
    """
    n = len(texts)
    if n == 0:
        return np.zeros(0, bool), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0)
    joined = "\n".join(texts)
    if joined.count("\n") != n - 1:  # a newline inside a text must not split it
        joined = "\n".join(text.replace("\n", "\0") for text in texts)
    # Line j (text j) lies between newlines j and j + 1; non-ASCII characters become
    # bytes >= 128, which no rule below accepts.
    c = np.frombuffer(f"\n{joined}\n".encode("utf-8", "surrogatepass"), dtype=np.uint8)
    upper = (c >= ord("A")) & (c <= ord("Z"))
    lower = (c >= ord("a")) & (c <= ord("z"))
    digit = (c >= ord("0")) & (c <= ord("9"))
    newline = c == ord("\n")
    dot = c == ord(".")
    after_upper = np.concatenate([[False], upper[:-1]])
    between_digits = np.concatenate([[False], digit[:-1]]) & np.concatenate([digit[1:], [False]])
    allowed = upper | digit | newline | (lower & after_upper) | (dot & between_digits)

    # Segments: each starts at a capital (an element token: symbol, then amount) or at a
    # newline, and runs to the next one. seg[i]: the segment of character i.
    boundary = upper | newline
    starts = np.flatnonzero(boundary)
    seg = np.cumsum(boundary) - 1
    is_token = upper[starts]
    line_of_seg = np.cumsum(newline[starts]) - 1  # the newline before line j is in line j

    bad_line = np.zeros(n + 1, dtype=bool)  # the extra line n holds the final newline
    bad_line[line_of_seg[seg[~allowed]]] = True
    line_ends = np.flatnonzero(newline)
    bad_line[:n] |= ~upper[line_ends[:-1] + 1]  # empty, or not starting with a symbol

    # Amounts: a segment's digits read as one integer (mantissa), and how many of them
    # follow its decimal point (decimals). digit_at: the positions of all digits.
    digit_at = np.flatnonzero(digit)
    digit_seg = seg[digit_at]
    n_digits = np.bincount(digit_seg, minlength=len(starts))
    last_digit = np.cumsum(n_digits) - 1  # index into digit_at of each segment's last digit
    short = np.flatnonzero(n_digits[digit_seg] <= _MAX_SIMPLE_DIGITS)
    places = _POWERS_OF_TEN[last_digit[digit_seg[short]] - short]  # 10 ** digits after it
    digit_values = (c[digit_at[short]] - ord("0")) * places
    mantissa = np.bincount(digit_seg[short], weights=digit_values, minlength=len(starts))
    dot_at = np.flatnonzero(dot)
    dot_seg = seg[dot_at]
    n_dots = np.bincount(dot_seg, minlength=len(starts))
    decimals = np.zeros(len(starts), dtype=np.int64)
    decimals[dot_seg] = last_digit[dot_seg] + 1 - np.searchsorted(digit_at, dot_at)

    symbol_at = starts[is_token]
    second = np.where(lower[symbol_at + 1], c[symbol_at + 1], 0)
    z = _Z_OF_SYMBOL_CODE[c[symbol_at].astype(np.int64) << 8 | second].astype(np.int64)
    token_line = line_of_seg[is_token]
    n_digits, mantissa, decimals = n_digits[is_token], mantissa[is_token], decimals[is_token]
    readable = (z > 0) & (n_dots[is_token] <= 1) & (n_digits <= _MAX_SIMPLE_DIGITS)
    written = readable & (n_digits > 0)
    amount = np.ones(len(z))
    amount[written] = mantissa[written] / _POWERS_OF_TEN[decimals[written]]
    bad_line[token_line[~readable | (amount == 0.0)]] = True
    keys = np.sort(token_line << 7 | z)  # Z < 128
    bad_line[keys[1:][keys[1:] == keys[:-1]] >> 7] = True  # a repeated element

    simple = ~bad_line[:n]
    keep = simple[token_line]
    indptr = np.zeros(int(simple.sum()) + 1, dtype=np.int64)
    np.cumsum(np.bincount(token_line[keep], minlength=n)[simple], out=indptr[1:])
    return simple, indptr, z[keep], amount[keep]
