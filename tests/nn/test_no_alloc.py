"""The training hot loop allocates nothing that grows with the batch, and stays float32.

After a warm-up step every layer reuses its activation/gradient buffers, relu/tanh run
in place, the optimizer keeps its scratch: tracemalloc over further training steps
shows no growth and no temporary anywhere near the size of an activation. (NumPy's
ufunc machinery may take one fixed 32 KiB iterator buffer for a broadcast bias add;
that does not depend on the batch.)
"""

import tracemalloc

import numpy as np
import pytest

from stoichnet.nn import Dense, Dropout, Sequential, optimizers

N_IN, WIDTH, BATCH = 32, 512, 256
ACTIVATION_BYTES = BATCH * WIDTH * 4  # one (batch, width) float32 buffer: 512 KiB
LARGEST_TEMPORARY = 64 * 1024


def network(activation: str, loss: str, width: int = WIDTH) -> Sequential:
    model = Sequential(
        [
            Dense(width, activation, input_dim=N_IN),
            Dense(width, activation),
            Dropout(0.2),
            Dense(width // 2, activation),
            Dropout(0.1),
            Dense(1),
        ],
        dtype="float32",
        seed=0,
    )
    model.compile(optimizers.Adam(1e-4, num_threads=2), loss)
    return model


def batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((BATCH, N_IN), dtype=np.float32), rng.random((BATCH, 1), dtype=np.float32)


def traced(step, n_steps: int) -> tuple[int, int]:
    """(growth of live memory, peak above the start) in bytes over ``n_steps`` calls."""
    tracemalloc.start()
    try:
        step()  # views and small objects re-created each step now exist once
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(n_steps):
            step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - start, peak - start


@pytest.mark.parametrize(
    ("activation", "loss"),
    [("relu", "mae"), ("relu", "mse"), ("relu", "huber"), ("tanh", "mae"), ("sigmoid", "mse"),
     ("leaky_relu", "mae")],
)
def test_training_steps_allocate_no_batch_sized_arrays(activation, loss):
    model = network(activation, loss)
    X, y = batch()
    fused = model._fused()
    for _ in range(2):  # warm-up: buffers, optimizer moments and scratch, thread pool
        model._train_step(X, y, fused)
    growth, peak = traced(lambda: model._train_step(X, y, fused), n_steps=3)
    assert growth < 2048, f"live memory grew by {growth} bytes over 3 steps"
    assert peak < LARGEST_TEMPORARY < ACTIVATION_BYTES, f"a step allocated {peak} bytes at its peak"


def test_the_check_catches_a_batch_sized_temporary():
    """The same measurement sees one activation-sized temporary per step."""
    model = network("relu", "mae")
    X, y = batch()
    model._train_step(X, y, False)

    def step_with_a_copy():
        model._train_step(X, y, False)
        return model.layers[0].a.copy()

    _, peak = traced(step_with_a_copy, n_steps=3)
    assert peak >= ACTIVATION_BYTES > LARGEST_TEMPORARY


def test_relu_layers_keep_one_buffer_for_z_and_a():
    model = network("relu", "mae")
    X, y = batch()
    model._train_step(X, y, False)
    dense = model.layers[0]
    assert dense.z is None and np.shares_memory(dense.a, dense._buffers["z"])
    assert "a" not in dense._buffers


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "linear"])
@pytest.mark.parametrize("loss", ["mae", "mse", "huber", "sum_squares"])
def test_every_forward_and_backward_array_is_float32(activation, loss):
    """No silent float64 upcast anywhere between the input and the parameter gradients."""
    model = network(activation, loss, width=16)
    X, y = batch()
    x, seen = X, []
    for layer in model.layers:
        x = layer.forward(x, training=True)
        seen.append((f"{layer.name} forward", x))
    grad = model.loss.gradient(x, y)
    seen.append(("loss gradient", grad))
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
        seen.append((f"{layer.name} backward", grad))
        seen += [(f"{layer.name} d{key}", g) for key, g in layer.grads.items()]
    wrong = [(where, a.dtype) for where, a in seen if a.dtype != np.float32]
    assert not wrong and len(seen) > 20, wrong
    assert isinstance(model.loss.value(x, y), float)
