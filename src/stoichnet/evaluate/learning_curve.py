"""Learning curves: test error against training-set size, and where the network overtakes
the forest.

``learning_curve(pool, test)`` trains every model on random subsets of ``pool`` of each
size and scores it on the one fixed ``test`` set. Repeat ``r`` draws one seeded
permutation of the pool and takes its first ``size`` rows, so within a repeat the subsets
are nested and every model sees the same rows; a network stops early on 10% of its subset
(:data:`stoichnet.evaluate.data.VALIDATION_FRACTION`), the baselines train on all of it.
Each (size, repeat, model) training is one :class:`~stoichnet.evaluate.executor.Job`.

The crossover is the smallest size at which the network beats the forest with
non-overlapping 95% intervals: over repeats, mean ± t(R-1) s/sqrt(R); with a single
repeat, the bootstrap interval over the test rows (:mod:`stoichnet.evaluate.metrics`).
Matbench (Dunn et al. 2020) found graph networks overtaking classical models only around
10^4 samples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stoichnet.chem import train_val_test_split
from stoichnet.evaluate import plots
from stoichnet.evaluate.compare import FOREST, NETWORK, NETWORKS
from stoichnet.evaluate.cv import (
    HEADLINE,
    LOWER_IS_BETTER,
    METRICS,
    Rows,
    check_cv_output,
    digest,
    fit_and_score,
    inner_split,
    prepare_rows,
    t_interval,
)
from stoichnet.evaluate.executor import Job, fingerprint, job_seed, run_jobs
from stoichnet.util.checks import check_int
from stoichnet.util.files import atomic_dir

DEFAULT_SIZES = (100, 300, 1000, 3000, 10000, 30000)
MIN_SIZE = 10
N_RESAMPLES = 1000
FILES = ("learning_curve.json", "learning_curve.csv", "learning_curve.png")
TEST_FRACTION = 0.15
"""Fraction of the rows held out as the fixed test set when there is no test file."""


def pool_and_test(rows: Rows, test: Rows | None = None, *,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(pool, test, notes) from :func:`stoichnet.evaluate.cv.load_rows` rows: a dataset's
    test file is the test set and its other files the pool; else ``test``'s rows; else a
    seeded random :data:`TEST_FRACTION` of the rows is held out."""
    frame, notes = rows.frame, list(rows.notes)
    if test is not None:
        pool, held = frame, test.frame
        notes.append(f"test set: {test.name} ({len(held):,} rows)")
    elif "split" in frame and (frame["split"] == "test").any():
        pool, held = frame[frame["split"] != "test"], frame[frame["split"] == "test"]
        notes.append(f"{rows.name}: its test file ({len(held):,} rows) is the test set, the "
                     f"other files ({len(pool):,} rows) the pool")
    else:
        pool, held = train_val_test_split(frame, (1 - TEST_FRACTION, TEST_FRACTION), seed=seed)
        notes.append(f"a random {TEST_FRACTION:.0%} of {rows.name} ({len(held):,} rows, seed "
                     f"{seed}) is the test set, the rest ({len(pool):,} rows) the pool")
    return (*(t[["formula", "target"]].reset_index(drop=True) for t in (pool, held)), notes)


def parse_sizes(sizes: str | Sequence[int]) -> list[int]:
    """Sizes as sorted ints from "100,300,1000" or a sequence; ValueError for a non-integer,
    a size below :data:`MIN_SIZE`, a repeat or an empty list."""
    items = [s.strip() for s in sizes.split(",")] if isinstance(sizes, str) else list(sizes)
    try:
        values = [int(s) if isinstance(s, str) else check_int("size", s) for s in items]
    except ValueError:
        raise ValueError(f"sizes must be whole numbers, e.g. 100,300,1000; got {sizes!r}") from None
    if not values or len(set(values)) != len(values) or min(values) < MIN_SIZE:
        raise ValueError(f"sizes {sizes!r}: need at least one, no repeats, each >= {MIN_SIZE}")
    return sorted(values)


def crossover(sizes: Sequence[int], network: Sequence[tuple[float, float]],
              forest: Sequence[tuple[float, float]], lower_is_better: bool) -> int | None:
    """The smallest size at which the network's interval lies wholly on the better side of
    the forest's (below it for an error, above for ROC-AUC), or None.

    network, forest: (n_sizes, 2) (low, high) intervals; a NaN bound never separates.
    """
    for size, (n_low, n_high), (f_low, f_high) in zip(sizes, network, forest, strict=True):
        if (n_high < f_low) if lower_is_better else (n_low > f_high):
            return int(size)
    return None


@dataclass
class LearningCurve:
    """Everything ``learning_curve`` measured.

    ``scores``: one row per size x repeat x model x metric (columns size, repeat, model,
    metric, value, low, high: the bootstrap interval when ``repeats`` is 1).
    """

    name: str
    task: str
    unit: str
    sizes: list[int]
    repeats: int
    models: list[str]
    n_pool: int
    n_test: int
    scores: pd.DataFrame
    settings: dict
    notes: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return HEADLINE[self.task]

    @property
    def interval_kind(self) -> str:
        if self.repeats > 1:
            return f"95% t-interval of the mean over {self.repeats} repeats"
        return f"95% bootstrap interval over the {self.n_test:,} test rows (one repeat)"

    def summary(self) -> pd.DataFrame:
        """One row per model x size x metric: mean, std (ddof 1; NaN for one repeat),
        low, high (see :attr:`interval_kind`)."""
        rows = []
        for (model, size, metric), group in self.scores.groupby(["model", "size", "metric"],
                                                                sort=False):
            v = group["value"].to_numpy(dtype=float)
            low, high = (t_interval(v) if self.repeats > 1
                         else (float(group["low"].iloc[0]), float(group["high"].iloc[0])))
            rows.append({"model": model, "size": int(size), "metric": metric,
                         "mean": float(v.mean()),
                         "std": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                         "low": low, "high": high, "repeats": len(v)})
        return pd.DataFrame(rows)

    def _curve(self, model: str, summary: pd.DataFrame) -> pd.DataFrame:
        rows = summary[(summary["model"] == model) & (summary["metric"] == self.metric)]
        return rows.set_index("size").loc[self.sizes]

    def crossover_size(self) -> int | None:
        """:func:`crossover` of the headline metric; None also without both models."""
        if NETWORK not in self.models or FOREST not in self.models:
            return None
        summary = self.summary()
        net, rf = (self._curve(m, summary)[["low", "high"]].to_numpy() for m in (NETWORK, FOREST))
        return crossover(self.sizes, net, rf, LOWER_IS_BETTER[self.metric])

    def sentence(self) -> str | None:
        """The crossover in words; None without both the network and the forest."""
        if NETWORK not in self.models or FOREST not in self.models:
            return None
        size = self.crossover_size()
        if size is not None:
            return (f"The network ({NETWORK}) beats the forest ({FOREST}) in {self.metric} "
                    f"from {size:,} training rows on, with non-overlapping intervals "
                    f"({self.interval_kind}).")
        tried = ", ".join(f"{s:,}" for s in self.sizes)
        return (f"The network ({NETWORK}) does not beat the forest ({FOREST}) in {self.metric} "
                f"with non-overlapping intervals ({self.interval_kind}): not within the "
                f"sizes tried ({tried}).")

    def figure(self):
        summary = self.summary()
        curves = {m: self._curve(m, summary) for m in self.models}
        unit = f" ({self.unit})" if self.unit and self.task == "regression" else ""
        return plots.error_vs_size(
            self.sizes, {m: c["mean"].to_numpy() for m, c in curves.items()},
            {m: c[["low", "high"]].to_numpy() for m, c in curves.items()},
            ylabel=f"test {self.metric}{unit}", crossover=self.crossover_size())

    def to_dict(self) -> dict:
        summary = self.summary()
        return {
            "name": self.name, "task": self.task, "unit": self.unit, "sizes": self.sizes,
            "repeats": self.repeats, "n_pool": self.n_pool, "n_test": self.n_test,
            "metric": self.metric, "interval": self.interval_kind,
            "crossover": self.crossover_size(), "sentence": self.sentence(),
            "settings": self.settings, "notes": self.notes,
            "summary": summary.to_dict(orient="records"),
            "scores": self.scores.to_dict(orient="records"),
        }


def learning_curve(
    pool: pd.DataFrame,
    test: pd.DataFrame,
    *,
    sizes: Sequence[int] | str = DEFAULT_SIZES,
    repeats: int = 3,
    models: Sequence[str] | None = None,
    task: str = "auto",
    epochs: int | None = None,
    recipe: str | None = None,
    seed: int = 0,
    unit: str = "",
    name: str = "data",
    notes: Sequence[str] = (),
    drop_unsupported: bool = False,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
) -> LearningCurve:
    """Test scores of every model trained on subsets of ``pool`` of each size.

    Args:
        pool: DataFrame (formula, target): the rows subsets are drawn from.
        test: DataFrame (formula, target): the one test set every model is scored on.
        sizes: training-set sizes (each >= 10 and at most ``len(pool)``).
        repeats: subsets drawn per size (>= 1); the intervals are over repeats when >= 2.
        models, task, epochs, recipe, drop_unsupported: as in ``compare``.
        seed: the run's seed; subsets, validation rows and job seeds derive from it.
        cache_dir, jobs, scheduler, progress: as in
            :func:`stoichnet.evaluate.cv.cross_validate`.

    Raises:
        ValueError: a size larger than the pool (naming them), repeats < 1, ... before any
            training.
    """
    sizes = parse_sizes(sizes)
    repeats = check_int("repeats", repeats, 1)
    seed = check_int("seed", seed, 0)
    both = pd.concat([pool.assign(_part="pool"), test.assign(_part="test")], ignore_index=True)
    frame, task, models, kept = prepare_rows(both.drop(columns="_part"), models, task,
                                             drop_unsupported)
    part = both["_part"].to_numpy()[kept]
    pool, test = frame[part == "pool"].reset_index(drop=True), frame[part == "test"]
    test = test.reset_index(drop=True)
    too_big = [s for s in sizes if s > len(pool)]
    if too_big:
        raise ValueError(f"sizes {too_big} exceed the training pool of {len(pool):,} rows; "
                         f"use sizes up to {len(pool):,}")
    if len(test) == 0:
        raise ValueError("the test set has no rows")
    n_resamples = N_RESAMPLES if repeats == 1 else 1
    job_list, settings = [], {"models": models, "epochs": epochs, "recipe": recipe,
                              "seed": seed, "sizes": sizes, "repeats": repeats}
    test_digest = digest(test)
    for r in range(repeats):
        order = np.random.default_rng(job_seed(seed, f"repeat={r}/subsets")).permutation(
            len(pool))
        for size in sizes:
            subset = pool.iloc[np.sort(order[:size])]
            if task == "classification" and subset["target"].nunique() < 2:
                raise ValueError(f"the {size} training rows of repeat {r} hold only class "
                                 f"{subset['target'].unique().tolist()}; use larger sizes")
            fit, val = inner_split(subset, False, job_seed(seed, f"repeat={r}/size={size}/val"))
            for model in models:
                key = f"size={size}/repeat={r}/model={model}"
                train = subset.iloc[fit] if model in NETWORKS[task] else subset
                kwargs = {"train": train, "val": subset.iloc[val], "test": test, "model": model,
                          "task": task, "epochs": epochs, "recipe": recipe,
                          "seed": job_seed(seed, key), "n_resamples": n_resamples}
                config = {k: v for k, v in kwargs.items() if k not in ("train", "val", "test")}
                job_list.append(Job(key, fit_and_score, kwargs, fingerprint(
                    "stoichnet.learning-curve", config, digest(train),
                    digest(subset.iloc[val]), test_digest)))
    start = time.perf_counter()
    outcomes = run_jobs(job_list, cache_dir=cache_dir, n_jobs=jobs, scheduler=scheduler,
                        progress=progress or None)
    settings["wall_seconds"] = time.perf_counter() - start
    rows = []
    for key, out in outcomes.items():
        size, r, model = (item.split("=")[1] for item in key.split("/"))
        for metric in METRICS[task]:
            rows.append({"size": int(size), "repeat": int(r), "model": model, "metric": metric,
                         **out["metrics"][metric]})
    return LearningCurve(name, task, unit, sizes, repeats, models, len(pool), len(test),
                         pd.DataFrame(rows), settings, list(notes))


def write_learning_curve(result: LearningCurve, out_dir: str | Path,
                         overwrite: bool = False) -> list[Path]:
    """Write learning_curve.json (everything), learning_curve.csv (the summary: one row per
    model x size x metric) and learning_curve.png into ``out_dir``, atomically; other files
    there (the jobs/ cache) are left alone."""
    out = Path(out_dir)
    check_cv_output(out, overwrite, FILES)
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / FILES[0]).write_text(json.dumps(result.to_dict(), indent=2, default=str))
        result.summary().to_csv(tmp / FILES[1], index=False)
        result.figure().savefig(tmp / FILES[2], dpi=110)
    return [out / n for n in FILES]
