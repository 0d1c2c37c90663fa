"""Prediction throughput: formulas -> ElementFractions -> a trained ElemNet-17, at batch 4096.

Featurization (formula strings to the (n, 86) float32 fraction matrix) and the
forward pass are timed separately; the forward pass also in PyTorch with the same
weights and thread count (``torch.inference_mode``), as a ratio. The formulas are
all 85,014 of CritExam__Ef (train, val and test); the network is ElemNet-17 after
--train-steps Adam steps on the training split (the speed does not depend on the
weights). Times are medians of --repeats runs after a warm-up. The forward pass of
ElemNet-17 costs 2 x 4,631,361 flops per formula, so it is compute-bound: the
script prints the matmul peak of a (4096 x 1024) by (1024 x 1024) float32 product
on the same threads and the ceiling it implies (peak / (2 x params) formulas/s).

    STOICHNET_DATA=../shared/data python benchmarks/predict_throughput.py [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from engine_vs_torch import matmul_gflops, torch_elemnet
from threadpoolctl import threadpool_limits

from stoichnet.chem.datasets import load_dataset
from stoichnet.chem.fractions import ElementFractions
from stoichnet.models import elemnet
from stoichnet.nn import Dense, optimizers

BATCH = 4096


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: buffers, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_copy(model) -> torch.nn.Module:
    """PyTorch's ElemNet-17 with the stoichnet model's weights (W is (n_in, n_out) there)."""
    net, _ = torch_elemnet()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    with torch.no_grad():
        for lin, layer in zip(linears, dense, strict=True):
            lin.weight.copy_(torch.from_numpy(layer.params["W"].T))
            lin.bias.copy_(torch.from_numpy(layer.params["b"]))
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    data = load_dataset("CritExam__Ef", progress=False)
    formulas = data["formula"].tolist()
    featurizer = ElementFractions()

    with threadpool_limits(limits=args.threads):
        X = featurizer.transform(formulas)
        model = elemnet(seed=0)
        model.compile(optimizers.Adam(1e-4, num_threads=args.threads), "mae")
        train = data["split"].to_numpy() == "train"
        y = data["target"].to_numpy(np.float32)[train]
        Xt = X[train]
        for i in range(args.train_steps):
            rows = slice(i * 256, (i + 1) * 256)
            model.train_on_batch(Xt[rows], y[rows])
        net = torch_copy(model)
        tX = torch.from_numpy(X)

        def torch_forward():
            with torch.inference_mode():
                for start in range(0, X.shape[0], BATCH):
                    net(tX[start : start + BATCH])

        ours = model.predict(X, batch_size=BATCH)
        with torch.inference_mode():
            theirs = net(tX).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())

        n, n_params = len(formulas), model.count_params()
        t_feat = median_seconds(lambda: featurizer.transform(formulas), args.repeats)
        t_ours = median_seconds(lambda: model.predict(X, batch_size=BATCH), args.repeats)
        t_torch = median_seconds(torch_forward, args.repeats)
        peak = matmul_gflops(BATCH, repeats=10)

    print(
        f"{n:,} CritExam__Ef formulas, ElemNet-17 ({n_params:,} parameters), batch {BATCH}, "
        f"{args.threads} threads; numpy {np.__version__}, torch {torch.__version__}; load average "
        + " ".join(f"{v:.1f}" for v in load_start)
    )
    print(f"featurization (ElementFractions.transform): {t_feat:.3f} s = {n / t_feat:,.0f} formulas/s")
    for name, t in (("stoichnet predict", t_ours), ("torch forward", t_torch)):
        gflops = 2 * n_params * n / t / 1e9
        print(
            f"{name:>17}: {t:.3f} s = {n / t:,.0f} formulas/s, {gflops:.0f} GFLOP/s "
            f"({100 * gflops / peak:.0f}% of the matmul peak)"
        )
    print(f"forward ratio stoichnet/torch: {t_torch / t_ours:.2f}")
    print(f"end to end (featurize + predict): {n / (t_feat + t_ours):,.0f} formulas/s")
    print(
        f"matmul peak ({BATCH}x1024 by 1024x1024, best of 10): {peak:.0f} GFLOP/s -> a forward "
        f"ceiling of {peak * 1e9 / (2 * n_params):,.0f} formulas/s"
    )
    print("load average at the end: " + " ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
