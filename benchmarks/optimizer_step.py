"""Time one optimizer step on ElemNet-17's 4,631,361 float32 parameters: stoichnet vs torch.optim.

stoichnet gets ONE flat array (as ``Sequential`` passes it); torch gets the same number of
parameters as one flat tensor, with its default (foreach) implementation and, where
torch has one on the CPU, ``fused=True``. Both use the same number of threads. Prints
milliseconds per step (median over repeats, interleaved to share the machine's noise)
and the ratio torch / stoichnet (> 1: stoichnet is faster). Then times stoichnet's own
ElemNet-17 training step at batch 256 (``train_on_batch``: forward, MAE, backward, Adam)
and the Adam step inside it (issue 7: < 10% of the step).

    python benchmarks/optimizer_step.py [--threads 2] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from stoichnet.nn import Dense, Sequential, optimizers

N_PARAMS = 4_631_361
ELEMNET_17 = [86] + [1024] * 4 + [512] * 3 + [256] * 3 + [128] * 3 + [64] * 2 + [32, 1]

# stoichnet optimizer name -> (torch class, torch kwargs with the same hyper-parameters)
PAIRS = {
    "sgd": (torch.optim.SGD, {"lr": 0.01}),
    "sgd_momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "eps": 1e-7}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.001, "initial_accumulator_value": 0.1,
                                      "eps": 1e-7}),
    "adadelta": (torch.optim.Adadelta, {"lr": 0.001, "rho": 0.95, "eps": 1e-7}),
    "adam": (torch.optim.Adam, {"lr": 0.001, "eps": 1e-7}),
    "adamw": (torch.optim.AdamW, {"lr": 0.001, "eps": 1e-7, "weight_decay": 0.01}),
    "adamax": (torch.optim.Adamax, {"lr": 0.001, "eps": 1e-7}),
    "nadam": (torch.optim.NAdam, {"lr": 0.001, "eps": 1e-7}),
}


def ours(name: str, threads: int) -> optimizers.Optimizer:
    if name == "sgd_momentum":
        return optimizers.SGD(momentum=0.9, num_threads=threads)
    return optimizers.get({"name": name, "num_threads": threads})


def time_steps(steppers: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """(wall ms, CPU ms) per call of each zero-argument stepper: medians over ``repeats``
    calls made round-robin. CPU time (all threads of the process) is the steadier figure on
    a shared machine; torch's worker threads may spin, which inflates its CPU time."""
    for step in steppers.values():
        for _ in range(3):
            step()
    wall = {key: [] for key in steppers}
    cpu = {key: [] for key in steppers}
    for _ in range(repeats):
        for key, step in steppers.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            cpu[key].append(time.process_time() - start_cpu)
            wall[key].append(time.perf_counter() - start)
    return {key: (1e3 * statistics.median(wall[key]), 1e3 * statistics.median(cpu[key]))
            for key in steppers}


def share_of_training_step(batch: int, threads: int, repeats: int) -> tuple[float, float]:
    """(training step ms, Adam step ms inside it): stoichnet's ElemNet-17 (ReLU, MAE, Adam)
    ``train_on_batch`` at ``batch``, the optimizer's own ``step`` timed from within."""
    model = Sequential([Dense(ELEMNET_17[1], "relu", input_dim=ELEMNET_17[0])]
                       + [Dense(units, "relu") for units in ELEMNET_17[2:-1]] + [Dense(1)])
    adam = optimizers.Adam(1e-4, num_threads=threads)
    model.compile(adam, "mae")
    step_times = []
    untimed_step = adam.step

    def timed_step(params, grads):
        start = time.perf_counter()
        untimed_step(params, grads)
        step_times.append(time.perf_counter() - start)

    adam.step = timed_step
    rng = np.random.default_rng(1)
    X = rng.random((batch, ELEMNET_17[0]), dtype=np.float32)
    y = rng.random((batch, 1), dtype=np.float32)
    train_ms = time_steps({"train": lambda: model.train_on_batch(X, y)}, repeats)["train"][0]
    if model.count_params() != N_PARAMS:
        raise RuntimeError(f"ElemNet-17 has {N_PARAMS:,} parameters, this one "
                           f"{model.count_params():,}")
    return train_ms, 1e3 * statistics.median(step_times[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{N_PARAMS:,} float32 parameters, {args.threads} threads (stoichnet and torch), "
          f"median of {args.repeats} steps, wall ms (CPU ms); ratio = torch / stoichnet wall")
    print(f"{'optimizer':<13}{'stoichnet':>17}{'torch':>17}{'torch fused':>17}{'ratio':>7}"
          f"{'fused':>7}")
    for name, (torch_cls, kwargs) in PAIRS.items():
        params = rng.standard_normal(N_PARAMS, dtype=np.float32)
        grads = rng.standard_normal(N_PARAMS, dtype=np.float32)
        opt = ours(name, args.threads)
        tensor = torch.from_numpy(params.copy()).requires_grad_()
        tensor.grad = torch.from_numpy(grads.copy())
        steppers = {"stoichnet": lambda opt=opt, p=params, g=grads: opt.step([p], [g]),
                    "torch": torch_cls([tensor], **kwargs).step}
        try:
            steppers["fused"] = torch_cls([tensor], fused=True, **kwargs).step
        except (RuntimeError, TypeError, ValueError):  # no fused CPU kernel for this one
            pass
        ms = time_steps(steppers, args.repeats)
        nan = (float("nan"), float("nan"))
        cells = "".join(f"{wall:>9.2f} ({cpu:5.2f})"
                        for wall, cpu in (ms["stoichnet"], ms["torch"], ms.get("fused", nan)))
        ours_wall = ms["stoichnet"][0]
        print(f"{name:<13}{cells}{ms['torch'][0] / ours_wall:>7.2f}"
              f"{ms.get('fused', nan)[0] / ours_wall:>7.2f}")
    with threadpool_limits(args.threads):  # NumPy's BLAS gets the same threads
        train_ms, adam_ms = share_of_training_step(256, args.threads, max(5, args.repeats // 3))
    print(f"stoichnet ElemNet-17 training step (train_on_batch), batch 256: {train_ms:.1f} ms, "
          f"of which the Adam step {adam_ms:.1f} ms = {100 * adam_ms / train_ms:.1f}% "
          "(issue 7 target: < 10%)")


if __name__ == "__main__":
    main()
