"""Magpie features: stoichnet's CompositionFeaturizer against CBFV 1.1.0's generate_features.

Both featurise the 59,509 CritExam__Ef training formulas. CBFV runs in its pinned
environment (tests/oracles/, built on first use) as a subprocess that times its own
generate_features call; stoichnet is timed in this process. The outputs must agree to
1e-6 relative. Then stoichnet alone featurises 100,000 matbench_mp_e_form formulas.

    STOICHNET_DATA=../shared/data python benchmarks/featurize_vs_cbfv.py [--repeats 5]

Times are wall-clock seconds (process CPU seconds in brackets), stoichnet's the median
of --repeats runs after one warm-up, CBFV's one run (it takes seconds). The time of
fraction_matrix alone (the project's one parser and the sparse fraction matrix, the
first step of transform) is printed too.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from stoichnet.chem.datasets import load_dataset
from stoichnet.chem.featurizers import CompositionFeaturizer
from stoichnet.chem.fractions import fraction_matrix
from stoichnet.chem.periodic_table import SYMBOLS

ORACLES = Path(__file__).resolve().parents[1] / "tests" / "oracles"


def cbfv_magpie(formulas: list[str]) -> tuple[np.ndarray, dict]:
    """CBFV's magpie features of ``formulas`` and its bookkeeping (seconds, skipped...)."""
    spec = importlib.util.spec_from_file_location("cbfv_oracle", ORACLES / "cbfv_oracle.py")
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    python = oracle.cbfv_python()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "formulas.txt"
        listing.write_text("\n".join(formulas), encoding="utf-8")
        subprocess.run(
            [python, "-W", "ignore::UserWarning", oracle.REFERENCE_SCRIPT, "run",
             "--formulas", listing, "--preset", "magpie", "--out", tmp],
            check=True, capture_output=True,
        )  # fmt: skip
        meta = json.loads((Path(tmp) / "magpie.json").read_text())
        return np.load(Path(tmp) / "magpie.features.npy"), meta


def median_times(function, argument, repeats: int):
    """The result of ``function(argument)`` and the median wall and CPU seconds of
    ``repeats`` calls after a warm-up."""
    result = function(argument)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function(argument)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    formulas = load_dataset("CritExam__Ef", split="train", progress=False)["formula"].tolist()
    n = len(formulas)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{n:,} CritExam__Ef training formulas, magpie preset (132 features)")

    cbfv, meta = cbfv_magpie(formulas)
    magpie = CompositionFeaturizer("magpie").transform
    ours, wall, cpu = median_times(magpie, formulas, args.repeats)
    fractions = lambda rows: fraction_matrix(rows, SYMBOLS)  # noqa: E731
    _, parse_wall, parse_cpu = median_times(fractions, formulas, args.repeats)
    if meta["rows_kept"] != list(range(n)) or meta["skipped"]:
        raise SystemExit(f"CBFV dropped or zero-filled rows: {len(meta['skipped'])} skipped")
    # Exact zeros come out of CBFV as round-off ~1e-17 times the column's scale.
    err = np.abs(ours.astype(np.float64) - cbfv)
    scale = np.abs(cbfv).max(axis=0)
    bad = err > 1e-6 * np.abs(cbfv) + 1e-12 * scale
    sizable = np.abs(cbfv) > 1e-9 * scale
    rel = (err[sizable] / np.abs(cbfv[sizable])).max()
    print(f"outputs agree: {not bad.any()} ({bad.sum()} values beyond 1e-6 relative; largest "
          f"relative difference {rel:.1e} among values above 1e-9 of their column's scale)")  # fmt: skip

    cbfv_wall, cbfv_cpu = meta["seconds"], meta["cpu_seconds"]
    print(f"CBFV 1.1.0 generate_features: {cbfv_wall:7.3f} s [{cbfv_cpu:.3f}] "
          f"{n / cbfv_wall:>12,.0f} formulas/s")  # fmt: skip
    print(f"stoichnet transform:          {wall:7.3f} s [{cpu:.3f}] {n / wall:>12,.0f} formulas/s")
    print(f"  of which fraction_matrix:   {parse_wall:7.3f} s [{parse_cpu:.3f}] (parsing)")
    print(f"speed-up: {cbfv_wall / wall:.1f}x wall, {cbfv_cpu / cpu:.1f}x CPU (target >= 20x)")

    many = load_dataset("matbench_mp_e_form", duplicates="keep", progress=False)["formula"]
    many = many.iloc[:100_000].tolist()
    _, wall, cpu = median_times(magpie, many, args.repeats)
    print(f"stoichnet, {len(many):,} matbench_mp_e_form formulas: {wall:.3f} s [{cpu:.3f}]")
    if bad.any():
        raise SystemExit("stoichnet and CBFV disagree")


if __name__ == "__main__":
    main()
