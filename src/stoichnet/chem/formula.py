"""Reading chemical formulas fast: ``parse_formula`` -> ``Composition``, and the batch
reader ``parse_formulas``.

This is the one way formulas are read in stoichnet; every featurizer and table reader
goes through ``parse_formulas`` (or ``parse_distinct``). The grammar, its reference
parser and every error message are in ``stoichnet.chem.grammar``; ``Composition`` is in
``stoichnet.chem.composition``.

Two fast readers take the common bracket-free formulas ("Fe2O3", "Li0.05Fe0.95PO4") off
the reference parser's hands and pass it everything else: a regular expression for one
string (``parse_formula``) and array operations over a whole batch (``_read_simple``,
used by ``parse_formulas``). All three give exactly the same amounts (the tests compare
them on hand-picked texts and on every formula of the shared data); ``num_atoms`` is
always their left-to-right sum (``total_atoms``), so fractions do not depend on the path.
"""

import re
from collections.abc import Iterable
from itertools import repeat
from typing import NamedTuple

import numpy as np
import pandas as pd

from stoichnet.chem.composition import Composition, total_atoms
from stoichnet.chem.grammar import (
    HYDRATE_DOTS,
    MAX_FORMULA_LENGTH,
    FormulaError,
    check_text,
    not_a_string,
)
from stoichnet.chem.grammar import parse_general as _parse_general
from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS

__all__ = [
    "HYDRATE_DOTS",
    "MAX_FORMULA_LENGTH",
    "Composition",
    "DistinctAmounts",
    "FormulaError",
    "ParsedFormulas",
    "parse_distinct",
    "parse_formula",
    "parse_formulas",
]

_INF = float("inf")
# A bracket-free formula of symbols with optional plain decimal amounts.
_SIMPLE_FORMULA = re.compile(r"(?:[A-Z][a-z]?+(?:[0-9]++(?:\.[0-9]++)?+)?+)++")
_SIMPLE_TOKEN = re.compile(r"([A-Z][a-z]?)([0-9.]*)")


def parse_formula(text: object) -> Composition:
    """Parse a chemical formula into a Composition.

    Accepts "Fe2O3", "Ca(OH)2", "K4[Fe(CN)6]", "Al0.5Ni0.5", "CuSO4·5H2O" and the
    rest of the grammar in ``stoichnet.chem.grammar``; repeated elements are summed
    ("CH3COOH" -> C2H4O2).

    Raises FormulaError for anything else, including a missing value (None, NaN,
    pandas NA) or a value that is not a string. The string "NaN" is sodium nitride.
    """
    return Composition.from_parsed(*_parse_amounts(text))


def _parse_amounts(text: object) -> tuple[dict[str, float], float]:
    """``parse_formula``'s work: (element -> amount, num_atoms), without the wrapper."""
    text = check_text(text)
    if _SIMPLE_FORMULA.fullmatch(text):
        amounts: dict[str, float] = {}
        for symbol, amount in _SIMPLE_TOKEN.findall(text):
            value = float(amount) if amount else 1.0
            if symbol not in ATOMIC_NUMBERS or value == 0.0 or value == _INF:
                break  # the general parser reports it with its position
            amounts[symbol] = amounts.get(symbol, 0.0) + value
        else:
            num_atoms = total_atoms(amounts.values())
            if num_atoms != _INF:
                return amounts, num_atoms
    return _parse_general(text)


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
    distinct = parse_distinct(values, errors)
    symbols = _SYMBOL_OF[distinct.atomic_numbers].tolist()
    amounts = distinct.amounts.tolist()
    bounds = distinct.indptr.tolist()
    compositions = [
        Composition.from_parsed(
            dict(zip(symbols[start:end], amounts[start:end], strict=True)), num_atoms
        )
        for start, end, num_atoms in zip(
            bounds[:-1], bounds[1:], distinct.num_atoms.tolist(), strict=True
        )
    ]
    return ParsedFormulas(compositions, distinct.inverse, distinct.errors, distinct.values)


_SYMBOL_OF = np.array(["", *SYMBOLS], dtype=object)  # Z -> symbol


class DistinctAmounts(NamedTuple):
    """``ParsedFormulas`` with the distinct compositions as arrays, no objects.

    indptr: (n_distinct + 1,) int64; composition k is entries ``indptr[k]:indptr[k + 1]``
        of atomic_numbers ((n_entries,) int64, in order of first appearance) and amounts
        ((n_entries,) float64).
    num_atoms: (n_distinct,) float64, each composition's ``total_atoms`` of its amounts.
    inverse, errors, values: as in ``ParsedFormulas``.
    """

    indptr: np.ndarray
    atomic_numbers: np.ndarray
    amounts: np.ndarray
    num_atoms: np.ndarray
    inverse: np.ndarray
    errors: dict[int, str]
    values: np.ndarray


def parse_distinct(values: Iterable[object], errors: str) -> DistinctAmounts:
    """``parse_formulas`` without Composition objects: the distinct compositions as
    arrays (``DistinctAmounts``), what batch featurizers such as ``fraction_matrix`` need.

    values, errors: as in ``parse_formulas``. The bracket-free strings are read all at
    once by ``_read_simple``, every other distinct value one at a time by ``_parse_amounts``.
    """
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
                amounts = value  # a Mapping like the dict below: len, iteration, values()
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
        error = failures[code] if code >= 0 else not_a_string(array[row])
        if errors == "raise":
            raise error.at_row(row)
        row_errors[row] = str(error.at_row(row))
    num_atoms = _row_totals(amounts, indptr)
    return DistinctAmounts(indptr, atomic_numbers, amounts, num_atoms, inverse, row_errors, array)


def _row_totals(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """(n_rows,) float64: each CSR row's ``total_atoms`` (left to right, in the same order)."""
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
