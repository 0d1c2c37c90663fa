"""Where one ElemNet-17 training step spends its time: a py-spy profile, summarised.

Runs ``--steps`` training steps (``Sequential._train_step``: forward, MAE, backward,
gradient check, Adam) of the ElemNet-17 network of ``engine_vs_torch.py`` on synthetic
data under ``py-spy record --native`` and groups the samples taken inside the steps by
what the innermost frames were doing: BLAS matrix products, OpenBLAS zeroing their
outputs, the optimizer, dropout, activations, the loss, the gradient-norm check and
the rest of the dense layers' elementwise work. Needs py-spy (the ``[dev]`` extra).

    python benchmarks/profile_step.py --batch 256 --steps 60 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

# category -> what identifies it in a collapsed stack (checked in this order)
CATEGORIES = [
    ("sgemm_beta: OpenBLAS zeroing each product's output", ("sgemm_beta",)),
    ("sgemm kernels (forward, dW, da_prev)", ("sgemm", "gemm_")),
    ("optimizer (the Adam step)", ("optimizers.py",)),
    ("dropout (mask draw, scale, multiply)", ("dropout.py",)),
    ("activations (bias + relu, relu')", ("activations.py",)),
    ("loss (MAE and its gradient)", ("losses.py",)),
    ("gradient-norm check (one dot over flat_grads)", ("sdot",)),
    ("dense elementwise (bias add, bias gradient)", ("dense.py",)),
]


def warm_up(model, X, y, batch: int) -> None:
    """Steps left out of the summary: the first compiles the optimizer's kernel (or loads
    it from numba's cache) and allocates the layers' buffers."""
    from engine_vs_torch import stoichnet_step

    for i in range(3):
        stoichnet_step(model, X, y, batch, i)


def run_steps(batch: int, steps: int, threads: int) -> None:
    import numpy as np
    from engine_vs_torch import stoichnet_elemnet, stoichnet_step, synthetic_data
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        model = stoichnet_elemnet(threads)
        X, y = synthetic_data(batch * steps, np.random.default_rng(0))
        warm_up(model, X, y, batch)
        for i in range(steps):
            stoichnet_step(model, X, y, batch, i)


def summarise(raw: Path) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "_train_step" not in stack or "warm_up" in stack:
            continue
        frames = stack.split("_train_step", 1)[1]  # only what the step called
        for name, keys in CATEGORIES:
            if any(key in frames for key in keys):
                counts[name] += int(n)
                break
        else:
            counts["other (Python overhead, buffer lookups)"] += int(n)
    total = sum(counts.values())
    return {name: counts[name] / total for name in [c for c, _ in CATEGORIES] + [
        "other (Python overhead, buffer lookups)"]} | {"samples": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_steps(args.batch, args.steps, args.threads)
        return
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "steps.txt"
        subprocess.run(
            ["py-spy", "record", "--native", "--format", "raw", "-r", str(args.rate), "-o", str(raw),
             "--", sys.executable, __file__, "--child", "--batch", str(args.batch),
             "--steps", str(args.steps), "--threads", str(args.threads)],
            check=True, capture_output=True, cwd=Path(__file__).parent)
        shares = summarise(raw)
    print(f"ElemNet-17 training step, batch {args.batch}, {args.threads} thread(s), "
          f"{args.steps} steps, {shares.pop('samples'):,} py-spy samples inside the steps")
    for name, share in shares.items():
        print(f"{100 * share:6.1f}%  {name}")


if __name__ == "__main__":
    main()
