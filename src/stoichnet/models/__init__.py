"""Models: the ElemNet family, the set models Roost and CrabNet, scikit-learn compatible
network estimators, named training recipes, networks shipped pretrained and transfer
learning from them, the classical baselines (random forest / Ridge on Magpie features, mean
and majority predictors), deep ensembles and one interface to every model's uncertainty
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
    CrabNetClassifier,
    CrabNetRegressor,
    ElemNetClassifier,
    ElemNetRegressor,
    NeuralNetClassifier,
    NeuralNetRegressor,
    RoostClassifier,
    RoostRegressor,
    from_card,
    pretrained,
)
from .recipes import DEFAULT_RECIPE, RECIPES, Recipe, SizeRule, get_recipe
from .set_models import crabnet, roost
from .shipped import DEFAULT_PRETRAINED, PRETRAINED, PretrainedModel, load_pretrained
from .transfer import load_init, transfer_weights
from .uncertainty import DeepEnsembleRegressor, add_sigma_head, predict_dist, uncertainty_kinds

__all__ = [
    "CLASSIFICATION_BASELINES",
    "DEFAULT_PRETRAINED",
    "DEFAULT_RECIPE",
    "ELEMNET_17",
    "ELEMNET_DROPOUT",
    "RECIPES",
    "REGRESSION_BASELINES",
    "Block",
    "CrabNetClassifier",
    "CrabNetRegressor",
    "DeepEnsembleRegressor",
    "ElemNetClassifier",
    "ElemNetRegressor",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PRETRAINED",
    "PretrainedModel",
    "Recipe",
    "RoostClassifier",
    "RoostRegressor",
    "SizeRule",
    "add_sigma_head",
    "crabnet",
    "depth_arch",
    "elemnet",
    "from_card",
    "get_recipe",
    "load_init",
    "load_pretrained",
    "majority_class",
    "mean_predictor",
    "parse_arch",
    "pretrained",
    "rf_magpie",
    "rf_magpie_classifier",
    "ridge_magpie",
    "predict_dist",
    "roost",
    "transfer_weights",
    "uncertainty_kinds",
]
