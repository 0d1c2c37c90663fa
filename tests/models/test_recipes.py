from dataclasses import replace

import pytest

from stoichnet.models.elemnet import ELEMNET_DROPOUT
from stoichnet.models.estimators import ElemNetRegressor
from stoichnet.models.recipes import DEFAULT_RECIPE, RECIPES, STOICHNET, Recipe, get_recipe


def test_default_recipe_is_named_and_is_what_the_estimator_uses():
    assert get_recipe() is RECIPES[DEFAULT_RECIPE]
    assert ElemNetRegressor().recipe == DEFAULT_RECIPE


def test_elemnet_original_is_faithful():
    r = get_recipe("elemnet-original")
    # ElemNet's config: keep-probabilities 0.8/0.9/0.7/0.8, batch 32, Adam 1e-4, MAE
    assert r.dropout == tuple(round(1 - keep, 10) for keep in (0.8, 0.9, 0.7, 0.8))
    assert (r.batch_size, r.optimizer, r.learning_rate, r.loss) == (32, "adam", 1e-4, "mae")
    assert (r.inference_dropout, r.mc_samples) == ("mc", 1)


def test_the_dropout_options_differ_only_where_named():
    base = get_recipe("elemnet-original")
    assert replace(get_recipe("elemnet-mc"), name=base.name, description=base.description) == (
        replace(base, mc_samples=10)
    )
    off = get_recipe("elemnet-dropout-off")
    assert (off.dropout, off.inference_dropout) == (ELEMNET_DROPOUT, "off")
    assert get_recipe("elemnet-no-dropout").dropout == ()


def test_hyperparameters_are_estimator_parameters():
    params = ElemNetRegressor().get_params()
    for recipe in RECIPES.values():
        assert set(recipe.hyperparameters()) <= set(params)


def test_a_recipe_object_is_accepted_as_is():
    custom = replace(STOICHNET, name="mine", batch_size=64)
    assert get_recipe(custom) is custom


def test_unknown_or_bad_recipes():
    with pytest.raises(ValueError, match="known recipes: "):
        get_recipe("elemnet")
    with pytest.raises(TypeError, match="name or a Recipe"):
        get_recipe(3)
    with pytest.raises(ValueError, match="inference_dropout"):
        replace(STOICHNET, inference_dropout="sometimes")
    with pytest.raises(ValueError, match="schedule"):
        Recipe(**{**STOICHNET.__dict__, "schedule": "step"})
