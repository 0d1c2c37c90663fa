"""Classical baselines that every network is compared with.

The regression baseline is the recipe of the materials-informatics literature: Magpie
composition features (``CompositionFeaturizer(preset="magpie")``, CBFV's element table)
fed to scikit-learn's ``RandomForestRegressor(n_estimators=100)``. Each factory returns
an unfitted scikit-learn estimator whose ``fit``/``predict`` take formulas (a list or
pandas Series of strings) and numeric targets, so it works in ``cross_val_score``,
``GridSearchCV`` and with :data:`REGRESSION_BASELINES` / :data:`CLASSIFICATION_BASELINES`
by name.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import BaseEstimator
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ..chem.featurizers import CompositionFeaturizer


def _magpie() -> CompositionFeaturizer:
    return CompositionFeaturizer(preset="magpie")


def rf_magpie(
    n_estimators: int = 100, *, random_state: int | None = 0, n_jobs: int | None = None
) -> Pipeline:
    """Random forest (100 trees, scikit-learn defaults otherwise) on Magpie features.

    Args:
        n_estimators: number of trees (the published 0.0997 eV/atom on CritExam__Ef used 500).
        random_state: seed of the forest's bootstrap and feature draws.
        n_jobs: processes for fitting/predicting the trees (None: one).
    """
    forest = RandomForestRegressor(
        n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs
    )
    return Pipeline([("magpie", _magpie()), ("forest", forest)])


def ridge_magpie(alpha: float = 1.0) -> Pipeline:
    """Ridge regression on standardised Magpie features (L2 penalty ``alpha``).

    The "scale" step first clips each feature to the range it spans in the training rows,
    then standardises it: a linear model extrapolates without bound, and one test formula
    whose feature lay far outside that range (a z-score of hundreds, e.g. a rare element)
    was once predicted 1,500 eV off on a 4.6k-row band-gap set. Training rows are
    standardised as by ``StandardScaler`` alone.
    """
    scale = make_pipeline(MinMaxScaler(clip=True), StandardScaler())
    return Pipeline([("magpie", _magpie()), ("scale", scale), ("ridge", Ridge(alpha))])


def mean_predictor() -> DummyRegressor:
    """Predicts the training targets' mean for every formula (R² = 0 on the training set)."""
    return DummyRegressor(strategy="mean")


def rf_magpie_classifier(
    n_estimators: int = 100, *, random_state: int | None = 0, n_jobs: int | None = None
) -> Pipeline:
    """Random-forest classifier on Magpie features; ``predict_proba`` gives class scores."""
    forest = RandomForestClassifier(
        n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs
    )
    return Pipeline([("magpie", _magpie()), ("forest", forest)])


def majority_class() -> DummyClassifier:
    """Predicts the most frequent training label for every formula (ROC-AUC 0.5)."""
    return DummyClassifier(strategy="most_frequent")


REGRESSION_BASELINES: dict[str, Callable[[], BaseEstimator]] = {
    "rf": rf_magpie,
    "ridge": ridge_magpie,
    "mean": mean_predictor,
}
"""Name (as in ``stoichnet compare --models``) -> factory of an unfitted regressor."""

CLASSIFICATION_BASELINES: dict[str, Callable[[], BaseEstimator]] = {
    "rf": rf_magpie_classifier,
    "majority": majority_class,
}
"""Name -> factory of an unfitted classifier taking formulas."""
