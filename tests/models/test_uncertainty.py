"""Uncertainty from every model kind: the aleatoric head, Monte-Carlo dropout, deep
ensembles and the forest's spread, against scipy / numpy computations and toy problems
whose noise is known."""

import numpy as np
import pytest
from scipy import optimize, stats

from stoichnet.models import (
    DeepEnsembleRegressor,
    ElemNetRegressor,
    NeuralNetRegressor,
    add_sigma_head,
    predict_dist,
    rf_magpie,
    uncertainty_kinds,
)

FORMULAS = ["Fe2O3", "NaCl", "SiO2", "MgO", "Al2O3", "LiF", "CaTiO3", "GaAs", "ZnO", "TiO2",
            "KCl", "CuO", "NiO", "BaTiO3", "SrTiO3", "MnO2"]


def heteroscedastic(n, seed):
    """y = x + noise of sd 0.05 + 0.45 (x + 1) / 2 on x in [-1, 1] (0.05 at x = -1, 0.5 at 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    noise_sd = 0.05 + 0.225 * (x[:, 0] + 1)
    return x, x[:, 0] + noise_sd * rng.standard_normal(n)


@pytest.mark.parametrize("loss", ["gaussian_nll", "laplace_nll"])
def test_aleatoric_head_learns_a_known_heteroscedastic_noise(loss):
    """A 1-D toy problem whose noise sd grows from 0.05 to 0.5: the head's sigma follows it
    (loose: within 35% at x = -0.8, 0, 0.8), on standardised targets folded back."""
    X, y = heteroscedastic(3000, seed=0)
    net = NeuralNetRegressor(arch="32x2-1", loss=loss, standardize_target=True, epochs=60,
                             batch_size=64, learning_rate=3e-3, patience=None,
                             validation_fraction=0.0, random_state=0).fit(X, y)
    assert net.model_.output_shape == (2,) and uncertainty_kinds(net) == ("aleatoric",)
    probe = np.array([[-0.8], [0.0], [0.8]])
    mean, sigma = predict_dist(net, probe)
    truth = 0.05 + 0.225 * (probe[:, 0] + 1)
    np.testing.assert_allclose(sigma, truth, rtol=0.35)
    np.testing.assert_allclose(mean, probe[:, 0], atol=0.1)
    assert np.array_equal(mean, net.predict(probe).astype(np.float64))


def test_the_folded_head_predicts_the_likelihood_the_training_measured():
    """With standardised targets the network learns (y - mu) / std; after folding
    (mean <- std mean + mu, log sigma <- log sigma + log std) the saved network's
    Gaussian NLL of the validation rows in the target's unit (scipy's logpdf) is the last
    val_loss of training, which TargetUnitLogs put in the target's unit (+ log std)."""
    X, y = heteroscedastic(400, seed=1)
    y = 50.0 + 20.0 * y  # far from standardised
    X_val, y_val = heteroscedastic(100, seed=2)
    y_val = 50.0 + 20.0 * y_val
    net = NeuralNetRegressor(arch="16-1", loss="gaussian_nll", standardize_target=True,
                             epochs=5, patience=None, dtype="float64", random_state=0)
    net.fit(X, y, validation_data=(X_val, y_val))
    mean, sigma = net.predict_dist(X_val)
    nll = -stats.norm.logpdf(y_val, mean, sigma).mean()
    assert nll == pytest.approx(net.history_.history["val_loss"][-1], rel=1e-9)
    assert net.target_scale_ == pytest.approx(np.std(y))


def test_a_sigma_head_added_afterwards_recovers_a_known_noise_and_keeps_the_rest():
    """A trained point network (one output) gets a log-sigma column on its last hidden
    layer's activations h: with noise of sd exp(h w + c) for a chosen (w, c), the fitted
    column recovers them (scipy's minimiser of the NLL from its own formula agrees); the
    hidden layers and the mean column stay bit for bit, so the means are the predictions
    (to the rounding of the matrix product)."""
    X, y = heteroscedastic(400, seed=3)
    net = NeuralNetRegressor(arch="8-1", epochs=30, patience=None, random_state=0,
                             dtype="float64").fit(X, y)
    model = net.model_
    rng = np.random.default_rng(4)
    X_big = rng.uniform(-1, 1, (40_000, 1))
    h = np.maximum(X_big @ model.layers[0].params["W"] + model.layers[0].params["b"], 0)
    w = rng.normal(scale=1.0, size=h.shape[1]) / np.maximum(h.std(axis=0), 1e-3)
    w = np.where(h.std(axis=0) > 0, w, 0.0)  # a dead unit's weight stays 0
    log_sigma = (h - h.mean(axis=0)) @ w * 0.5 / np.std((h - h.mean(axis=0)) @ w) - 2.0
    mean = model.predict(X_big)[:, 0]
    y_big = mean + np.exp(log_sigma) * rng.standard_normal(len(mean))

    headed = add_sigma_head(model, X_big, y_big)
    assert headed.output_shape == (2,) and headed.loss.name == "gaussian_nll"
    assert model.output_shape == (1,)  # the input network is not changed
    for key in ("W", "b"):
        assert headed.layers[0].params[key].tobytes() == model.layers[0].params[key].tobytes()
    assert (headed.layers[-1].params["W"][:, :1].tobytes()
            == model.layers[-1].params["W"].tobytes())
    out = headed.predict(X_big)
    # equal but for the last bit: BLAS sums a two-column product in another order
    np.testing.assert_allclose(out[:, 0], mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out[:, 1], log_sigma, atol=0.06)  # 40,000 noisy rows

    def nll(theta):  # the Gaussian NLL written out, minimised by scipy without gradients
        s = h @ theta[:-1] + theta[-1]
        return np.mean(s + 0.5 * (y_big - mean) ** 2 * np.exp(-2 * s))

    reference = optimize.minimize(nll, np.zeros(h.shape[1] + 1), method="Nelder-Mead",
                                  options={"maxiter": 40_000, "xatol": 1e-7, "fatol": 1e-12})
    fitted = np.append(headed.layers[-1].params["W"][:, 1], headed.layers[-1].params["b"][1])
    assert nll(fitted) <= reference.fun + 1e-9


def test_a_sigma_head_needs_a_one_output_linear_network():
    X, y = heteroscedastic(200, seed=5)
    net = NeuralNetRegressor(arch="8-1", loss="gaussian_nll", epochs=2, random_state=0)
    with pytest.raises(ValueError, match="linear Dense of 1 unit"):
        add_sigma_head(net.fit(X, y).model_, X, y)
    point = NeuralNetRegressor(arch="8-1", epochs=2, random_state=0).fit(X, y).model_
    with pytest.raises(ValueError, match="must be 200 finite targets"):
        add_sigma_head(point, X, y[:10])


def test_mc_dropout_sigma_is_the_spread_of_the_passes():
    """Monte-Carlo dropout: sigma is the standard deviation over the mc_samples passes
    (Sequential.predict_passes with the estimator's seed) and the mean their average,
    which is predict's; with dropout off, there is no uncertainty and asking says so."""
    X, y = heteroscedastic(200, seed=3)
    net = NeuralNetRegressor(arch="32D-1", dropout=0.3, inference_dropout="mc", mc_samples=7,
                             epochs=3, random_state=0).fit(X, y)
    assert uncertainty_kinds(net) == ("mc dropout",)
    passes = net.model_.predict_passes(X[:20], 7, seed=net.predict_seed_)[:, :, 0]
    mean, sigma = predict_dist(net, X[:20])
    np.testing.assert_allclose(sigma, passes.astype(np.float64).std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean, net.predict(X[:20]), rtol=1e-5, atol=1e-6)
    assert (sigma > 0).all()
    net.set_params(inference_dropout="off").fit(X, y)
    assert uncertainty_kinds(net) == ()
    with pytest.raises(ValueError, match=r"has no uncertainty.*loss='gaussian_nll'"):
        predict_dist(net, X)


def test_mc_dropout_and_head_add_their_variances():
    X, y = heteroscedastic(200, seed=4)
    net = NeuralNetRegressor(arch="32D-1", dropout=0.3, inference_dropout="mc", mc_samples=5,
                             loss="gaussian_nll", epochs=3, random_state=0).fit(X, y)
    assert set(uncertainty_kinds(net)) == {"aleatoric", "mc dropout"}
    passes = net.model_.predict_passes(X, 5, seed=net.predict_seed_).astype(np.float64)
    mean, epistemic, aleatoric = net.predict_dist(X, components=True)
    np.testing.assert_allclose(epistemic, passes[:, :, 0].std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(aleatoric, np.sqrt(np.exp(2 * passes[:, :, 1]).mean(axis=0)),
                               rtol=1e-6)
    np.testing.assert_allclose(net.predict_dist(X)[1], np.hypot(epistemic, aleatoric))


def test_forest_spread_is_the_standard_deviation_over_its_trees():
    rng = np.random.default_rng(5)
    y = rng.normal(size=len(FORMULAS))
    pipe = rf_magpie(n_estimators=20).fit(FORMULAS, y)
    assert uncertainty_kinds(pipe) == ("trees",)
    mean, sigma = predict_dist(pipe, FORMULAS[:5])
    features = pipe[:-1].transform(FORMULAS[:5])
    trees = np.array([t.predict(np.asarray(features, dtype=np.float32))
                      for t in pipe[-1].estimators_])
    np.testing.assert_allclose(sigma, np.std(trees, axis=0), rtol=1e-12)
    np.testing.assert_allclose(mean, pipe.predict(FORMULAS[:5]), rtol=1e-12)


def test_out_of_bag_dist_uses_only_the_trees_that_missed_each_row():
    """oob_dist's mean is scikit-learn's own out-of-bag prediction (oob_score=True); its
    sigma the spread of the trees whose bootstrap sample missed the row (by hand, one row
    at a time); through rf_magpie's Pipeline the same as on its features."""
    from sklearn.ensemble import RandomForestRegressor

    from stoichnet.models.uncertainty import oob_dist

    rng = np.random.default_rng(9)
    X = rng.uniform(-1, 1, (120, 3))
    y = X[:, 0] + 0.2 * rng.standard_normal(120)
    forest = RandomForestRegressor(n_estimators=40, oob_score=True, random_state=0).fit(X, y)
    mean, sigma = oob_dist(forest, X)
    np.testing.assert_allclose(mean, forest.oob_prediction_, rtol=1e-12)
    for i in (0, 57, 119):
        missed = [t.predict(X[i:i + 1].astype(np.float32))[0]
                  for t, rows in zip(forest.estimators_, forest.estimators_samples_, strict=True)
                  if i not in rows]
        assert sigma[i] == pytest.approx(np.std(missed), rel=1e-12)
    # out of bag: the errors of unseen rows, well above those of the forest on its own rows
    assert np.mean(np.abs(mean - y)) > 1.5 * np.mean(np.abs(forest.predict(X) - y))
    pipe = rf_magpie(n_estimators=20, random_state=1).fit(FORMULAS, np.arange(len(FORMULAS)))
    features = pipe[:-1].transform(FORMULAS)
    np.testing.assert_array_equal(np.nan_to_num(oob_dist(pipe, FORMULAS)[1], nan=-1),
                                  np.nan_to_num(oob_dist(pipe[-1], features)[1], nan=-1))
    with pytest.raises(ValueError, match="X has only 60 rows: pass the rows it was fitted on"):
        oob_dist(forest, X[:60])
    no_bootstrap = RandomForestRegressor(n_estimators=3, bootstrap=False).fit(X, y)
    with pytest.raises(ValueError, match="need a forest fitted with bootstrap=True"):
        oob_dist(no_bootstrap, X)


def test_forest_quantile_interval_is_the_quantiles_of_its_trees():
    from stoichnet.models.uncertainty import quantile_interval

    rng = np.random.default_rng(8)
    y = rng.normal(size=len(FORMULAS))
    pipe = rf_magpie(n_estimators=30).fit(FORMULAS, y)
    features = np.asarray(pipe[:-1].transform(FORMULAS[:6]), dtype=np.float32)
    trees = np.array([t.predict(features) for t in pipe[-1].estimators_])
    low, high = quantile_interval(pipe, FORMULAS[:6], 0.9)
    # the oracle: order statistics by hand (linear interpolation between neighbours)
    ordered = np.sort(trees, axis=0)
    position = 0.05 * (len(trees) - 1)
    k, frac = int(position), position - int(position)
    np.testing.assert_allclose(low, ordered[k] + frac * (ordered[k + 1] - ordered[k]))
    assert (low <= trees.mean(axis=0)).all() and (trees.mean(axis=0) <= high).all()
    assert (quantile_interval(pipe, FORMULAS[:6], 0.5)[1] <= high).all()
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.0"):
        quantile_interval(pipe, FORMULAS[:6], 1.0)
    from stoichnet.models import ridge_magpie
    with pytest.raises(ValueError, match="tree predictions need a random forest, got a Ridge"):
        quantile_interval(ridge_magpie().fit(FORMULAS, y), FORMULAS[:2])


def test_a_model_without_uncertainty_is_refused_by_name():
    from stoichnet.models import ridge_magpie
    ridge = ridge_magpie().fit(FORMULAS, np.arange(len(FORMULAS), dtype=float))
    assert uncertainty_kinds(ridge) == ()
    with pytest.raises(ValueError, match=r"a Ridge has no uncertainty"):
        predict_dist(ridge, FORMULAS)


def test_ensemble_spread_on_a_toy_problem_with_known_noise():
    """Three head networks on y = x + N(0, 0.3²), x in [-1, 1]: the total sigma inside
    the data is the known 0.3 (within 30%), mostly aleatoric; the members disagree more
    far outside the data (x = 4) than inside it; members differ by seed only, and the
    same random_state gives the same ensemble."""
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, (600, 1))
    y = X[:, 0] + 0.3 * rng.standard_normal(600)
    member = NeuralNetRegressor(arch="16x2-1", loss="gaussian_nll", epochs=40, batch_size=32,
                                learning_rate=3e-3, patience=None, validation_fraction=0.0)
    ensemble = DeepEnsembleRegressor(member, n_members=3, random_state=0).fit(X, y)
    assert len({m.random_state for m in ensemble.estimators_}) == 3
    assert uncertainty_kinds(ensemble) == ("ensemble", "aleatoric")
    inside, outside = np.array([[-0.5], [0.0], [0.5]]), np.array([[4.0]])
    mean, epistemic, aleatoric = ensemble.predict_dist(inside, components=True)
    np.testing.assert_allclose(np.hypot(epistemic, aleatoric), 0.3, rtol=0.3)
    assert (epistemic < aleatoric).all()
    # the oracle: the members' own predictive distributions, mixed
    member_dists = [m.predict_dist(inside) for m in ensemble.estimators_]
    means = np.array([d[0] for d in member_dists])
    np.testing.assert_allclose(mean, means.mean(axis=0))
    np.testing.assert_allclose(epistemic, means.std(axis=0))
    np.testing.assert_allclose(aleatoric, np.sqrt(np.mean([d[1] ** 2 for d in member_dists],
                                                          axis=0)))
    np.testing.assert_allclose(ensemble.predict(inside), mean, rtol=1e-6)
    assert ensemble.predict_dist(outside, components=True)[1][0] > epistemic.max()
    again = DeepEnsembleRegressor(member, n_members=3, random_state=0).fit(X, y)
    assert np.array_equal(again.predict(inside), ensemble.predict(inside))


def test_bootstrap_members_train_on_their_own_resamples_of_the_rows():
    """With bootstrap, each member's rows are n draws with replacement, X and y kept
    together (about 1 - 1/e of the rows distinct), different for each member, the same for
    the same seed; fit trains each member on them (a clone fitted by hand on those rows has
    the same weights); without bootstrap a member gets X and y themselves."""
    import pandas as pd

    n = 2000
    X = pd.Series([f"row{i}" for i in range(n)])
    y = np.arange(n, dtype=float)
    ensemble = DeepEnsembleRegressor(NeuralNetRegressor(), n_members=3, random_state=2,
                                     bootstrap=True)
    resamples = [ensemble.member_data(m, X, y) for m in ensemble.unfitted_members()]
    for X_m, y_m in resamples:
        assert len(X_m) == len(y_m) == n
        assert X_m.tolist() == [f"row{int(i)}" for i in y_m]  # rows stay paired
        assert 1 - np.exp(-1) - 0.03 < len(np.unique(y_m)) / n < 1 - np.exp(-1) + 0.03
    assert len({tuple(y_m) for _, y_m in resamples}) == 3
    again = DeepEnsembleRegressor(NeuralNetRegressor(), n_members=3, random_state=2,
                                  bootstrap=True)
    member = again.unfitted_members()[1]
    assert np.array_equal(again.member_data(member, X, y)[1], resamples[1][1])
    plain = DeepEnsembleRegressor(NeuralNetRegressor(), n_members=2)
    X_plain, y_plain = plain.member_data(plain.unfitted_members()[0], X, y)
    assert X_plain is X and y_plain is y

    X_num = np.linspace(-1, 1, 64)[:, None]
    small = DeepEnsembleRegressor(NeuralNetRegressor(arch="4-1", epochs=2, batch_size=8),
                                  n_members=2, random_state=5, bootstrap=True)
    fitted = small.fit(X_num, X_num[:, 0] ** 2)
    for member, by_hand in zip(fitted.estimators_, small.unfitted_members(), strict=True):
        by_hand.fit(*small.member_data(by_hand, X_num, X_num[:, 0] ** 2))
        assert np.array_equal(member.model_.flat_params, by_hand.model_.flat_params)
    with pytest.raises(TypeError, match="bootstrap must be True or False, got 'yes'"):
        DeepEnsembleRegressor(NeuralNetRegressor(), bootstrap="yes").fit(X_num, X_num[:, 0])


def test_an_ensemble_of_point_networks_has_only_the_spread_of_its_members():
    X = np.linspace(-1, 1, 40)[:, None]
    ensemble = DeepEnsembleRegressor(NeuralNetRegressor(arch="8-1", epochs=2), n_members=2,
                                     random_state=1).fit(X, X[:, 0])
    assert uncertainty_kinds(ensemble) == ("ensemble",)
    mean, epistemic, aleatoric = predict_dist(ensemble, X, components=True)
    preds = np.array([m.predict(X) for m in ensemble.estimators_])
    np.testing.assert_allclose(epistemic, preds.std(axis=0), rtol=1e-6)
    assert (aleatoric == 0).all()


@pytest.mark.parametrize("n_members, error", [(1, ValueError), (0, ValueError),
                                              (2.0, TypeError)])
def test_ensemble_size_is_checked(n_members, error):
    with pytest.raises(error, match=r"n_members must be an int"):
        DeepEnsembleRegressor(NeuralNetRegressor(), n_members=n_members).fit([[0.0]], [0.0])


def test_elemnet_ensemble_takes_formulas():
    y = np.linspace(-1, 1, len(FORMULAS))
    ensemble = DeepEnsembleRegressor(
        ElemNetRegressor(arch="8-1", loss="laplace_nll", epochs=2, batch_size=8),
        n_members=2, random_state=0).fit(FORMULAS, y)
    mean, sigma = predict_dist(ensemble, FORMULAS[:3])
    assert mean.shape == sigma.shape == (3,) and (sigma > 0).all()


def test_a_stop_request_ends_the_ensemble_after_the_running_member(monkeypatch):
    """request_stop during the first member's training (a Ctrl-C) stops that member after
    its batch and trains no further member: the ensemble keeps the one it has."""
    from stoichnet.nn import Sequential

    X = np.linspace(-1, 1, 64)[:, None]
    ensemble = DeepEnsembleRegressor(NeuralNetRegressor(arch="8-1", epochs=50, batch_size=8),
                                     n_members=3, random_state=0)
    train_step, count = Sequential._train_step, [0]

    def counted(self, *args, **kwargs):
        out = train_step(self, *args, **kwargs)
        count[0] += 1
        if count[0] == 3:
            ensemble.request_stop()
        return out

    monkeypatch.setattr(Sequential, "_train_step", counted)
    ensemble.fit(X, X[:, 0])
    assert len(ensemble.estimators_) == 1 and count[0] == 3
    assert ensemble.estimators_[0].n_epochs_ == 1
