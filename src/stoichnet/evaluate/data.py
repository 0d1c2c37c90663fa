"""Which rows a run trains, stops early and is scored on: the data policy of
``stoichnet compare``/``train``/``study``, for Python users too.

- A registered dataset with train/val/test files uses them; one with a single file is
  split 70/15/15 at random (:data:`SPLIT_SIZES`, seeded).
- Tables of one's own: ``train`` and (for scoring) ``test``; without ``val``, a seeded
  :data:`VALIDATION_FRACTION` of ``train`` is held out for early stopping.
- ``subset=n`` keeps a seeded random ``n`` rows of each split (quick runs).

Every such choice is recorded in :attr:`Split.notes`, so the user is told.

>>> split = load_split("CritExam__Ef", subset=2000)  # doctest: +SKIP
>>> print(split.describe()); print(*split.notes, sep="\\n")
>>> data = study_data(split)  # element fractions for run_study
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stoichnet.chem import (
    ElementFractions,
    get_dataset,
    load_dataset,
    read_table,
    train_val_test_split,
)
from stoichnet.evaluate.compare import TASKS, detect_task
from stoichnet.evaluate.study import StudyData
from stoichnet.util.checks import check_choice, check_int

SPLIT_SIZES = (0.7, 0.15, 0.15)
"""(train, val, test) fractions of a dataset that comes as one file."""

VALIDATION_FRACTION = 0.1
"""Fraction of a ``train`` table held out for early stopping when no ``val`` is given."""


@dataclass
class Split:
    """The rows a run trains and tests on, and what the user should be told.

    Attributes:
        name: the dataset's name, or the training table's file name.
        train, val: DataFrames with columns ``formula`` and ``target`` (index 0..n-1).
        test: the same, or None (``load_split(need_test=False)`` without a test table).
        unit: the target's unit (a registered dataset's, e.g. "eV/atom"), else "".
        notes: one sentence per choice made for the user (random split, subset, ...).
    """

    name: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame | None
    unit: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line, e.g. "CritExam__Ef: 1,400 train / 300 val / 300 test rows"."""
        parts = [f"{len(self.train):,} train", f"{len(self.val):,} val"]
        if self.test is not None:
            parts.append(f"{len(self.test):,} test")
        return f"{self.name}: {' / '.join(parts)} rows"


class LabelAveragingError(ValueError):
    """``duplicates="mean"`` on a table whose target holds class labels: averaging would
    turn them into fractions. ``path`` is the table."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        super().__init__(
            f"duplicates='mean' would average the class labels of {self.path} into fractions: "
            "use 'first', 'raise' or 'keep' (or task='regression', if the 0/1 target is a "
            "quantity)")


def _read(path, formula_col: str, target_col: str, duplicates: str, task: str) -> pd.DataFrame:
    """One table of one's own; refuses to average class labels (see LabelAveragingError)."""
    if duplicates == "mean" and task != "regression":
        kept = read_table(path, formula_col, target_col, duplicates="keep")
        if task == "classification" or detect_task(kept["target"]) == "classification":
            raise LabelAveragingError(path)
    return read_table(path, formula_col, target_col, duplicates=duplicates)


def load_split(
    dataset: str | None = None,
    *,
    train: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    test: str | os.PathLike | None = None,
    formula_col: str = "formula",
    target_col: str = "target",
    duplicates: str | None = None,
    subset: int | None = None,
    seed: int = 0,
    need_test: bool = True,
    task: str = "auto",
) -> Split:
    """The train/val/test rows of a registered ``dataset`` or of one's own tables.

    Args:
        dataset: a registered name (``stoichnet.chem.list_datasets()``), or None with
            ``train``.
        train, val, test: table files (.csv, .tsv, .xlsx, .parquet), instead of ``dataset``.
        formula_col, target_col: the tables' columns (renamed ``formula``, ``target``).
        duplicates: rows of one split with the same composition: "raise" (default for
            tables), "mean", "first" or "keep" (a dataset's default: keep and warn).
        subset: keep a seeded random ``subset`` rows of each split (>= 2), or None.
        seed: seed of the random splits and subsets.
        need_test: refuse a ``train`` table without a ``test`` one.
        task: "auto", "regression" or "classification"; guards ``duplicates="mean"``
            against class labels.

    Raises:
        ValueError: neither or both of ``dataset``/``train``; ``val``/``test`` with a
            dataset; no ``test`` although ``need_test``; LabelAveragingError.
    """
    check_choice("task", task, ("auto", *TASKS))
    seed = check_int("seed", seed, 0)
    if subset is not None:
        subset = check_int("subset", subset, 2)
    if (dataset is None) == (train is None):
        raise ValueError("give either dataset or train (not both)")
    notes, unit = [], ""
    if dataset is not None:
        if val is not None or test is not None:
            raise ValueError("val/test tables go with train, not with a dataset")
        entry = get_dataset(dataset)
        name, unit = entry.name, entry.unit
        if {"train", "val", "test"} <= set(entry.splits):
            train, val, test = (load_dataset(name, s, duplicates=duplicates, progress=False)
                                for s in ("train", "val", "test"))
        else:
            frame = load_dataset(name, duplicates=duplicates, progress=False)
            train, val, test = train_val_test_split(frame, SPLIT_SIZES, seed=seed)
            notes.append(f"{name} has one file: split 70/15/15 at random (seed {seed})")
    else:
        if need_test and test is None:
            raise ValueError("a train table needs a test table (the rows the models are "
                             "scored on)")
        policy = duplicates or "raise"
        name = Path(train).name
        train = _read(train, formula_col, target_col, policy, task)
        test = None if test is None else _read(test, formula_col, target_col, policy, task)
        if val is not None:
            val = _read(val, formula_col, target_col, policy, task)
        else:
            train, val = train_val_test_split(
                train, (1 - VALIDATION_FRACTION, VALIDATION_FRACTION), seed=seed)
            notes.append(f"no --val: early stopping on a random 10% of --train (seed {seed})")
    if subset:
        train, val, test = (
            None if t is None else t.sample(n=min(subset, len(t)), random_state=seed).sort_index()
            for t in (train, val, test)
        )
        notes.append(f"--subset {subset}: a random {subset} rows of each split (seed {seed})")
    return Split(name, *(None if t is None else t.reset_index(drop=True)
                         for t in (train, val, test)), unit=unit, notes=notes)


def study_data(split: Split) -> StudyData:
    """The split as ``run_study`` takes it: ElemNet element fractions (n, 86) float32 and
    float64 targets of train, val and test, plus the train and test formulas."""
    if split.test is None:
        raise ValueError("a study needs test rows")
    fractions = ElementFractions()
    return StudyData(
        *(a for t in (split.train, split.val, split.test)
          for a in (fractions.transform(t["formula"]), t["target"].to_numpy(dtype=np.float64))),
        formulas_train=tuple(split.train["formula"]),
        formulas_test=tuple(split.test["formula"]),
    )
