"""stoichnet.nn: a NumPy neural-network engine with explicit backpropagation.

Keras-shaped: ``Sequential([Dense(64, "relu", input_dim=86), Dense(1)])``,
``compile(optimizer, loss, metrics)``, ``fit``, ``predict``, ``evaluate``,
``save`` / ``load_model``. Every layer writes its own forward and backward.
"""

from . import activations, initializers, losses, optimizers
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LayerStats,
    ModelCheckpoint,
    ProgressBar,
    StochasticWeightAveraging,
    layer_history,
)
from .checkpoint import load_checkpoint, load_checkpoint_weights
from .errors import ModelFileError, TrainingDivergedError, TrainingInterrupted
from .gradcheck import gradcheck
from .io import save_model, save_models
from .layers import (
    L2,
    LAYERS,
    Activation,
    AppendWeight,
    Composite,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    FractionalEncoding,
    Layer,
    LayerNorm,
    MaskedSoftmax,
    MaxPool2D,
    MultiHeadAttention,
    PerMember,
    ResidualDense,
    RoostMessage,
    SetPooling,
    TransformerEncoderBlock,
    WeightedAttentionPooling,
    register_layer,
)
from .sequential import History, Sequential, load_model, load_models

__all__ = [
    "LAYERS",
    "L2",
    "Activation",
    "CSVLogger",
    "Callback",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "History",
    "Layer",
    "ModelCheckpoint",
    "ModelFileError",
    "ProgressBar",
    "Sequential",
    "TrainingDivergedError",
    "activations",
    "gradcheck",
    "initializers",
    "load_model",
    "load_models",
    "losses",
    "optimizers",
    "register_layer",
    "save_model",
    "save_models",
]
__all__ += ["Conv2D", "Flatten", "MaxPool2D"]
__all__ += ["TrainingInterrupted", "load_checkpoint", "load_checkpoint_weights"]
__all__ += ["StochasticWeightAveraging"]
__all__ += ["AppendWeight", "Composite", "Embedding", "FractionalEncoding", "LayerNorm",
            "MaskedSoftmax", "MultiHeadAttention", "PerMember", "ResidualDense", "RoostMessage",
            "SetPooling", "TransformerEncoderBlock", "WeightedAttentionPooling"]
__all__ += ["LayerStats", "layer_history"]
