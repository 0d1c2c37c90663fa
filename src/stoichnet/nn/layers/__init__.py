"""Layers: each maps a batch forward and its gradient backward (see ``base``)."""

from .activation import Activation
from .base import LAYERS, Layer, register_layer
from .conv import Conv2D, Flatten, MaxPool2D
from .dense import L2, Dense
from .dropout import Dropout

__all__ = ["LAYERS", "Activation", "Dense", "Dropout", "L2", "Layer", "register_layer"]
__all__ += ["Conv2D", "Flatten", "MaxPool2D"]
