"""`stoichnet cv` and `stoichnet learning-curve` end to end, and their bad input."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from sklearn.metrics import mean_absolute_error, roc_auc_score

from stoichnet.cli import main

CATIONS = ["Li", "Na", "K", "Mg", "Ca", "Fe", "Cu", "Zn", "Ti", "Al"]
ANIONS = ["O", "F", "Cl", "S", "N"]
# one composition per row (tables refuse duplicates): cation, anion, 1 or 2 anions
FORMULAS = [f"{a}{b}{y}" for a in CATIONS for b in ANIONS for y in (1, 2)]


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _png(path: Path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and min(imread(path).shape[:2]) > 200


def _csv(path: Path, n=60, classification=False) -> Path:
    rng = np.random.default_rng(0)
    formulas = FORMULAS[:n]
    y = np.array([f.count("O") + f.count("2") for f in formulas]) + rng.normal(0, 0.3, n)
    target = (y > np.median(y)).astype(int) if classification else y
    pd.DataFrame({"compound": formulas, "value": target}).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_cv_regression_end_to_end(tmp_path, capsys):
    out = tmp_path / "ef"
    code, stdout, err = _run(capsys, "cv", "--dataset", "CritExam__Ef", "--subset", 150,
                             "--folds", 3, "--models", "elemnet,rf,mean", "--epochs", 2,
                             "--out", out)
    assert code == 0, err
    assert "note: --subset 150" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "cv.json", "folds.csv", "folds.png", "jobs", "predictions.csv"]
    _png(out / "folds.png")
    folds = pd.read_csv(out / "folds.csv")
    assert len(folds) == 3 * 3 * 3 and set(folds["metric"]) == {"MAE", "RMSE", "R2"}
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 150 and predictions["id"].is_unique  # one row each, once
    assert list(predictions.columns) == ["id", "formula", "target", "fold", "elemnet", "rf",
                                         "mean"]
    assert predictions[["elemnet", "rf", "mean"]].notna().all().all()
    for k, rows in predictions.groupby("fold"):
        got = folds.query(f"fold == {k} and model == 'rf' and metric == 'MAE'")["value"].item()
        assert got == pytest.approx(mean_absolute_error(rows["target"], rows["rf"]))
    report = json.loads((out / "cv.json").read_text())
    assert (report["task"], report["unit"], report["n_rows"]) == ("regression", "eV/atom", 150)
    mae = report["models"]["rf"]["MAE"]
    assert mae["low"] < mae["mean"] < mae["high"]
    assert re.search(rf"^rf +{mae['mean']:.4g} ± ", stdout, re.M), stdout
    assert report["verdict"] in stdout
    # 2 epochs of ~8 batches: the network cannot learn, and the verdict says so instead of
    # comparing it with the forest (the comparison sentences are tested in test_cv.py)
    assert re.search(r"^The network \(elemnet\) is no result: it did not learn in [1-3] of 3 "
                     r"folds \(random 3-fold\); in repeat 0, fold \d, the network did not "
                     r"learn: .*optimizer steps",
                     report["verdict"])
    assert len(list((out / "jobs").glob("*.json"))) == 9
    # the same command again refuses, then with --overwrite reuses every finished job
    code, _, err = _run(capsys, "cv", "--dataset", "CritExam__Ef", "--subset", 150, "--folds", 3,
                        "--models", "elemnet,rf,mean", "--epochs", 2, "--out", out)
    assert code == 1 and "already holds cv.json" in err


@pytest.mark.slow
def test_cv_classification_end_to_end(tmp_path, capsys):
    out = tmp_path / "metal"
    code, stdout, err = _run(capsys, "cv", "--dataset", "matbench_expt_is_metal", "--subset",
                             150, "--folds", 3, "--models", "elemnet,rf", "--epochs", 1,
                             "--split", "chemical-system", "--out", out)
    assert code == 0, err
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 150
    assert set(predictions["elemnet"]) <= {0, 1} and set(predictions["target"]) <= {0, 1}
    folds = pd.read_csv(out / "folds.csv")
    for k, rows in predictions.groupby("fold"):
        got = folds.query(f"fold == {k} and model == 'elemnet' and metric == 'ROC-AUC'")
        assert got["value"].item() == pytest.approx(
            roc_auc_score(rows["target"], rows["elemnet p(1)"]))
    report = json.loads((out / "cv.json").read_text())
    assert report["task"] == "classification"
    assert "did not learn" in report["verdict"] and "ROC-AUC" in report["verdict"]  # 1 epoch
    assert "(chemical-system 3-fold)" in stdout


def test_cv_matbench_protocol_writes_the_record(tmp_path, capsys):
    data = _csv(tmp_path / "glass.csv", classification=True)
    out = tmp_path / "mb"
    code, stdout, err = _run(capsys, "cv", "--data", data, "--formula-col", "compound",
                             "--target-col", "value", "--protocol", "matbench", "--models",
                             "rf,majority", "--out", out)
    assert code == 0, err
    assert json.loads((out / "cv.json").read_text())["folds"] == "Matbench v0.1 folds"
    record = json.loads((out / "matbench_results.json").read_text())
    results = record["models"]["rf"]["results"]
    assert sorted(results) == [f"fold_{k}" for k in range(5)]
    ids = [i for fold in results.values() for i in fold["data"]]
    assert sorted(ids, key=int) == [str(row) for row in range(2, 62)]  # CSV row numbers
    assert len(pd.read_csv(out / "predictions.csv")) == 60


def test_learning_curve_end_to_end(tmp_path, capsys):
    data = _csv(tmp_path / "mine.csv", n=100)
    out = tmp_path / "lc"
    code, stdout, err = _run(capsys, "learning-curve", "--data", data, "--formula-col",
                             "compound", "--target-col", "value", "--sizes", "20,60",
                             "--repeats", 2, "--models", "elemnet,rf", "--epochs", 1,
                             "--out", out)
    assert code == 0, err
    assert "a random 15% of mine.csv (15 rows, seed 0) is the test set" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "jobs", "learning_curve.csv", "learning_curve.json", "learning_curve.png"]
    _png(out / "learning_curve.png")
    summary = pd.read_csv(out / "learning_curve.csv")
    assert len(summary) == 2 * 2 * 3 and set(summary["size"]) == {20, 60}
    report = json.loads((out / "learning_curve.json").read_text())
    assert report["sentence"] in stdout and report["n_test"] == 15
    assert report["sentence"].startswith("The network (elemnet) ")


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "matbench", "--folds", 3], "five fixed random folds"),
    (["--protocol", "matbench", "--subset", 20], "every row as in the file"),
    (["--folds", 61], "folds=61 exceeds the 60 rows"),
    (["--folds", 31, "--split", "chemical-system"], "exceeds the 30 chemical systems"),
    (["--split", "element", "--holdout-element", "Cs"], "'Cs': no formula of the 60"),
    (["--split", "element"], "needs holdout_element (--holdout-element)"),
    (["--protocol", "loo"], "Invalid value for '--protocol'"),
    (["--split", "grouped"], "Invalid value for '--split'"),
    (["--repeats", 0], "Invalid value for '--repeats'"),
])
def test_cv_bad_input_fails_before_training(tmp_path, capsys, args, message):
    data = _csv(tmp_path / "t.csv")
    out = tmp_path / "out"
    code, _, err = _run(capsys, "cv", "--data", data, "--formula-col", "compound",
                        "--target-col", "value", "--models", "rf", "--out", out, *args)
    assert code != 0 and message in err, err
    assert not (out / "jobs").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--sizes", "20,100"], "sizes [100] exceed the training pool of 51 rows"),
    (["--sizes", "5,20"], "each >= 10"),
    (["--repeats", 0], "Invalid value for '--repeats'"),
    (["--dataset", "CritExam__Ef"], "either --dataset NAME or --data FILE"),
])
def test_learning_curve_bad_input_fails_before_training(tmp_path, capsys, args, message):
    data = _csv(tmp_path / "t.csv")
    code, _, err = _run(capsys, "learning-curve", "--data", data, "--formula-col", "compound",
                        "--target-col", "value", "--models", "rf", "--out", tmp_path / "o",
                        *args)
    assert code != 0 and message in err, err
    assert not (tmp_path / "o" / "jobs").exists()


@pytest.mark.parametrize("command", ["cv", "learning-curve"])
def test_help_has_examples(capsys, command):
    code, out, _ = _run(capsys, command, "--help")
    assert code == 0 and "Examples:" in out and f"stoichnet {command} " in out
