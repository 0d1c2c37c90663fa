"""The fused numba kernels against their plain NumPy references: an oracle without PyTorch.

Optimizers: every rule and option, float32 and float64, several steps. Before each step the
reference starts from the kernel's parameters and state, so each step is compared on its own:
the state (moments, accumulators) bit for bit, the parameters bit for bit where the kernel
computes in the reference's order, else within 2 ulp (Adam and Nadam fold their bias
corrections into the kernel's constants). Dense: forward and backward with the fused bias +
ReLU, and every other activation, equal to the layer's NumPy reference. The set layers'
sums over runs of rows equal to a sequential sum, their pair rows to NumPy's gather.
"""

import threading

import numpy as np
import pytest

from stoichnet.nn import Dense, kernels
from stoichnet.nn.layers.dense import L2
from stoichnet.nn.optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop

# name -> (optimizer factory, whether the kernel computes in the reference's order)
CASES = {
    "sgd": (lambda: SGD(0.01), True),
    "sgd_momentum": (lambda: SGD(0.01, momentum=0.9), True),
    "sgd_nesterov": (lambda: SGD(0.01, momentum=0.9, nesterov=True), True),
    "sgd_weight_decay": (lambda: SGD(0.01, momentum=0.5, weight_decay=0.1), True),
    "rmsprop": (lambda: RMSprop(0.01), True),
    "rmsprop_momentum": (lambda: RMSprop(0.01, rho=0.8, momentum=0.7), True),
    "rmsprop_centered": (lambda: RMSprop(0.01, centered=True), True),
    "rmsprop_centered_momentum_weight_decay": (
        lambda: RMSprop(0.01, centered=True, momentum=0.3, weight_decay=0.05), True),
    "adagrad": (lambda: Adagrad(0.01), True),
    "adagrad_weight_decay": (
        lambda: Adagrad(0.01, initial_accumulator_value=0.0, epsilon=1e-10, weight_decay=0.2),
        True),
    "adadelta": (lambda: Adadelta(1.0), True),
    "adadelta_weight_decay": (
        lambda: Adadelta(0.5, rho=0.9, epsilon=1e-6, weight_decay=0.1), True),
    "adam": (lambda: Adam(0.01), False),
    "adam_amsgrad": (lambda: Adam(0.01, beta_1=0.8, beta_2=0.99, amsgrad=True), False),
    "adam_weight_decay": (lambda: Adam(0.01, weight_decay=0.1), False),
    "adam_decoupled": (lambda: Adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
                       False),
    "adamw_amsgrad": (lambda: AdamW(0.01, amsgrad=True), False),
    "adamax": (lambda: Adamax(0.01), True),
    "adamax_weight_decay": (lambda: Adamax(0.01, beta_1=0.7, weight_decay=0.1), True),
    "adamax_decoupled": (lambda: Adamax(0.01, weight_decay=0.1, decoupled_weight_decay=True),
                         True),
    "nadam": (lambda: Nadam(0.01), False),
    "nadam_weight_decay": (lambda: Nadam(0.01, momentum_decay=0.01, weight_decay=0.1), False),
    "nadam_decoupled": (lambda: Nadam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
                        False),
}
N, STEPS = 5003, 6


def bits(x: np.ndarray) -> np.ndarray:
    """The array's bit patterns, so that equality means bit for bit (signed zeros too)."""
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_optimizer_kernel_matches_its_numpy_reference(case, dtype, monkeypatch):
    make, same_order = CASES[case]
    # small chunks shared by 2 threads: the chunking must not show in the results
    monkeypatch.setattr(kernels, "CHUNK_BYTES", 1024)
    opt = make()
    opt.num_threads = 2
    rng = np.random.default_rng(0)
    # |theta| in [1, 2] and steps of about lr: a parameter never lands near 0, where the
    # ulp of the result would be far finer than the rounding of the step itself
    p = (rng.uniform(1.0, 2.0, N) * rng.choice([-1.0, 1.0], N)).astype(dtype)
    start = p.copy()
    state = opt.new_state(p)
    for t in range(1, STEPS + 1):
        g = rng.standard_normal(N).astype(dtype)
        ref_p, ref_state = p.copy(), {name: arr.copy() for name, arr in state.items()}
        lr = opt.current_learning_rate
        opt.step([p], [g])
        opt.reference(ref_p, g, ref_state, t, lr)
        saved = opt.state_dict()
        state = {name: saved[f"{name}.0"] for name in state}
        for name, arr in state.items():
            assert arr.dtype == dtype
            np.testing.assert_array_equal(bits(arr), bits(ref_state[name]), err_msg=name)
        if same_order:
            np.testing.assert_array_equal(bits(p), bits(ref_p))
        else:
            np.testing.assert_array_max_ulp(p, ref_p, maxulp=2)
    assert np.abs(p).min() > 0.5, "a parameter came near 0: the ulp comparison is void"
    assert np.abs(p - start).max() > 5e-3, "the parameters barely moved: the test is void"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda: Dense(7, "relu", kernel_regularizer=L2(0.01)),  # the fused bias + ReLU
        lambda: Dense(7, "relu", use_bias=False),
        lambda: Dense(7, "tanh"),  # computed in place
        lambda: Dense(7),
        lambda: Dense(7, "sigmoid"),
        lambda: Dense(7, "leaky_relu"),
        lambda: Dense(7, "elu"),
        lambda: Dense(7, "softmax"),
    ],
)
def test_dense_forward_and_backward_match_the_numpy_reference(make, dtype):
    rng = np.random.default_rng(1)
    layer = make()
    layer.build((5,), rng, dtype)
    if layer.use_bias:
        layer.params["b"][...] = rng.standard_normal(7)
    x, da = rng.standard_normal((33, 5)).astype(dtype), rng.standard_normal((33, 7)).astype(dtype)
    z, a = layer.reference_forward(x)
    assert layer.sigma.name != "relu" or 0 < (z > 0).mean() < 1  # both sides of the kink
    np.testing.assert_array_equal(layer.forward(x, training=True), a)
    da_prev, grads = layer.reference_backward(x, z, da)
    np.testing.assert_array_equal(layer.backward(da), da_prev)
    assert set(grads) == set(layer.grads)
    for name, grad in grads.items():
        assert grad.dtype == dtype
        np.testing.assert_array_equal(layer.grads[name], grad, err_msg=name)
    layer.forward(x, training=True)
    for grad in layer.grads.values():
        grad.fill(np.nan)
    layer.backward_params(da)  # the first layer's path: no da_prev
    for name, grad in grads.items():
        np.testing.assert_array_equal(layer.grads[name], grad, err_msg=name)


def test_thread_limit_is_local_to_its_context():
    """The limit set in one thread leaves another thread's default alone, and is undone on exit."""
    seen = {}
    outer = kernels.default_num_threads()
    with kernels.thread_limit(1):
        worker = threading.Thread(target=lambda: seen.update(other=kernels.default_num_threads()))
        worker.start()
        worker.join()
        assert kernels.default_num_threads() == 1
        with kernels.thread_limit(3):
            assert kernels.default_num_threads() == 3
        assert kernels.default_num_threads() == 1
    assert seen["other"] == outer
    assert kernels.default_num_threads() == outer
    with pytest.raises(TypeError, match="n_threads must be an int, got '2'"):
        with kernels.thread_limit("2"):
            pass


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ordered", [False, True])
def test_run_sums_match_a_sequential_sum_and_numpy_reduceat(dtype, ordered):
    """The set layers' sums over runs of rows (runs of one row, long runs, a gather order):
    bit for bit the run's rows added one by one in row order, and np.add.reduceat up to
    its own summation order (it adds in blocks)."""
    from stoichnet.nn.layers.sets import run_sums

    rng = np.random.default_rng(3)
    lengths = np.array([1, 4, 1, 9, 2, 1, 5])
    starts = np.cumsum(lengths) - lengths
    x = rng.standard_normal((lengths.sum(), 6)).astype(dtype)
    order = rng.permutation(len(x)) if ordered else np.arange(len(x))
    sequential = np.zeros((len(starts), 6), dtype=dtype)
    for g, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        for r in order[start:start + length]:
            sequential[g] += x[r]
    got = run_sums(x, starts, order if ordered else None)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, sequential)
    np.testing.assert_allclose(got, np.add.reduceat(x[order], starts, axis=0),
                               rtol=10 * np.finfo(dtype).eps, atol=10 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_add_matches_numpy_fancy_indexing(dtype):
    """Roost's pair rows x[rows_x] + y[rows_y] (the factorised first layer), bit for bit,
    with rows repeated and out of order."""
    rng = np.random.default_rng(5)
    x, y = (rng.standard_normal((7, 4)).astype(dtype) for _ in range(2))
    rows_x, rows_y = rng.integers(0, 7, 30), rng.integers(0, 7, 30)
    out = np.empty((30, 4), dtype=dtype)
    kernels.gather_add(x, y, rows_x, rows_y, out)
    np.testing.assert_array_equal(out, x[rows_x] + y[rows_y])
