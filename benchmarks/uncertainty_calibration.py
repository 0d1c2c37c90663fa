"""Honest error bars: how well three uncertainties are calibrated, raw and recalibrated on
the validation rows, in one run (issue 15's targets).

On a shared dataset's train/val/test rows (default CritExam__Ef; ``--subset N`` keeps a
seeded N rows of each split; rows with an element outside ElemNet's 86 inputs, such as
He or Ne, are dropped from every split with a warning that counts them) it trains

- a deep ensemble: ``--members`` K ElemNet-17 networks by the ``stoichnet`` recipe (as
  ``stoichnet train``: the recipe's batch and epochs unless ``--epochs``), each from its
  own seed (with ``--bootstrap``, each on its own resample of the training rows), as
  independent jobs through the executor (``--jobs`` worker processes; the members are
  the serial ones, bit for bit); sigma = the spread of the members' means;
- one ElemNet-17 network by the same recipe with an aleatoric head (``loss="gaussian_nll"``,
  what ``stoichnet train --loss gaussian_nll`` trains); sigma = its predicted sigma;
- the random forest on Magpie features (100 trees, ``rf_magpie``); sigma = the standard
  deviation of its trees' predictions;

and prints one markdown row per method: test MAE; coverage of the central 68% and 95%
intervals and the miscalibration area, raw and after a recalibration fitted on the
validation rows only (``--recalibration``, default isotonic as in ``stoichnet train``);
Gaussian NLL and sharpness (RMS sigma) after recalibration; Spearman(sigma, |error|);
wall and CPU seconds of training. Then the ensemble's gain: the test MAE of member 0 and
the mean test MAE of the K members (single networks by the same recipe) against the
K-member mean's, and what the ensemble cost (its members' CPU seconds against member
0's). CPU seconds are those of the process that trained (all its threads); the ensemble's
wall time is that of all its jobs, run ``--jobs`` at a time. The metrics are
``stoichnet.evaluate.uncertainty``'s; ``--csv`` writes one row per method with every
raw and recalibrated metric.

    STOICHNET_DATA=/work/shared/data python benchmarks/uncertainty_calibration.py \\
        [--dataset CritExam__Ef] [--members 5] [--bootstrap] [--jobs 1] [--threads T] \\
        [--epochs N] [--subset N] [--seed 0] [--recalibration isotonic|scale] \\
        [--without head forest] [--csv F [--overwrite]]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from contextlib import ExitStack

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from stoichnet.evaluate.compare import network_rows
from stoichnet.evaluate.data import load_split
from stoichnet.evaluate.ensemble import fit_ensemble
from stoichnet.evaluate.metrics import mae
from stoichnet.evaluate.uncertainty import (
    METHODS,
    ONE_SIGMA,
    calibration_report,
    fit_recalibration,
)
from stoichnet.models import DeepEnsembleRegressor, ElemNetRegressor, predict_dist, rf_magpie
from stoichnet.nn.optimizers import thread_limit
from stoichnet.util.files import atomic_file, check_output_file


def timed(fit):
    """Run ``fit()``; (its result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def method_row(name: str, model, split, recalibration: str, wall_s: float,
               cpu_s: float) -> dict:
    """One method's row: test MAE, the test rows' calibration raw and after a
    recalibration fitted on the validation rows, and the training's seconds."""
    y_val, y_test = (t["target"].to_numpy(np.float64) for t in (split.val, split.test))
    recal = fit_recalibration(y_val, *predict_dist(model, split.val["formula"]),
                              recalibration)
    mean, sigma = predict_dist(model, split.test["formula"])
    row = {"method": name, "test MAE": mae(y_test, mean)}
    for stage, fitted in (("raw", None), ("recalibrated", recal)):
        report = calibration_report(y_test, mean, sigma, fitted)
        row |= {f"{metric} {stage}": value for metric, value in report.items()
                if metric not in ("rows", "Spearman(sigma, |error|)")}
    return row | {"Spearman(sigma, |error|)": report["Spearman(sigma, |error|)"],
                  "recalibration": recal.method, "sigma factor": recal.factor(ONE_SIGMA),
                  "test rows": len(y_test), "wall_s": wall_s, "cpu_s": cpu_s}


def markdown(rows: list[dict], unit: str) -> str:
    """The rows as a markdown table (coverages in %, raw -> recalibrated)."""
    header = (f"| method | test MAE ({unit}) | 68% raw -> recal | 95% raw -> recal | "
              "miscal. area raw -> recal | NLL | sharpness | Spearman | wall s | CPU s |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['test MAE']:.4f} "
            f"| {r['coverage 68% raw']:.1%} -> {r['coverage 68% recalibrated']:.1%} "
            f"| {r['coverage 95% raw']:.1%} -> {r['coverage 95% recalibrated']:.1%} "
            f"| {r['miscalibration area raw']:.3f} -> "
            f"{r['miscalibration area recalibrated']:.3f} "
            f"| {r['NLL recalibrated']:.3f} | {r['sharpness recalibrated']:.4f} "
            f"| {r['Spearman(sigma, |error|)']:.3f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="CritExam__Ef")
    parser.add_argument("--subset", type=int, help="a seeded N rows of each split")
    parser.add_argument("--members", type=int, default=5, help="ensemble size K (>= 2)")
    parser.add_argument("--bootstrap", action="store_true",
                        help="each member on its own resample of the training rows")
    parser.add_argument("--jobs", type=int, default=1, help="members trained at once")
    parser.add_argument("--threads", type=int, help="BLAS and optimizer threads per training")
    parser.add_argument("--epochs", type=int, help="epochs per network (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recalibration", choices=METHODS, default="isotonic")
    parser.add_argument("--without", nargs="+", default=[], choices=["head", "forest"],
                        help="leave these methods out (the ensemble is always trained)")
    parser.add_argument("--csv", help="write one row per method here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --csv")
    args = parser.parse_args()
    if args.members < 2:
        parser.error(f"--members must be at least 2, got {args.members}")
    if args.csv:
        check_output_file(args.csv, args.overwrite)

    split = load_split(args.dataset, subset=args.subset, seed=args.seed)
    # ElemNet takes 86 elements: rows with others (He, Ne, ...) leave every split, with a warning
    split = dataclasses.replace(split, **network_rows(
        {"train": split.train, "val": split.val, "test": split.test}, drop=True))
    print(split.describe(), *split.notes, sep="\n")
    X, y = split.train["formula"], split.train["target"].to_numpy(np.float64)
    val = (split.val["formula"], split.val["target"].to_numpy(np.float64))
    network = ElemNetRegressor(epochs=args.epochs)  # the stoichnet recipe

    start = time.perf_counter()
    ensemble, runs = fit_ensemble(
        DeepEnsembleRegressor(network, n_members=args.members, random_state=args.seed,
                              bootstrap=args.bootstrap),
        X, y, val, jobs=args.jobs, threads=args.threads, progress=True)
    ensemble_wall = time.perf_counter() - start
    ensemble_cpu = sum(run["cpu_s"] for run in runs)
    name = f"deep ensemble (K={args.members}{', bootstrap' if args.bootstrap else ''})"
    rows = [method_row(name, ensemble, split, args.recalibration, ensemble_wall, ensemble_cpu)]
    others = {"head": ("aleatoric head (gaussian_nll)", lambda: ElemNetRegressor(
                  loss="gaussian_nll", epochs=args.epochs, random_state=args.seed).fit(
                      X, y, validation_data=val)),
              "forest": ("random forest (tree spread)", lambda: rf_magpie(
                  random_state=args.seed, n_jobs=args.threads).fit(X, y))}
    with ExitStack() as limits:  # the head and the forest train in this process
        if args.threads is not None:
            limits.enter_context(threadpool_limits(limits=args.threads, user_api="blas"))
            limits.enter_context(thread_limit(args.threads))
        for key, (label, fit) in others.items():
            if key not in args.without:
                model, wall, cpu = timed(fit)
                rows.append(method_row(label, model, split, args.recalibration, wall, cpu))
    unit = split.unit or "target unit"
    print(f"\n{split.describe()}; recalibration: {args.recalibration}, fitted on the "
          f"{len(split.val):,} validation rows\n")
    print(markdown(rows, unit))

    y_test = split.test["target"].to_numpy(np.float64)
    members = [mae(y_test, member.predict(split.test["formula"]))
               for member in ensemble.estimators_]
    single, mean_mae = members[0], rows[0]["test MAE"]
    gain, typical = (single - mean_mae) / single, (np.mean(members) - mean_mae) / np.mean(members)
    print(f"\nmembers' test MAE: {', '.join(f'{m:.4f}' for m in members)} {unit}")
    print(f"ensemble gain: member 0 test MAE {single:.4f} -> {args.members}-member mean "
          f"{mean_mae:.4f} {unit} ({abs(gain):.1%} {'lower' if gain >= 0 else 'HIGHER'}; "
          f"{typical:.1%} against the members' mean MAE {np.mean(members):.4f}); cost "
          f"{ensemble_cpu:.0f} CPU s against {runs[0]['cpu_s']:.0f} for member 0 "
          f"({ensemble_cpu / runs[0]['cpu_s']:.2f}x), {ensemble_wall:.0f} s wall with "
          f"--jobs {args.jobs} against {runs[0]['wall_s']:.0f} s for member 0")
    if args.csv:
        frame = pd.DataFrame(rows)
        frame["single member test MAE"] = [single] + [None] * (len(rows) - 1)
        frame["members' mean test MAE"] = [np.mean(members)] + [None] * (len(rows) - 1)
        with atomic_file(args.csv, overwrite=args.overwrite) as tmp:
            frame.to_csv(tmp, index=False)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
