import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from stoichnet.chem.featurizers import CompositionFeaturizer
from stoichnet.evaluate.metrics import mae, roc_auc
from stoichnet.models import baselines

FORMULAS = ["Fe2O3", "NaCl", "SiO2", "MgO", "Al2O3", "LiF", "CaTiO3", "GaAs", "ZnS", "TiO2"]
TARGETS = np.array([-1.7, -2.1, -3.0, -3.1, -3.4, -3.2, -3.5, -0.4, -1.0, -3.3])


def test_random_forest_is_the_classical_recipe():
    pipe = baselines.rf_magpie()
    featurizer, forest = (step for _, step in pipe.steps)
    assert isinstance(featurizer, CompositionFeaturizer)
    assert featurizer.preset == "magpie"
    defaults = RandomForestRegressor().get_params()
    assert forest.get_params() == {**defaults, "n_estimators": 100, "random_state": 0}


def test_random_forest_equals_forest_on_magpie_features():
    pipe = baselines.rf_magpie(n_estimators=10).fit(FORMULAS, TARGETS)
    X = CompositionFeaturizer("magpie").transform(FORMULAS)
    manual = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, TARGETS)
    assert np.array_equal(
        pipe.predict(["CuO", "KBr"]),
        manual.predict(CompositionFeaturizer("magpie").transform(["CuO", "KBr"])),
    )


def test_ridge_standardises_magpie_features():
    pipe = baselines.ridge_magpie(alpha=0.5)
    assert [name for name, _ in pipe.steps] == ["magpie", "scale", "ridge"]
    assert pipe.named_steps["ridge"].alpha == 0.5
    pipe.fit(pd.Series(FORMULAS), TARGETS)
    assert np.allclose(
        pipe.named_steps["scale"]
        .transform(CompositionFeaturizer("magpie").transform(FORMULAS))
        .mean(axis=0),
        0.0,
        atol=1e-5,
    )


def test_mean_and_majority_predictors():
    mean = baselines.mean_predictor().fit(FORMULAS, TARGETS)
    assert np.allclose(mean.predict(["CuO", "KBr"]), TARGETS.mean())
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 1, 0, 0])
    majority = baselines.majority_class().fit(FORMULAS, labels)
    assert list(majority.predict(["CuO", "KBr"])) == [0, 0]


def test_baselines_work_in_cross_validation_on_formulas():
    pipe = baselines.rf_magpie(n_estimators=5)
    scores = cross_val_score(
        pipe, np.array(FORMULAS), TARGETS, cv=KFold(2), scoring="neg_mean_absolute_error"
    )
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_registries_name_unfitted_estimators():
    assert set(baselines.REGRESSION_BASELINES) == {"rf", "ridge", "mean"}
    assert set(baselines.CLASSIFICATION_BASELINES) == {"rf", "majority"}
    for factory in (
        *baselines.REGRESSION_BASELINES.values(),
        *baselines.CLASSIFICATION_BASELINES.values(),
    ):
        assert not hasattr(factory(), "n_features_in_")


def test_bad_formula_is_reported():
    from stoichnet.chem import FormulaError

    with pytest.raises(FormulaError):
        baselines.ridge_magpie().fit(["Fe2O3", "Qq7"], [1.0, 2.0])


@pytest.mark.slow
def test_forest_and_ridge_beat_the_mean_on_formation_energies(data_dir):
    folder = data_dir / "benchmark" / "CritExam__Ef"
    train = pd.read_csv(folder / "train.csv", nrows=400)
    test = pd.read_csv(folder / "test.csv", nrows=200)
    mean = mae(
        test.target,
        baselines.mean_predictor().fit(train.formula, train.target).predict(test.formula),
    )
    for factory in (baselines.rf_magpie, baselines.ridge_magpie):
        model = factory().fit(train.formula, train.target)
        assert mae(test.target, model.predict(test.formula)) < 0.5 * mean, factory.__name__


@pytest.mark.slow
def test_forest_classifier_beats_majority_on_expt_is_metal(data_dir):
    table = pd.read_csv(data_dir / "matbench" / "expt_is_metal.csv").sample(800, random_state=0)
    train, test = table.iloc[:600], table.iloc[600:]
    forest = baselines.rf_magpie_classifier().fit(train.formula, train.target)
    assert roc_auc(test.target, forest.predict_proba(test.formula)) > 0.8
    majority = baselines.majority_class().fit(train.formula, train.target)
    assert roc_auc(test.target, majority.predict_proba(test.formula)) == 0.5


def test_ridge_does_not_extrapolate_beyond_the_training_features():
    """A test formula far outside the training rows' features (here a noble gas among
    oxides) gets at most the prediction of the training box's edge, not a wild value."""
    pipe = baselines.ridge_magpie(alpha=1e-3).fit(FORMULAS, TARGETS)
    Z_train = pipe[:-1].transform(FORMULAS)
    Z_far = pipe[:-1].transform(["Xe", "He", "UO2"])
    varies = Z_train.std(axis=0) > 0  # a constant feature gets a zero coefficient
    assert np.all(pipe.named_steps["ridge"].coef_[~varies] == 0)
    assert np.all(Z_far[:, varies] >= Z_train.min(axis=0)[varies] - 1e-5)
    assert np.all(Z_far[:, varies] <= Z_train.max(axis=0)[varies] + 1e-5)
    bound = np.abs(pipe.named_steps["ridge"].coef_) @ np.abs(Z_train).max(axis=0)
    far = pipe.predict(["Xe", "He", "UO2"])
    assert np.all(np.abs(far - pipe.named_steps["ridge"].intercept_) <= bound + 1e-6)
    # on the training rows the clip changes nothing: plain standardisation
    plain = StandardScaler().fit(CompositionFeaturizer("magpie").transform(FORMULAS))
    assert np.allclose(Z_train, plain.transform(CompositionFeaturizer("magpie").transform(FORMULAS)),
                       atol=1e-4)
