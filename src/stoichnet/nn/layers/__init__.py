"""Layers: each maps a batch forward and its gradient backward (see ``base``)."""

from .activation import Activation
from .attention import MultiHeadAttention, TransformerEncoderBlock
from .base import LAYERS, Layer, register_layer
from .composite import Composite
from .conv import Conv2D, Flatten, MaxPool2D
from .dense import L2, Dense
from .dropout import Dropout
from .encoding import FractionalEncoding
from .norm import LayerNorm
from .residual import ResidualDense
from .sets import (
    AppendWeight,
    Embedding,
    MaskedSoftmax,
    PerMember,
    RoostMessage,
    SetPooling,
    WeightedAttentionPooling,
    masked_softmax,
)

__all__ = ["LAYERS", "Activation", "Dense", "Dropout", "L2", "Layer", "register_layer"]
__all__ += ["Conv2D", "Flatten", "MaxPool2D"]
__all__ += ["AppendWeight", "Composite", "Embedding", "FractionalEncoding", "LayerNorm",
            "MaskedSoftmax", "MultiHeadAttention", "PerMember", "ResidualDense", "RoostMessage",
            "SetPooling", "TransformerEncoderBlock", "WeightedAttentionPooling", "masked_softmax"]
