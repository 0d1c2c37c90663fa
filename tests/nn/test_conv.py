"""Conv2D, MaxPool2D and Flatten against PyTorch, a naive loop reference and
finite differences."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stoichnet.images import load_mnist
from stoichnet.nn import Dense, Dropout, Sequential, gradcheck, load_model
from stoichnet.nn.layers.conv import Conv2D, Flatten, MaxPool2D, col2im, im2col, same_padding
from stoichnet.nn.optimizers import Adam

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


@pytest.mark.parametrize("kernel, strides", [((3, 3), (1, 1)), ((2, 3), (2, 1)), ((3, 2), (3, 3))])
def test_col2im_is_the_adjoint_of_im2col(kernel, strides):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: backward is the transpose of forward."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 8, 7, 3))
    cols = im2col(x, kernel, strides)
    c = rng.normal(size=cols.shape)
    np.testing.assert_allclose(
        np.vdot(cols, c), np.vdot(x, col2im(c, x.shape, kernel, strides)), rtol=1e-12
    )


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
    with warnings.catch_warnings():  # torch notes the zero-padded copy for even kernels
        warnings.simplefilter("ignore", UserWarning)
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


def finite_difference(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + eps
        up = f()
        x[idx] = saved - eps
        down = f()
        x[idx] = saved
        grad[idx] = (up - down) / (2 * eps)
    return grad


def check_gradients(layer, x, seed=6):
    """Cost C = Σ a ⊙ r for a fixed random r: dC/da = r. Relative error < 1e-6."""
    r = np.random.default_rng(seed).normal(size=layer.forward(x).shape)
    layer.forward(x, training=True)
    dx = layer.backward(r)

    def cost():
        return float(np.sum(layer.forward(x) * r))

    for name, p in layer.params.items():
        numeric = finite_difference(cost, p)
        assert np.linalg.norm(layer.grads[name] - numeric) <= 1e-6 * np.linalg.norm(numeric), name
    numeric = finite_difference(cost, x)
    assert np.linalg.norm(dx - numeric) <= 1e-6 * np.linalg.norm(numeric)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (Conv2D(3, 3, activation="tanh"), (2, 5, 6, 2)),
        (Conv2D(2, (2, 3), strides=2, padding="same", activation="sigmoid"), (2, 5, 6, 2)),
        (Conv2D(2, 3, strides=(2, 1), padding="same", activation="softmax"), (1, 6, 5, 3)),
        (MaxPool2D(2), (2, 6, 6, 2)),
        (MaxPool2D(3, 2), (2, 7, 7, 2)),
        (Flatten(), (2, 3, 4, 2)),
    ],
    ids=["conv-tanh", "conv-same-s2-sigmoid", "conv-softmax", "pool2", "pool3-s2", "flatten"],
)
def test_gradients_match_finite_differences(layer, shape):
    rng = np.random.default_rng(7)
    built(layer, shape[1:])
    if "b" in layer.params:
        layer.params["b"][...] = rng.normal(size=layer.params["b"].shape)
    check_gradients(layer, rng.normal(size=shape))


@pytest.mark.oracle
def test_fused_relu_matches_torch():
    rng = np.random.default_rng(8)
    layer = built(Conv2D(4, 3, padding="same", activation="relu"), (6, 6, 3))
    layer.params["b"][...] = rng.normal(size=4)
    x = rng.normal(size=(2, 6, 6, 3))
    a = layer.forward(x, training=True)
    grad_out = rng.normal(size=a.shape)
    dx = layer.backward(grad_out)

    xt = to_nchw(x).requires_grad_()
    Wt = torch.tensor(layer.params["W"]).permute(3, 2, 0, 1).requires_grad_()
    bt = torch.tensor(layer.params["b"]).requires_grad_()
    at = torch.relu(F.conv2d(xt, Wt, bt, padding="same"))
    at.backward(to_nchw(grad_out))
    assert (a == 0).any() and (a > 0).any()
    np.testing.assert_allclose(a, to_nhwc(at), rtol=0, atol=TOL)
    np.testing.assert_allclose(dx, to_nhwc(xt.grad), rtol=0, atol=TOL)
    np.testing.assert_allclose(
        layer.grads["W"], Wt.grad.permute(2, 3, 1, 0).numpy(), rtol=0, atol=TOL
    )
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("layer", [Conv2D(4, 3, padding="same"), MaxPool2D(), Flatten()])
def test_float32_stays_float32(layer):
    built(layer, (6, 6, 3), dtype=np.float32)
    x = np.random.default_rng(9).normal(size=(2, 6, 6, 3)).astype(np.float32)
    a = layer.forward(x, training=True)
    assert a.dtype == np.float32
    assert layer.backward(np.ones_like(a)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_conv2d_kernel_layout_and_glorot_fans():
    layer = built(Conv2D(64, 3), (28, 28, 1))
    assert layer.params["W"].shape == (3, 3, 1, 64)
    assert layer.params["b"].shape == (64,)
    assert layer.output_shape((28, 28, 1)) == (26, 26, 64)
    # Keras' fans for a conv kernel: 3*3*1 in, 3*3*64 out
    limit = np.sqrt(6 / (9 + 9 * 64))
    assert np.abs(layer.params["W"]).max() <= limit
    assert np.abs(layer.params["W"]).max() > 0.9 * limit


def test_gradients_are_written_into_the_existing_arrays():
    layer = built(Conv2D(2, 3), (5, 5, 1))
    buffers = {k: v for k, v in layer.grads.items()}
    x = np.random.default_rng(10).normal(size=(2, 5, 5, 1))
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    assert all(layer.grads[k] is buffers[k] for k in buffers)
    assert np.abs(buffers["W"]).sum() > 0


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Conv2D(0, 3), ValueError, "filters"),
        (lambda: Conv2D(2.5, 3), TypeError, "filters"),
        (lambda: Conv2D(4, (3, 0)), ValueError, "kernel_size"),
        (lambda: Conv2D(4, "3"), TypeError, "kernel_size"),
        (lambda: Conv2D(4, 3, strides=(1, 2, 3)), TypeError, "strides"),
        (lambda: Conv2D(4, 3, padding="full"), ValueError, "padding"),
        (lambda: Conv2D(4, 3, activation="swish"), ValueError, "relu"),
        (lambda: Conv2D(4, 3, kernel_initializer="orthogonal"), ValueError, "glorot_uniform"),
        (lambda: Conv2D(4, 3, input_shape=(28, 28)), ValueError, "height, width, channels"),
        (lambda: Conv2D(4, 3, input_shape=(28, "28", 1)), TypeError,
         r"Conv2D input_shape\[1\] must be an int, got '28'"),
        (lambda: Conv2D(4, 3, input_shape=28), TypeError, "got 28"),
        (lambda: Conv2D(4, 3, input_shape=(28, 0, 1)), ValueError,
         r"input_shape\[1\] must be an int >= 1, got 0"),
        (lambda: Conv2D(4, 3, strides=(1, True)), TypeError, r"strides\[1\] must be an int"),
        (lambda: MaxPool2D(0), ValueError, "pool_size"),
        (lambda: MaxPool2D(2, strides=-1), ValueError, "strides"),
    ],
)
def test_bad_hyper_parameters_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="larger than the input"):
        built(Conv2D(2, 5), (4, 4, 1))
    with pytest.raises(ValueError, match="larger than the input"):
        built(MaxPool2D(3), (2, 8, 1))
    layer = built(Conv2D(2, 3), (5, 5, 1))
    with pytest.raises(ValueError, match=r"4-D batch"):
        layer.forward(np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match=r"built for images \(5, 5, 1\)"):
        layer.forward(np.zeros((2, 5, 5, 3)))
    pool = built(MaxPool2D(), (4, 4, 1))
    with pytest.raises(ValueError, match="4-D batch"):
        pool.forward(rng.normal(size=(2, 16)))


def small_cnn(dtype="float64", seed=0):
    return Sequential(
        [
            Conv2D(3, 3, strides=2, padding="same", activation="tanh", input_shape=(9, 8, 2)),
            MaxPool2D(2, strides=1),
            Conv2D(2, (2, 3), activation="relu"),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        dtype=dtype,
        seed=seed,
    )


def test_cnn_model_gradients_match_finite_differences():
    rng = np.random.default_rng(11)
    model = small_cnn()
    model.compile("sgd", "categorical_crossentropy")
    X = rng.normal(size=(4, 9, 8, 2))
    y = np.eye(3)[rng.integers(0, 3, size=4)]
    errors = gradcheck(model, X, y, details=True)
    assert len(errors) == 7  # X and W, b of the two convolutions and the dense layer
    assert max(errors.values()) < 1e-7, errors


def test_cnn_get_weights_are_keras_shaped_and_survive_a_save(tmp_path):
    model = Sequential(
        [
            Conv2D(64, 3, activation="relu", input_shape=(28, 28, 1)),
            Conv2D(32, 3, activation="relu"),
            Dropout(0.5),
            Flatten(),
            Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 3, 1, 64), (64,), (3, 3, 64, 32), (32,), (18432, 10), (10,)]

    x = np.random.default_rng(12).random((3, 28, 28, 1), dtype=np.float32)
    model.train_on_batch(x, np.eye(10, dtype=np.float32)[[1, 2, 3]])
    model.save(tmp_path / "cnn.npz")
    loaded = load_model(tmp_path / "cnn.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.slow
def test_small_cnn_learns_mnist_digits_in_one_epoch(data_dir):
    images, labels = load_mnist(data_dir=data_dir, download=False, progress=False)
    X = (images[:800].astype(np.float32) / 255.0)[..., np.newaxis]
    y = labels[:800]
    model = Sequential(
        [
            Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
            MaxPool2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(Adam(learning_rate=0.003), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(X[:600], y[:600], epochs=1, batch_size=16, seed=0, verbose=0)
    _, accuracy = model.evaluate(X[600:], y[600:])
    assert accuracy > 0.5  # chance is 0.1


def test_layers_are_named_as_keras_names_them():
    model = Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), Conv2D(2, 3), MaxPool2D(2),
                        Flatten(), Dense(1)])
    assert [layer.name for layer in model.layers] == [
        "conv2d", "conv2d_1", "max_pool2d", "flatten", "dense"]
