"""Users' own tables of formulas and targets (CSV, TSV, Excel, Parquet), validated row by row.

Every row read is accounted for: it is kept, merged into a duplicate, reported as blank, or
reported as a problem (missing or unparseable formula, missing, non-numeric or infinite
target). Nothing is dropped without a ``TableReport`` saying which rows and why.

Row numbers in reports are the ones a person sees: for CSV/TSV and Excel the header is row 1
and the first data row is row 2 (a quoted field spanning several lines counts as one row);
for Parquet the first record is row 1; for a DataFrame they are its index labels.
"""

import io
import math
import numbers
import os
import re
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .formula import Composition, parse_formulas

__all__ = [
    "DuplicateFormulaError",
    "DuplicateGroup",
    "RowProblem",
    "TableError",
    "TableReport",
    "composition_key",
    "read_table",
    "resolve_duplicates",
]

ERRORS = ("raise", "drop")
DUPLICATES = ("raise", "mean", "first", "keep")
CSV_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": ","}
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
SHOWN = 10  # problems or duplicate groups listed in an error message or summary
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAN_WORDS = {"nan", "na", "n/a", "null", "none"}
_INF_WORDS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


class TableError(ValueError):
    """A table cannot be used as given. ``report`` holds the ``TableReport`` when the
    error is about rows (invalid rows with errors="raise", duplicates with
    duplicates="raise"), else None."""

    def __init__(self, message: str, report: "TableReport | None" = None):
        super().__init__(message)
        self.report = report


class DuplicateFormulaError(TableError):
    """Several rows have the same composition and duplicates="raise"; ``groups`` lists them."""

    def __init__(self, message: str, groups: tuple["DuplicateGroup", ...],
                 report: "TableReport | None" = None):
        super().__init__(message, report)
        self.groups = groups


@dataclass(frozen=True)
class RowProblem:
    """One problem in one row: row number (see module docstring), column, value, what is
    wrong."""

    row: Hashable
    column: str
    value: object
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.column}={self.value!r}: {self.problem}"


@dataclass(frozen=True)
class DuplicateGroup:
    """Rows whose formulas have the same composition (equal atomic fractions)."""

    rows: tuple
    formulas: tuple[str, ...]
    targets: tuple[float, ...]

    def __str__(self) -> str:
        pairs = ", ".join(
            f"{r} ({f}: {t:g})" for r, f, t in zip(self.rows, self.formulas, self.targets,
                                                   strict=True)
        )
        return f"rows {pairs}"


@dataclass
class TableReport:
    """What ``read_table`` did with every row.

    n_rows: data rows read (blank ones included).
    blank_rows: rows with every cell empty, skipped.
    problems: one entry per problem; rows with a problem are dropped (errors="drop").
    duplicate_groups: compositions found in more than one valid row.
    n_merged: rows removed by duplicates="mean" or "first".
    n_kept: rows in the returned table. Always
        n_rows == n_kept + len(blank_rows) + n_invalid + n_merged.
    """

    source: str
    row_numbering: str
    n_rows: int = 0
    blank_rows: tuple = ()
    problems: tuple[RowProblem, ...] = ()
    duplicates: str = "raise"
    duplicate_groups: tuple[DuplicateGroup, ...] = ()
    n_merged: int = 0
    n_kept: int = 0
    columns: tuple[str, ...] = field(default=())

    @property
    def invalid_rows(self) -> tuple:
        """Rows with at least one problem, in table order."""
        return tuple(dict.fromkeys(p.row for p in self.problems))

    @property
    def n_invalid(self) -> int:
        return len(self.invalid_rows)

    def summary(self, max_items: int = SHOWN) -> str:
        """A few lines a person can read: counts, then the first problems and duplicates."""
        lines = [
            f"{self.source}: {self.n_rows} rows read ({self.row_numbering}); kept {self.n_kept}, "
            f"invalid {self.n_invalid}, blank {len(self.blank_rows)}, "
            f"merged as duplicates {self.n_merged}"
        ]
        if self.problems:
            lines.append(f"{len(self.problems)} problems in {self.n_invalid} rows:")
            lines += [f"  {p}" for p in self.problems[:max_items]]
            if len(self.problems) > max_items:
                lines.append(f"  ... and {len(self.problems) - max_items} more")
        if self.blank_rows:
            shown = ", ".join(map(str, self.blank_rows[:max_items]))
            more = ", ..." if len(self.blank_rows) > max_items else ""
            lines.append(f"blank rows skipped: {shown}{more}")
        if self.duplicate_groups:
            n_dup_rows = sum(len(g.rows) for g in self.duplicate_groups)
            lines.append(
                f"{len(self.duplicate_groups)} compositions appear in more than one row "
                f"({n_dup_rows} rows; duplicates={self.duplicates!r}):"
            )
            lines += [f"  {g}" for g in self.duplicate_groups[:max_items]]
            if len(self.duplicate_groups) > max_items:
                lines.append(f"  ... and {len(self.duplicate_groups) - max_items} more")
        return "\n".join(lines)


def composition_key(composition: Composition) -> tuple[tuple[str, float], ...]:
    """Hashable key equal for formulas of the same composition ("Fe2O3", "O3Fe2", "Fe4O6"):
    elements sorted by symbol with their atomic fractions rounded to 12 decimals (so that
    "Li0.05Fe0.95PO4" and "LiFe19P20O80" agree despite float rounding)."""
    return tuple(sorted((symbol, round(f, 12)) for symbol, f in composition.fractions().items()))


def resolve_duplicates(
    frame: pd.DataFrame, keys: Sequence[Hashable], policy: str
) -> tuple[pd.DataFrame, tuple[DuplicateGroup, ...]]:
    """Apply a duplicate policy to ``frame`` (columns formula, target) whose rows share a
    key when their compositions are equal.

    policy: "keep" all rows; "first" keeps each key's first row; "mean" keeps the first
    row's formula and index with the mean target of the key's rows; "raise" raises
    ``TableError`` when any key repeats. Returns the new frame (row order of first
    appearance) and the groups of rows that shared a key.
    """
    if policy not in DUPLICATES:
        raise ValueError(f"duplicates={policy!r}: expected one of {DUPLICATES}")
    codes, _ = pd.factorize(pd.Series(list(keys), dtype=object), use_na_sentinel=False)
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    positions = np.flatnonzero(counts[codes] > 1)
    by_key = positions[np.argsort(codes[positions], kind="stable")]
    runs = np.split(by_key, np.flatnonzero(np.diff(codes[by_key])) + 1) if len(by_key) else []
    runs.sort(key=lambda run: run[0])
    rows, formulas = frame.index.to_numpy(), frame["formula"].to_numpy()
    targets = frame["target"].to_numpy()
    groups = tuple(
        DuplicateGroup(tuple(rows[run].tolist()), tuple(formulas[run].tolist()),
                       tuple(targets[run].tolist()))
        for run in runs
    )
    if policy == "raise" and groups:
        raise DuplicateFormulaError(
            f"{len(groups)} compositions appear in more than one row: "
            + "; ".join(map(str, groups[:SHOWN]))
            + ("; ..." if len(groups) > SHOWN else "")
            + ". Pass duplicates='mean', 'first' or 'keep'",
            groups,
        )
    if policy in ("keep", "raise"):
        return frame, groups
    first = ~pd.Series(codes).duplicated().to_numpy()
    result = frame[first].copy()
    if policy == "mean":
        means = pd.Series(frame["target"].to_numpy()).groupby(codes).mean()
        result["target"] = means.loc[codes[first]].to_numpy()
    return result, groups


def read_table(
    source: str | os.PathLike | pd.DataFrame,
    formula_col: str = "formula",
    target_col: str | None = "target",
    *,
    errors: str = "raise",
    duplicates: str = "raise",
    encoding: str | None = None,
    sheet_name: str | int = 0,
    return_report: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, TableReport]:
    """Read and validate a table of formulas and targets.

    source: a path (.csv, .tsv/.tab, .txt comma-separated, .xlsx/.xlsm, .parquet/.pq) or a
        DataFrame. Text files are read as UTF-8 (a UTF-8 byte-order mark is allowed) unless
        ``encoding`` is given; anything else is an error, never a guess.
    formula_col, target_col: column names; target_col=None reads formulas only.
    errors: "raise" (default) raises ``TableError`` listing the first problems and their
        count; "drop" drops the rows with problems and warns with a summary.
    duplicates: rows whose formulas have the same composition (``composition_key``):
        "raise" (default), "mean" (one row with the mean target), "first", or "keep".
    return_report: also return the ``TableReport``.

    Returns a DataFrame with columns ``formula`` (str, as written) and ``target`` (float64)
    indexed by row number (see the module docstring), in table order.
    """
    if errors not in ERRORS:
        raise ValueError(f"errors={errors!r}: expected one of {ERRORS}")
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates={duplicates!r}: expected one of {DUPLICATES}")
    if formula_col == target_col:
        raise ValueError(f"formula_col and target_col are both {formula_col!r}")
    raw, name, numbering = _read_raw(source, encoding, sheet_name)
    report = TableReport(source=name, row_numbering=numbering, duplicates=duplicates,
                         columns=tuple(map(str, raw.columns)))
    wanted = [formula_col] if target_col is None else [formula_col, target_col]
    _check_columns(raw, wanted, name)
    report.n_rows = len(raw)
    if report.n_rows == 0:
        raise TableError(f"{name}: no data rows under the header {list(report.columns)}")
    blank = raw.map(_is_blank).all(axis=1).to_numpy()
    report.blank_rows = tuple(raw.index[blank].tolist())
    raw = raw.loc[~blank, wanted]

    formulas, targets, parsed, composition_of, problems = _validate_rows(
        raw, formula_col, target_col)
    bad = np.zeros(len(raw), dtype=bool)
    bad[list(problems)] = True
    report.problems = tuple(p for i in sorted(problems) for p in problems[i])
    if bad.any() and errors == "raise":
        raise TableError(
            f"{name}: {report.n_invalid} of {report.n_rows} rows are invalid "
            f"({report.row_numbering}): "
            + "; ".join(map(str, report.problems[:SHOWN]))
            + (f"; ... ({len(report.problems)} problems in all)" if len(report.problems) > SHOWN
               else "")
            + ". Fix them, or pass errors='drop' to drop these rows with a report",
            report,
        )
    frame = pd.DataFrame(
        {"formula": formulas[~bad].astype(str), "target": targets[~bad]},
        index=pd.Index(raw.index[~bad], name="row"),
    )
    composition_keys = [composition_key(c) for c in parsed.compositions]
    keys = [composition_keys[c] for c in composition_of[~bad].tolist()]
    try:
        frame, report.duplicate_groups = resolve_duplicates(frame, keys, duplicates)
    except DuplicateFormulaError as error:
        report.duplicate_groups = error.groups
        raise DuplicateFormulaError(f"{name}: {error}", error.groups, report) from None
    if target_col is None:
        frame = frame.drop(columns="target")
    report.n_merged = int((~bad).sum()) - len(frame)
    report.n_kept = len(frame)
    if report.n_invalid:
        warnings.warn(report.summary(), stacklevel=2)
    return (frame, report) if return_report else frame


def _validate_rows(raw: pd.DataFrame, formula_col: str, target_col: str | None):
    """Parse every row of ``raw`` (non-blank rows, wanted columns).

    Returns (formulas (n,) object, targets (n,) float64 (NaN where invalid or absent),
    the ``ParsedFormulas`` of the rows with a formula, composition index per row (-1 if
    none), {row position: [RowProblem, ...]}).
    """
    formulas = raw[formula_col].to_numpy(dtype=object)
    problems: dict[int, list[RowProblem]] = {}
    missing = np.fromiter((_is_blank(v) for v in formulas), dtype=bool, count=len(formulas))
    for i in np.flatnonzero(missing).tolist():
        problems.setdefault(i, []).append(
            RowProblem(raw.index[i], formula_col, formulas[i], "missing formula"))
    present = np.flatnonzero(~missing)
    parsed = parse_formulas(formulas[present], errors="collect")
    for k, message in parsed.errors.items():
        i = int(present[k])
        reason = message.removeprefix(f"row {k}: ").split("\n")[0]  # drop the caret lines
        problems.setdefault(i, []).append(RowProblem(raw.index[i], formula_col, formulas[i], reason))
    composition_of = np.full(len(raw), -1, dtype=np.int64)
    composition_of[present] = parsed.inverse
    targets = np.full(len(raw), np.nan)
    if target_col is not None:
        targets, target_problems = _parse_targets(raw[target_col].to_numpy(dtype=object))
        for i, problem in target_problems.items():
            problems.setdefault(i, []).append(
                RowProblem(raw.index[i], target_col, raw[target_col].iat[i], problem))
    return formulas, targets, parsed, composition_of, problems


def _is_blank(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _parse_targets(values: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """float64 targets and {position: problem} for missing, non-numeric or infinite ones."""
    out = np.full(len(values), np.nan)
    problems = {}
    for i, value in enumerate(values):
        if isinstance(value, str):
            text = value.strip()
            if not text or text.lower() in _NAN_WORDS:
                problems[i] = "missing target"
            elif text.lower() in _INF_WORDS:
                problems[i] = "infinite target"
            elif _NUMBER.fullmatch(text):
                out[i] = float(text)
                if math.isinf(out[i]):
                    problems[i] = "target overflows float64"
            else:
                problems[i] = "non-numeric target"
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
            out[i] = float(value)
            if math.isnan(out[i]):
                problems[i] = "missing target"
            elif math.isinf(out[i]):
                problems[i] = "infinite target"
        elif value is None or value is pd.NA:
            problems[i] = "missing target"
        else:
            problems[i] = f"non-numeric target ({type(value).__name__})"
    return out, problems


def _check_columns(raw: pd.DataFrame, wanted: list[str], name: str) -> None:
    found = [str(c) for c in raw.columns]
    for column in wanted:
        count = found.count(column)
        if count == 1:
            continue
        if count > 1:
            raise TableError(f"{name}: column {column!r} appears {count} times in {found}")
        near = [c for c in found if c.strip().lower() == column.strip().lower()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise TableError(f"{name}: no column {column!r}{hint}; columns found: {found}")


def _read_raw(source, encoding: str | None, sheet_name) -> tuple[pd.DataFrame, str, str]:
    """(table of raw cells indexed by row number, name for messages, row numbering)."""
    if isinstance(source, pd.DataFrame):
        # column labels as strings, like a file's header (a new frame: the user's is untouched)
        named = source.set_axis([str(c) for c in source.columns], axis=1)
        return named, "DataFrame", "rows are index labels"
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"source must be a path or a DataFrame, got {type(source).__name__}: {source!r}"
        )
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in CSV_SEPARATORS:
        frame = _read_text_table(path, CSV_SEPARATORS[suffix], encoding)
        return frame, str(path), "header is row 1"
    if suffix in EXCEL_SUFFIXES:
        try:
            import openpyxl  # noqa: F401  # pandas reads .xlsx through it
        except ImportError:
            raise ImportError(
                f"reading {path} needs openpyxl: pip install openpyxl (or save it as CSV)"
            ) from None
        try:
            cells = pd.read_excel(path, sheet_name=sheet_name, header=None, dtype=object)
        except (ValueError, KeyError, OSError) as exc:
            raise TableError(f"{path}: cannot read as Excel: {exc}") from exc
        return _with_header(cells, path), str(path), "header is row 1"
    if suffix in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except (ValueError, OSError, ImportError) as exc:
            raise TableError(f"{path}: cannot read as Parquet: {exc}") from exc
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        return frame, str(path), "first record is row 1"
    supported = sorted([*CSV_SEPARATORS, *EXCEL_SUFFIXES, *PARQUET_SUFFIXES])
    raise TableError(f"{path}: unsupported file type {suffix!r}; supported: {supported}")


def _read_text_table(path: Path, sep: str, encoding: str | None) -> pd.DataFrame:
    data = path.read_bytes()
    if encoding is None:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise TableError(
                f"{path}: starts with a UTF-16 byte-order mark; pass encoding='utf-16' "
                "or save the file as UTF-8"
            )
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(
            f"{path}: not valid {encoding}: bytes {data[exc.start:exc.end]!r} at byte "
            f"{exc.start} (line {line}). Pass the file's encoding (e.g. encoding='cp1252' "
            "or 'latin-1' for files saved by older Excel) or save it as UTF-8"
        ) from None
    except LookupError:
        raise ValueError(f"encoding={encoding!r} is not a known text encoding") from None
    if "\x00" in text:
        raise TableError(
            f"{path}: contains NUL characters (line {text[: text.index(chr(0))].count(chr(10)) + 1}); "
            "it is binary or UTF-16 without a byte-order mark: pass its encoding"
        )
    if not text.strip():
        raise TableError(f"{path}: the file is empty (no header row)")
    try:
        cells = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str,
                            na_filter=False, skip_blank_lines=False, index_col=False)
    except pd.errors.ParserError as exc:
        raise TableError(f"{path}: malformed {sep!r}-separated table: {exc}".strip()) from None
    return _with_header(cells, path)


def _with_header(cells: pd.DataFrame, path: Path) -> pd.DataFrame:
    """First row as the header, data rows indexed 2, 3, ... (their row number)."""
    if cells.empty:
        raise TableError(f"{path}: the table is empty (no header row)")
    header = ["" if _is_blank(v) else str(v) for v in cells.iloc[0]]
    frame = cells.iloc[1:].set_axis(header, axis=1)
    frame.index = pd.RangeIndex(2, len(cells) + 1)
    return frame
