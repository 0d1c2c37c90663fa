"""Forward + backward throughput of the MNIST example's layers: stoichnet vs PyTorch CPU.

The stack is examples/mnist_cnn.py's model, Conv2D(64, 3, relu) -> Conv2D(32, 3, relu)
-> Dropout(0.5) -> Flatten -> Dense(10, softmax), float32, in training mode. One
iteration is a forward pass of a batch of 28x28x1 images and a backward pass of a
fixed gradient from the softmax output down to the input images (no loss, no
optimizer step). PyTorch runs its own layout (NCHW) with the same number of threads
as NumPy's BLAS (threadpoolctl). The two engines alternate round by round; each
rate is the median round. Prints images/s for both, the ratio stoichnet / PyTorch
(> 1 means stoichnet is faster) and where stoichnet's time goes, layer by layer.

    python benchmarks/conv_vs_torch.py [--batch-size 128] [--iterations 5] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from stoichnet.nn import Conv2D, Dense, Dropout, Flatten


def stoichnet_stack(rng: np.random.Generator):
    layers = [
        Conv2D(64, 3, activation="relu"),
        Conv2D(32, 3, activation="relu"),
        Dropout(0.5),
        Flatten(),
        Dense(10, activation="softmax"),
    ]
    shape = (28, 28, 1)
    for layer in layers:
        layer.build(shape, rng, np.float32)
        shape = layer.output_shape(shape)
    return layers


class StoichnetRunner:
    """The stack in stoichnet; ``run`` returns seconds per layer for ``iterations`` passes."""

    def __init__(self, x, grad_out, rng):
        self.x, self.grad_out = x, grad_out
        self.layers = stoichnet_stack(rng)
        self.run(1)  # warm-up: allocates the layers' buffers

    def run(self, iterations: int) -> np.ndarray:
        spent = np.zeros(len(self.layers))
        for _ in range(iterations):
            a = self.x
            for k, layer in enumerate(self.layers):
                t = time.perf_counter()
                a = layer.forward(a, training=True)
                spent[k] += time.perf_counter() - t
            g = self.grad_out
            for k in reversed(range(len(self.layers))):
                t = time.perf_counter()
                g = self.layers[k].backward(g)
                spent[k] += time.perf_counter() - t
        return spent


class TorchRunner:
    """The same stack in PyTorch (NCHW, its native layout); ``run`` returns seconds."""

    def __init__(self, x, grad_out):
        self.model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 64, 3),
            torch.nn.ReLU(),
            torch.nn.Conv2d(64, 32, 3),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.5),
            torch.nn.Flatten(),
            torch.nn.Linear(24 * 24 * 32, 10),
            torch.nn.Softmax(dim=1),
        ).train()
        self.x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
        self.grad_out = torch.from_numpy(grad_out)
        self.run(1)

    def run(self, iterations: int) -> float:
        start = time.perf_counter()
        for _ in range(iterations):
            self.model(self.x).backward(self.grad_out)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=5, help="passes per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch_size, 28, 28, 1), dtype=np.float32)
    grad_out = rng.standard_normal((args.batch_size, 10), dtype=np.float32)
    torch.set_num_threads(args.threads)
    images = args.iterations * args.batch_size
    ours, theirs, per_layer = [], [], []
    with threadpool_limits(limits=args.threads):
        stoichnet, peer = StoichnetRunner(x, grad_out, rng), TorchRunner(x, grad_out)
        # the engines alternate round by round, so both see the same background load
        for _ in range(args.rounds):
            spent = stoichnet.run(args.iterations)
            per_layer.append(spent)
            ours.append(images / spent.sum())
            theirs.append(images / peer.run(args.iterations))
    ours, theirs = float(np.median(ours)), float(np.median(theirs))
    per_layer = np.sum(per_layer, axis=0)

    print(
        f"MNIST CNN layers, forward + backward, batch {args.batch_size}, float32, "
        f"{args.threads} thread(s), median of {args.rounds} rounds x {args.iterations} passes, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  stoichnet {ours:9.0f} images/s")
    print(f"  PyTorch   {theirs:9.0f} images/s (torch {torch.__version__})")
    print(f"  ratio stoichnet / PyTorch = {ours / theirs:.2f}")
    print("  stoichnet time by layer (forward + backward):")
    for layer, seconds in zip(stoichnet.layers, per_layer, strict=True):
        label = f"{type(layer).__name__}{tuple(layer.output_shape(layer.input_shape))}"
        print(f"    {label:24s} {100 * seconds / per_layer.sum():5.1f} %")


if __name__ == "__main__":
    main()
