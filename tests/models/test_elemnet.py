import numpy as np
import pytest

from stoichnet.models.elemnet import (
    ELEMNET_17,
    ELEMNET_DROPOUT,
    Block,
    depth_arch,
    elemnet,
    format_arch,
    parse_arch,
)
from stoichnet.nn.layers import Dense, Dropout


def test_parse_elemnet_17():
    blocks = parse_arch(ELEMNET_17)
    assert blocks == [
        Block(1024, 4, True),
        Block(512, 3, True),
        Block(256, 3, True),
        Block(128, 3, True),
        Block(64, 2, False),
        Block(32, 1, False),
        Block(1, 1, False),
    ]
    assert sum(b.count for b in blocks) == 17
    assert parse_arch(format_arch(blocks)) == blocks


def test_parse_bare_units_and_spaces():
    assert parse_arch(" 64D - 1 ") == [Block(64, 1, True), Block(1, 1, False)]


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ("", "empty"),
        ("1024x4D--1", "block 2 ''"),
        ("1024x4d-1", "block 1 '1024x4d'"),
        ("64x0-1", "units and count >= 1"),
        ("0-1", "units and count >= 1"),
        ("64x2-1D", "output layer"),
        ("64*2-1", "is not"),
        ("relu-1", "block 1 'relu'"),
    ],
)
def test_bad_arch_strings(arch, match):
    with pytest.raises(ValueError, match=match):
        parse_arch(arch)


def test_arch_must_be_a_string():
    with pytest.raises(TypeError, match="arch must be a string"):
        parse_arch([1024, 1])


def test_elemnet_17_has_the_published_parameter_count():
    model = elemnet()
    # 86*1024+1024 + 3*(1024^2+1024) + 1024*512+512 + 2*(512^2+512) + 512*256+256
    # + 2*(256^2+256) + 256*128+128 + 2*(128^2+128) + 128*64+64 + 64*64+64 + 64*32+32 + 33
    assert model.count_params() == 4_631_361
    assert "Total params: 4,631,361" in model.summary(print_fn=lambda text: None)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert len(dense) == 17
    drops = [(i, layer.rate) for i, layer in enumerate(model.layers) if isinstance(layer, Dropout)]
    # dropout after the 4th, 7th, 10th and 13th Dense layers (indices shifted by earlier drops)
    assert drops == [(4, 0.2), (8, 0.1), (12, 0.3), (16, 0.2)]
    assert dense[-1].units == 1


def test_elemnet_dropout_options():
    no_drop = elemnet("16x2D-8D-1", dropout=0)
    assert not any(isinstance(layer, Dropout) for layer in no_drop.layers)
    same = elemnet("16x2D-8D-1", dropout=0.5)
    assert [layer.rate for layer in same.layers if isinstance(layer, Dropout)] == [0.5, 0.5]
    mc = elemnet("16D-1", dropout=(0.25,), mc_dropout=True)
    assert [layer.mc_dropout for layer in mc.layers if isinstance(layer, Dropout)] == [True]
    with pytest.raises(ValueError, match="1 rate"):
        elemnet("16x2D-8D-1", dropout=(0.1,))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        elemnet("16D-1", dropout=(1.0,))
    with pytest.raises(TypeError, match="sequence of rates"):
        elemnet("16D-1", dropout="0.2")
    with pytest.raises(ValueError, match="input_dim"):
        elemnet("16-1", input_dim=0)


def test_elemnet_forward_shape():
    model = elemnet("8x2D-4-1", dropout=0.1, input_dim=5)
    model.compile(optimizer="adam", loss="mae")
    out = model.predict(np.ones((3, 5), dtype=np.float32))
    assert out.shape == (3, 1)


def test_depth_17_is_elemnet_17():
    arch, rates = depth_arch(17)
    assert parse_arch(arch) == parse_arch(ELEMNET_17)
    assert rates == ELEMNET_DROPOUT


@pytest.mark.parametrize(
    ("depth", "arch", "rates"),
    [
        (1, "1x1", ()),
        (2, "1024x1D-1x1", (0.2,)),
        (3, "1024x1D-32x1-1x1", (0.2,)),
        # positions round(linspace(0, 15, 4)) = 0, 5, 10, 15
        (5, "1024x1D-512x1D-128x1D-32x1-1x1", (0.2, 0.1, 0.2)),
    ],
)
def test_depth_rule_compresses_the_funnel(depth, arch, rates):
    assert depth_arch(depth) == (arch, rates)


def test_depth_rule_stretches_beyond_17():
    arch, rates = depth_arch(33)
    blocks = parse_arch(arch)
    assert sum(b.count for b in blocks) == 33
    assert [b.units for b in blocks] == [1024, 512, 256, 128, 64, 32, 1]
    assert rates == ELEMNET_DROPOUT
    assert elemnet(arch, rates).count_params() > 4_631_361


@pytest.mark.parametrize(
    ("depth", "error"),
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError), ("5", TypeError)],
)
def test_bad_depth(depth, error):
    with pytest.raises(error, match="depth"):
        depth_arch(depth)
