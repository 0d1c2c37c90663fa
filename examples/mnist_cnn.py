"""What dropout does: a small convolutional network on MNIST digits, with and without it.

The classic illustration of dropout against over-fitting. The model is

    Conv2D(64, 3, relu) -> Conv2D(32, 3, relu) -> Dropout(0.5) -> Flatten -> Dense(10, softmax)

trained with categorical cross-entropy and Adam (learning rate 0.001, mini-batches of
32) on the 10,000 MNIST digits in $STOICHNET_DATA/mnist: the first 8,000 train, the
last 2,000 test; pixels are scaled to [0, 1]. The same network is then trained again
without the Dropout layer (same seed, same data). Both runs print their train and
test accuracy, and one PNG shows the two learning curves: accuracy per epoch on the
training batches (dashed; measured while training, so with dropout active) and on
the test images (solid). Without dropout the training accuracy climbs above the test
accuracy (0.990 against 0.981 after 4 epochs): that gap is over-fitting. With dropout
the two stay together (0.981 and 0.983).

Measured with the defaults (4 epochs, seed 0) on 2026-11-26, 2-vCPU Xeon, numpy 2.4 with
OpenBLAS, while about 7 other people ran tests and benchmarks on the same 2 cores:

    with Dropout(0.5)  train accuracy 0.9955  test accuracy 0.9825
    without dropout    train accuracy 0.9941  test accuracy 0.9805

Both runs passed 97 % test accuracy after their second epoch. Every run of the script
gave the same accuracies, as the fixed seed should. The timings differ with the load
and the number of BLAS threads:

    --threads 1, 09:38 UTC, load average 5-7:    2.0 + 2.0 min, 3.9 min wall, 2.7 min CPU
    2 threads,   09:00 UTC, load average 5-6:    6.8 + 5.2 min, 12.0 min wall, 7.9 min CPU
    2 threads,   09:11 UTC, load average 9-10:  12.7 + 8.1 min, 20.8 min wall, 8.8 min CPU

With ``--threads 1`` the whole script meets the 10-minute target on the shared
machine. With 2 threads it does not: when other processes hold the cores, each BLAS
thread keeps waiting for the other one.

Run (from the repository root):

    STOICHNET_DATA=../shared/data python examples/mnist_cnn.py --threads 1 --output mnist_dropout.png
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
from threadpoolctl import threadpool_limits

from stoichnet.evaluate.plots import learning_curves
from stoichnet.images import load_mnist
from stoichnet.nn import Conv2D, Dense, Dropout, Flatten, Sequential
from stoichnet.nn.optimizers import Adam

N_TRAIN = 8000


def mnist_split():
    """(X_train, Y_train), (X_test, Y_test): X float32 (n, 28, 28, 1) in [0, 1], Y one-hot (n, 10)."""
    images, labels = load_mnist(download=False, progress=False)
    X = (images.astype(np.float32) / 255.0)[..., np.newaxis]
    Y = np.eye(10, dtype=np.float32)[labels]
    return (X[:N_TRAIN], Y[:N_TRAIN]), (X[N_TRAIN:], Y[N_TRAIN:])


def cnn(dropout: bool, seed: int, threads: int | None) -> Sequential:
    """The example's network; ``dropout=False`` leaves out the Dropout(0.5) layer."""
    layers = [
        Conv2D(64, 3, activation="relu", input_shape=(28, 28, 1)),
        Conv2D(32, 3, activation="relu"),
        *([Dropout(0.5)] if dropout else []),
        Flatten(),
        Dense(10, activation="softmax"),
    ]
    model = Sequential(layers, seed=seed)
    optimizer = Adam(learning_rate=0.001, num_threads=threads)
    model.compile(optimizer, "categorical_crossentropy", metrics=["accuracy"])
    return model


def train_both(X_train, Y_train, X_test, Y_test, args) -> dict:
    """Train the network with and without dropout; print accuracies; return the histories."""
    histories = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    for dropout in (True, False):
        label = "with Dropout(0.5)" if dropout else "without dropout"
        model = cnn(dropout, args.seed, args.threads)
        t = time.perf_counter()
        histories[label] = model.fit(
            X_train,
            Y_train,
            epochs=args.epochs,
            batch_size=args.batch_size,
            validation_data=(X_test, Y_test),
            seed=args.seed,
            verbose=2,
        )
        # dropout off for both: the accuracy the trained network really has on each set
        _, train_accuracy = model.evaluate(X_train, Y_train, batch_size=256)
        _, test_accuracy = model.evaluate(X_test, Y_test, batch_size=256)
        print(
            f"{label:18s} train accuracy {train_accuracy:.4f}  test accuracy "
            f"{test_accuracy:.4f}  ({time.perf_counter() - t:.0f} s)"
        )
    print(
        f"both runs: wall time {(time.perf_counter() - start) / 60:.1f} min, CPU time "
        f"{(time.process_time() - cpu_start) / 60:.1f} min (all threads; load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    return histories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS and optimizer threads (default: all cores); 1 is much faster on a "
        "machine whose cores other people are using",
    )
    parser.add_argument("--output", type=Path, default=Path("mnist_dropout.png"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args()
    threads = 1 if args.threads is None else args.threads
    if min(args.epochs, args.batch_size, threads) < 1:
        parser.error(
            f"--epochs, --batch-size and --threads must be >= 1, got {args.epochs}, "
            f"{args.batch_size}, {args.threads}"
        )
    if args.output.exists() and not args.overwrite:
        parser.error(f"{args.output} exists; pass --overwrite to replace it")

    (X_train, Y_train), (X_test, Y_test) = mnist_split()
    with threadpool_limits(limits=args.threads):
        histories = train_both(X_train, Y_train, X_test, Y_test, args)

    fig = learning_curves(histories, metric="accuracy")
    ax = fig.axes[0]
    for line in ax.lines:
        line.set_marker("o")  # a run of one epoch is a single point
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"MNIST CNN, {N_TRAIN} training / {len(X_test)} test images (validation = test)")
    fig.savefig(args.output, dpi=120)
    print(f"learning curves written to {args.output}")


if __name__ == "__main__":
    main()
