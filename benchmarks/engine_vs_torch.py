"""Training throughput of ElemNet-17: stoichnet's NumPy engine vs PyTorch, same threads.

The network (4,631,361 parameters): 86 inputs -> 1024x4 -> 512x3 -> 256x3 -> 128x3
-> 64x2 -> 32 -> 1, ReLU, dropout 0.2/0.1/0.3/0.2 after the 1024/512/256/128
blocks, Adam (lr 1e-4), MAE loss, float32, on synthetic data (86 random element
fractions per sample; the values do not affect the speed). Both engines train
for the same number of mini-batches at each batch size, alternating one step
each so that they share the machine's noise; each engine's rate is the batch
size over its median step time (robust to the load spikes of a shared machine).

Prints, per batch size: samples/s for each engine and the ratio stoichnet/torch
(> 1: stoichnet is faster), achieved GFLOP/s (6 x params x samples/s: forward
2, backward 4 flops per parameter per sample) against a plain NumPy float32
matmul of a (batch x 1024) by (1024 x 1024) product on the same threads (best of
20, measured between the training steps) and stoichnet's share of it, and where
stoichnet's time goes (forward, backward, optimizer step and the step's share).
Issue 7's targets: ratio >= 2.0 / 1.2 / 1.0 at batch 32 / 256 / 1024, >= 70% of
the matmul peak at batch 256, optimizer < 10% of a step at batch 256. Then, at the
largest batch size, what the hot loop allocates (tracemalloc over 5 steps after a
warm-up: growth of live memory and the largest transient, against the size of one
activation) and whether every parameter, gradient and layer buffer is float32.
Prediction throughput and time to accuracy have their own scripts
(predict_throughput.py, time_to_accuracy.py).

    python benchmarks/engine_vs_torch.py [--threads 2] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from stoichnet.nn import Dense, Dropout, Sequential, optimizers

BLOCKS = [(1024, 4, 0.2), (512, 3, 0.1), (256, 3, 0.3), (128, 3, 0.2), (64, 2, 0.0), (32, 1, 0.0)]
N_IN = 86
LEARNING_RATE = 1e-4


def stoichnet_elemnet(threads: int) -> Sequential:
    layers = []
    for units, count, rate in BLOCKS:
        for _ in range(count):
            layers.append(Dense(units, "relu", input_dim=None if layers else N_IN))
        if rate:
            layers.append(Dropout(rate))
    model = Sequential([*layers, Dense(1)], dtype="float32", seed=0)
    model.compile(optimizers.Adam(learning_rate=LEARNING_RATE, num_threads=threads), "mae")
    return model


def torch_elemnet() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    layers, n_in = [], N_IN
    for units, count, rate in BLOCKS:
        for _ in range(count):
            layers += [torch.nn.Linear(n_in, units), torch.nn.ReLU()]
            n_in = units
        if rate:
            layers.append(torch.nn.Dropout(rate))
    net = torch.nn.Sequential(*layers, torch.nn.Linear(n_in, 1))
    return net, torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)


def synthetic_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.random((n, N_IN), dtype=np.float32)
    X /= X.sum(axis=1, keepdims=True)
    return X, rng.normal(size=(n, 1)).astype(np.float32)


def matmul_gflops(batch: int, repeats: int = 20) -> float:
    """Best-of GFLOP/s of a float32 (batch x 1024) @ (1024 x 1024) product."""
    rng = np.random.default_rng(0)
    a = rng.random((batch, 1024), dtype=np.float32)
    b = rng.random((1024, 1024), dtype=np.float32)
    out = np.empty((batch, 1024), dtype=np.float32)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * batch * 1024 * 1024 / best / 1e9


def stoichnet_step(model, X, y, batch: int, i: int) -> float:
    """Seconds for training step i (one mini-batch)."""
    start = time.perf_counter()
    model._train_step(X[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch], model._fused())
    return time.perf_counter() - start


def torch_step(net, opt, X, y, batch: int, i: int) -> float:
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.l1_loss(net(X[i * batch : (i + 1) * batch]), y[i * batch : (i + 1) * batch])
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def stoichnet_breakdown(model, X, y, batch: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of forward, backward and optimizer step on one batch."""
    xb, yb = X[:batch], y[:batch]
    fused = model._fused()
    times = {"forward": [], "backward": [], "optimizer": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        y_pred = model._forward(xb, training=True)
        model._cost(y_pred, yb, fused)
        t1 = time.perf_counter()
        model._backward(y_pred, yb, fused, input_grad=False)
        t2 = time.perf_counter()
        model.optimizer.step([model.flat_params], [model.flat_grads])
        t3 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            times[key].append(dt)
    return {key: 1e3 * statistics.median(v) for key, v in times.items()}


def allocation_and_dtypes(model, X, y, batch: int) -> str:
    """One line: tracemalloc over 5 training steps after a warm-up, and the dtypes of
    every parameter, gradient and layer buffer."""
    n_batches = len(X) // batch
    stoichnet_step(model, X, y, batch, 0)
    tracemalloc.start()
    try:
        stoichnet_step(model, X, y, batch, 1 % n_batches)  # re-created small objects exist once
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for i in range(5):
            stoichnet_step(model, X, y, batch, i % n_batches)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrays = [model.flat_params, model.flat_grads] + [
        buf for layer in model.layers for buf in layer._buffers.values()]
    dtypes = sorted({str(a.dtype) for a in arrays})
    return (f"batch {batch}, 5 steps: live memory grew {current - start:,} B, largest transient "
            f"{peak - start:,} B (one 1024-unit activation: {batch * 1024 * 4:,} B); dtypes of "
            f"params, grads and {len(arrays) - 2} layer buffers: {', '.join(dtypes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="training steps per engine and batch size")
    parser.add_argument("--batch-sizes", default="32,256,1024")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    with threadpool_limits(limits=args.threads):
        model = stoichnet_elemnet(args.threads)
        net, opt = torch_elemnet()
        n_params = model.count_params()
        assert n_params == sum(p.numel() for p in net.parameters())
        print(
            f"ElemNet-17, {n_params:,} parameters, float32, Adam, MAE; {args.threads} threads; "
            f"numpy {np.__version__}, torch {torch.__version__}; load average "
            + " ".join(f"{v:.1f}" for v in os.getloadavg())
        )
        header = (
            f"{'batch':>5} {'stoichnet/s':>12} {'torch/s':>9} {'ratio':>6} "
            f"{'GFLOP/s ours':>12} {'torch':>6} {'matmul peak':>11} {'ours/peak':>9}   "
            "stoichnet ms: fwd / bwd / opt (opt share)"
        )
        print(header)
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            X, y = synthetic_data(batch * args.steps, rng)
            tX, ty = torch.from_numpy(X), torch.from_numpy(y)
            net.train()
            for i in range(2):  # warm-up: buffers, optimizer state
                stoichnet_step(model, X, y, batch, i)
                torch_step(net, opt, tX, ty, batch, i)
            ours, theirs = [], []
            peak = 0.0
            for i in range(args.steps):
                ours.append(stoichnet_step(model, X, y, batch, i))
                theirs.append(torch_step(net, opt, tX, ty, batch, i))
                if i % 10 == 0:  # the peak is sampled through the run, as the load changes
                    peak = max(peak, matmul_gflops(batch, repeats=7))
            ours_rate = batch / statistics.median(ours)
            torch_rate = batch / statistics.median(theirs)
            ours_gflops = 6 * n_params * ours_rate / 1e9
            split = stoichnet_breakdown(model, X, y, batch, repeats=15)
            print(
                f"{batch:>5} {ours_rate:>12,.0f} {torch_rate:>9,.0f} {ours_rate / torch_rate:>6.2f} "
                f"{ours_gflops:>12.1f} {6 * n_params * torch_rate / 1e9:>6.1f} "
                f"{peak:>11.1f} {100 * ours_gflops / peak:>8.0f}%   "
                + " / ".join(f"{split[k]:.1f}" for k in ("forward", "backward", "optimizer"))
                + f" ({100 * split['optimizer'] / sum(split.values()):.0f}%)"
            )
        print("hot loop: " + allocation_and_dtypes(model, X, y, batch))
        print("load average at the end: " + " ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
