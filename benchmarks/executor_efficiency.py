"""Parallel efficiency of the executor: the same independent trainings serially, in local
worker processes and on a Dask ``LocalCluster``, with identical results.

The jobs are a --folds-fold cross-validation's worth of trainings on a seeded --rows-row
subset of CritExam__Ef's training split: for every fold, a depth---depth ElemNet-family
network (``stoichnet.models.elemnet.depth_arch``, --epochs epochs, early stopping on 10%
of the training fold, seeded by ``job_seed``) and the random forest on Magpie features
(100 trees), both scored on the held-out fold: 2 x --folds jobs. They run three times:
serially in this process (BLAS on all cores, as ``stoichnet`` runs one job), in --workers
local processes and on --workers Dask workers (each with cores / workers BLAS threads).
The script checks the three result dicts are equal (every float bit for bit) and prints
the wall times (and the sum of the jobs' own run times: starting workers and moving
data are the difference), the parallel efficiency (serial wall / parallel wall; the ideal is
--workers) and Dask's overhead per job against the local processes ((Dask wall - local
wall) / jobs; both walls include starting their workers). The machine may be shared: the
1-minute load average before and after says how much of it the run had.

``--serial-threads 1`` runs the serial baseline with one BLAS and optimizer thread, the
resources each of 2 workers has on 2 cores: the executor's own efficiency (what running
jobs side by side adds), rather than jobs side by side against BLAS threads side by side.

    STOICHNET_DATA=/work/shared/data python benchmarks/executor_efficiency.py \\
        [--rows 2000] [--folds 5] [--depth 5] [--epochs 10] [--workers 2] [--serial-threads 1]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict

import numpy as np
from sklearn.model_selection import KFold, train_test_split

from stoichnet.chem.fractions import ElementFractions
from stoichnet.evaluate.data import load_split
from stoichnet.evaluate.executor import Job, Progress, fingerprint, job_seed, run_jobs
from stoichnet.evaluate.study import NetworkConfig, StudyData, forest_mae, train_network


def forest_job(data: StudyData, seed: int) -> dict:
    """The random forest's job: its test MAE on the held-out fold."""
    return {"test_mae": forest_mae(data, seed)}


def fold_data(formulas: np.ndarray, X: np.ndarray, y: np.ndarray, train: np.ndarray,
              test: np.ndarray, seed: int) -> StudyData:
    """Fold ``test`` held out; 10% of ``train`` (seeded) for early stopping."""
    fit, val = train_test_split(train, test_size=0.1, random_state=seed)
    return StudyData(X[fit], y[fit], X[val], y[val], X[test], y[test],
                     tuple(formulas[fit]), tuple(formulas[test]))


def cv_jobs(rows: int, folds: int, depth: int, epochs: int, seed: int = 0) -> list[Job]:
    table = load_split("CritExam__Ef", subset=rows, seed=seed).train
    formulas = table["formula"].to_numpy()
    X = ElementFractions().transform(formulas)
    y = table["target"].to_numpy(dtype=np.float64)
    jobs = []
    splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(X)
    for fold, (train, test) in enumerate(splits):
        data = fold_data(formulas, X, y, train, test, seed)
        digest = data.fingerprint()
        key = f"fold={fold}/model=elemnet"
        config = NetworkConfig(depth=depth, epochs=epochs, seed=job_seed(seed, key))
        jobs.append(Job(key, train_network, {"config": config, "data": data},
                        fingerprint(asdict(config), digest)))
        jobs.append(Job(f"fold={fold}/model=rf", forest_job, {"data": data, "seed": seed},
                        fingerprint("rf", seed, digest)))
    return jobs


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serial-threads", type=int, default=None,
                        help="BLAS/optimizer threads of the serial run (default: all cores)")
    args = parser.parse_args()
    jobs = cv_jobs(args.rows, args.folds, args.depth, args.epochs)
    print(f"{len(jobs)} jobs: {args.folds} folds x (depth-{args.depth} network, {args.epochs} "
          f"epochs; random forest) on {args.rows} CritExam__Ef rows; {os.cpu_count()} cores; "
          f"load average {load():.2f}", flush=True)
    serial = "serial" + (f" ({args.serial_threads} thread)" if args.serial_threads else "")
    runs = {serial: {"threads_per_worker": args.serial_threads},
            f"{args.workers} local processes": {"n_jobs": args.workers},
            f"{args.workers} Dask workers": {"n_jobs": args.workers, "scheduler": "local"}}
    walls, results = {}, {}
    for name, options in runs.items():
        seconds = []  # each job's own run time, as the executor measured it
        timed = Progress(line=lambda job, result, s, seconds=seconds: seconds.append(s))
        start = time.perf_counter()
        results[name] = run_jobs(jobs, progress=timed, **options)
        walls[name] = time.perf_counter() - start
        print(f"{name:>20}: {walls[name]:7.1f} s wall, {sum(seconds):7.1f} s in jobs "
              f"(load average {load():.2f})", flush=True)
    serial, local, dask = results.values()
    if not serial == local == dask:
        raise SystemExit("the results differ between executors")
    print("results identical (bit for bit) in all three runs")
    t_serial, t_local, t_dask = walls.values()
    print(f"parallel efficiency: local processes {t_serial / t_local:.2f}x, Dask "
          f"{t_serial / t_dask:.2f}x (ideal {args.workers}x)")
    print(f"Dask overhead vs local processes: {(t_dask - t_local) / len(jobs) * 1000:+.0f} ms "
          "per job")


if __name__ == "__main__":
    main()
