"""learning_check: a network that did not learn is named, with the likely cause; one that
learned passes."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from stoichnet.evaluate.compare import compare
from stoichnet.evaluate.learning import MAE_RATIO, LearningFailure, learning_check
from stoichnet.evaluate.metrics import Estimate
from stoichnet.evaluate.text import verdict
from stoichnet.models.estimators import NeuralNetRegressor
from stoichnet.models.recipes import STOICHNET


def _data(n=240, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, offset + 2.0 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=n)


def test_a_network_that_learned_passes():
    X, y = _data()
    model = NeuralNetRegressor(arch="32-1", epochs=100, random_state=0).fit(X[:200], y[:200])
    assert learning_check(model, X[200:], y[200:], y[:200]) is None


def test_a_zero_learning_rate_is_named():
    X, y = _data()
    model = NeuralNetRegressor(arch="16-1", learning_rate=0.0, epochs=3, patience=None,
                               standardize_target=True, random_state=0).fit(X[:200], y[:200])
    failure = learning_check(model, X[200:], y[200:], y[:200], unit="eV")
    assert isinstance(failure, LearningFailure) and failure.metric == "MAE"
    reference = np.mean(np.abs(y[200:] - y[:200].mean()))
    assert failure.reference == pytest.approx(reference)
    assert failure.network > MAE_RATIO * reference
    assert "the learning rate is 0" in failure.causes
    text = str(failure)
    assert text.startswith("the network did not learn: its validation MAE ")
    assert f"the mean predictor's {reference:.4g} eV on the same 40 rows" in text


def test_too_few_steps_and_unscaled_targets_are_named():
    X, y = _data(offset=100.0)
    model = NeuralNetRegressor(arch="16-1", epochs=1, batch_size=256,
                               random_state=0).fit(X[:200], y[:200])
    failure = learning_check(model, X[200:], y[200:], y[:200])
    assert failure is not None
    assert ("too few optimizer steps: 1 were taken (1 epoch(s) of 1 batch(es) of 256 rows)"
            in failure.causes[0])
    assert any(c.startswith("the targets are not standardised (mean 100") for c in failure.causes)


class _Constant:
    """A fitted classifier stand-in whose probabilities carry no information."""

    classes_ = np.array([0, 1])
    settings_ = {"learning_rate": 1e-3, "batch_size": 16}
    n_steps_, n_epochs_, best_epoch_, stopped_by_budget_ = 5000, 50, 1, False

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def test_a_classifier_at_chance_is_named():
    labels = np.array([0, 1] * 20)
    failure = learning_check(_Constant(), np.zeros((40, 3)), labels, labels)
    assert failure.metric == "ROC-AUC" and failure.network == pytest.approx(0.5)
    assert "validation ROC-AUC 0.5 on 40 rows is below 0.6" in str(failure)
    assert "lowest after the first epoch" in failure.causes[0]
    assert learning_check(_Constant(), np.zeros((4, 3)), [1, 1, 1, 1], labels) is None


def test_the_verdict_does_not_compare_a_network_that_did_not_learn():
    net, rf = Estimate(0.9, 0.8, 1.0, 0.95), Estimate(0.3, 0.25, 0.35, 0.95)
    text = verdict("elemnet", net, "rf", rf, "MAE", True, "eV", failure="the network did not "
                   "learn: its validation MAE ...")
    assert text.startswith("The network (elemnet) is no result: the network did not learn: ")
    assert "worse" not in text and "improves" not in text
    assert text.endswith("is not compared with the forest's (rf, 0.3 eV).")


def test_compare_reports_a_network_that_did_not_learn(tmp_path):
    rng = np.random.default_rng(0)
    formulas = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2"]

    def frame(n):
        chosen = rng.choice(formulas, size=n)
        return pd.DataFrame({"formula": chosen, "target": [f.count("O") + rng.normal(0, 0.1)
                                                           for f in chosen]})

    frozen = replace(STOICHNET, name="frozen", learning_rate=0.0)
    result = compare(frame(60), frame(30), frame(30), models=("elemnet", "rf", "mean"),
                     recipe=frozen, epochs=1, n_resamples=10, progress=False)
    run = result.runs["elemnet"]
    assert run.learning is not None and run.steps == 4  # 60 rows in batches of 16
    assert "the learning rate is 0" in run.learning.causes
    assert result.verdict().startswith("The network (elemnet) is no result: the network did "
                                       "not learn: ")
    summary = result.to_dict()
    assert summary["models"]["elemnet"]["learning_check"] == str(run.learning)
    assert summary["models"]["rf"]["learning_check"] is None
