"""Deep-ensemble members trained as independent jobs equal the serial DeepEnsembleRegressor.fit."""

import numpy as np
import pytest

from stoichnet.evaluate.ensemble import fit_ensemble
from stoichnet.models import DeepEnsembleRegressor, ElemNetRegressor, NeuralNetRegressor

FORMULAS = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2",
            "LiF", "KBr", "Fe3O4", "MnO2", "NiO", "CoO"] * 3


def _same_members(a, b):
    assert len(a.estimators_) == len(b.estimators_)
    for x, y in zip(a.estimators_, b.estimators_, strict=True):
        assert x.random_state == y.random_state
        assert np.array_equal(x.model_.flat_params, y.model_.flat_params)
        assert x.model_.flat_params.dtype == y.model_.flat_params.dtype
        assert x.model_.get_config() == y.model_.get_config()
        assert x.model_.get_compile_config() == y.model_.get_compile_config()
        for name in ("n_epochs_", "n_steps_", "best_epoch_", "predict_seed_",
                     "target_mean_", "target_scale_", "n_features_in_"):
            assert getattr(x, name) == getattr(y, name), name
        assert x.history_.history == y.history_.history  # JSON keeps floats exactly


@pytest.mark.slow
@pytest.mark.parametrize("jobs, bootstrap", [(1, False), (2, False), (2, True)])
def test_members_as_jobs_equal_the_serial_ensemble(jobs, bootstrap):
    """Two ElemNet members with an aleatoric head, on formulas with validation rows (each
    on its own resample with bootstrap): trained in this process (jobs=1) or in two worker
    processes, the same weights, fitted attributes, predictive distribution and seeds as
    DeepEnsembleRegressor.fit."""
    rng = np.random.default_rng(0)
    y = np.array([f.count("O") for f in FORMULAS], float) + 0.1 * rng.normal(size=len(FORMULAS))
    member = ElemNetRegressor(arch="8-1", loss="gaussian_nll", epochs=3, batch_size=8)
    val = (FORMULAS[:10], y[:10])
    serial = DeepEnsembleRegressor(member, n_members=2, random_state=3,
                                   bootstrap=bootstrap).fit(FORMULAS, y, validation_data=val)
    ensemble, runs = fit_ensemble(DeepEnsembleRegressor(member, n_members=2, random_state=3,
                                                        bootstrap=bootstrap),
                                  FORMULAS, y, val, jobs=jobs)
    _same_members(ensemble, serial)
    assert ensemble.member_seeds_ == serial.member_seeds_
    for a, b in zip(ensemble.predict_dist(FORMULAS[:5]), serial.predict_dist(FORMULAS[:5]),
                    strict=True):
        assert np.array_equal(a, b)
    assert len(runs) == 2 and all(r["wall_s"] > 0 and r["cpu_s"] >= 0 for r in runs)


def test_set_members_refuses_unfitted_or_no_members():
    from sklearn.exceptions import NotFittedError

    ensemble = DeepEnsembleRegressor(NeuralNetRegressor(arch="4-1"), n_members=2)
    with pytest.raises(ValueError, match="at least one fitted member, got none"):
        ensemble.set_members([])
    with pytest.raises(NotFittedError):
        ensemble.set_members(ensemble.unfitted_members())


def test_unfitted_members_carry_the_seeds_fit_uses():
    X = np.linspace(-1, 1, 16)[:, None]
    ensemble = DeepEnsembleRegressor(NeuralNetRegressor(arch="4-1", epochs=1), n_members=3,
                                     random_state=7)
    seeds = [m.random_state for m in ensemble.unfitted_members()]
    assert len(set(seeds)) == 3
    assert ensemble.fit(X, X[:, 0]).member_seeds_ == seeds
