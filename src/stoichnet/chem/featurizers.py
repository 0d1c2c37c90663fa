"""CBFV-style composition features: fraction-weighted statistics of element properties.

For a formula with atomic fractions f_i and element property values p_i (one table
column; tables from ``stoichnet.chem.element_tables``), the statistics are those of
CBFV 1.1.0's ``generate_features`` (Kauwe, Wang, Falkowski; github.com/kaaiian/CBFV):

    avg    sum_i f_i p_i                     (fractions @ table)
    dev    sum_i f_i |p_i - avg|             (fraction-weighted mean absolute deviation)
    range  max_i p_i - min_i p_i             (unweighted, over the elements present)
    max    max_i p_i
    min    min_i p_i
    mode   min of p_i over the elements whose fraction is np.isclose to the largest
    sum    sum_i n_i p_i = num_atoms * avg   (n_i: amounts as written; ``extended=True``)

Unlike CBFV, nothing happens silently: a formula with an element the table lacks
raises (CBFV featurises it as if the properties were zero) unless
``on_unsupported="drop"``; a missing property value raises unless ``impute=`` says how
to fill it from the table (CBFV fills the feature with the median over the dataset).
Every drop and imputation is reported in ``report_``.
"""

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import BaseEstimator

from stoichnet.chem.composition import Composition
from stoichnet.chem.element_tables import PRESETS, ElementTable, element_table
from stoichnet.chem.formula import parse_formulas
from stoichnet.chem.fractions import (
    DroppedRows,
    UnsupportedElementError,
    fraction_matrix,
    unsupported_rows,
)
from stoichnet.chem.periodic_table import SYMBOLS

STATS: tuple[str, ...] = ("avg", "dev", "range", "max", "min", "mode")
"""Statistics in CBFV's column order (CBFV puts ``sum`` first when it is asked for)."""

IMPUTE_POLICIES: tuple[str, ...] = ("mean", "median", "zero")
"""How ``impute=`` fills a missing property: the mean or median of that property over
the table's elements, or 0."""

_CITATIONS: dict[str, str] = {
    "magpie": "L. Ward, A. Agrawal, A. Choudhary, C. Wolverton, npj Comput. Mater. 2, 16028 "
    "(2016), doi:10.1038/npjcompumats.2016.28",
    "oliynyk": "A. O. Oliynyk et al., Chem. Mater. 28, 7324 (2016), "
    "doi:10.1021/acs.chemmater.6b02724",
    "mat2vec": "V. Tshitoyan et al., Nature 571, 95 (2019), doi:10.1038/s41586-019-1335-8",
    "jarvis": "K. Choudhary, B. DeCost, F. Tavazza, Phys. Rev. Materials 2, 083801 (2018), "
    "doi:10.1103/PhysRevMaterials.2.083801",
}
_CBFV_CITATION = (
    "CBFV: S. Kauwe, A. Wang, A. Falkowski, https://github.com/kaaiian/CBFV; compared in "
    "R. J. Murdock, S. K. Kauwe, A. Y.-T. Wang, T. D. Sparks, Integr. Mater. Manuf. Innov. 9, "
    "221 (2020), doi:10.1007/s40192-020-00179-z"
)
_CHUNK_CELLS = 2_000_000  # element-property values per block; bounds temporary memory


class MissingPropertyError(ValueError):
    """Elements in the input lack property values in the table, and ``impute`` is None."""


@dataclass(frozen=True)
class FeaturizationReport:
    """What one ``CompositionFeaturizer.transform`` did besides computing features.

    Attributes:
        dropped: the rows left out for elements the table lacks (on_unsupported="drop");
            ``dropped.kept`` are the input positions of the returned rows.
        imputed: one row per filled (element, property) value that the input used:
            ``element``, ``property``, ``value`` (filled in), ``rows`` (number of kept
            input rows containing the element). Empty unless ``impute`` is set.
    """

    dropped: DroppedRows
    imputed: pd.DataFrame

    def __str__(self) -> str:
        parts = [str(self.dropped)] if len(self.dropped) else []
        if len(self.imputed):
            elements = ", ".join(self.imputed["element"].unique())
            parts.append(f"imputed {len(self.imputed)} missing property values of {elements}")
        return "; ".join(parts) or f"featurized all {len(self.dropped.kept)} rows"


class CompositionFeaturizer(BaseEstimator):
    """CBFV-style composition feature vectors, e.g. the 132 Magpie features.

    Args:
        preset: element property table, one of ``element_tables.PRESETS``.
        stats: statistics to compute, a tuple drawn from ``STATS``; columns are grouped
            by statistic in the order given (the default is CBFV's order).
        extended: also compute CBFV's ``sum_feat`` block (``sum`` = num_atoms * avg,
            which depends on how the formula is written: Fe4O6 is not Fe2O3), placed
            first as CBFV does.
        impute: None (default) raises MissingPropertyError when an element in the input
            lacks a property value; "mean", "median" or "zero" fills it from the table.
        on_unsupported: "raise" (default) raises UnsupportedElementError for formulas
            with an element the table has no row for; "drop" leaves those rows out.

    ``transform`` warns when it drops rows or imputes values, and records what it did
    in ``report_`` (a FeaturizationReport). A scikit-learn estimator (``get_params``,
    ``clone``, usable in a Pipeline); the parameters are checked by ``fit`` and
    ``transform``.

    >>> X = CompositionFeaturizer("magpie").transform(["Fe2O3", "NaCl"])
    >>> X.shape, X.dtype
    ((2, 132), dtype('float32'))
    """

    def __init__(
        self,
        preset: str = "magpie",
        stats: tuple[str, ...] = STATS,
        extended: bool = False,
        impute: str | None = None,
        on_unsupported: str = "raise",
    ):
        self.preset = preset
        self.stats = stats
        self.extended = extended
        self.impute = impute
        self.on_unsupported = on_unsupported

    def _check_params(self) -> tuple[str, ...]:
        """Validate the parameters; returns the statistics to compute, ``sum`` first."""
        if self.preset not in PRESETS:
            raise ValueError(f"preset={self.preset!r}: expected one of {', '.join(PRESETS)}")
        stats = self.stats
        if isinstance(stats, str) or not isinstance(stats, Iterable):
            raise TypeError(f"stats={stats!r}: expected a tuple of names from {STATS}")
        stats = tuple(stats)
        if not stats or len(set(stats)) != len(stats) or not set(stats) <= set(STATS):
            raise ValueError(
                f"stats={stats!r}: expected distinct names from {STATS}, at least one "
                "(the sum block is asked for with extended=True)"
            )
        if not isinstance(self.extended, bool):
            raise TypeError(f"extended={self.extended!r}: expected True or False")
        if self.impute is not None and self.impute not in IMPUTE_POLICIES:
            raise ValueError(f"impute={self.impute!r}: expected None or one of {IMPUTE_POLICIES}")
        if self.on_unsupported not in ("raise", "drop"):
            raise ValueError(f"on_unsupported={self.on_unsupported!r}: expected 'raise' or 'drop'")
        return ("sum", *stats) if self.extended else stats

    def feature_labels(self) -> list[str]:
        """Column names, e.g. ``"magpie avg Number"``: preset, statistic, property."""
        stats = self._check_params()
        properties = element_table(self.preset).properties
        return [f"{self.preset} {stat} {p}" for stat in stats for p in properties]

    def citations(self) -> list[str]:
        """References for the element table of ``preset`` and for CBFV's statistics."""
        self._check_params()
        return [c for c in (_CITATIONS.get(self.preset), _CBFV_CITATION) if c is not None]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``feature_labels()`` as an object array (scikit-learn's name for it)."""
        return np.asarray(self.feature_labels(), dtype=object)

    def fit(self, formulas=None, y=None) -> "CompositionFeaturizer":
        """Nothing to learn (the tables are fixed); checks the parameters, returns self."""
        self._check_params()
        return self

    def fit_transform(self, formulas, y=None, *, as_frame: bool = False):
        """Same as ``transform``."""
        return self.transform(formulas, as_frame=as_frame)

    def transform(self, formulas, *, as_frame: bool = False):
        """Features of each formula.

        Args:
            formulas: list, tuple, 1-D array or pandas Series of formula strings or
                Compositions (each distinct string is parsed once).
            as_frame: return a DataFrame with ``feature_labels()`` as columns and the
                input's index (a Series' index, else positions) for the kept rows.

        Returns:
            (n_kept, n_features) float32 array (or DataFrame); n_kept < n_rows only with
            on_unsupported="drop", and ``report_.dropped.kept`` are the rows kept.

        Raises:
            FormulaError: a formula cannot be parsed or is missing (names the row).
            UnsupportedElementError, MissingPropertyError: see the class docstring.
        """
        stats = self._check_params()
        rows = _rows(formulas)
        table = element_table(self.preset)
        fractions, num_atoms = _fractions(rows, with_num_atoms=self.extended)
        dropped = self._supported(rows, fractions, table)
        if len(dropped):
            fractions = fractions[dropped.kept]
            num_atoms = None if num_atoms is None else num_atoms[dropped.kept]
        values, imputed = self._fill_missing(fractions, table)
        self.report_ = FeaturizationReport(dropped, imputed)
        if len(dropped) or len(imputed):
            warnings.warn(str(self.report_), UserWarning, stacklevel=2)

        features = _statistics(fractions, num_atoms, values, stats)
        if not as_frame:
            return features
        index = formulas.index[dropped.kept] if isinstance(formulas, pd.Series) else dropped.kept
        return pd.DataFrame(features, index=index, columns=self.feature_labels())

    def _supported(
        self, rows: list, fractions: scipy.sparse.csr_matrix, table: ElementTable
    ) -> DroppedRows:
        """The rows with elements the table lacks, as a report of dropped rows; raises
        UnsupportedElementError for them unless on_unsupported="drop"."""
        failing, unsupported = unsupported_rows(
            fractions.indptr, fractions.indices, table.supported
        )
        formulas = [rows[r] for r in failing]
        if len(failing) and self.on_unsupported == "raise":
            raise UnsupportedElementError(
                failing, formulas, unsupported, int(table.supported.sum())
            )
        kept = np.setdiff1d(np.arange(len(rows)), failing, assume_unique=True)
        return DroppedRows(kept, failing, formulas, unsupported)

    def _fill_missing(
        self, fractions: scipy.sparse.csr_matrix, table: ElementTable
    ) -> tuple[np.ndarray, pd.DataFrame]:
        """The (118, n_properties) table with the missing values that the rows of
        ``fractions`` use filled by the impute policy, and the report of what was filled."""
        rows_with = np.bincount(fractions.indices, minlength=len(SYMBOLS))  # rows per element
        present = rows_with > 0
        holes = np.isnan(table.values) & (present & table.supported)[:, None]
        if not holes.any():
            empty = pd.DataFrame({"element": [], "property": [], "value": [], "rows": []})
            return table.values, empty
        hole_elements, hole_properties = np.nonzero(holes)
        if self.impute is None:
            listing = "; ".join(
                f"{SYMBOLS[z]} lacks {', '.join(np.asarray(table.properties)[holes[z]])} "
                f"({rows_with[z]} rows)"
                for z in np.unique(hole_elements)
            )
            raise MissingPropertyError(
                f"the {self.preset!r} table has no value of some properties for elements "
                f"in the input: {listing}. Pass impute='mean', 'median' or 'zero' to fill "
                "them from the table (reported in report_.imputed), or use another preset."
            )
        known = table.values[table.supported]
        if self.impute == "mean":
            fill = np.nanmean(known, axis=0)
        elif self.impute == "median":
            fill = np.nanmedian(known, axis=0)
        else:
            fill = np.zeros(known.shape[1])
        values = table.values.copy()
        values[hole_elements, hole_properties] = fill[hole_properties]
        imputed = pd.DataFrame(
            {
                "element": [SYMBOLS[z] for z in hole_elements],
                "property": [table.properties[p] for p in hole_properties],
                "value": fill[hole_properties],
                "rows": rows_with[hole_elements],
            }
        )
        return values, imputed


def _rows(formulas) -> list:
    """The input rows as a list; a single formula or a DataFrame is refused, not iterated."""
    if isinstance(formulas, str | Composition | pd.DataFrame):
        raise TypeError(
            f"formulas is a {type(formulas).__name__}: pass a list, array or Series of "
            "formulas (a DataFrame's column, e.g. frame['formula'])"
        )
    return formulas.tolist() if isinstance(formulas, pd.Series | np.ndarray) else list(formulas)


def _fractions(rows: list, with_num_atoms: bool) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """(n_rows, 118) CSR atomic fractions, and (n_rows,) atoms per formula unit or None.

    Each distinct formula is parsed once either way; the Composition objects that carry
    the amounts are only built when the ``sum`` block needs them.
    """
    if not with_num_atoms:
        return fraction_matrix(rows, SYMBOLS), None
    parsed = parse_formulas(rows)
    num_atoms = np.array([c.num_atoms for c in parsed.compositions])
    fractions = fraction_matrix(parsed.compositions, SYMBOLS)[parsed.inverse]
    return fractions, num_atoms[parsed.inverse]


def _statistics(
    fractions: scipy.sparse.csr_matrix, num_atoms: np.ndarray | None, values: np.ndarray, stats
) -> np.ndarray:
    """Features of each row of ``fractions``, computed without a loop over formulas.

    fractions: (n, 118) CSR atomic fractions, every row with at least one nonzero.
    num_atoms: (n,) atoms per formula unit; needed only for ``sum``.
    values: (118, n_properties) float64 element table, no NaN in the rows used.

    Rows are sorted by their number of elements k, so that each group's nonzeros form
    a dense (k, m) block of fractions and a (k, m, n_properties) block of property
    values; reductions over the element axis (axis 0) are then k - 1 elementwise
    operations on contiguous (m, n_properties) slabs.

    Returns (n, len(stats) * n_properties) float32 features, row for row.
    """
    n, n_properties = fractions.shape[0], values.shape[1]
    order = np.argsort(np.diff(fractions.indptr), kind="stable")
    fractions = fractions[order]
    if num_atoms is not None:
        num_atoms = num_atoms[order]
    counts = np.diff(fractions.indptr)
    group_starts = np.flatnonzero(np.diff(counts, prepend=-1, append=-1))
    out = np.empty((n, len(stats) * n_properties), dtype=np.float32)
    for first, end in zip(group_starts[:-1], group_starts[1:], strict=True):
        k = counts[first]
        rows_per_block = max(1, _CHUNK_CELLS // (k * n_properties))
        for a in range(first, end, rows_per_block):
            b = min(end, a + rows_per_block)
            rows = order[a:b]  # where these sorted rows go in the output
            nonzeros = slice(fractions.indptr[a], fractions.indptr[b])
            f = fractions.data[nonzeros].reshape(b - a, k).T[:, :, None]
            p = values[fractions.indices[nonzeros].reshape(b - a, k).T]
            avg = fractions[a:b] @ values
            block = _block_statistics(
                set(stats), f, p, avg, None if num_atoms is None else num_atoms[a:b]
            )
            for j, stat in enumerate(stats):
                out[rows, j * n_properties : (j + 1) * n_properties] = block[stat]
    return out


def _block_statistics(stats: set[str], f, p, avg, num_atoms) -> dict[str, np.ndarray]:
    """The requested statistics of a block of m formulas with k elements each.

    f: (k, m, 1) fractions; p: (k, m, n_properties) property values, overwritten;
    avg: (m, n_properties) fraction-weighted means; num_atoms: (m,) or None (no ``sum``).
    Returns stat -> (m, n_properties) float64.
    """
    block = {"avg": avg}
    if "dev" in stats:
        deviation = p - avg
        np.abs(deviation, out=deviation)
        deviation *= f
        block["dev"] = deviation.sum(axis=0)
    if stats & {"range", "max", "min"}:
        block["max"], block["min"] = p.max(axis=0), p.min(axis=0)
        block["range"] = block["max"] - block["min"]
    if "sum" in stats:
        block["sum"] = num_atoms[:, None] * avg
    if "mode" in stats:  # last: it overwrites p
        # "Most abundant" is np.isclose to the largest fraction, as in CBFV; among
        # tied elements (AlNi) the smaller value is taken.
        fractions = f[:, :, 0]
        p[~np.isclose(fractions, fractions.max(axis=0))] = np.inf
        block["mode"] = p.min(axis=0)
    return block
