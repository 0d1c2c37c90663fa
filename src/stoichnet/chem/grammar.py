"""The formula grammar and its reference parser, ``parse_general``, with every error
message (``FormulaError``) and the suggestions for case slips and non-ASCII digits.

The grammar::

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

``parse_general`` reads every formula of the grammar and is the reference the fast
readers of ``stoichnet.chem.formula`` are tested against; they hand it every text they
do not read themselves, so every error message is written here.
"""

import math
import re
import unicodedata

import numpy as np
import pandas as pd

from stoichnet.chem.composition import total_atoms
from stoichnet.chem.periodic_table import ATOMIC_NUMBERS

__all__ = [
    "HYDRATE_DOTS",
    "MAX_FORMULA_LENGTH",
    "FormulaError",
    "check_text",
    "not_a_string",
    "parse_general",
    "short_repr",
]

MAX_FORMULA_LENGTH = 32_768
"""Longest formula text accepted (characters); longer text raises FormulaError at once.

Real formulas are far shorter; the bound keeps every call fast (10,000 nested
brackets still fit)."""

HYDRATE_DOTS = "·*•⋅"
"""Characters that join hydrate parts, as in "CuSO4·5H2O" (U+00B7, *, U+2022, U+22C5)."""

_CLOSER = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_CLOSER.values())
_INF = math.inf

_AMOUNT = re.compile(r"(?:[0-9]++(?:\.[0-9]++)?+|\.[0-9]++)(?:e[+-]?+[0-9]++)?+")
_AMOUNT_START = frozenset("0123456789.")
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


def check_text(value: object) -> str:
    """``value`` as a plain str of at most MAX_FORMULA_LENGTH characters.

    Raises FormulaError for a missing value (None, NaN, pandas NA), a value that is not
    a string, or text that is too long. ``parse_formula`` calls it first, and so does the
    batch reader for every value its array pass leaves (that pass reads only short
    strings); ``parse_general`` itself expects a str.
    """
    if type(value) is not str:
        if not isinstance(value, str):
            raise not_a_string(value)
        value = str(value)
    if len(value) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            value,
            MAX_FORMULA_LENGTH,
            f"a formula of at most {MAX_FORMULA_LENGTH:,} characters",
            f"text of {len(value):,} characters",
        )
    return value


def not_a_string(value: object) -> FormulaError:
    """The error for ``value``, which is missing (None, NaN, pandas NA) or not a str."""
    if value is None or value is pd.NA or value is pd.NaT:
        return FormulaError(value, None, "a formula string", f"missing formula ({value!r})")
    if isinstance(value, float | np.floating) and math.isnan(value):
        return FormulaError(value, None, "a formula string", "missing formula (NaN)")
    return FormulaError(
        value, None, "a formula string", f"not a string: {type(value).__name__} {value!r}"
    )


def parse_general(text: str) -> tuple[dict[str, float], float]:
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
            value, i = _read_amount(text, j)
            amount.append(value)
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
            amount[index], i = _read_amount(text, i + 1)
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
            value, i = _read_amount(text, i)
            amount.append(value)
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
    num_atoms = total_atoms(amounts.values())
    if num_atoms == _INF:
        raise FormulaError(
            text, end, "amounts whose total is finite", "the total number of atoms overflows"
        )
    return amounts, num_atoms


def _read_amount(text: str, i: int) -> tuple[float, int]:
    """The amount starting at text[i] (1.0 if there is none) and the index after it.

    Trailing whitespace cannot start an amount, so i may be anywhere up to len(text).
    """
    if text[i : i + 1] not in _AMOUNT_START:  # most symbols have none: skip the regex
        return 1.0, i
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
            text, i, "an amount below 1.8e308", f"amount {short_repr(literal)} overflows"
        )
    return value, match.end()


def short_repr(text: object) -> str:
    """repr of a value, cut to its first 20 characters when longer than 30."""
    if not isinstance(text, str) or len(text) <= 30:
        return repr(text)
    return f"{text[:20]!r}... ({len(text)} characters)"


def _unknown_symbol(text: str, i: int, symbol: str) -> FormulaError:
    return FormulaError(
        text, i, "an element symbol H..Og", f"unknown element symbol {short_repr(symbol)}",
        _suggest_fix(text),
    )  # fmt: skip


def _stray_character(text: str, i: int, c: str) -> FormulaError:
    code = f"U+{ord(c):04X}"
    if c == "." and not _AMOUNT.match(text, i):
        return FormulaError(text, i, "digits after a decimal point", "'.' without digits")
    if c in "0123456789.":
        return FormulaError(
            text, i, "an element symbol or a closing bracket before an amount",
            f"amount {short_repr(_AMOUNT.match(text, i).group())} without an element",
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
        parse_general(candidate)
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


