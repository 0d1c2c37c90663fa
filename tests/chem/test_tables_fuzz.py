"""Hostile tables (issue 8): every input either raises a clear TableError or yields an exact
per-row account, rows in == rows kept + rows reported, never a silent drop."""

import csv
import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stoichnet.chem.formula import FormulaError, parse_formula
from stoichnet.chem.tables import TableError, read_table

FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID_FORMULAS = ["Fe2O3", "NaCl", "Ca(OH)2", "K4[Fe(CN)6]", "Al0.5Ni0.5", "NaN", " LiF ",
                  "CuSO4·5H2O", "O3Fe2", "Fe4O6"]
INVALID_FORMULAS = ["Xx2", "Na,Cl", 'Fe"2O3', "fe2o3", "Fe0", "(", "H𝟐O", "2", "Fe2O3;", "é"]
VALID_TARGETS = ["1.5", "-2", "0", " 3.25 ", "1e-3", "+7.", ".5", "-0.0", "1E+02"]
INVALID_TARGETS = ["", "nan", "NaN", "inf", "-Infinity", "abc", "1,5", "1_000", "True", "0x10",
                   "1e999", "—1"]
# printable text without line breaks or NUL, so that file rows are lines
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


def formula_ok(cell: str) -> bool:
    if not cell.strip():
        return False
    try:
        parse_formula(cell)
    except FormulaError:
        return False
    return True


def target_value(cell: str) -> float | None:
    """The finite number a target cell holds, else None (cells come from known lists)."""
    return float(cell) if cell in VALID_TARGETS else None


ROW = st.tuples(
    st.one_of(st.sampled_from(VALID_FORMULAS * 2 + INVALID_FORMULAS + [""]), TEXT),
    st.sampled_from(VALID_TARGETS + INVALID_TARGETS),
    TEXT,  # a free-text note column: quoted commas, quotes, unicode
)
rows_strategy = st.lists(st.one_of(ROW, ROW, ROW, st.just(None)), min_size=1, max_size=40)


def test_every_listed_cell_is_classified(tmp_path):
    """Each target cell with a valid formula, and each formula with a valid target."""
    rows = [("NaCl", t, "") for t in VALID_TARGETS + INVALID_TARGETS]
    rows += [(f, "1.5", "") for f in VALID_FORMULAS + INVALID_FORMULAS]
    path = tmp_path / "cells.csv"
    path.write_text(write_csv(rows, bom=False), encoding="utf-8")
    frame, report = read_quietly(path, errors="drop", duplicates="keep")
    expected = [r for r in rows if formula_ok(r[0]) and target_value(r[1]) is not None]
    assert frame["formula"].tolist() == [r[0] for r in expected]
    assert frame["target"].tolist() == [target_value(r[1]) for r in expected]
    assert len(expected) == len(VALID_TARGETS) + len(VALID_FORMULAS)
    assert report.n_invalid == len(INVALID_TARGETS) + len(INVALID_FORMULAS)


def write_csv(rows, bom: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["formula", "target", "note"])
    for row in rows:
        if row is None:
            out.write("\n")
        else:
            writer.writerow(row)
    return ("\ufeff" if bom else "") + out.getvalue()


def read_quietly(source, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_table(source, return_report=True, **kwargs)


@pytest.mark.slow
@FUZZ
@given(rows=rows_strategy, bom=st.booleans())
def test_every_row_is_kept_or_reported_exactly(tmp_path, rows, bom):
    path = tmp_path / "fuzz.csv"
    path.write_text(write_csv(rows, bom), encoding="utf-8")
    frame, report = read_quietly(path, errors="drop", duplicates="keep")
    # header is row 1, so generated row i is file row i + 2
    blank = [i + 2 for i, r in enumerate(rows) if r is None or all(not c.strip() for c in r)]
    valid = {i + 2: r for i, r in enumerate(rows) if r is not None and i + 2 not in blank
             and formula_ok(r[0]) and target_value(r[1]) is not None}
    assert report.n_rows == len(rows)
    assert report.n_rows == report.n_kept + len(report.blank_rows) + report.n_invalid
    assert list(report.blank_rows) == blank
    assert frame.index.tolist() == sorted(valid)
    assert frame["formula"].tolist() == [valid[i][0] for i in sorted(valid)]
    assert frame["target"].tolist() == [target_value(valid[i][1]) for i in sorted(valid)]
    invalid = set(range(2, len(rows) + 2)) - set(valid) - set(blank)
    assert set(report.invalid_rows) == invalid
    for problem in report.problems:
        row = rows[problem.row - 2]
        assert problem.value == (row[0] if problem.column == "formula" else row[1])
    if invalid:
        with pytest.raises(TableError, match=f"{len(invalid)} of {len(rows)} rows are invalid"):
            read_table(path, duplicates="keep")


@pytest.mark.slow
@FUZZ
@given(rows=rows_strategy)
def test_wrong_encodings_are_errors_not_guesses(tmp_path, rows):
    text = write_csv(rows, bom=False) + "Fe2O3,1,é\n"  # at least one non-ASCII character
    path = tmp_path / "fuzz.csv"
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(TableError, match="UTF-16"):
        read_table(path)
    as_utf16 = read_quietly(path, encoding="utf-16", errors="drop", duplicates="keep")
    path.write_bytes(text.encode("utf-8"))
    as_utf8 = read_quietly(path, errors="drop", duplicates="keep")
    pd.testing.assert_frame_equal(as_utf16[0], as_utf8[0])
    try:
        latin = text.encode("latin-1")
    except UnicodeEncodeError:
        return
    path.write_bytes(latin)
    with pytest.raises(TableError, match="not valid utf-8"):
        read_table(path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_table_errors(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"formula,target\n" + data)
    try:
        frame, report = read_quietly(path, errors="drop", duplicates="keep")
    except TableError:
        return
    assert report.n_rows == report.n_kept + len(report.blank_rows) + report.n_invalid
    assert len(frame) == report.n_kept and np.isfinite(frame["target"]).all()


@FUZZ
@given(columns=st.lists(TEXT.filter(lambda c: c.strip() not in ("formula", "")), min_size=1,
                        max_size=4, unique=True))
def test_missing_columns_list_the_columns_found(tmp_path, columns):
    path = tmp_path / "fuzz.csv"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([columns, ["NaCl"] * len(columns)])
    path.write_text(out.getvalue(), encoding="utf-8")
    with pytest.raises(TableError, match="columns found") as info:
        read_table(path)
    assert repr(columns) in str(info.value)


MIXED = st.one_of(st.none(), st.just(float("nan")), st.booleans(), st.integers(-10**6, 10**6),
                  st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(VALID_FORMULAS),
                  st.sampled_from(VALID_TARGETS + INVALID_TARGETS), TEXT)
SPECIAL = st.sampled_from([math.inf, -math.inf, math.nan, None, pd.NA, True, np.float32(2.5),
                           np.int64(3), np.nan, b"1", 1 + 2j])


@FUZZ
@given(cells=st.lists(st.tuples(st.one_of(st.sampled_from(VALID_FORMULAS), MIXED),
                                 st.one_of(SPECIAL, st.floats(), MIXED)), min_size=1, max_size=30))
def test_mixed_types_in_a_dataframe(cells):
    frame = pd.DataFrame(cells, columns=["formula", "target"], dtype=object)
    try:
        kept, report = read_quietly(frame, errors="drop", duplicates="keep")
    except TableError as error:  # only the "no data" case may raise here
        assert "no data rows" in str(error)
        return
    assert report.n_rows == len(cells)
    assert report.n_rows == report.n_kept + len(report.blank_rows) + report.n_invalid
    for label in kept.index:
        formula, target = cells[label]
        assert kept.at[label, "formula"] == formula
        expected = float(target.strip()) if isinstance(target, str) else float(target)
        assert math.isfinite(expected) and kept.at[label, "target"] == expected
        assert not isinstance(target, bool)
