"""Conv2D, MaxPool2D and Flatten against PyTorch, a naive loop reference and
finite differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stoichnet.nn.layers.conv import Conv2D, Flatten, MaxPool2D, same_padding

TOL = 1e-10


def naive_conv(x, W, b, stride, pads):
    """Slow reference: loops over samples, output pixels and filters.

    x: (n, h, w, c); W: (kh, kw, c, f); pads: ((top, bottom), (left, right)).
    """
    x = np.pad(x, ((0, 0), *pads, (0, 0)))
    kh, kw, _, f = W.shape
    n, h, w, _ = x.shape
    out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, out_h, out_w, f))
    for s in range(n):
        for i in range(out_h):
            for j in range(out_w):
                patch = x[s, i * stride : i * stride + kh, j * stride : j * stride + kw]
                for k in range(f):
                    out[s, i, j, k] = np.sum(patch * W[..., k]) + b[k]
    return out


def built(layer, input_shape, seed=0, dtype=np.float64):
    layer.build(input_shape, np.random.default_rng(seed), dtype)
    return layer


def to_nchw(a):
    return torch.tensor(a).permute(0, 3, 1, 2)


def to_nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


# (input (n, h, w, c), filters, kernel, stride, padding, Keras "same" pads (top, bottom, left, right))
CONV_CASES = [
    ((2, 7, 8, 3), 4, (3, 3), 1, "valid", None),
    ((3, 9, 6, 2), 5, (2, 3), 2, "valid", None),
    ((1, 10, 10, 1), 2, (5, 5), 3, "valid", None),
    ((2, 7, 8, 3), 4, (3, 3), 1, "same", (1, 1, 1, 1)),
    ((2, 6, 6, 2), 3, (2, 2), 1, "same", (0, 1, 0, 1)),
    ((2, 7, 8, 3), 4, (3, 3), 2, "same", (1, 1, 0, 1)),
    ((1, 9, 5, 2), 3, (4, 2), 2, "same", (1, 2, 0, 1)),
    ((2, 5, 5, 2), 3, (1, 1), 3, "same", (0, 0, 0, 0)),
]


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(8, 3, 2) == (0, 1)
    assert same_padding(6, 2, 1) == (0, 1)
    assert same_padding(7, 3, 1) == (1, 1)
    assert same_padding(5, 1, 3) == (0, 0)


@pytest.mark.oracle
@pytest.mark.parametrize("shape, filters, kernel, stride, padding, pads", CONV_CASES)
def test_conv2d_matches_torch(shape, filters, kernel, stride, padding, pads):
    rng = np.random.default_rng(1)
    layer = built(Conv2D(filters, kernel, strides=stride, padding=padding), shape[1:])
    layer.params["b"][...] = rng.normal(size=filters)
    x = rng.normal(size=shape)
    a = layer.forward(x, training=True)
    grad_out = rng.normal(size=a.shape)
    dx = layer.backward(grad_out)

    xt = to_nchw(x).requires_grad_()
    Wt = torch.tensor(layer.params["W"]).permute(3, 2, 0, 1).requires_grad_()
    bt = torch.tensor(layer.params["b"]).requires_grad_()
    if padding == "same":
        top, bottom, left, right = pads
        zt = F.conv2d(F.pad(xt, (left, right, top, bottom)), Wt, bt, stride=stride)
    else:
        zt = F.conv2d(xt, Wt, bt, stride=stride)
    zt.backward(to_nchw(grad_out))

    np.testing.assert_allclose(a, to_nhwc(zt), rtol=0, atol=TOL)
    np.testing.assert_allclose(dx, to_nhwc(xt.grad), rtol=0, atol=TOL)
    np.testing.assert_allclose(
        layer.grads["W"], Wt.grad.permute(2, 3, 1, 0).numpy(), rtol=0, atol=TOL
    )
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=0, atol=TOL)


@pytest.mark.oracle
@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (4, 3)])
def test_conv2d_same_stride_1_matches_torch_same(kernel):
    rng = np.random.default_rng(2)
    layer = built(Conv2D(3, kernel, padding="same"), (6, 7, 2))
    x = rng.normal(size=(2, 6, 7, 2))
    Wt = torch.tensor(layer.params["W"]).permute(3, 2, 0, 1)
    expected = F.conv2d(to_nchw(x), Wt, padding="same")
    np.testing.assert_allclose(layer.forward(x), to_nhwc(expected), rtol=0, atol=TOL)


@pytest.mark.parametrize("shape, filters, kernel, stride, padding, pads", CONV_CASES[:6])
def test_conv2d_matches_naive_loops(shape, filters, kernel, stride, padding, pads):
    rng = np.random.default_rng(3)
    layer = built(Conv2D(filters, kernel, strides=stride, padding=padding), shape[1:])
    layer.params["b"][...] = rng.normal(size=filters)
    x = rng.normal(size=shape)
    top, bottom, left, right = pads or (0, 0, 0, 0)
    expected = naive_conv(
        x, layer.params["W"], layer.params["b"], stride, ((top, bottom), (left, right))
    )
    np.testing.assert_allclose(layer.forward(x), expected, rtol=0, atol=TOL)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "shape, pool, stride",
    [
        ((2, 6, 6, 3), 2, None),
        ((2, 7, 9, 2), 3, 2),
        ((1, 8, 5, 4), (2, 3), (1, 2)),
        ((3, 5, 5, 1), 2, 3),
    ],
)
def test_maxpool2d_matches_torch(shape, pool, stride):
    rng = np.random.default_rng(4)
    layer = built(MaxPool2D(pool, stride), shape[1:])
    x = rng.normal(size=shape)
    a = layer.forward(x, training=True)
    grad_out = rng.normal(size=a.shape)
    dx = layer.backward(grad_out)

    xt = to_nchw(x).requires_grad_()
    at = F.max_pool2d(xt, pool, stride)
    at.backward(to_nchw(grad_out))
    assert a.shape[1:] == layer.output_shape(shape[1:])
    np.testing.assert_allclose(a, to_nhwc(at), rtol=0, atol=TOL)
    np.testing.assert_allclose(dx, to_nhwc(xt.grad), rtol=0, atol=TOL)


@pytest.mark.oracle
def test_flatten_matches_keras_channels_last_order():
    rng = np.random.default_rng(5)
    layer = built(Flatten(), (3, 4, 2))
    x = rng.normal(size=(2, 3, 4, 2))
    a = layer.forward(x)
    np.testing.assert_array_equal(a, torch.flatten(torch.tensor(x), start_dim=1).numpy())
    assert layer.output_shape((3, 4, 2)) == (24,)
    g = rng.normal(size=a.shape)
    np.testing.assert_array_equal(layer.backward(g), g.reshape(x.shape))
