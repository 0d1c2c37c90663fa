"""learning_curve(): test error against training-set size, and the crossover."""

import importlib
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stoichnet.evaluate.cv import Rows
from stoichnet.evaluate.learning_curve import (
    LearningCurve,
    crossover,
    learning_curve,
    parse_sizes,
    pool_and_test,
    write_learning_curve,
)

from .test_cv import _table

NAN = math.nan
lc = importlib.import_module("stoichnet.evaluate.learning_curve")  # the function shadows it


# ---------------------------------------------------------------- the crossover, on constructed numbers

def test_crossover_is_the_first_size_with_separated_intervals():
    sizes = [100, 300, 1000, 3000]
    network = [(0.50, 0.70), (0.30, 0.41), (0.20, 0.25), (0.10, 0.12)]
    forest = [(0.30, 0.40), (0.28, 0.35), (0.26, 0.30), (0.20, 0.24)]
    assert crossover(sizes, network, forest, lower_is_better=True) == 1000
    # touching intervals overlap; a NaN bound never separates
    assert crossover([1, 2], [(0.1, 0.26), (NAN, NAN)], [(0.26, 0.3), (0.5, 0.6)], True) is None
    # for ROC-AUC the network must lie above
    assert crossover(sizes, [(0.80, 0.85), (0.90, 0.95)] + [(0.9, 0.95)] * 2,
                     [(0.84, 0.88), (0.86, 0.89)] + [(0.9, 0.91)] * 2, False) == 300
    assert crossover(sizes, [(0.5, 0.7)] * 4, forest, True) is None


def _curve(net, rf, sizes=(100, 1000, 10000), repeats=3, metric_task="regression"):
    """A LearningCurve of the given per-repeat MAEs {size: [values]} (no training)."""
    rows = [{"size": s, "repeat": r, "model": m, "metric": "MAE", "value": v[s][r],
             "low": NAN, "high": NAN}
            for m, v in (("elemnet", net), ("rf", rf)) for s in sizes for r in range(repeats)]
    return LearningCurve("set", metric_task, "eV/atom", list(sizes), repeats, ["elemnet", "rf"],
                         20000, 500, pd.DataFrame(rows), {})


def test_learning_curve_crossover_and_sentence_from_repeats():
    net = {100: [0.50, 0.60, 0.55], 1000: [0.30, 0.28, 0.33], 10000: [0.10, 0.11, 0.105]}
    rf = {100: [0.40, 0.41, 0.39], 1000: [0.29, 0.30, 0.31], 10000: [0.15, 0.16, 0.155]}
    curve = _curve(net, rf)
    summary = curve.summary().set_index(["model", "size"])
    low, high = stats.t.interval(0.95, 2, loc=np.mean(net[1000]), scale=stats.sem(net[1000]))
    assert summary.loc[("elemnet", 1000), ["low", "high"]].tolist() == pytest.approx([low, high])
    assert curve.crossover_size() == 10000
    assert curve.sentence() == (
        "The network (elemnet) beats the forest (rf) in MAE from 10,000 training rows on, with "
        "non-overlapping intervals (95% t-interval of the mean over 3 repeats).")
    never = _curve({s: [v + 0.2 for v in values] for s, values in net.items()}, rf)
    assert never.crossover_size() is None
    assert never.sentence().endswith("not within the sizes tried (100, 1,000, 10,000).")


def test_one_repeat_uses_the_bootstrap_interval():
    rows = [{"size": s, "repeat": 0, "model": m, "metric": "MAE", "value": v, "low": lo,
             "high": hi}
            for s, m, v, lo, hi in [(100, "elemnet", 0.3, 0.28, 0.32), (100, "rf", 0.2, 0.19, 0.21),
                                    (300, "elemnet", 0.15, 0.14, 0.16),
                                    (300, "rf", 0.18, 0.17, 0.19)]]
    curve = LearningCurve("set", "regression", "", [100, 300], 1, ["elemnet", "rf"], 300, 800,
                          pd.DataFrame(rows), {})
    assert curve.crossover_size() == 300
    assert "95% bootstrap interval over the 800 test rows (one repeat)" in curve.sentence()


def test_parse_sizes():
    assert parse_sizes("300, 100,1000") == [100, 300, 1000]
    for bad in ("100,1e3", "", "5,100", "100,100"):
        with pytest.raises(ValueError, match="sizes"):
            parse_sizes(bad)


# ---------------------------------------------------------------- end to end

def test_learning_curve_end_to_end_with_baselines(tmp_path):
    data = _table(120, seed=1)
    pool, test = data.iloc[:90], data.iloc[90:]
    result = learning_curve(pool, test, sizes=[20, 60], repeats=2, models=["rf", "mean"],
                            cache_dir=tmp_path / "jobs")
    assert (result.n_pool, result.n_test) == (90, 30)
    assert len(result.scores) == 2 * 2 * 2 * 3
    summary = result.summary()
    assert len(summary) == 2 * 2 * 3 and set(summary["repeats"]) == {2}
    assert result.sentence() is None  # no network in this run
    paths = write_learning_curve(result, tmp_path)
    assert [p.name for p in paths] == ["learning_curve.json", "learning_curve.csv",
                                       "learning_curve.png"]
    assert len(pd.read_csv(tmp_path / "learning_curve.csv")) == 12
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        write_learning_curve(result, tmp_path)


def test_subsets_are_nested_within_a_repeat_and_shared_by_the_models(monkeypatch):
    seen = {}

    def record(train, val, test, **kwargs):
        seen[(len(train) + len(val) * (kwargs["model"] == "elemnet"), kwargs["model"])] = (
            set(train["formula"].index) | set(val.index))
        return {"metrics": {m: {"value": 0.0, "low": 0.0, "high": 0.0}
                            for m in ("MAE", "RMSE", "R2")}}

    monkeypatch.setattr(lc, "fit_and_score", record)
    data = _table(150)
    learning_curve(data.iloc[:100], data.iloc[100:], sizes=[20, 50], repeats=1,
                   models=["elemnet", "rf"])
    assert seen[(20, "elemnet")] == seen[(20, "rf")] and len(seen[(20, "rf")]) == 20
    assert seen[(20, "rf")] < seen[(50, "rf")]


def test_sizes_larger_than_the_pool_are_refused_before_training(monkeypatch):
    monkeypatch.setattr(lc, "run_jobs", lambda *a, **k: pytest.fail("trained"))
    data = _table(100)
    with pytest.raises(ValueError, match=r"sizes \[100, 300\] exceed the training pool of 80"):
        learning_curve(data.iloc[:80], data.iloc[80:], sizes=[50, 100, 300], models=["mean"])
    labels = pd.DataFrame({"formula": data["formula"], "target": [1] * 95 + [0] * 5})
    with pytest.raises(ValueError, match=r"the 10 training rows of repeat 0 hold only class \[1\]"):
        learning_curve(labels.iloc[:90], labels.iloc[85:], sizes=[10], models=["majority"])
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        learning_curve(data.iloc[:80], data.iloc[80:], sizes=[50], repeats=0, models=["mean"])


def test_pool_and_test(data_dir):
    from stoichnet.evaluate.cv import load_rows

    pool, test, notes = pool_and_test(load_rows("CritExam__Ef"))
    assert (len(pool), len(test)) == (59509 + 12752, 12753)
    assert "its test file (12,753 rows) is the test set" in notes[-1]
    rows = Rows("mine.csv", _table(100), np.arange(100).astype(str))
    pool, test, notes = pool_and_test(rows, seed=2)
    assert (len(pool), len(test)) == (85, 15) and list(pool.columns) == ["formula", "target"]
    assert "a random 15% of mine.csv" in notes[-1]
