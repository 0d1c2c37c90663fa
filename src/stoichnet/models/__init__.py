"""Models: the ElemNet family, scikit-learn compatible network estimators, named training
recipes, the classical baselines (random forest / Ridge on Magpie features, mean and
majority predictors), deep ensembles and one interface to every model's uncertainty
(``predict_dist``)."""

from .baselines import (
    CLASSIFICATION_BASELINES,
    REGRESSION_BASELINES,
    majority_class,
    mean_predictor,
    rf_magpie,
    rf_magpie_classifier,
    ridge_magpie,
)
from .elemnet import ELEMNET_17, ELEMNET_DROPOUT, Block, depth_arch, elemnet, parse_arch
from .estimators import (
    ElemNetClassifier,
    ElemNetRegressor,
    NeuralNetClassifier,
    NeuralNetRegressor,
)
from .recipes import DEFAULT_RECIPE, RECIPES, Recipe, SizeRule, get_recipe
from .uncertainty import DeepEnsembleRegressor, predict_dist, uncertainty_kinds

__all__ = [
    "CLASSIFICATION_BASELINES",
    "DEFAULT_RECIPE",
    "ELEMNET_17",
    "ELEMNET_DROPOUT",
    "RECIPES",
    "REGRESSION_BASELINES",
    "Block",
    "DeepEnsembleRegressor",
    "ElemNetClassifier",
    "ElemNetRegressor",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "Recipe",
    "SizeRule",
    "depth_arch",
    "elemnet",
    "get_recipe",
    "majority_class",
    "mean_predictor",
    "parse_arch",
    "predict_dist",
    "rf_magpie",
    "rf_magpie_classifier",
    "ridge_magpie",
    "uncertainty_kinds",
]
