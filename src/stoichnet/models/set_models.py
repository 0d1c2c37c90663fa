"""Roost and CrabNet: networks over the elements of a formula, as ``Sequential`` stacks of
the engine's set layers (``stoichnet.nn.layers.sets``, ``attention``, ``encoding``).

Both take the set batch of :func:`stoichnet.chem.element_sets.element_sets`: (n, m, 2),
token id = atomic number, weight = atomic fraction; both start from a fixed element
embedding (mat2vec, :func:`stoichnet.chem.element_sets.element_embedding`) mapped by a
trainable Dense layer. Defaults are the published ones (read from the authors' code:
aviary's ``Roost``, CrabNet's ``kingcrab.py``). What differs, in both:

- one output per target, trained on MAE by the estimators by default (Roost and CrabNet
  predict a second output, log σ, and train on a "robust" Laplace likelihood: that is
  ``loss="laplace_nll"`` of the estimators, or ``stoichnet train --loss laplace_nll``);
- CrabNet's final gate (output · sigmoid(logit), a third output) is left out; the
  output layer is linear (regression) or sigmoid/softmax (classification);
- CrabNet's transformer drops out after attention, in the feed-forward network and
  after it, not the attention weights themselves (torch's layer does that too);
- the embedding's width equals d; the output network's last Dense layer runs after
  the average over the elements (CrabNet averages after it: the same function, the
  layer being linear, and it leaves the output layer last, where the estimators fold
  the target scale and put the classification activation).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..chem.element_sets import element_embedding
from ..nn import Sequential
from ..nn.layers import (
    AppendWeight,
    Dense,
    Embedding,
    FractionalEncoding,
    PerMember,
    ResidualDense,
    RoostMessage,
    SetPooling,
    TransformerEncoderBlock,
    WeightedAttentionPooling,
)
from ..util.checks import check_int, check_real


def _widths(name: str, value: Sequence[int]) -> list[int]:
    if isinstance(value, int | str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of layer widths, got {value!r}")
    return [check_int(f"{name}[{i}]", w, 1) for i, w in enumerate(value)]


def _embedding_layers(embedding: str, d: int) -> list:
    """The fixed element vectors and their trainable map to d features."""
    return [Embedding(table=element_embedding(embedding).table, trainable=False,
                      name="elements"),
            PerMember(Dense(d), name="embed")]


def roost(
    n_outputs: int = 1,
    *,
    d: int = 64,
    n_graph: int = 3,
    heads: int = 3,
    gate_hidden: Sequence[int] = (256,),
    message_hidden: Sequence[int] = (256,),
    trunk_hidden: Sequence[int] = (1024, 512),
    out_hidden: Sequence[int] = (256, 128, 64),
    output_activation: str = "linear",
    embedding: str = "mat2vec",
    dtype: str = "float32",
    seed: int | None = None,
) -> Sequential:
    """Roost (Goodall & Lee 2020, Nat. Commun. 11, 6280), as aviary builds it: the
    embedding mapped to d - 1 features plus the fraction as the d-th; ``n_graph``
    message-passing layers (:class:`~stoichnet.nn.layers.RoostMessage`); weighted
    soft-attention pooling with ``heads`` heads; a residual trunk (``trunk_hidden``,
    then Dense(out_hidden[0], relu)) and a residual output network (``out_hidden[1:]``)
    ending in Dense(n_outputs, output_activation). Every gate and message network has
    hidden widths ``gate_hidden`` / ``message_hidden`` (leaky ReLU).

    Returns an unbuilt, uncompiled Sequential taking sets (m, 2) of any width m.
    """
    d = check_int("d", d, 2)
    n_graph = check_int("n_graph", n_graph, 0)
    heads = check_int("heads", heads, 1)
    gate, message = _widths("gate_hidden", gate_hidden), _widths("message_hidden", message_hidden)
    trunk, out = _widths("trunk_hidden", trunk_hidden), _widths("out_hidden", out_hidden)
    if not out:
        raise ValueError("out_hidden needs at least one width (the trunk's output)")
    layers = _embedding_layers(embedding, d - 1)
    layers.append(AppendWeight(name="fraction"))
    layers += [RoostMessage(heads, gate, message, name=f"message_{i}") for i in range(n_graph)]
    layers.append(WeightedAttentionPooling(heads=heads, gate_hidden=gate, message_hidden=message,
                                           name="pooling"))
    layers += [ResidualDense(w, name=f"trunk_{i}") for i, w in enumerate(trunk)]
    layers.append(Dense(out[0], "relu", name="trunk_out"))
    layers += [ResidualDense(w, name=f"out_{i}") for i, w in enumerate(out[1:])]
    layers.append(Dense(check_int("n_outputs", n_outputs, 1), output_activation, name="output"))
    return Sequential(layers, dtype=dtype, seed=seed)


def crabnet(
    n_outputs: int = 1,
    *,
    d_model: int = 512,
    n_layers: int = 3,
    heads: int = 4,
    hidden: int = 2048,
    dropout: float = 0.1,
    out_hidden: Sequence[int] = (1024, 512, 256, 128),
    resolution: int = 5000,
    output_activation: str = "linear",
    embedding: str = "mat2vec",
    dtype: str = "float32",
    seed: int | None = None,
) -> Sequential:
    """CrabNet (Wang et al. 2021, npj Comput. Mater. 7, 77), as ``kingcrab.CrabNet``
    builds it: the embedding mapped to ``d_model`` features, the fractional encodings
    added (:class:`~stoichnet.nn.layers.FractionalEncoding`), ``n_layers`` post-norm
    transformer encoder blocks (``heads`` heads, feed-forward width ``hidden``, ReLU,
    ``dropout``), a residual network on each element (``out_hidden``, leaky ReLU), the
    average over the elements, and Dense(n_outputs, output_activation).

    Returns an unbuilt, uncompiled Sequential taking sets (m, 2) of any width m.
    """
    d_model = check_int("d_model", d_model, 2)
    heads = check_int("heads", heads, 1)
    if d_model % heads or d_model % 2:
        raise ValueError(f"d_model={d_model} must be even and divisible by heads={heads}")
    dropout = check_real("dropout", dropout, 0.0, 1.0)
    layers = _embedding_layers(embedding, d_model)
    layers.append(FractionalEncoding(resolution, name="fractions"))
    layers += [TransformerEncoderBlock(heads, hidden, dropout, name=f"encoder_{i}")
               for i in range(check_int("n_layers", n_layers, 0))]
    layers += [PerMember(ResidualDense(w, "leaky_relu"), name=f"residual_{i}")
               for i, w in enumerate(_widths("out_hidden", out_hidden))]
    layers.append(SetPooling("mean", name="average"))
    layers.append(Dense(check_int("n_outputs", n_outputs, 1), output_activation, name="output"))
    return Sequential(layers, dtype=dtype, seed=seed)
