"""Atomic-fraction vectors: the sparse ``fraction_matrix`` every featurizer multiplies by
an element table, and ``ElementFractions``, ElemNet's 86-column input."""

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import BaseEstimator

from stoichnet.chem.composition import Composition
from stoichnet.chem.formula import DistinctAmounts, parse_distinct
from stoichnet.chem.grammar import short_repr
from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS

_ELEMNET_LEFT_OUT = frozenset({"He", "Ne", "Ar", "Po", "At", "Rn", "Fr", "Ra"})

ELEMNET_ELEMENTS: tuple[str, ...] = tuple(
    symbol for symbol in SYMBOLS[: ATOMIC_NUMBERS["Pu"]] if symbol not in _ELEMNET_LEFT_OUT
)
"""ElemNet's 86 input elements in its column order: H..Pu (Z 1-94) in order of atomic
number without He, Ne, Ar, Po, At, Rn, Fr and Ra; the list ``elements_tl`` in
``elemnet/data_utils.py`` of NU-CUCIS/ElemNet (Jha et al., Sci. Rep. 8, 17593 (2018))."""


class UnsupportedElementError(ValueError):
    """Compositions containing elements outside a feature set's columns.

    Attributes:
        rows: (k,) int64 row numbers (0-based positions in the input) that failed.
        formulas: the input values of those rows.
        unsupported: for each of those rows, the symbols outside the set.
    """

    def __init__(
        self,
        rows: np.ndarray,
        formulas: list,
        unsupported: list[tuple[str, ...]],
        n_elements: int,
    ):
        self.rows = rows
        self.formulas = formulas
        self.unsupported = unsupported
        shown = "; ".join(
            f"row {row} {short_repr(formula)} has {', '.join(symbols)}"
            for row, formula, symbols in zip(rows[:5], formulas, unsupported, strict=False)
        )
        more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
        super().__init__(
            f"{len(rows)} row(s) contain elements outside the {n_elements} supported: "
            f"{shown}{more}. Remove those rows, or use on_unsupported='drop' to drop "
            "them with a report."
        )


@dataclass(frozen=True)
class DroppedRows:
    """Rows a featurizer left out because they contain elements outside its element set
    (``ElementFractions(on_unsupported="drop").transform`` sets one as ``dropped_``).

    kept: (n_kept,) int64 input positions of the rows in the output (use
        ``y[report.kept]`` to align targets).
    rows: (n_dropped,) int64 input positions of the dropped rows.
    formulas: the input values of the dropped rows.
    unsupported: for each dropped row, its symbols outside the element set.
    """

    kept: np.ndarray
    rows: np.ndarray
    formulas: list
    unsupported: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        counts = pd.Series([s for symbols in self.unsupported for s in symbols]).value_counts()
        by_element = ", ".join(f"{symbol} ({n})" for symbol, n in counts.items())
        return (
            f"dropped {len(self.rows)} of {len(self.rows) + len(self.kept)} rows with "
            f"elements outside the set: {by_element or 'none'}"
        )


def _element_columns(elements: Sequence[str]) -> dict[str, int]:
    """Validate a list of element symbols; returns symbol -> column index."""
    if isinstance(elements, str) or not isinstance(elements, Iterable):
        raise TypeError(f"elements must be a sequence of element symbols, got {elements!r}")
    columns: dict[str, int] = {}
    for symbol in elements:
        if symbol not in ATOMIC_NUMBERS:
            raise ValueError(f"elements contains {symbol!r}, which is not a symbol H..Og")
        if symbol in columns:
            raise ValueError(f"elements contains {symbol!r} twice")
        columns[symbol] = len(columns)
    if not columns:
        raise ValueError("elements is empty: expected at least one element symbol")
    return columns


def _fraction_entries(
    distinct: DistinctAmounts, column_of: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero entries of the fraction matrix of the distinct formulas, row by row.

    Returns (row, column, fraction), each (n_entries,): int64 index of the distinct
    formula, int64 column (-1 for an element outside ``column_of``), float64
    amount / num_atoms.
    """
    column_of_z = np.full(len(SYMBOLS) + 1, -1, dtype=np.int64)
    column_of_z[[ATOMIC_NUMBERS[symbol] for symbol in column_of]] = list(column_of.values())
    rows = np.repeat(np.arange(len(distinct.num_atoms)), np.diff(distinct.indptr))
    return rows, column_of_z[distinct.atomic_numbers], distinct.amounts / distinct.num_atoms[rows]


def unsupported_rows(
    indptr: np.ndarray, elements: np.ndarray, supported: np.ndarray
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """The rows of a CSR layout of compositions that hold elements outside a set.

    indptr: (n_rows + 1,) int64 row bounds, every row with at least one entry.
    elements: (n_entries,) int64, each entry's element as Z - 1 (its index in SYMBOLS).
    supported: (118,) bool, True for the elements of the set (index Z - 1).
    Returns ((k,) int64 failing rows, for each its symbols outside the set in entry order).
    The one test for unsupported elements: ``fraction_matrix``, ``ElementFractions``
    and ``CompositionFeaturizer`` all use it.
    """
    lacks = ~supported[elements]
    bad = np.logical_or.reduceat(lacks, indptr[:-1]) if lacks.size else lacks
    failing = np.flatnonzero(bad)
    symbols = [
        tuple(SYMBOLS[z] for z in elements[start:end] if not supported[z])
        for start, end in zip(indptr[failing], indptr[failing + 1], strict=True)
    ]
    return failing, symbols


def _unsupported_inputs(
    distinct: DistinctAmounts, column_of: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    """``unsupported_rows`` of the distinct formulas, as input rows.

    Returns ((n_kept,) int64 input rows whose elements are all in ``column_of``,
    (k,) int64 the other input rows, for each of those its symbols outside the set).
    """
    supported = np.zeros(len(SYMBOLS), dtype=bool)
    supported[[ATOMIC_NUMBERS[symbol] - 1 for symbol in column_of]] = True
    failing, symbols = unsupported_rows(distinct.indptr, distinct.atomic_numbers - 1, supported)
    outside = np.isin(distinct.inverse, failing)
    symbols_of = dict(zip(failing.tolist(), symbols, strict=True))
    rows = np.flatnonzero(outside)
    return np.flatnonzero(~outside), rows, [symbols_of[k] for k in distinct.inverse[rows].tolist()]


def fraction_matrix(
    compositions: Iterable[Composition | str], elements: Sequence[str]
) -> scipy.sparse.csr_matrix:
    """Atomic fractions as a sparse (n_rows, len(elements)) float64 CSR matrix.

    compositions: list, array or Series of Compositions or formula strings (parsed
        with ``parse_formulas``, each distinct one once; a bad one raises
        FormulaError naming its row).
    elements: the column order, distinct element symbols.

    Row r holds ``compositions[r].fractions()`` and sums to 1. Multiply by an
    (len(elements), n_properties) table to get fraction-weighted averages. Raises
    UnsupportedElementError naming the rows that contain elements not in ``elements``.
    """
    column_of = _element_columns(elements)
    parsed = parse_distinct(compositions, errors="raise")
    _, failing, unsupported = _unsupported_inputs(parsed, column_of)
    if len(failing):
        raise UnsupportedElementError(
            failing, parsed.values[failing].tolist(), unsupported, len(column_of)
        )
    _, columns, fractions = _fraction_entries(parsed, column_of)
    shape = (len(parsed.num_atoms), len(column_of))
    unique = scipy.sparse.csr_matrix((fractions, columns, parsed.indptr), shape=shape)
    unique.sort_indices()  # canonical CSR: columns ascending within each row
    return unique[parsed.inverse]


class ElementFractions(BaseEstimator):
    """ElemNet's input vector: the atomic fraction of each of a fixed list of elements.

    elements: the columns, by default ``ELEMNET_ELEMENTS`` (86, ElemNet's order).
    on_unsupported: what to do with a formula containing an element outside
        ``elements``: "raise" (default) raises UnsupportedElementError naming the rows,
        formulas and elements; "drop" leaves those rows out, warns, and records them in
        ``dropped_`` (a DroppedRows whose ``kept`` aligns targets: ``y[fe.dropped_.kept]``).

    A scikit-learn estimator (``get_params``, ``clone``, usable in a Pipeline).

    >>> ElementFractions().transform(["Fe2O3"])[0, ELEMNET_ELEMENTS.index("O")]
    np.float32(0.6)
    """

    def __init__(self, elements: Sequence[str] = ELEMNET_ELEMENTS, on_unsupported: str = "raise"):
        self.elements = elements
        self.on_unsupported = on_unsupported

    def feature_labels(self) -> list[str]:
        """Column names: the element symbols, in column order."""
        return list(_element_columns(self.elements))

    def fit(self, formulas: object = None, y: object = None) -> "ElementFractions":
        """Nothing to learn; checks the parameters (for scikit-learn pipelines)."""
        self._check_params()
        return self

    def _check_params(self) -> dict[str, int]:
        if self.on_unsupported not in ("raise", "drop"):
            raise ValueError(f"on_unsupported={self.on_unsupported!r}: expected 'raise' or 'drop'")
        return _element_columns(self.elements)

    def transform(
        self, formulas: Iterable[Composition | str], as_frame: bool = False
    ) -> np.ndarray | pd.DataFrame:
        """Fractions of each formula: float32 (n_rows, len(elements)), rows summing to 1.

        formulas: list, array or Series of formula strings or Compositions; each
            distinct formula is parsed once, a bad one raises FormulaError naming its row.
        as_frame: return a DataFrame with columns ``feature_labels()``, indexed by the
            Series' index (or by input position) of the rows kept.
        With on_unsupported="drop" the dropped rows are missing from the output.
        """
        column_of = self._check_params()
        parsed = parse_distinct(formulas, errors="raise")
        kept, failing, unsupported = _unsupported_inputs(parsed, column_of)
        if len(failing) and self.on_unsupported == "raise":
            raise UnsupportedElementError(
                failing, parsed.values[failing].tolist(), unsupported, len(column_of)
            )
        rows, columns, fractions = _fraction_entries(parsed, column_of)
        self.dropped_ = DroppedRows(kept, failing, parsed.values[failing].tolist(), unsupported)
        if len(failing):
            warnings.warn(str(self.dropped_), UserWarning, stacklevel=2)
        inside = columns >= 0
        unique = np.zeros((len(parsed.num_atoms), len(column_of)), dtype=np.float32)
        unique[rows[inside], columns[inside]] = fractions[inside]
        features = unique[parsed.inverse[kept]]
        if not as_frame:
            return features
        index = formulas.index[kept] if isinstance(formulas, pd.Series) else kept
        return pd.DataFrame(features, index=index, columns=self.feature_labels())

    def fit_transform(
        self, formulas: Iterable[Composition | str], y: object = None, as_frame: bool = False
    ) -> np.ndarray | pd.DataFrame:
        """``fit`` then ``transform``."""
        return self.fit().transform(formulas, as_frame=as_frame)
