"""The ElemNet family: fully connected networks from element fractions to a property.

ElemNet (Jha et al., Sci. Rep. 8, 17593 (2018)) writes its architecture as a string of
blocks joined by ``-``: ``<units>x<count>`` is ``count`` Dense layers of ``units`` units,
a trailing ``D`` puts one Dropout layer after the block's last Dense layer, and a bare
``<units>`` is one layer. The last block is the output layer (linear activation for
regression). The 17-layer network of the paper is :data:`ELEMNET_17`. ElemNet's config
lists dropout *keep*-probabilities 0.8/0.9/0.7/0.8; stoichnet takes drop rates, one per
``D`` block in order: :data:`ELEMNET_DROPOUT` = (0.2, 0.1, 0.3, 0.2).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from ..nn import Sequential
from ..nn.layers import Dense, Dropout
from ..util.checks import check_int, check_real

ELEMNET_17 = "1024x4D-512x3D-256x3D-128x3D-64x2-32x1-1"
"""ElemNet's 17-layer architecture: 16 hidden ReLU layers and a linear output unit."""

ELEMNET_DROPOUT = (0.2, 0.1, 0.3, 0.2)
"""Drop rates after ElemNet's 1024, 512, 256 and 128 blocks (keep-probabilities 0.8/0.9/0.7/0.8)."""

N_ELEMENTS = 86
"""Input width of ElemNet: fractions of its 86 elements."""

_BLOCK = re.compile(r"(?P<units>\d+)(?:x(?P<count>\d+))?(?P<dropout>D?)")


class Block(NamedTuple):
    """``count`` Dense layers of ``units`` units, followed by Dropout when ``dropout``."""

    units: int
    count: int
    dropout: bool

    def __str__(self) -> str:
        return f"{self.units}x{self.count}{'D' if self.dropout else ''}"


def parse_arch(arch: str) -> list[Block]:
    """Parse an ElemNet architecture string into blocks.

    >>> parse_arch("1024x4D-64x2-1")
    [Block(units=1024, count=4, dropout=True), Block(units=64, count=2, dropout=False), Block(units=1, count=1, dropout=False)]

    Raises:
        TypeError: ``arch`` is not a string.
        ValueError: a block is malformed, has zero units or count, or the output block
            (the last) is followed by dropout; the message names the block.
    """
    if not isinstance(arch, str):
        raise TypeError(f"arch must be a string such as {ELEMNET_17!r}, got {type(arch).__name__}")
    if not arch.strip():
        raise ValueError(f"arch is empty; expected blocks such as {ELEMNET_17!r}")
    blocks = []
    for i, text in enumerate(arch.split("-")):
        match = _BLOCK.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"arch {arch!r}: block {i + 1} {text!r} is not '<units>', '<units>x<count>' "
                "or either followed by 'D' (e.g. '1024x4D')"
            )
        units, count = int(match["units"]), int(match["count"] or 1)
        if units < 1 or count < 1:
            raise ValueError(f"arch {arch!r}: block {i + 1} {text!r} needs units and count >= 1")
        blocks.append(Block(units, count, bool(match["dropout"])))
    if blocks[-1].dropout:
        raise ValueError(f"arch {arch!r}: the last block is the output layer and takes no 'D'")
    return blocks


def format_arch(blocks: list[Block]) -> str:
    """Inverse of :func:`parse_arch` (``<units>x<count>`` for every block)."""
    return "-".join(str(b) for b in blocks)


def _dropout_rates(dropout, n_blocks: int, arch: str) -> tuple[float, ...]:
    """One drop rate per ``D`` block: from a sequence, a single float for all, or none."""
    if dropout is None:
        return (0.0,) * n_blocks
    if isinstance(dropout, int | float | np.floating) and not isinstance(dropout, bool):
        rates = (float(dropout),) * n_blocks
    elif isinstance(dropout, str | bool) or not hasattr(dropout, "__iter__"):
        raise TypeError(f"dropout must be a rate, a sequence of rates or None, got {dropout!r}")
    else:
        rates = tuple(float(r) for r in dropout)
        if rates and len(rates) != n_blocks:
            raise ValueError(
                f"dropout gives {len(rates)} rate(s) {rates} but arch {arch!r} has {n_blocks} "
                "'D' block(s); give one rate per 'D' block, a single rate, or 0 for none"
            )
        rates = rates or (0.0,) * n_blocks
    for r in rates:
        check_real("dropout rate", r, 0.0, 1.0)
    return rates


def elemnet(
    arch: str = ELEMNET_17,
    dropout=ELEMNET_DROPOUT,
    activation: str = "relu",
    input_dim: int = N_ELEMENTS,
    *,
    output_activation: str = "linear",
    kernel_initializer: str = "glorot_uniform",
    mc_dropout: bool = False,
    dtype: str = "float32",
    seed: int | None = None,
) -> Sequential:
    """Build an (uncompiled) ElemNet-style network.

    Args:
        arch: ElemNet architecture string, e.g. :data:`ELEMNET_17` or ``"64x2D-1"``.
        dropout: drop rates, one per ``D`` block in order; a single float for every
            ``D`` block; ``0``, ``()`` or ``None`` for no Dropout layers at all.
        activation: activation of every hidden Dense layer.
        input_dim: number of input features (86 element fractions for ElemNet).
        output_activation: activation of the last layer ("linear" for regression,
            "sigmoid"/"softmax" for classification).
        kernel_initializer: initializer of every kernel, by name.
        mc_dropout: keep the Dropout layers on at inference (Monte-Carlo dropout).
        dtype: "float32" or "float64".
        seed: seed of the initial weights (the Sequential's generator).
    Returns:
        ``stoichnet.nn.Sequential`` whose first layer takes ``input_dim`` features.
    """
    input_dim = check_int("input_dim", input_dim, 1)
    blocks = parse_arch(arch)
    rates = iter(_dropout_rates(dropout, sum(b.dropout for b in blocks), arch))
    model = Sequential(dtype=dtype, seed=seed)
    first = True
    for i, block in enumerate(blocks):
        last_block = i == len(blocks) - 1
        for j in range(block.count):
            is_output = last_block and j == block.count - 1
            model.add(
                Dense(
                    block.units,
                    activation=output_activation if is_output else activation,
                    input_dim=int(input_dim) if first else None,
                    kernel_initializer=kernel_initializer,
                )
            )
            first = False
        if block.dropout:
            rate = next(rates)
            if rate > 0.0:
                model.add(Dropout(rate, mc_dropout=mc_dropout))
    return model


def depth_arch(depth: int) -> tuple[str, tuple[float, ...]]:
    """Architecture and drop rates of the depth-``depth`` member of the ElemNet family.

    The rule (stoichnet's, in the spirit of the ElemNet paper's depth study): a depth-d
    network has d Dense layers, d - 1 hidden and one output unit. Its hidden widths are
    the 16 hidden widths of :data:`ELEMNET_17` (1024 x4, 512 x3, 256 x3, 128 x3, 64 x2,
    32 x1) sampled at d - 1 evenly spaced positions, ``round(linspace(0, 15, d - 1))``,
    so the funnel from 1024 down to 32 units is compressed (d < 17) or stretched
    (d > 17, layers repeated) but always keeps its shape. Consecutive equal widths form a
    block; a block of 1024, 512, 256 or 128 units is followed by dropout at ElemNet's
    rate for that width. ``depth_arch(17)`` is ElemNet-17 itself; depth 1 is a linear
    model.

    Returns:
        (arch string, drop rates) to pass to :func:`elemnet`.
    """
    depth = check_int("depth", depth, 1)
    reference = parse_arch(ELEMNET_17)
    hidden = [b.units for b in reference[:-1] for _ in range(b.count)]
    rate_of = dict(zip([b.units for b in reference if b.dropout], ELEMNET_DROPOUT, strict=True))
    positions = np.rint(np.linspace(0, len(hidden) - 1, depth - 1)).astype(int)
    blocks: list[Block] = []
    for width in (hidden[p] for p in positions):
        if blocks and blocks[-1].units == width:
            blocks[-1] = blocks[-1]._replace(count=blocks[-1].count + 1)
        else:
            blocks.append(Block(width, 1, width in rate_of))
    rates = tuple(rate_of[b.units] for b in blocks if b.dropout)
    return format_arch([*blocks, Block(1, 1, False)]), rates
