"""Forward + backward throughput of the MNIST example's layers: stoichnet vs PyTorch CPU.

The stack is examples/mnist_cnn.py's model, Conv2D(64, 3, relu) -> Conv2D(32, 3, relu)
-> Dropout(0.5) -> Flatten -> Dense(10, softmax), float32, in training mode. One
iteration is a forward pass of a batch of 28x28x1 images and a backward pass of a
fixed gradient from the softmax output down to the input images (no loss, no
optimizer step). PyTorch runs its own layout (NCHW) with the same number of threads
as NumPy's BLAS. Prints images/s for both, the ratio stoichnet / PyTorch (> 1 means
stoichnet is faster) and where stoichnet's time goes, layer by layer.

    python benchmarks/conv_vs_torch.py [--batch-size 128] [--iterations 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from stoichnet.nn.layers import Dense, Dropout
from stoichnet.nn.layers.conv import Conv2D, Flatten


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


def time_stoichnet(x, grad_out, iterations, rng):
    """Images/s of forward + backward, and the seconds spent in each layer."""
    layers = stoichnet_stack(rng)
    per_layer = np.zeros(len(layers))
    for step in range(iterations + 1):  # step 0 warms up (allocates the buffers)
        spent = np.zeros(len(layers))
        a = x
        for k, layer in enumerate(layers):
            t = time.perf_counter()
            a = layer.forward(a, training=True)
            spent[k] += time.perf_counter() - t
        g = grad_out
        for k in reversed(range(len(layers))):
            t = time.perf_counter()
            g = layers[k].backward(g)
            spent[k] += time.perf_counter() - t
        if step:
            per_layer += spent
    return iterations * x.shape[0] / per_layer.sum(), per_layer, layers


def time_torch(x, grad_out, iterations):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 64, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(64, 32, 3),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Flatten(),
        torch.nn.Linear(24 * 24 * 32, 10),
        torch.nn.Softmax(dim=1),
    ).train()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
    gt = torch.from_numpy(grad_out)
    model(xt).backward(gt)  # warm-up
    start = time.perf_counter()
    for _ in range(iterations):
        model(xt).backward(gt)
    return iterations * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch_size, 28, 28, 1), dtype=np.float32)
    grad_out = rng.standard_normal((args.batch_size, 10), dtype=np.float32)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        ours, per_layer, layers = time_stoichnet(x, grad_out, args.iterations, rng)
    theirs = time_torch(x, grad_out, args.iterations)

    print(
        f"MNIST CNN layers, forward + backward, batch {args.batch_size}, float32, "
        f"{args.threads} thread(s), {args.iterations} iterations"
    )
    print(f"  stoichnet {ours:9.0f} images/s")
    print(f"  PyTorch   {theirs:9.0f} images/s (torch {torch.__version__})")
    print(f"  ratio stoichnet / PyTorch = {ours / theirs:.2f}")
    print("  stoichnet time by layer (forward + backward):")
    for layer, seconds in zip(layers, per_layer, strict=True):
        label = f"{type(layer).__name__}{tuple(layer.output_shape(layer.input_shape))}"
        print(f"    {label:24s} {100 * seconds / per_layer.sum():5.1f} %")


if __name__ == "__main__":
    main()
