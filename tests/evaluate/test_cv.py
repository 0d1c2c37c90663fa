"""cross_validate(): the folds, the corrected t-test, the per-fold tables and records."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    max_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    roc_auc_score,
)

from stoichnet.chem import chemical_systems
from stoichnet.evaluate import cv
from stoichnet.evaluate.cv import (
    CVResult,
    Fold,
    corrected_resampled_ttest,
    cross_validate,
    load_rows,
    matbench_ids,
    t_interval,
    write_cv,
)

FORMULAS = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2",
            "LiF", "KBr", "Fe3O4", "MnO2", "NiO", "CoO", "Cr2O3", "V2O5", "BaTiO3", "SrTiO3",
            "LiCoO2", "Li2O", "NaF", "KCl", "MgCl2", "CaO", "ZnO", "CuCl", "FeS", "NiS"]


def _table(n=60, classification=False, seed=0):
    rng = np.random.default_rng(seed)
    formulas = np.array(FORMULAS)[np.arange(n) % len(FORMULAS)]
    x = np.array([f.count("O") + 0.5 * f.count("Fe") for f in formulas], dtype=float)
    y = x + rng.normal(0, 0.2, n) + 1.0
    if classification:
        y = (y > np.median(y)).astype(np.int64)
    return pd.DataFrame({"formula": formulas, "target": y})


# ---------------------------------------------------------------- statistics

def test_corrected_resampled_ttest_against_a_hand_computation():
    d = np.array([0.012, -0.004, 0.020, 0.008, 0.015])
    n_train, n_test = 800, 200
    mean = d.sum() / 5
    s2 = ((d - mean) ** 2).sum() / 4
    t = mean / math.sqrt((1 / 5 + n_test / n_train) * s2)
    p = 2 * (1 - stats.t.cdf(abs(t), df=4))
    got_t, got_p = corrected_resampled_ttest(d, n_train, n_test)
    assert got_t == pytest.approx(t, rel=1e-12) and got_p == pytest.approx(p, rel=1e-9)
    # the correction widens the plain paired t-test's interval: a larger p
    assert got_p > stats.ttest_1samp(d, 0.0).pvalue
    assert corrected_resampled_ttest(-d, n_train, n_test) == pytest.approx((-got_t, got_p))


def test_corrected_ttest_degenerate_cases():
    assert corrected_resampled_ttest([0.0, 0.0, 0.0], 10, 5) == (0.0, 1.0)
    assert corrected_resampled_ttest([0.1, 0.1], 10, 5) == (math.inf, 0.0)
    with pytest.raises(ValueError, match="at least two folds"):
        corrected_resampled_ttest([0.1], 10, 5)


def test_t_interval_is_scipys():
    v = np.array([0.31, 0.29, 0.35, 0.33, 0.30])
    low, high = stats.t.interval(0.95, 4, loc=v.mean(), scale=stats.sem(v))
    assert t_interval(v) == pytest.approx((low, high))
    assert all(math.isnan(b) for b in t_interval([1.0]))


def _result(network, forest, metric="MAE", n=100, folds=None):
    """A CVResult with the given per-fold scores of elemnet and rf (no training)."""
    j = len(network)
    folds = folds or [Fold(0, k, np.arange(n - n // j), np.arange(0), np.arange(n // j))
                      for k in range(j)]
    rows = [{"repeat": 0, "fold": k, "model": m, "metric": name, "value": v[k],
             "n_train": n - n // j, "n_test": n // j}
            for m, v in (("elemnet", network), ("rf", forest)) for k in range(j)
            for name in ("MAE", "RMSE", "R2")]
    task = "regression" if metric == "MAE" else "classification"
    return CVResult("set", task, "eV/atom", "kfold", "random", None, ["elemnet", "rf"], 1,
                    folds, pd.DataFrame(rows), {}, np.array([]), np.array([]), np.array([]), {})


def test_verdict_says_when_the_difference_is_not_significant():
    result = _result([0.30, 0.25, 0.33, 0.28, 0.31], [0.29, 0.30, 0.31, 0.30, 0.32])
    c = result.comparison()
    assert (c.network_wins, c.forest_wins, c.ties) == (3, 2, 0)
    expected = corrected_resampled_ttest(np.array(c.differences), 80, 20)
    assert (c.t, c.p_value) == pytest.approx(expected)
    sentence = result.verdict()
    assert sentence.startswith("The network (elemnet) beats the forest (rf) in MAE: 0.294 vs "
                               "0.304 eV/atom on average over 5 folds (random 5-fold), better "
                               "on 3 of 5; the difference is not significant")
    assert f"p = {c.p_value:.3g} >= 0.05): these folds do not tell the two apart." in sentence


def test_verdict_says_when_the_difference_is_significant():
    result = _result([0.20, 0.21, 0.19, 0.20, 0.22], [0.30, 0.32, 0.29, 0.31, 0.30])
    sentence = result.verdict()
    assert "better on 5 of 5; the difference is significant (Nadeau-Bengio" in sentence
    assert result.comparison().p_value < 0.05


def test_verdict_compares_nothing_when_the_network_did_not_learn_in_a_fold():
    result = _result([0.30, 0.25, 0.33], [0.29, 0.30, 0.31])
    diagnosis = "the network did not learn: its validation MAE 0.95 is not below ..."
    result.outcomes = {cv.job_key(0, 1, "elemnet"): {"learning": diagnosis},
                       cv.job_key(0, 0, "elemnet"): {"learning": None}}
    assert result.failed_folds() == [("repeat 0, fold 1", diagnosis)]
    sentence = result.verdict()
    assert sentence == ("The network (elemnet) is no result: it did not learn in 1 of 3 folds "
                        f"(random 3-fold); in repeat 0, fold 1, {diagnosis}; its scores are not "
                        "compared with the forest's (rf).")


def test_verdict_of_a_single_fold_claims_no_significance():
    result = _result([0.4], [0.3])
    assert result.verdict().endswith("better on 0 of 1; a single fold allows no test of "
                                     "significance.")
    assert "trails" in result.verdict()


# ---------------------------------------------------------------- the protocol, end to end

def test_cross_validate_baselines_on_shared_folds(tmp_path):
    data = _table(60)
    result = cross_validate(data, folds=4, repeats=2, models=["rf", "mean"], seed=3,
                            name="synthetic", cache_dir=tmp_path / "jobs")
    assert result.task == "regression" and result.n_folds == 8
    assert len(result.scores) == 8 * 2 * 3
    for f in result.folds:  # the network's validation rows come from the training fold only
        assert set(f.val) <= set(f.train) and not set(f.train) & set(f.test)
        assert len(f.val) == round(0.1 * len(f.train))
    frame = result.predictions_frame()
    assert len(frame) == 60 and list(frame.columns) == [
        "id", "formula", "target", "fold r0", "rf r0", "mean r0", "fold r1", "rf r1", "mean r1"]
    for r in (0, 1):  # each row predicted once per repeat; the fold's score is its MAE
        assert sorted(frame[f"fold r{r}"].value_counts()) == [15] * 4
        for k, rows in frame.groupby(f"fold r{r}"):
            value = result.scores.query(f"repeat == {r} and fold == {k} and model == 'rf' and "
                                        "metric == 'MAE'")["value"].item()
            assert value == pytest.approx(mean_absolute_error(rows["target"], rows[f"rf r{r}"]))
    # a second run takes every result from the cache and changes nothing
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 16
    again = cross_validate(data, folds=4, repeats=2, models=["rf", "mean"], seed=3,
                           name="synthetic", cache_dir=tmp_path / "jobs")
    pd.testing.assert_frame_equal(again.scores, result.scores)
    summary = result.summary().set_index(["model", "metric"])
    mae = result.values("rf", "MAE")
    assert summary.loc[("rf", "MAE"), "mean"] == pytest.approx(mae.mean())
    assert summary.loc[("rf", "MAE"), "std"] == pytest.approx(mae.std(ddof=1))


def test_the_network_stops_early_on_part_of_its_training_fold_only(monkeypatch):
    seen = []

    def record(train, val, test, **kwargs):
        seen.append((kwargs["models"][0], set(train["formula"].index), set(val.index),
                     set(test.index)))
        if kwargs["models"][0] == "rf":  # compare trains it on the whole training fold
            seen.append(("rf fold", set(kwargs["baselines_train"].index), None, set(test.index)))
        return real(train, val, test, **kwargs)

    real = cv.compare
    monkeypatch.setattr(cv, "compare", record)
    result = cross_validate(_table(40), folds=2, models=["elemnet", "rf"], epochs=1)
    for fold in result.folds:
        by_model = {m: (tr, va, te) for m, tr, va, te in seen if te == set(fold.test)}
        net_train, net_val, test = by_model["elemnet"]
        assert net_train | net_val == set(fold.train) and not net_train & net_val
        assert by_model["rf"][:2] == (net_train, net_val)
        assert by_model["rf fold"][0] == set(fold.train)
        assert not (net_train | net_val) & test


def test_chemical_system_folds_never_split_a_system():
    data = _table(60)
    result = cross_validate(data, folds=3, split="chemical-system", models=["mean"])
    systems = chemical_systems(data["formula"])
    for f in result.folds:
        assert not set(systems[f.train]) & set(systems[f.test])
        assert not set(systems[f.val]) & set(systems[np.setdiff1d(f.train, f.val)])


def test_element_split_predicts_only_the_held_out_formulas():
    data = _table(60)
    result = cross_validate(data, split="element", holdout_element="Li", models=["rf", "mean"])
    frame = result.predictions_frame()
    assert frame["formula"].str.contains("Li").all()
    assert len(frame) == data["formula"].str.contains("Li").sum()
    assert "formulas with Li held out" in result.describe_folds()


def test_classification_metrics_and_probabilities():
    data = _table(60, classification=True)
    result = cross_validate(data, folds=3, models=["rf", "majority"])
    assert result.task == "classification" and result.classes == [0, 1]
    frame = result.predictions_frame()
    assert list(frame.columns)[3:] == ["fold", "rf", "majority", "rf p(0)", "rf p(1)",
                                      "majority p(0)", "majority p(1)"]
    for k, rows in frame.groupby("fold"):
        value = result.scores.query(f"fold == {k} and model == 'rf' and metric == 'ROC-AUC'")
        assert value["value"].item() == pytest.approx(roc_auc_score(rows["target"],
                                                                    rows["rf p(1)"]))


# ---------------------------------------------------------------- the matbench record

def test_matbench_ids_follow_matbench():
    ids = matbench_ids("matbench_expt_is_metal", 4921)
    assert (ids[0], ids[-1]) == ("mb-expt-is-metal-0001", "mb-expt-is-metal-4921")
    assert matbench_ids("matbench_steels", 312)[0] == "mb-steels-001"
    assert matbench_ids("matbench_glass", 1000)[-1] == "mb-glass-1000"


@pytest.mark.parametrize("classification", [False, True])
def test_matbench_record_layout_and_scores(tmp_path, classification):
    from sklearn.model_selection import KFold

    data = _table(60, classification=classification)
    ids = np.array([f"mb-x-{i + 1:02d}" for i in range(60)])
    models = ["rf", "majority"] if classification else ["rf", "mean"]
    result = cross_validate(data, protocol="matbench", models=models, ids=ids,
                            name="matbench_x")
    write_cv(result, tmp_path)
    record = json.loads((tmp_path / "matbench_results.json").read_text())
    assert record["benchmark_name"] == "matbench_v0.1" and list(record["models"]) == models
    task = record["models"]["rf"]
    assert (task["benchmark_name"], task["dataset_name"]) == ("matbench_v0.1", "matbench_x")
    expected = KFold(5, shuffle=True, random_state=18012019).split(np.zeros(60))
    names = (["accuracy", "balanced_accuracy", "f1", "rocauc"] if classification
             else ["mae", "rmse", "mape", "max_error"])
    for k, (_, test) in enumerate(expected):
        fold = task["results"][f"fold_{k}"]
        assert sorted(fold) == ["data", "parameters", "scores"]
        assert list(fold["data"]) == ids[test].tolist()  # keyed by id, in the fold's order
        predicted = np.array(list(fold["data"].values()))
        assert all(isinstance(v, float) for v in predicted)
        truth = data["target"].to_numpy()[test]
        assert list(fold["scores"]) == names
        if classification:
            assert ((predicted >= 0) & (predicted <= 1)).all()
            labels = predicted > 0.5
            want = [accuracy_score(truth, labels), balanced_accuracy_score(truth, labels),
                    f1_score(truth, labels), roc_auc_score(truth, predicted)]
        else:
            want = [mean_absolute_error(truth, predicted),
                    math.sqrt(np.mean((truth - predicted) ** 2)),
                    mean_absolute_percentage_error(truth, predicted), max_error(truth, predicted)]
        assert list(fold["scores"].values()) == pytest.approx(want)
        assert sorted(fold["parameters"]) == ["model", "seed"]  # a forest has no epochs
    maes = [task["results"][f"fold_{k}"]["scores"][names[0]] for k in range(5)]
    assert task["scores"][names[0]] == pytest.approx(
        {"mean": np.mean(maes), "max": max(maes), "min": min(maes), "std": np.std(maes)})


def test_matbench_rows_are_the_file_rows_in_order(data_dir):
    rows = load_rows("matbench_expt_is_metal", raw=True)
    raw = pd.read_csv(data_dir / "matbench" / "expt_is_metal.csv")
    assert len(rows.frame) == 4921  # the 8 rows of 4 duplicated compositions are all kept
    assert rows.frame["formula"].tolist() == raw["formula"].tolist()
    assert rows.ids[0] == "mb-expt-is-metal-0001"
    with pytest.raises(ValueError, match="every row as in the file"):
        load_rows("matbench_expt_is_metal", raw=True, subset=100)
    with pytest.raises(ValueError, match="every row as in the file"):
        load_rows("matbench_expt_is_metal", raw=True, duplicates="first")


# ---------------------------------------------------------------- bad input, before training

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"folds": 61}, "folds=61 exceeds the 60 rows"),
    ({"folds": 30, "split": "chemical-system"}, "folds=30 exceeds the 29 chemical systems"),
    ({"split": "element", "holdout_element": "Cs"}, "no formula of the 60 contains it"),
    ({"split": "element", "holdout_element": "Xx"}, "unknown element symbol 'Xx'"),
    ({"split": "element"}, "needs holdout_element"),
    ({"split": "element", "holdout_element": "Li", "folds": 5}, "has one fold"),
    ({"holdout_element": "Li"}, "goes with split='element'"),
    ({"protocol": "loo"}, "protocol must be one of"),
    ({"split": "grouped"}, "split must be one of"),
    ({"repeats": 0}, "repeats must be an int >= 1"),
    ({"protocol": "matbench", "folds": 10}, "five fixed random folds"),
    ({"protocol": "matbench", "repeats": 2}, "five fixed random folds"),
    ({"protocol": "matbench", "split": "chemical-system"}, "five fixed random folds"),
    ({"models": ["rf", "svm"]}, "each must be one of"),
])
def test_bad_input_is_refused_before_any_training(monkeypatch, kwargs, message):
    monkeypatch.setattr(cv, "run_jobs", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=message):
        cross_validate(_table(60), **{"models": ["mean"], **kwargs})


def test_every_formula_holding_the_element_is_refused(monkeypatch):
    monkeypatch.setattr(cv, "run_jobs", lambda *a, **k: pytest.fail("trained"))
    data = pd.DataFrame({"formula": ["FeO", "Fe2O3", "Fe3O4", "FeS"], "target": [1.0, 2, 3, 4]})
    with pytest.raises(ValueError, match="every one of the 4 formulas contains it"):
        cross_validate(data, split="element", holdout_element="Fe", models=["mean"])


def test_a_fold_with_one_class_is_refused(monkeypatch):
    monkeypatch.setattr(cv, "run_jobs", lambda *a, **k: pytest.fail("trained"))
    data = pd.DataFrame({"formula": ["LiF", "Li2O", "NaCl", "KBr", "MgO", "CaO"],
                         "target": [1, 1, 0, 0, 1, 0]})
    with pytest.raises(ValueError, match=r"only class \[1\] in its test rows"):
        cross_validate(data, split="element", holdout_element="Li", models=["majority"])


def test_results_do_not_depend_on_where_the_jobs_run(tmp_path):
    """Serial, two local processes and a two-worker Dask cluster: the same out-of-fold
    predictions to the last bit (each job's seed comes from the run seed and its key)."""
    data = _table(60)
    runs = [cross_validate(data, folds=3, models=["elemnet", "rf"], epochs=2, **where)
            for where in ({}, {"jobs": 2}, {"jobs": 2, "scheduler": "local"})]
    frames = [run.predictions_frame() for run in runs]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0], check_exact=True)


def test_cv_reports_the_forests_calibration_over_the_folds(tmp_path):
    """Each fold's forest, which trains on the fold's validation rows too, is recalibrated
    (isotonic, compare's default) on its out-of-bag predictions of the fold; the summary
    is the mean over folds of the per-fold reports (compare's report itself is tested in
    test_compare); models without an uncertainty get no row."""
    data = _table(500, seed=1)
    result = cross_validate(data, folds=2, models=["rf", "mean"], seed=0,
                            cache_dir=tmp_path / "jobs")
    summary = result.calibration_summary()
    assert list(summary) == ["rf raw", "rf recalibrated"]
    reports = [out["calibration"] for key, out in result.outcomes.items() if "model=rf" in key]
    assert len(reports) == 2 and all(r["recalibration"]["method"] == "isotonic" for r in reports)
    assert all(r["recalibrated on"] == "out-of-bag training rows" for r in reports)
    assert all(r["recalibration"]["n_rows"] > 200 for r in reports)  # ~all 250 fold rows
    for stage in ("raw", "recalibrated"):
        for metric, value in summary[f"rf {stage}"].items():
            assert value == pytest.approx(np.mean([r[stage][metric] for r in reports]))
        assert 0 <= summary[f"rf {stage}"]["coverage 68%"] <= summary[f"rf {stage}"][
            "coverage 95%"] <= 1
    assert "rf recalibrated" in result.calibration_table()
    assert result.to_dict()["calibration"] == summary
