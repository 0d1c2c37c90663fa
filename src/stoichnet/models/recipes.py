"""Named training recipes for the ElemNet family.

A recipe fixes how a network is trained and how it predicts: dropout rates, what
dropout does at inference, batch size, optimizer, learning rate and its schedule, epochs
and early stopping. ``ElemNetRegressor(recipe="elemnet-original")`` trains by one of them;
any hyper-parameter given explicitly to the estimator overrides the recipe's value.

The dropout trap (issue 6): ElemNet puts dropout after its 1024/512/256/128 blocks with
no normalisation, so a network trained with dropout predicts differently once dropout is
switched off: in PyTorch on CritExam__Ef the mean prediction moved by about +0.2 eV/atom
and test MAE was 0.22-0.29 eV/atom, while averaging 10 passes with dropout on gave 0.10
and the same network trained without dropout reached 0.082 after 48 epochs. ElemNet's
own code kept dropout on at inference. The recipes below let a study measure each option:

- ``elemnet-original``: faithful ElemNet (dropout 0.2/0.1/0.3/0.2, batch 32, Adam 1e-4,
  MAE loss; predictions are one pass with dropout on, as ElemNet's code did);
- ``elemnet-mc``: the same training, predictions averaged over 10 dropout passes;
- ``elemnet-dropout-off``: the same training, dropout off at inference (the trap);
- ``elemnet-no-dropout``: ElemNet's optimiser settings without dropout;
- ``stoichnet``: the default (:data:`DEFAULT_RECIPE`): no dropout, batch 256, AdamW
  (weight decay 0.01) with a 5% linear warm-up to 2e-3 then cosine decay to 0 over 25
  epochs. On CritExam__Ef it reached test MAE 0.0641 eV/atom (val 0.0630) after 25 epochs,
  6.4 minutes on one core of the 2-core dev machine, and passed ElemNet's published 0.0707
  after 4.1 minutes; ElemNet's own recipe had not reached it after 40 minutes
  (benchmarks/README.md, "Time to accuracy").

Switching the default is the one line ``DEFAULT_RECIPE = ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..nn.schedules import RECIPE_SCHEDULES
from ..util.checks import check_choice
from .elemnet import ELEMNET_DROPOUT

INFERENCE_DROPOUT = ("off", "mc")
"""What Dropout layers do in ``predict``: "off" (identity, standard inverted dropout) or
"mc" (kept on; ``mc_samples`` passes are averaged)."""

SCHEDULES = RECIPE_SCHEDULES
"""Learning-rate schedules a recipe may name (``stoichnet.nn.schedules.from_name``); each
but None/"constant" spans all training steps."""


@dataclass(frozen=True)
class Recipe:
    """How to train and run an ElemNet-family network.

    Attributes:
        name: registry key, e.g. "elemnet-original".
        description: one sentence for reports.
        dropout: drop rate per ``D`` block of the architecture; () for no dropout.
        inference_dropout: "off" or "mc" (see :data:`INFERENCE_DROPOUT`).
        mc_samples: dropout passes averaged at prediction when inference_dropout is "mc".
        batch_size: samples per mini-batch.
        optimizer: optimizer name (``stoichnet.nn.optimizers``).
        learning_rate: (peak) learning rate.
        weight_decay: the optimizer's weight decay (PyTorch semantics).
        schedule: learning-rate schedule name (see :data:`SCHEDULES`) or None (constant).
        warmup_fraction: fraction of the training steps spent warming up (warmup_cosine).
        epochs: maximum number of epochs.
        patience: epochs without validation improvement before stopping (best weights
            restored); None trains all epochs.
        loss: training loss name ("mae" as ElemNet).
    """

    name: str
    description: str
    dropout: tuple[float, ...]
    inference_dropout: str
    mc_samples: int
    batch_size: int
    optimizer: str
    learning_rate: float
    weight_decay: float
    schedule: str | None
    warmup_fraction: float
    epochs: int
    patience: int | None
    loss: str = "mae"

    def __post_init__(self):
        check_choice(f"recipe {self.name!r}: inference_dropout", self.inference_dropout,
                     INFERENCE_DROPOUT)
        check_choice(f"recipe {self.name!r}: schedule", self.schedule, SCHEDULES)

    def hyperparameters(self) -> dict:
        """The training settings (every field but name and description)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("name", "description")
        }


ELEMNET_ORIGINAL = Recipe(
    name="elemnet-original",
    description=(
        "ElemNet as published: dropout 0.2/0.1/0.3/0.2, batch 32, Adam 1e-4, MAE loss, "
        "one prediction pass with dropout kept on"
    ),
    dropout=ELEMNET_DROPOUT,
    inference_dropout="mc",
    mc_samples=1,
    batch_size=32,
    optimizer="adam",
    learning_rate=1e-4,
    weight_decay=0.0,
    schedule=None,
    warmup_fraction=0.0,
    epochs=1000,
    patience=100,
)

ELEMNET_MC = replace(
    ELEMNET_ORIGINAL,
    name="elemnet-mc",
    description="ElemNet's training; predictions averaged over 10 passes with dropout on",
    mc_samples=10,
)

ELEMNET_DROPOUT_OFF = replace(
    ELEMNET_ORIGINAL,
    name="elemnet-dropout-off",
    description="ElemNet's training; dropout switched off at inference (shifts predictions)",
    inference_dropout="off",
)

ELEMNET_NO_DROPOUT = replace(
    ELEMNET_ORIGINAL,
    name="elemnet-no-dropout",
    description="ElemNet's architecture and optimiser (batch 32, Adam 1e-4) without dropout",
    dropout=(),
    inference_dropout="off",
)

STOICHNET = Recipe(
    name="stoichnet",
    description=(
        "no dropout, batch 256, AdamW (weight decay 0.01) with a 5% linear warm-up to 2e-3 "
        "then cosine decay over 25 epochs, MAE loss, early stopping on validation MAE "
        "(patience 20)"
    ),
    dropout=(),
    inference_dropout="off",
    mc_samples=1,
    batch_size=256,
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=0.01,
    schedule="warmup_cosine",
    warmup_fraction=0.05,
    epochs=25,
    patience=20,
)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (STOICHNET, ELEMNET_ORIGINAL, ELEMNET_MC, ELEMNET_DROPOUT_OFF, ELEMNET_NO_DROPOUT)
}
"""Every named recipe."""

DEFAULT_RECIPE = "stoichnet"
"""The recipe of ``ElemNetRegressor()`` and ``stoichnet compare``."""


def get_recipe(recipe: str | Recipe | None = None) -> Recipe:
    """The recipe named ``recipe`` (None: :data:`DEFAULT_RECIPE`); a Recipe is returned as is.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        TypeError: neither a name nor a Recipe.
    """
    if recipe is None:
        recipe = DEFAULT_RECIPE
    if isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, str):
        raise TypeError(f"recipe must be a name or a Recipe, got {type(recipe).__name__}")
    try:
        return RECIPES[recipe]
    except KeyError:
        raise ValueError(f"unknown recipe {recipe!r}; known recipes: {sorted(RECIPES)}") from None
