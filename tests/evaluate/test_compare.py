"""compare(): the network and the baselines side by side; safe output helpers; verdict text."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from stoichnet.evaluate.compare import (
    StopRequest,
    as_labels,
    compare,
    detect_task,
    write_comparison,
)
from stoichnet.evaluate.metrics import Estimate
from stoichnet.evaluate.text import format_table, verdict
from stoichnet.util.files import atomic_dir, atomic_file

FORMULAS = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2",
            "LiF", "KBr", "Fe3O4", "MnO2", "NiO", "CoO", "Cr2O3", "V2O5", "BaTiO3", "SrTiO3"]


def _frame(rng, n, classification=False):
    formulas = rng.choice(FORMULAS, size=n)
    fe = np.array([f.count("Fe") + f.count("O") * 0.5 for f in formulas])
    target = (fe > 0.6).astype(np.int64) if classification else fe + rng.normal(0, 0.1, n)
    return pd.DataFrame({"formula": formulas, "target": target})


@pytest.mark.parametrize(
    ("y", "task"),
    [([0, 1, 1, 0], "classification"), ([0.0, 1.0], "classification"), ([True, False], "classification"),
     (["metal", "insulator"], "classification"), ([0.0, 0.5, 1.0], "regression"), ([2, 3, 4], "regression")],
)
def test_detect_task(y, task):
    assert detect_task(y) == task


def test_as_labels_turns_whole_floats_into_ints_only():
    assert as_labels(pd.DataFrame({"target": [0.0, 1.0]}))["target"].dtype == np.int64
    assert as_labels(pd.DataFrame({"target": [0.5, 1.0]}))["target"].dtype == np.float64


def test_verdict_improvement_numbers():
    net, rf = Estimate(0.08, 0.07, 0.09, 0.95), Estimate(0.10, 0.095, 0.105, 0.95)
    text = verdict("elemnet", net, "rf", rf, "MAE", True, "eV/atom")
    assert "improves on the forest (rf) by 0.02 eV/atom in MAE" in text
    assert "(0.08 vs 0.1 eV/atom, 20.0% better)" in text
    assert text.endswith("their 95% confidence intervals do not overlap.")


def test_verdict_worse_and_overlapping_higher_is_better():
    net, rf = Estimate(0.90, 0.85, 0.95, 0.95), Estimate(0.92, 0.88, 0.96, 0.95)
    text = verdict("elemnet", net, "rf", rf, "ROC-AUC", False)
    assert "is worse than the forest (rf) by 0.02 in ROC-AUC" in text
    assert "2.2% worse" in text and text.endswith("intervals overlap.")


def test_format_table_aligns_columns():
    text = format_table({"a": {"x": Estimate(1.0, 0.5, 1.5, 0.95), "y": None},
                         "long name": {"x": 0.123456, "y": 3}}, ["x", "y"])
    lines = text.splitlines()
    assert lines[0].split() == ["model", "x", "y"]
    assert lines[2].startswith("a          1 [0.5, 1.5]")
    assert lines[3].split() == ["long", "name", "0.1235", "3"]


def test_compare_baselines_against_numpy_oracle():
    rng = np.random.default_rng(1)
    train, val, test = _frame(rng, 80), _frame(rng, 20), _frame(rng, 30)
    result = compare(train, val, test, models=("mean", "ridge"), n_resamples=50, progress=False)
    assert result.task == "regression" and list(result.runs) == ["mean", "ridge"]
    expected = np.mean(np.abs(test["target"] - train["target"].mean()))
    mae = result.runs["mean"].metrics["MAE"]
    assert mae.value == pytest.approx(expected)
    assert mae.low <= mae.value <= mae.high
    assert result.verdict() is None  # no network and forest to compare
    assert not result.interrupted


def test_compare_classification_majority_oracle():
    rng = np.random.default_rng(2)
    train, val, test = _frame(rng, 80, True), _frame(rng, 20, True), _frame(rng, 40, True)
    train["target"] = train["target"].astype(float)  # 0.0/1.0 as read from a CSV
    result = compare(train, val, test, models=("majority",), n_resamples=50, progress=False)
    assert result.task == "classification"
    majority = np.bincount(train["target"].astype(int)).argmax()
    run = result.runs["majority"]
    assert run.metrics["accuracy"].value == pytest.approx(np.mean(test["target"] == majority))
    assert run.metrics["ROC-AUC"].value == pytest.approx(0.5)
    assert run.probabilities.shape == (40, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"models": ("elemnet", "svm")}, "svm"), ({"models": ("rf", "rf")}, "no repeats"),
     ({"task": "clustering"}, "clustering"), ({"models": ("ridge",), "task": "classification"}, "ridge")],
)
def test_compare_rejects_bad_arguments(kwargs, message):
    rng = np.random.default_rng(0)
    frames = _frame(rng, 10), _frame(rng, 5), _frame(rng, 5)
    with pytest.raises(ValueError, match=message):
        compare(*frames, progress=False, **kwargs)


def test_compare_rejects_frames_without_columns():
    good = pd.DataFrame({"formula": ["NaCl"], "target": [1.0]})
    with pytest.raises(ValueError, match=r"val lacks column\(s\) \['target'\]"):
        compare(good, good[["formula"]], good, models=("mean",), progress=False)
    with pytest.raises(TypeError, match="DataFrame"):
        compare(good, good, [1, 2], models=("mean",), progress=False)


def test_stop_request_reaches_the_running_network():
    class Fake:
        class model_:  # noqa: N801 - stands for the estimator's network attribute
            stop_training = False

    stop = StopRequest()
    stop.current = Fake
    stop.request()
    assert stop.requested and Fake.model_.stop_training


def test_write_comparison_files_and_refusal(tmp_path):
    rng = np.random.default_rng(3)
    train, val, test = _frame(rng, 60), _frame(rng, 20), _frame(rng, 25)
    result = compare(train, val, test, models=("ridge", "mean"), n_resamples=20, unit="eV",
                     progress=False)
    out = tmp_path / "run"
    paths = write_comparison(result, out)
    assert sorted(p.name for p in paths) == sorted(
        ["metrics.json", "predictions.csv", "parity.png", "residuals.png"])
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["formula", "target", "ridge", "mean"]
    metrics = json.loads((out / "metrics.json").read_text())
    recomputed = np.mean(np.abs(predictions["target"] - predictions["ridge"]))
    assert metrics["models"]["ridge"]["metrics"]["MAE"]["value"] == pytest.approx(recomputed)
    assert not (tmp_path / "run.partial").exists()
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_comparison(result, out)
    write_comparison(result, out, overwrite=True)


def test_atomic_dir_keeps_target_untouched_on_failure(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(RuntimeError), atomic_dir(out, overwrite=True) as tmp:
        (tmp / "metrics.json").write_text("{}")
        raise RuntimeError("crash mid-write")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert (tmp_path / "out.partial" / "metrics.json").exists()  # what was written survives
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "mine.txt"]
    assert not (tmp_path / "out.partial").exists()


def test_atomic_file_refuses_and_cleans_up(tmp_path):
    path = tmp_path / "p.csv"
    with pytest.raises(ValueError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_file(path) as tmp:
        tmp.write_text("done")
    assert path.read_text() == "done"
    with pytest.raises(FileExistsError, match=re.escape("pass --overwrite")), atomic_file(path):
        pass
    assert path.read_text() == "done"


def test_seed_reaches_the_forest_inside_its_pipeline():
    rng = np.random.default_rng(4)
    train, val, test = _frame(rng, 60), _frame(rng, 10), _frame(rng, 20)

    def forest(seed):
        result = compare(train, val, test, models=("rf",), seed=seed, n_jobs=1, n_resamples=10,
                         progress=False)
        assert result.settings["seed"] == seed
        return result.runs["rf"].predictions

    assert np.array_equal(forest(0), forest(0))
    assert not np.array_equal(forest(0), forest(1))


def test_stop_request_interrupts_a_checkpointed_network():
    class Model:
        stop_training = interrupted = False

        def interrupt(self):
            self.interrupted = True

    class Fake:
        model_ = Model()

    stop = StopRequest()
    stop.current, stop.checkpointed = Fake, True
    stop.request()
    assert Fake.model_.interrupted and not Fake.model_.stop_training


@pytest.mark.slow
def test_compare_interrupted_then_resumed_predicts_as_uninterrupted(tmp_path, on_batch):
    from stoichnet.models.recipes import get_recipe
    from stoichnet.nn import TrainingInterrupted, load_checkpoint

    rng = np.random.default_rng(5)
    # the recipe sizes the batch to the training rows: 100 rows, batches of 16
    train, val, test = _frame(rng, 100), _frame(rng, 40), _frame(rng, 30)
    n_batches = -(-len(train) // get_recipe().budget(len(train))[0])
    assert n_batches >= 3  # so that batch 2 is mid-epoch
    kwargs = {"models": ("mean", "elemnet"), "epochs": 2, "n_resamples": 10, "progress": False}
    plain = compare(train, val, test, **kwargs)

    stop = StopRequest()
    count = on_batch(2, lambda model: stop.request())  # mid epoch 1
    with pytest.raises(TrainingInterrupted) as info:
        compare(train, val, test, stop=stop, checkpoint_dir=tmp_path, **kwargs)
    assert info.value.checkpoint == tmp_path / "elemnet.ckpt"
    progress = load_checkpoint(tmp_path / "elemnet.ckpt")[0]["progress"]
    assert (progress["epoch"], progress["batch"]) == (0, 2)

    count[0] = 0
    resumed = compare(train, val, test, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert count[0] == 2 * n_batches - 2  # only the batches not trained before the interrupt
    assert resumed.runs["elemnet"].predictions.tobytes() == (
        plain.runs["elemnet"].predictions.tobytes())
    assert resumed.runs["elemnet"].history == plain.runs["elemnet"].history


def test_compare_checkpoint_arguments_are_checked(tmp_path):
    rng = np.random.default_rng(0)
    frames = _frame(rng, 10), _frame(rng, 5), _frame(rng, 5)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        compare(*frames, models=("mean",), resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="missing"):
        compare(*frames, models=("mean",), checkpoint_dir=tmp_path / "missing", progress=False)


def test_compare_refuses_or_drops_elements_outside_the_network_inputs():
    rng = np.random.default_rng(3)
    train, val, test = _frame(rng, 60), _frame(rng, 20), _frame(rng, 20)
    train.loc[7, "formula"], test.loc[2, "formula"] = "He2Ne1", "Ar1"
    kwargs = {"models": ("mean", "elemnet"), "epochs": 1, "n_resamples": 10, "progress": False}
    with pytest.raises(ValueError, match=r"1 in train, 1 in test \(e\.g\. row 7 'He2Ne1' "
                                         r"\(He, Ne\); row 2 'Ar1' \(Ar\)\).*--drop-unsupported"):
        compare(train, val, test, **kwargs)
    with pytest.warns(UserWarning, match="dropped formulas with elements outside"):
        result = compare(train, val, test, drop_unsupported=True, **kwargs)
    assert len(result.runs["mean"].predictions) == len(result.runs["elemnet"].predictions) == 19
    # the baselines alone don't need the network's element set
    assert len(compare(train, val, test, models=("mean",), n_resamples=10,
                       progress=False).runs["mean"].predictions) == 20


def test_far_outside_is_more_than_the_training_range_beyond_it():
    from stoichnet.evaluate.compare import far_outside

    y_train = np.array([0.0, 1.0, 2.0])  # range [0, 2], width 2
    assert far_outside([-2.0, -2.1, 4.0, 4.1, 1.0], y_train).tolist() == [
        False, True, False, True, False]


def test_compare_flags_a_baseline_predicting_far_outside_the_targets(monkeypatch):
    """A baseline that extrapolates wildly is warned about and counted in metrics.json."""
    from sklearn.dummy import DummyRegressor

    from stoichnet.evaluate.compare import BASELINES

    class Wild(DummyRegressor):
        def predict(self, X):
            out = super().predict(X)
            out[0] = 1500.0  # one formula 1,500 eV off
            return out

    monkeypatch.setitem(BASELINES["regression"], "wild", Wild)
    rng = np.random.default_rng(1)
    train, val, test = _frame(rng, 40), _frame(rng, 10), _frame(rng, 12)
    with pytest.warns(UserWarning, match=r"wild: 1 of 12 test prediction\(s\) lie far outside "
                                         r"the training targets' range .* predicted 1500"):
        result = compare(train, val, test, models=("mean", "wild"), n_resamples=20,
                         progress=False)
    assert result.runs["wild"].n_far_outside == 1 and result.runs["mean"].n_far_outside == 0
    summary = result.to_dict()["models"]
    assert summary["wild"]["predictions_far_outside_training_range"] == 1
    assert summary["mean"]["predictions_far_outside_training_range"] == 0


def test_without_a_terminal_each_model_is_one_line_and_no_bar(capsys):
    """In a log file (stderr not a tty, as under pytest) compare prints one line per
    model and no carriage-return progress bar."""
    rng = np.random.default_rng(1)
    train, val, test = _frame(rng, 40), _frame(rng, 10), _frame(rng, 12)
    result = compare(train, val, test, models=("mean", "ridge"), n_resamples=20)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines() == [
        f"{name}: fitted in {result.runs[name].fit_s:.1f} s, test MAE "
        f"{result.runs[name].metrics['MAE'].value:.4g}" for name in ("mean", "ridge")]
    compare(train, val, test, models=("mean",), n_resamples=20, progress=False)
    assert capsys.readouterr().err == ""


def test_baselines_that_see_the_validation_rows_are_recalibrated_out_of_bag():
    """baselines_train (cv's whole training fold, val rows included): the forest trains on
    it and its sigma is recalibrated on its out-of-bag predictions of those rows
    (recomputed here from a forest fitted by hand)."""
    from stoichnet.evaluate.uncertainty import fit_recalibration
    from stoichnet.models import rf_magpie
    from stoichnet.models.uncertainty import oob_dist

    rng = np.random.default_rng(5)
    train, val, test = _frame(rng, 80), _frame(rng, 30), _frame(rng, 40)
    both = pd.concat([train, val]).sample(frac=1.0, random_state=0)
    result = compare(train, val, test, models=("rf",), n_resamples=20, progress=False,
                     recalibration="scale", baselines_train=both)
    forest = rf_magpie(random_state=0).fit(both["formula"], both["target"].to_numpy())
    np.testing.assert_allclose(result.runs["rf"].predictions, forest.predict(test["formula"]))
    mean, sigma = oob_dist(forest, both["formula"])
    kept = ~np.isnan(mean)
    recal = fit_recalibration(both["target"].to_numpy()[kept], mean[kept], sigma[kept])
    calibration = result.runs["rf"].calibration
    assert calibration["recalibrated on"] == "out-of-bag training rows"
    assert calibration["recalibration"]["scale"] == pytest.approx(recal.scale)
    assert calibration["recalibration"]["n_rows"] == kept.sum() > 100


def test_compare_reports_the_forests_calibration_raw_and_recalibrated(tmp_path):
    """The forest has an uncertainty (its trees' spread): compare recalibrates it on the
    validation rows only and scores the test rows raw and recalibrated with
    evaluate.uncertainty (recomputed here from the forest itself); a model without one
    (ridge) gets no row; the sigma column and the calibration figures are written."""
    from stoichnet.evaluate.uncertainty import calibration_report, fit_recalibration
    from stoichnet.models import predict_dist, rf_magpie

    rng = np.random.default_rng(4)
    train, val, test = _frame(rng, 80), _frame(rng, 30), _frame(rng, 40)
    result = compare(train, val, test, models=("rf", "ridge"), n_resamples=20,
                     progress=False, recalibration="scale")
    assert result.runs["ridge"].calibration is None
    calibration = result.runs["rf"].calibration
    assert calibration["kinds"] == ["trees"]
    assert calibration["recalibrated on"] == "validation rows"
    forest = rf_magpie(random_state=0).fit(train["formula"], train["target"].to_numpy())
    recal = fit_recalibration(val["target"].to_numpy(), *predict_dist(forest, val["formula"]))
    assert calibration["recalibration"]["scale"] == pytest.approx(recal.scale)
    mean, sigma = predict_dist(forest, test["formula"])
    y = test["target"].to_numpy()
    assert calibration["raw"] == pytest.approx(calibration_report(y, mean, sigma))
    assert calibration["recalibrated"] == pytest.approx(calibration_report(y, mean, sigma, recal))
    table = result.calibration_table()
    assert "rf raw" in table and f"rf recalibrated (sigma x {recal.scale:.3g})" in table
    assert "ridge" not in table and "coverage 95%" in table
    # the tree-quantile intervals, recomputed from the trees with NumPy's quantiles
    trees = np.array([t.predict(np.asarray(forest[:-1].transform(test["formula"]),
                                           dtype=np.float32)) for t in forest[-1].estimators_])
    for level, (lo, hi) in ((0.68, (0.16, 0.84)), (0.95, (0.025, 0.975))):
        low, high = np.quantile(trees, lo, axis=0), np.quantile(trees, hi, axis=0)
        assert calibration["tree quantiles"][f"coverage {level:.0%}"] == pytest.approx(
            np.mean((low <= y) & (y <= high)))
    assert "rf tree quantiles" in table
    paths = {p.name for p in write_comparison(result, tmp_path / "run")}
    assert {"calibration.png", "error_vs_sigma.png"} <= paths
    frame = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert np.allclose(frame["rf sigma"], sigma)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["models"]["rf"]["calibration"]["raw"]["rows"] == 40
