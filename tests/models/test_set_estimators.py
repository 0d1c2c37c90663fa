"""The Roost and CrabNet estimators end to end, as aviary tests its models: train small
networks on a few hundred CritExam__Ef rows for a few epochs and require a loose margin
over the mean predictor; classifiers over the majority; noble gases accepted; formulas
wider than the set width refused by row; model files predict as the estimator did."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from stoichnet.chem import load_dataset
from stoichnet.evaluate.model_card import load_network, predict_formulas, save_network
from stoichnet.models import CrabNetClassifier, CrabNetRegressor, RoostClassifier, RoostRegressor

SMALL = {
    "roost": dict(d=16, n_graph=1, heads=2, gate_hidden=(16,), message_hidden=(16,),
                  trunk_hidden=(32,), out_hidden=(32, 16)),
    "crabnet": dict(d_model=16, n_layers=1, heads=2, hidden=32, out_hidden=(32, 16)),
}
REGRESSORS = {"roost": RoostRegressor, "crabnet": CrabNetRegressor}
CLASSIFIERS = {"roost": RoostClassifier, "crabnet": CrabNetClassifier}


@pytest.fixture(scope="module")
def rows(data_dir):
    frame = load_dataset("CritExam__Ef", "train", progress=False)
    return frame.sample(600, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_learns_and_is_reproducible(rows, name):
    train, test = rows[:450], rows[450:]
    net = REGRESSORS[name](epochs=8, random_state=0, **SMALL[name])
    net.fit(train.formula, train.target)
    predicted = net.predict(test.formula)
    mean_mae = np.abs(test.target - train.target.mean()).mean()
    assert np.abs(predicted - test.target).mean() < 0.8 * mean_mae
    assert net.set_width_ == 8  # fewer elements in training: MIN_SET_WIDTH
    again = REGRESSORS[name](epochs=8, random_state=0, **SMALL[name]).fit(train.formula,
                                                                          train.target)
    np.testing.assert_array_equal(again.predict(test.formula), predicted)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_learns(rows, name):
    y = np.where(rows.target < rows.target.median(), "stable", "unstable")
    net = CLASSIFIERS[name](epochs=8, random_state=0, **SMALL[name]).fit(rows.formula[:450], y[:450])
    proba = net.predict_proba(rows.formula[450:])
    assert net.classes_.tolist() == ["stable", "unstable"]
    assert roc_auc_score(y[450:] == "unstable", proba[:, 1]) > 0.75


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_noble_gases_wide_formulas_and_model_files(rows, name, tmp_path):
    train = rows[:200]
    formulas = [*train.formula, "He", "NeAr", "Xe2F4", "KrF2"]
    y = np.concatenate([train.target, [0.0, 0.0, -0.1, -0.1]])
    net = REGRESSORS[name](epochs=2, random_state=0, **SMALL[name]).fit(formulas, y)
    assert np.isfinite(net.predict(["He", "Ar", "ArNe3"])).all()
    wide = "HLiBeBCNOFNaMg"  # 10 elements, wider than the set width 8
    with pytest.raises(ValueError, match=r"row 1 'HLiBeBCNOFNaMg' has 10"):
        net.predict(["NaCl", wide])
    with pytest.raises(TypeError, match="takes formulas"):
        net.predict(np.zeros((2, 8, 2)))
    save_network(net, tmp_path / "m.npz", {"unit": "eV/atom"})
    model, card = load_network(tmp_path / "m.npz")
    assert card["featurization"] == "element_sets"
    frame, errors = predict_formulas(model, card, ["Fe2O3", wide, "He", "Qq"])
    assert frame["position"].tolist() == [0, 2]
    np.testing.assert_allclose(frame["prediction"], net.predict(["Fe2O3", "He"]), rtol=1e-6)
    assert errors[1] == "10 elements, more than the set width 8" and "Qq" in errors[3]
