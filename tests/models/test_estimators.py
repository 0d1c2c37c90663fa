import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from stoichnet.chem import ElementFractions, fraction_matrix
from stoichnet.chem.fractions import ELEMNET_ELEMENTS
from stoichnet.evaluate.metrics import mae, roc_auc
from stoichnet.models.estimators import (
    ElemNetClassifier,
    ElemNetRegressor,
    NeuralNetClassifier,
    NeuralNetRegressor,
)
from stoichnet.models.recipes import RECIPES

FORMULAS = ["Fe2O3", "NaCl", "SiO2", "MgO", "Al2O3", "LiF", "CaTiO3", "GaAs"]
TINY = {"arch": "16-1", "epochs": 20, "batch_size": 16, "random_state": 0}


@parametrize_with_checks([NeuralNetRegressor(**TINY), NeuralNetClassifier(**TINY)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, 2.0 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=n)


def test_regressor_learns_a_linear_target():
    X, y = _regression()
    model = NeuralNetRegressor(arch="32-1", epochs=100, random_state=0).fit(X[:150], y[:150])
    assert mae(y[150:], model.predict(X[150:])) < 0.25 * mae(y[150:], np.full(50, y.mean()))
    assert model.n_features_in_ == 4
    assert len(model.history_.history["val_loss"]) == model.n_epochs_


def test_works_in_pipeline_cross_val_and_grid_search():
    X, y = _regression(120)
    pipe = make_pipeline(
        StandardScaler(), NeuralNetRegressor(arch="8-1", epochs=30, random_state=0)
    )
    scores = cross_val_score(pipe, X, y, cv=KFold(3), scoring="neg_mean_absolute_error")
    assert scores.shape == (3,)
    assert np.all(np.isfinite(scores))
    grid = GridSearchCV(
        NeuralNetRegressor(arch="8-1", epochs=30, random_state=0),
        {"learning_rate": [1e-4, 1e-2]},
        cv=KFold(2),
        scoring="neg_mean_absolute_error",
    ).fit(X, y)
    # 30 epochs at 1e-4 barely move the weights; 1e-2 fits the linear target
    assert grid.best_params_ == {"learning_rate": 1e-2}


def test_elemnet_on_formulas_in_cross_val_and_grid_search():
    y = np.linspace(-3, 0, len(FORMULAS))
    model = ElemNetRegressor(arch="8-1", epochs=3, random_state=0)
    scores = cross_val_score(model, pd.Series(FORMULAS), y, cv=KFold(2))
    assert scores.shape == (2,)
    grid = GridSearchCV(model, {"batch_size": [2, 4]}, cv=KFold(2)).fit(FORMULAS, y)
    assert grid.best_estimator_.settings_["batch_size"] in (2, 4)
    assert grid.predict(["CuO"]).shape == (1,)


def test_same_seed_same_predictions_and_different_seed_differs():
    X, y = _regression(60)
    a = NeuralNetRegressor(**TINY).fit(X, y).predict(X)
    b = NeuralNetRegressor(**TINY).fit(X, y).predict(X)
    c = NeuralNetRegressor(**{**TINY, "random_state": 1}).fit(X, y).predict(X)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_validation_data_is_used_for_early_stopping():
    X, y = _regression(80)
    # with a zero learning rate the validation loss never improves after epoch 1
    model = NeuralNetRegressor(arch="8-1", learning_rate=0.0, epochs=50, patience=2)
    model.fit(X[:60], y[:60], validation_data=(X[60:], y[60:]))
    assert model.n_epochs_ == 3
    assert len(model.history_.history["val_loss"]) == 3
    assert not model.stopped_by_budget_


def test_time_budget_stops_training():
    X, y = _regression(80)
    model = NeuralNetRegressor(arch="8-1", epochs=50, batch_size=8, max_minutes=0.0)
    model.fit(X, y)
    assert model.n_epochs_ == 1  # stopped after its first mini-batch
    assert model.stopped_by_budget_


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": "3"}, TypeError, "epochs must be an int, got '3'"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),  # item 6: a wrong type is a TypeError
        ({"learning_rate": -1.0}, ValueError, "learning_rate"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
        ({"arch": "8-2"}, ValueError, "must be '1'"),
        ({"arch": "8x"}, ValueError, "is not"),
        ({"schedule": "linear"}, ValueError, "schedule"),
        ({"inference_dropout": "on"}, ValueError, "inference_dropout"),
        ({"optimizer": "adamm"}, ValueError, "unknown optimizer"),
        ({"dtype": "float16"}, ValueError, "dtype"),
        ({"random_state": np.random.default_rng(0)}, TypeError, "random_state"),
        ({"verbose": 3}, ValueError, "verbose"),
    ],
)
def test_bad_hyperparameters_raise_in_fit_not_init(params, error, match):
    model = NeuralNetRegressor(**params)  # __init__ only stores
    X, y = _regression(20)
    with pytest.raises(error, match=match):
        model.fit(X, y)


def test_the_elemnet_estimators_share_one_parameter_list():
    """Same names in both families; the ElemNet ones add ``recipe`` and leave the
    recipe's settings at None."""
    numeric = NeuralNetRegressor().get_params()
    formulas = ElemNetRegressor().get_params()
    assert set(formulas) == set(numeric) | {"recipe"}
    assert NeuralNetClassifier().get_params() == numeric
    assert ElemNetClassifier().get_params() == formulas
    assert formulas["epochs"] is None and numeric["epochs"] == 200
    with pytest.raises(TypeError):
        NeuralNetRegressor("16-1", 0.1)  # all but arch are keyword-only
    with pytest.raises(TypeError):
        ElemNetRegressor(no_such_parameter=1)


def test_predict_seed_is_public_and_drives_mc_predictions():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(86), size=40)
    model = ElemNetRegressor("16D-1", dropout=0.5, inference_dropout="mc", mc_samples=3,
                             epochs=1, random_state=0).fit(X, X[:, 0])
    assert isinstance(model.predict_seed_, int)
    assert np.array_equal(
        model.predict(X),
        model.model_.predict(X, mc_samples=3, seed=model.predict_seed_)[:, 0].astype(float))


def test_bad_targets():
    X, _ = _regression(10)
    with pytest.raises(ValueError, match="numeric"):
        NeuralNetRegressor(**TINY).fit(X, np.array(["a"] * 10))
    with pytest.raises(ValueError, match="at least 2 classes"):
        NeuralNetClassifier(**TINY).fit(X, np.zeros(10))


def test_classifier_string_labels_and_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    labels = np.array(["metal", "insulator"])[(X[:, 0] > 0).astype(int)]
    model = NeuralNetClassifier(arch="16-1", epochs=60, random_state=0).fit(X, labels)
    assert list(model.classes_) == ["insulator", "metal"]
    proba = model.predict_proba(X)
    assert proba.shape == (150, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert model.score(X, labels) > 0.9
    assert roc_auc(labels, proba, classes=model.classes_) > 0.95


def test_elemnet_accepts_formulas_series_and_fraction_matrix():
    y = np.arange(len(FORMULAS), dtype=float)
    params = {"arch": "16-1", "epochs": 5, "random_state": 0}
    from_list = ElemNetRegressor(**params).fit(FORMULAS, y)
    from_series = ElemNetRegressor(**params).fit(pd.Series(FORMULAS), y)
    matrix = ElementFractions().transform(FORMULAS)
    from_matrix = ElemNetRegressor(**params).fit(matrix, y)
    expected = from_list.predict(FORMULAS)
    assert np.array_equal(from_series.predict(pd.Series(FORMULAS)), expected)
    assert np.array_equal(from_matrix.predict(matrix), expected)
    sparse_fractions = fraction_matrix(FORMULAS, ELEMNET_ELEMENTS)
    assert np.array_equal(from_matrix.predict(sparse_fractions), expected)
    assert from_list.n_features_in_ == 86
    with pytest.raises(ValueError, match="86 element fractions"):
        ElemNetRegressor(**params).fit(np.ones((8, 5)), y)
    with pytest.raises(TypeError, match="single string"):
        from_list.predict("Fe2O3")
    with pytest.raises(ValueError, match="Xx"):
        from_list.predict(["Fe2O3", "Xx2O"])


def test_recipe_defaults_and_explicit_overrides():
    y = np.arange(len(FORMULAS), dtype=float)
    four_d = "16D-16D-16D-16D-1"  # as many dropout blocks as ElemNet-17
    original = ElemNetRegressor(four_d, recipe="elemnet-original", epochs=1, random_state=0)
    s = original.fit(FORMULAS, y).settings_
    assert (s["batch_size"], s["learning_rate"], s["optimizer"]) == (32, 1e-4, "adam")
    assert s["dropout"] == RECIPES["elemnet-original"].dropout
    assert [layer.rate for layer in original.model_.layers if hasattr(layer, "rate")] == [
        0.2,
        0.1,
        0.3,
        0.2,
    ]
    assert s["epochs"] == 1  # explicit beats the recipe
    with pytest.raises(ValueError, match="4 rate"):  # the recipe's rates do not fit this arch
        ElemNetRegressor("16x2D-1", recipe="elemnet-original", epochs=1).fit(FORMULAS, y)
    assert ElemNetRegressor().get_params()["batch_size"] is None  # clone-safe: stores None
    assert clone(original).get_params() == original.get_params()
    with pytest.raises(ValueError, match="known recipes"):
        ElemNetRegressor(recipe="elemnet-fast").fit(FORMULAS, y)


def test_monte_carlo_dropout_averages_and_is_reproducible():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(86), size=40)
    y = X[:, 0] * 5
    common = {"arch": "64D-1", "dropout": 0.5, "epochs": 3, "random_state": 0}
    single = ElemNetRegressor(**common, inference_dropout="mc", mc_samples=1).fit(X, y)
    many = ElemNetRegressor(**common, inference_dropout="mc", mc_samples=200).fit(X, y)
    off = ElemNetRegressor(**common, inference_dropout="off").fit(X, y)
    assert np.array_equal(single.predict(X), single.predict(X))  # seeded masks
    # same weights (same seed), so only the inference differs: one noisy pass is far
    # from the dropout-off prediction, the average of 200 passes is close to it
    assert np.array_equal(off.model_.get_weights()[0], many.model_.get_weights()[0])
    gap_single = np.abs(single.predict(X) - off.predict(X)).mean()
    gap_many = np.abs(many.predict(X) - off.predict(X)).mean()
    assert gap_many < gap_single / 4
    # one network, every inference mode: overrides per call
    assert np.array_equal(single.predict(X, inference_dropout="off"), off.predict(X))
    assert np.array_equal(single.predict(X, mc_samples=200), many.predict(X))
    with pytest.raises(ValueError, match="inference_dropout"):
        single.predict(X, inference_dropout="on")


def test_monte_carlo_network_is_early_stopped_on_what_it_predicts():
    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(86), size=60)
    y = X[:, 0] * 5
    model = ElemNetRegressor(
        "32D-1",
        dropout=0.5,
        inference_dropout="mc",
        mc_samples=5,
        epochs=4,
        patience=None,
        random_state=0,
    ).fit(X[:40], y[:40], validation_data=(X[40:], y[40:]))
    curve = model.history_.history["val_mc_loss"]
    assert len(curve) == model.n_epochs_ == 4
    # the last epoch's score is the MAE of the predictions the fitted network returns
    assert curve[-1] == pytest.approx(mae(y[40:], model.predict(X[40:])), rel=1e-5)
    assert curve[-1] != pytest.approx(model.history_.history["val_loss"][-1], rel=1e-3)


def test_elemnet_classifier_uses_cross_entropy_not_the_recipe_loss():
    y = np.array([0, 1] * 4)
    model = ElemNetClassifier(arch="16-1", epochs=2, random_state=0).fit(FORMULAS, y)
    assert model.settings_["loss"] is None
    assert model.predict_proba(FORMULAS).shape == (8, 2)


@pytest.mark.slow
def test_elemnet_beats_the_mean_on_real_formation_energies(data_dir):
    folder = data_dir / "benchmark" / "CritExam__Ef"
    train = pd.read_csv(folder / "train.csv", nrows=500)
    test = pd.read_csv(folder / "test.csv", nrows=300)
    model = ElemNetRegressor(arch="128x2-32-1", epochs=60, random_state=0)
    model.fit(train.formula, train.target)
    net = mae(test.target, model.predict(test.formula))
    mean = mae(test.target, np.full(len(test), train.target.mean()))
    assert net < 0.7 * mean  # loose: a few hundred formulas, a few seconds of training


@pytest.mark.slow
def test_elemnet_classifier_beats_chance_on_expt_is_metal(data_dir):
    table = pd.read_csv(data_dir / "matbench" / "expt_is_metal.csv")
    table = table.sample(n=800, random_state=0)
    train, test = table.iloc[:600], table.iloc[600:]
    model = ElemNetClassifier(arch="128x2-32-1", epochs=40, random_state=0)
    model.fit(train.formula, train.target)
    assert roc_auc(test.target, model.predict_proba(test.formula)) > 0.75


def test_standardised_targets_are_folded_back_into_the_output_layer():
    X, y = _regression(240)
    common = {"arch": "16-1", "epochs": 30, "patience": None, "random_state": 0,
              "standardize_target": True, "dtype": "float64"}
    model = NeuralNetRegressor(**common).fit(X[:200], y[:200], validation_data=(X[200:], y[200:]))
    assert (model.target_mean_, model.target_scale_) == pytest.approx((y[:200].mean(),
                                                                       y[:200].std()))
    # the saved network itself predicts in the target's unit
    assert np.allclose(model.model_.predict(X[200:])[:, 0], model.predict(X[200:]))
    # the History's MAE is in the target's unit: the last epoch's val_loss is the MAE of
    # the final predictions
    assert model.history_.history["val_loss"][-1] == pytest.approx(
        mae(y[200:], model.predict(X[200:])), rel=1e-9)
    # the network learns (y - mean) / std: a target in other units trains the same network
    shifted = NeuralNetRegressor(**common).fit(X[:200], 1000.0 + 300.0 * y[:200],
                                               validation_data=(X[200:], 1000.0 + 300.0 * y[200:]))
    assert np.allclose(shifted.predict(X[200:]), 1000.0 + 300.0 * model.predict(X[200:]),
                       rtol=0, atol=1e-6)
    assert np.allclose(shifted.history_.history["loss"],
                       300.0 * np.asarray(model.history_.history["loss"]), rtol=1e-6)
    plain = NeuralNetRegressor(**common | {"standardize_target": False}).fit(X[:200], y[:200])
    assert (plain.target_mean_, plain.target_scale_) == (0.0, 1.0)


def test_elemnet_sizes_batch_and_epochs_it_was_not_given():
    y = np.arange(40, dtype=float)
    formulas = (FORMULAS * 5)[:40]
    sized = ElemNetRegressor(arch="8-1", epochs=2, validation_fraction=0, random_state=0)
    sized.fit(formulas, y)
    assert (sized.settings_["batch_size"], sized.settings_["epochs"]) == (16, 2)
    assert sized.n_steps_ == 2 * 3 and sized.settings_["standardize_target"]
    given = ElemNetRegressor(arch="8-1", batch_size=40, validation_fraction=0,
                             random_state=0).fit(formulas, y)
    assert (given.settings_["batch_size"], given.settings_["epochs"]) == (40, 3000)
    assert given.n_steps_ == 3000
    assert ElemNetRegressor(arch="8-1", epochs=1, recipe="elemnet-no-dropout").fit(
        formulas, y).settings_["batch_size"] == 32


def test_a_classifier_does_not_standardise_labels():
    labels = np.array([0, 1] * 4)
    net = ElemNetClassifier(arch="8-1", epochs=1, random_state=0).fit(FORMULAS, labels)
    assert net.settings_["standardize_target"] is False
    with pytest.raises(ValueError, match="standardize_target=True is for regression"):
        ElemNetClassifier(arch="8-1", epochs=1, standardize_target=True).fit(FORMULAS, labels)


def _composition_table(n, seed):
    """n formulas of 2-3 of ten elements with a smooth, clearly composition-driven target
    far from 0 (mean ~700, std ~100: standardisation matters)."""
    rng = np.random.default_rng(seed)
    elements = np.array(["Li", "Na", "K", "Mg", "Ca", "Al", "Si", "Fe", "Cu", "Zn"])
    weight = dict(zip(elements, np.linspace(-1.0, 1.0, len(elements)), strict=True))
    formulas, target = [], []
    for _ in range(n):
        chosen = rng.choice(elements, size=rng.integers(2, 4), replace=False)
        amounts = rng.integers(1, 5, size=len(chosen))
        formulas.append("".join(f"{e}{a}" for e, a in zip(chosen, amounts, strict=True)))
        x = sum(a * weight[e] for e, a in zip(chosen, amounts, strict=True)) / amounts.sum()
        target.append(700.0 + 150.0 * x + 80.0 * x**2 + rng.normal(0, 5.0))
    return pd.DataFrame({"formula": formulas, "target": target})


def test_the_default_recipe_learns_from_200_rows():
    """The issue-14 regression: 200 training rows used to be one step per epoch (25 in
    all) at batch 256, and the network predicted about the mean. The default recipe's
    training (batch 16, 3,000 steps, standardised targets; a small architecture for CI)
    must now beat the mean predictor clearly."""
    from stoichnet.evaluate.learning import learning_check

    train, val, test = (_composition_table(n, seed) for n, seed in ((200, 0), (40, 1), (300, 2)))
    model = ElemNetRegressor(arch="128x2-32-1", random_state=0)
    model.fit(train.formula, train.target, validation_data=(val.formula, val.target))
    assert model.settings_["batch_size"] == 16 and model.n_steps_ >= 500
    net = mae(test.target, model.predict(test.formula))
    mean = mae(test.target, np.full(len(test), train.target.mean()))
    assert net < 0.3 * mean, (net, mean)
    assert learning_check(model, val.formula, val.target, train.target) is None


def test_early_stopping_keeps_the_best_validation_weights_on_a_small_set():
    train, val = _composition_table(120, 3), _composition_table(30, 4)
    model = ElemNetRegressor(arch="32-1", patience=3, random_state=0)
    model.fit(train.formula, train.target, validation_data=(val.formula, val.target))
    curve = model.history_.history["val_loss"]  # in the target's unit
    assert model.n_epochs_ < model.settings_["epochs"]  # it stopped early
    assert model.best_epoch_ == int(np.argmin(curve)) + 1 == model.n_epochs_ - 3
    assert mae(val.target, model.predict(val.formula)) == pytest.approx(min(curve), rel=1e-5)
