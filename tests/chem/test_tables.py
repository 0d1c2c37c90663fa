import sys
import warnings

import numpy as np
import openpyxl
import pandas as pd
import pytest
from pymatgen.core import Composition as PymatgenComposition

from stoichnet.chem.formula import parse_formula
from stoichnet.chem.tables import (
    TableError,
    TableReport,
    composition_key,
    read_table,
    resolve_duplicates,
)

MESSY = (
    "formula,target\n"  # row 1
    "Fe2O3,1.5\n"  # 2
    "\n"  # 3 blank
    "O3Fe2,2.5\n"  # 4 same composition as row 2
    ",3\n"  # 5 missing formula
    "Xx2,1\n"  # 6 unknown element
    "NaCl,abc\n"  # 7 non-numeric target
    "KCl,inf\n"  # 8 infinite target
    '"Na,Cl",1\n'  # 9 quoted comma inside a formula
    "LiF,\n"  # 10 missing target
    "NaN,4\n"  # 11 sodium nitride, a formula
    ",\n"  # 12 every cell empty: blank
    "Fe4O6,-1e-1\n"  # 13 same composition as row 2
)


def write(tmp_path, text, name="t.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def accounted(report: TableReport) -> bool:
    return report.n_rows == report.n_kept + len(report.blank_rows) + report.n_invalid + report.n_merged


def test_raise_lists_problems_with_rows_and_count(tmp_path):
    with pytest.raises(TableError) as info:
        read_table(write(tmp_path, MESSY))
    message = str(info.value)
    assert "6 of 12 rows are invalid" in message and "header is row 1" in message
    for expected in ("row 5: formula='': missing formula", "row 6: formula='Xx2'",
                     "row 7: target='abc': non-numeric target", "row 8: target='inf'",
                     "row 9: formula='Na,Cl'", "row 10: target='': missing target"):
        assert expected in message
    report = info.value.report
    assert report.invalid_rows == (5, 6, 7, 8, 9, 10)
    assert report.blank_rows == (3, 12)


def test_drop_keeps_exactly_the_valid_rows_and_reports_the_rest(tmp_path):
    with pytest.warns(UserWarning, match="invalid 6"):
        frame, report = read_table(write(tmp_path, MESSY), errors="drop", duplicates="keep",
                                   return_report=True)
    assert frame.index.tolist() == [2, 4, 11, 13]
    assert frame["formula"].tolist() == ["Fe2O3", "O3Fe2", "NaN", "Fe4O6"]
    np.testing.assert_array_equal(frame["target"], [1.5, 2.5, 4.0, -0.1])
    assert frame["target"].dtype == np.float64
    assert report.n_rows == 12 and report.n_kept == 4 and report.n_merged == 0
    assert accounted(report)
    (group,) = report.duplicate_groups
    assert group.rows == (2, 4, 13) and group.formulas == ("Fe2O3", "O3Fe2", "Fe4O6")
    summary = report.summary()
    assert "kept 4, invalid 6, blank 2" in summary and "rows 2 (Fe2O3: 1.5)" in summary


@pytest.mark.parametrize(
    ("policy", "rows", "targets"),
    [("mean", [2, 11], [(1.5 + 2.5 - 0.1) / 3, 4.0]), ("first", [2, 11], [1.5, 4.0]),
     ("keep", [2, 4, 11, 13], [1.5, 2.5, 4.0, -0.1])],
)
def test_duplicate_policies(tmp_path, policy, rows, targets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame, report = read_table(write(tmp_path, MESSY), errors="drop", duplicates=policy,
                                   return_report=True)
    assert frame.index.tolist() == rows
    np.testing.assert_allclose(frame["target"], targets, rtol=0, atol=1e-15)
    assert report.n_merged == 4 - len(rows) and accounted(report)


def test_duplicates_raise_by_default(tmp_path):
    path = write(tmp_path, "formula,target\nFe2O3,1\nNaCl,2\nFe4O6,3\n")
    with pytest.raises(TableError, match=r"rows 2 \(Fe2O3: 1\), 4 \(Fe4O6: 3\)") as info:
        read_table(path)
    assert "duplicates='mean'" in str(info.value)
    assert info.value.report.duplicate_groups[0].rows == (2, 4)


@pytest.mark.oracle
def test_composition_key_matches_pymatgen_fractions():
    pairs = [("Fe2O3", "O3Fe2"), ("Fe2O3", "Fe4O6"), ("Cu1.8S1", "Cu9S5"),
             ("Li0.05Fe0.95PO4", "LiFe19P20O80"), ("Te0.5Se0.5", "SeTe"),
             ("Ca(OH)2", "CaO2H2"), ("Fe2O3", "Fe3O4"), ("NaCl", "NaCl2")]
    for a, b in pairs:
        same = PymatgenComposition(a).fractional_composition.almost_equals(
            PymatgenComposition(b).fractional_composition, rtol=0, atol=1e-12)
        assert (composition_key(parse_formula(a)) == composition_key(parse_formula(b))) == same


@pytest.mark.oracle
def test_duplicate_groups_on_real_data_agree_with_pymatgen(data_dir):
    frame, report = read_table(data_dir / "matbench/expt_is_metal.csv", duplicates="keep",
                               return_report=True)
    assert report.n_kept == 4921 and report.n_invalid == 0 and accounted(report)

    def key(formula):
        fractions = PymatgenComposition(formula).fractional_composition
        return tuple(sorted((str(el), round(x, 9)) for el, x in fractions.items()))

    keys = frame["formula"].map(key)
    theirs = {tuple(g.index) for _, g in frame.groupby(keys, sort=False) if len(g) > 1}
    ours = {g.rows for g in report.duplicate_groups}
    assert ours == theirs and len(ours) == 4


def test_values_match_pandas_on_a_shared_file(data_dir):
    frame = read_table(data_dir / "benchmark/mp_mu_b/val.csv")
    reference = pd.read_csv(data_dir / "benchmark/mp_mu_b/val.csv", keep_default_na=False)
    assert frame.index.tolist() == list(range(2, len(reference) + 2))
    np.testing.assert_array_equal(frame["target"], reference["target"])
    assert frame["formula"].tolist() == reference["formula"].tolist()


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path, "Formula,band_gap\nNaCl,5\n")
    with pytest.raises(TableError, match=r"no column 'formula' \(did you mean 'Formula'\?\); "
                                         r"columns found: \['Formula', 'band_gap'\]"):
        read_table(path)
    frame = read_table(path, formula_col="Formula", target_col="band_gap")
    assert frame.to_dict("list") == {"formula": ["NaCl"], "target": [5.0]}
    with pytest.raises(TableError, match="appears 2 times"):
        read_table(write(tmp_path, "formula,formula,target\nNaCl,KCl,1\n"))


def test_formulas_only(tmp_path):
    frame = read_table(write(tmp_path, "formula\nNaCl\nKCl\n"), target_col=None)
    assert list(frame.columns) == ["formula"] and frame["formula"].tolist() == ["NaCl", "KCl"]


def test_encodings(tmp_path):
    text = "formula,target,note\nFe2O3,1.5,hématite\n"
    with pytest.raises(TableError, match=r"not valid utf-8-sig.*line 2.*encoding="):
        read_table(write(tmp_path, text, encoding="latin-1"))
    assert read_table(write(tmp_path, text, encoding="latin-1"), encoding="latin-1").shape == (1, 2)
    with pytest.raises(TableError, match="UTF-16 byte-order mark"):
        read_table(write(tmp_path, text, encoding="utf-16"))
    assert read_table(write(tmp_path, text, encoding="utf-16"), encoding="utf-16").shape == (1, 2)
    bom = read_table(write(tmp_path, "\ufeff" + text))  # Excel's "CSV UTF-8" writes a BOM
    assert bom["formula"].tolist() == ["Fe2O3"]
    with pytest.raises(TableError, match="NUL"):  # UTF-16 without BOM: valid UTF-8 bytes
        read_table(write(tmp_path, "formula,target\nNaCl,1\n", encoding="utf-16-le"))
    with pytest.raises(ValueError, match="not a known text encoding"):
        read_table(write(tmp_path, text), encoding="utf-99")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("formula,target\n", "no data rows"),
     ("formula,target\nNaCl,1\nKCl,1,2\n", "Expected 2 fields in line 3, saw 3")],
)
def test_malformed_files(tmp_path, text, message):
    with pytest.raises(TableError, match=message):
        read_table(write(tmp_path, text))


def test_tsv_and_unsupported_suffix(tmp_path):
    frame = read_table(write(tmp_path, "formula\ttarget\nNaCl\t1\n", name="t.tsv"))
    assert frame["formula"].tolist() == ["NaCl"]
    with pytest.raises(TableError, match=r"unsupported file type '\.json'.*\.xlsx"):
        read_table(write(tmp_path, "{}", name="t.json"))
    with pytest.raises(TypeError, match="path or a DataFrame"):
        read_table(42)


def test_excel_rows_are_spreadsheet_rows(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["formula", "target"], ["Fe2O3", 1.5], [], ["NaCl", "x"], ["KCl", 3],
                [None, 2.0], ["LiF", True], ["MgO", "2.5"]):
        sheet.append(row)
    path = tmp_path / "t.xlsx"
    book.save(path)
    with pytest.warns(UserWarning):
        frame, report = read_table(path, errors="drop", return_report=True)
    assert frame.index.tolist() == [2, 5, 8]
    assert frame["target"].tolist() == [1.5, 3.0, 2.5]
    assert [(p.row, p.problem) for p in report.problems] == [
        (4, "non-numeric target"), (6, "missing formula"), (7, "non-numeric target (bool)")]
    assert report.blank_rows == (3,) and accounted(report)


def test_excel_without_openpyxl_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(ImportError, match="pip install openpyxl"):
        read_table(write(tmp_path, b"PK", name="t.xlsx"))


def test_parquet_and_dataframe_inputs(tmp_path):
    frame = pd.DataFrame({"formula": ["NaCl", None, "KCl", "Fe2O3", np.nan, 5],
                          "target": [1.0, 2.0, np.inf, np.nan, 3.0, 4.0]})
    expected = [(2, "formula", "missing formula"), (3, "target", "infinite target"),
                (4, "target", "missing target"), (5, "formula", "missing formula")]
    as_frame = frame.iloc[:5]
    with pytest.warns(UserWarning):
        kept, report = read_table(as_frame.set_axis(list("abcde")), errors="drop",
                                  return_report=True)
    assert kept.index.tolist() == ["a"]
    assert [(p.row, p.column, p.problem) for p in report.problems] == [
        ("bcde"[r - 2], c, m) for r, c, m in expected]
    path = tmp_path / "t.parquet"
    as_frame.to_parquet(path)
    with pytest.warns(UserWarning):
        kept, report = read_table(path, errors="drop", return_report=True)
    assert report.row_numbering == "first record is row 1"
    assert [(p.row, p.column, p.problem) for p in report.problems] == expected
    with pytest.raises(TableError, match="not a string: int 5"):
        read_table(frame.iloc[[0, 5]])


def test_dataframe_with_non_string_labels_is_left_untouched():
    frame = pd.DataFrame({0: ["NaCl", "KCl"], 1: [1.0, 2.0]})
    kept = read_table(frame, formula_col="0", target_col="1")
    assert kept["target"].tolist() == [1.0, 2.0]
    assert list(frame.columns) == [0, 1]


def test_resolve_duplicates_rejects_unknown_policy():
    with pytest.raises(ValueError, match="duplicates='avg'"):
        resolve_duplicates(pd.DataFrame({"formula": [], "target": []}), [], "avg")


def test_bad_arguments(tmp_path):
    path = write(tmp_path, "formula,target\nNaCl,1\n")
    with pytest.raises(ValueError, match="errors='ignore'"):
        read_table(path, errors="ignore")
    with pytest.raises(ValueError, match="duplicates='last'"):
        read_table(path, duplicates="last")
    with pytest.raises(ValueError, match="both 'formula'"):
        read_table(path, target_col="formula")
