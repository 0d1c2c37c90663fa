"""Formula parsing throughput: stoichnet against pymatgen's Composition, in one process.

Both read the 59,509 CritExam__Ef training formulas (benchmark/CritExam__Ef/train.csv
under $STOICHNET_DATA). Three comparisons, formulas per second each, with the ratio
stoichnet / pymatgen (> 1: stoichnet is faster):

1. parse one string at a time: ``parse_formula(f)`` vs ``Composition(f)``;
2. parse and take atomic fractions: ``parse_formula(f).fractions()`` vs
   ``Composition(f).fractional_composition``;
3. the batch paths: ``parse_formulas(formulas)`` (a Composition per distinct string)
   against pymatgen's loop of 1; ``ElementFractions().transform(formulas)`` (a float32
   (n, 86) matrix) and ``fraction_matrix(formulas, SYMBOLS)`` (sparse), the path a
   featurizer takes, against pymatgen's loop of 2.

stoichnet's figure is the best of --repeats runs; pymatgen's one run (it takes seconds).
On a shared machine the CPU-time rates (in brackets) are the steadier figures.

    STOICHNET_DATA=../shared/data python benchmarks/parse_vs_pymatgen.py [--repeats 5]
"""

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import pandas as pd
from pymatgen.core import Composition

from stoichnet.chem import (
    SYMBOLS,
    ElementFractions,
    fraction_matrix,
    parse_formula,
    parse_formulas,
)


def formulas_per_second(function, formulas, repeats):
    """(formulas per wall-clock second, per second of this process's CPU time), best run."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function(formulas)
        wall = min(wall, time.perf_counter() - start_wall)
        cpu = min(cpu, time.process_time() - start_cpu)
    return len(formulas) / wall, len(formulas) / cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="stoichnet runs (best is kept)")
    args = parser.parse_args()
    data = os.environ.get("STOICHNET_DATA")
    if not data:
        raise SystemExit("set STOICHNET_DATA to the shared data folder (../shared/data)")
    path = Path(data) / "benchmark" / "CritExam__Ef" / "train.csv"
    formulas = pd.read_csv(path, dtype={"formula": str}, keep_default_na=False)["formula"].tolist()
    print(f"{len(formulas):,} formulas from {path} ({len(set(formulas)):,} distinct)")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}\n")  # fmt: skip

    parse_formula("Fe2O3")  # warm up
    rows = []
    warnings.simplefilter("ignore")  # pymatgen's warnings about unusual oxidation states

    ours = formulas_per_second(lambda fs: [parse_formula(f) for f in fs], formulas, args.repeats)
    theirs = formulas_per_second(lambda fs: [Composition(f) for f in fs], formulas, 1)
    rows.append(("parse, one at a time", ours, theirs))
    ours = formulas_per_second(parse_formulas, formulas, args.repeats)
    rows.append(("parse_formulas (batch)", ours, theirs))

    ours = formulas_per_second(
        lambda fs: [parse_formula(f).fractions() for f in fs], formulas, args.repeats
    )
    theirs = formulas_per_second(
        lambda fs: [Composition(f).fractional_composition for f in fs], formulas, 1
    )
    rows.append(("parse + fractions, one at a time", ours, theirs))

    featurizer = ElementFractions()
    ours = formulas_per_second(featurizer.transform, formulas, args.repeats)
    rows.append(("ElementFractions.transform (batch)", ours, theirs))
    ours = formulas_per_second(lambda fs: fraction_matrix(fs, SYMBOLS), formulas, args.repeats)
    rows.append(("fraction_matrix (batch, sparse)", ours, theirs))

    print("formulas per second, wall clock [per CPU second of this process]")
    print(f"{'':36s} {'stoichnet':>20s} {'pymatgen':>20s} {'ratio':>14s}")
    for name, ours, theirs in rows:
        print(
            f"{name:36s} {ours[0]:9,.0f} [{ours[1]:8,.0f}] {theirs[0]:9,.0f} [{theirs[1]:8,.0f}] "
            f"{ours[0] / theirs[0]:5.1f}x [{ours[1] / theirs[1]:5.1f}x]"
        )


if __name__ == "__main__":
    main()
