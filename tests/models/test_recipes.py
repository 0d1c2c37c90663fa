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


def test_the_size_rule_keeps_a_large_set_as_before_and_sizes_a_small_one():
    recipe = get_recipe()
    # CritExam__Ef's 59,509 training rows: batch 256, 25 epochs (5,825 steps), as before
    assert recipe.budget(59_509) == (256, 25)
    assert recipe.budget(225) == (16, 200)  # 15 batches of 16 per epoch, 3,000 steps
    assert recipe.budget(100) == (16, 429)  # never below 16 rows per batch
    assert recipe.budget(3000) == (93, 91)  # 33 batches per epoch
    assert recipe.budget(20_000) == (256, 38)  # 79 batches per epoch, 3,002 steps
    assert recipe.budget(10) == (16, 3000)  # one (short) batch per epoch


def test_explicit_batch_size_or_epochs_are_used_as_given():
    recipe = get_recipe()
    assert recipe.budget(225, batch_size=256) == (256, 3000)  # the epochs still follow
    assert recipe.budget(225, epochs=10) == (16, 10)  # the batch size still follows
    assert recipe.budget(225, batch_size=64, epochs=3) == (64, 3)
    # ElemNet's own recipes keep their published settings at every size
    assert get_recipe("elemnet-original").budget(225) == (32, 1000)
    assert not get_recipe("elemnet-original").standardize_target


def test_bad_size_rules_are_refused():
    from stoichnet.models.recipes import SizeRule

    with pytest.raises(ValueError, match="min_steps"):
        SizeRule(min_steps=0)
    with pytest.raises(TypeError, match="min_batch_size"):
        SizeRule(min_batch_size=16.5)
