"""Transfer learning: a new network that starts from a trained network's hidden layers.

Jha et al. (Nat. Commun. 10, 5316 (2019)) pretrained ElemNet on DFT formation energies
and fine-tuned it on ~1,600 experimental ones; Gupta et al. (Nat. Commun. 12, 6595
(2021)) fine-tuned a formation-energy ElemNet on other properties and beat training from
scratch on most small sets. Here, for a network being fitted:

- every hidden Dense layer takes the source network's weights and biases (the
  architecture and the input features must be the same);
- the output layer is new (drawn from the new network's seed): the target may be another
  property, another unit, or classes;
- the first ``freeze`` hidden layers are frozen (``Layer.trainable = False``: they keep
  the source's weights and get no backward pass); the other copied layers learn at
  ``lr_scale`` times the learning rate (``Layer.lr_scale``), the new output layer at the
  full rate.
"""

from __future__ import annotations

import os

from ..nn import Sequential, load_model
from ..nn.layers import Dense
from ..util.checks import check_int, check_real
from .shipped import DEFAULT_PRETRAINED, PRETRAINED, load_pretrained


def load_init(init: str | os.PathLike) -> tuple[Sequential, str]:
    """(network, description) for ``init``: "pretrained" (the default shipped network),
    a name in :data:`~stoichnet.models.shipped.PRETRAINED`, or a model file's path.

    Raises:
        TypeError: ``init`` is not a string or path.
        FileNotFoundError, ModelFileError: a path that is no readable model file.
    """
    if not isinstance(init, str | os.PathLike):
        raise TypeError(f"init must be 'pretrained', a pretrained model's name "
                        f"{sorted(PRETRAINED)} or a model file's path, got {type(init).__name__}")
    name = DEFAULT_PRETRAINED if init == "pretrained" else init
    if isinstance(name, str) and name in PRETRAINED:
        return load_pretrained(name)[0], f"the pretrained model {name!r}"
    return load_model(init), f"the model file {os.fspath(init)!r}"


def _describe(layers: list[Dense]) -> str:
    return "-".join(f"{layer.units} {layer.activation}" for layer in layers) or "none"


def transfer_weights(source: Sequential, target: Sequential, freeze: int = 0,
                     lr_scale: float = 0.1, source_name: str = "the init network") -> None:
    """Copy ``source``'s hidden Dense layers into ``target`` (built, same hidden layers
    and input width) and set which of them train and how fast (module docstring).

    Args:
        freeze: hidden layers, counted from the input, that are not trained
            (0 .. the number of hidden layers; the output layer always trains).
        lr_scale: learning-rate factor of the copied layers that do train (> 0, <= 1
            usually).
    Raises:
        ValueError: other input width or hidden layers (the message names both), or
            ``freeze`` deeper than the hidden layers.
    """
    lr_scale = check_real("init_lr_scale", lr_scale, 0.0, low_open=True)
    if source.input_shape != target.input_shape:
        raise ValueError(
            f"{source_name} takes inputs of shape {source.input_shape}, this network "
            f"{target.input_shape}: it was trained on other input features")
    theirs = [layer for layer in source.layers if isinstance(layer, Dense)][:-1]
    ours = [layer for layer in target.layers if isinstance(layer, Dense)][:-1]
    if [(a.units, a.activation, a.use_bias) for a in theirs] != [
            (b.units, b.activation, b.use_bias) for b in ours]:
        raise ValueError(
            f"{source_name} has hidden layers {_describe(theirs)}, this network "
            f"{_describe(ours)}: the architecture must be the same")
    freeze = check_int("freeze", freeze, 0)
    if freeze > len(ours):
        raise ValueError(f"freeze={freeze} is deeper than the network's {len(ours)} hidden "
                         f"layers (the new output layer always trains); allowed: 0..{len(ours)}")
    for i, (mine, copied) in enumerate(zip(ours, theirs, strict=True)):
        for key, value in copied.params.items():
            mine.params[key][...] = value  # views into target's flat buffer
        mine.trainable = i >= freeze
        mine.lr_scale = lr_scale
