import numpy as np
import pandas as pd
import pytest

from stoichnet.evaluate import data
from stoichnet.evaluate.data import load_split

FORMULAS = ("Fe2O3 NaCl FeCl3 MgO Al2O3 SiO2 CuO ZnS TiO2 CaF2 LiF KBr Fe3O4 MnO2 NiO CoO "
            "Cr2O3 V2O5 BaTiO3 SrTiO3").split()


def _table(path, formulas=FORMULAS, seed=0):
    target = np.random.default_rng(seed).normal(size=len(formulas))
    pd.DataFrame({"formula": formulas, "target": target}).to_csv(path, index=False)
    return path


def test_train_table_without_val_holds_out_ten_percent(tmp_path):
    table = _table(tmp_path / "a.csv")
    split = load_split(train=table, test=table, seed=3)
    assert data.VALIDATION_FRACTION == 0.1
    assert (len(split.train), len(split.val), len(split.test)) == (18, 2, 20)
    assert set(split.train["formula"]).isdisjoint(split.val["formula"])
    assert list(split.train.index) == list(range(18))  # reindexed 0..n-1
    assert split.name == "a.csv" and split.unit == ""
    assert split.notes == ["no --val: early stopping on a random 10% of --train (seed 3)"]
    assert split.describe() == "a.csv: 18 train / 2 val / 20 test rows"
    again = load_split(train=table, test=table, seed=3)
    assert again.val.equals(split.val)  # seeded


def test_one_file_dataset_is_split_70_15_15(data_dir):
    split = load_split("matbench_expt_is_metal", duplicates="keep", seed=0)
    n = len(split.train) + len(split.val) + len(split.test)
    assert data.SPLIT_SIZES == (0.7, 0.15, 0.15)
    assert len(split.val) == round(0.15 * n) and len(split.test) == round(0.15 * n)
    assert split.notes[0].endswith("split 70/15/15 at random (seed 0)")


def test_subset_keeps_n_rows_of_each_split(tmp_path):
    table = _table(tmp_path / "a.csv")
    split = load_split(train=table, val=table, test=table, subset=5, seed=1)
    assert [len(t) for t in (split.train, split.val, split.test)] == [5, 5, 5]
    assert split.notes == ["--subset 5: a random 5 rows of each split (seed 1)"]
    with pytest.raises(ValueError, match="subset must be an int >= 2"):
        load_split(train=table, test=table, subset=1)
    with pytest.raises(TypeError, match="subset must be an int"):
        load_split(train=table, test=table, subset="5")


def test_train_without_test_when_not_needed(tmp_path):
    table = _table(tmp_path / "a.csv")
    assert load_split(train=table, need_test=False).test is None
    with pytest.raises(ValueError, match="needs a test table"):
        load_split(train=table)


def test_contradicting_sources_are_refused(tmp_path):
    table = _table(tmp_path / "a.csv")
    with pytest.raises(ValueError, match="either dataset or train"):
        load_split()
    with pytest.raises(ValueError, match="either dataset or train"):
        load_split("CritExam__Ef", train=table)
    with pytest.raises(ValueError, match="go with train"):
        load_split("CritExam__Ef", test=table)


def test_duplicates_mean_refuses_class_labels(tmp_path):
    table = tmp_path / "metal.csv"
    table.write_text("formula,target\nNaCl,0\nNaCl,1\nFe,1\nCu,1\nMgO,0\n")
    with pytest.raises(data.LabelAveragingError, match="would average the class labels") as err:
        load_split(train=table, val=table, test=table, duplicates="mean")
    assert err.value.path == str(table) and isinstance(err.value, ValueError)
    split = load_split(train=table, val=table, test=table, duplicates="mean", task="regression")
    assert sorted(split.train["target"]) == [0.0, 0.5, 1.0, 1.0]


def test_study_data_holds_element_fractions(tmp_path):
    table = _table(tmp_path / "a.csv")
    split = load_split(train=table, test=table)
    study = data.study_data(split)
    assert study.X_train.shape == (18, 86) and study.X_test.shape == (20, 86)
    assert study.y_val.dtype == np.float64 and study.formulas_test == tuple(FORMULAS)
    with pytest.raises(ValueError, match="needs test rows"):
        data.study_data(data.Split("x", split.train, split.val, None))
