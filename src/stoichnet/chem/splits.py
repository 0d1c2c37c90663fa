"""Seeded train/validation/test splits and k-fold indices: random, grouped by chemical
system, leave-one-element-out, and Matbench v0.1's folds.

A random split puts Fe2O3 in train and Fe3O4 in test: the model is tested on interpolation
within chemical systems it has seen. The chemical-system split keeps every system (the set
of elements, "Fe-O") wholly on one side, the honest test of generalising to new chemistry
(leave-cluster-out cross-validation, Meredig et al., Mol. Syst. Des. Eng. 3, 819 (2018));
leaving out every formula that contains one element asks the harder question of a model
that has never seen it.
"""

import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold

from stoichnet.util.checks import check_int, check_real

from .composition import Composition
from .formula import parse_formulas
from .periodic_table import atomic_number

__all__ = [
    "MATBENCH_SEED",
    "chemical_system_kfold",
    "chemical_system_split",
    "chemical_systems",
    "kfold_indices",
    "leave_element_out",
    "matbench_folds",
    "train_val_test_split",
]

MATBENCH_SEED = 18012019
"""``random_state`` of Matbench v0.1's outer ``KFold(n_splits=5, shuffle=True)``."""

Seed = int | np.random.Generator


def _generator(seed: Seed) -> np.random.Generator:
    """seed as a Generator: TypeError unless an int or a Generator, ValueError if < 0."""
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(check_int("seed", seed, low=0))
    except TypeError:
        raise TypeError(
            f"seed must be an int >= 0 or a numpy Generator, got {seed!r} ({type(seed).__name__})"
        ) from None


def _random_state(seed: Seed) -> int:
    """An int for scikit-learn's random_state (it does not take a numpy Generator)."""
    return int(_generator(seed).integers(2**32))


def _length(data: int | pd.DataFrame | Sequence) -> int:
    if isinstance(data, numbers.Integral):  # a bool too: check_int refuses it
        n = check_int("data (a number of rows)", data)
        if n < 1:
            raise ValueError(f"number of rows must be positive, got {n}")
        return n
    try:
        return len(data)
    except TypeError:
        raise TypeError(
            f"data must be a number of rows, a DataFrame or a sequence, got {type(data).__name__}"
        ) from None


def _check_fractions(sizes: Sequence[float], names: Sequence[str]) -> np.ndarray:
    fractions = np.asarray(sizes, dtype=np.float64)
    if fractions.shape != (len(names),) or not np.all(np.isfinite(fractions)):
        raise ValueError(f"sizes={sizes!r}: expected {len(names)} fractions for {'/'.join(names)}")
    if np.any(fractions <= 0) or abs(fractions.sum() - 1.0) > 1e-9:
        raise ValueError(f"sizes={sizes!r}: fractions must be positive and sum to 1")
    return fractions


def train_val_test_split(
    data: int | pd.DataFrame | Sequence,
    sizes: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    seed: Seed,
) -> tuple:
    """Random split into train, validation and test (or train and test for two sizes).

    data: a number of rows n, a DataFrame, or any sequence (its positions are split).
    sizes: fractions (train, val, test) or (train, test), positive, summing to 1; the val
        and test counts are ``round(fraction * n)``, train takes the rest.
    seed: int or numpy Generator.
    Returns the DataFrame's rows (``iloc``) for a DataFrame, else sorted int64 positions
    0..n-1, one per split in the order of ``sizes``.
    """
    names = ("train", "val", "test") if len(sizes) == 3 else ("train", "test")
    fractions = _check_fractions(sizes, names)
    n = _length(data)
    counts = np.round(fractions * n).astype(np.int64)
    counts[0] = n - counts[1:].sum()
    if np.any(counts < 1):
        empty = [name for name, c in zip(names, counts, strict=True) if c < 1]
        raise ValueError(f"sizes={tuple(sizes)} leave {empty} empty for {n} rows")
    order = _generator(seed).permutation(n)
    parts = [np.sort(part) for part in np.split(order, np.cumsum(counts)[:-1])]
    if isinstance(data, pd.DataFrame):
        return tuple(data.iloc[part] for part in parts)
    return tuple(parts)


def kfold_indices(
    data: int | pd.DataFrame | Sequence,
    n_splits: int = 5,
    *,
    seed: Seed,
    groups: Sequence | np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold (train, test) index pairs (positions 0..n-1), from scikit-learn.

    groups: optional label per row; rows with the same label are never split between
        train and test (``GroupKFold`` with shuffled groups, scikit-learn >= 1.6).
    Every row is in exactly one test fold.
    """
    n = _length(data)
    n_splits = check_int("n_splits", n_splits, low=2)
    positions = np.zeros((n, 1))
    if groups is None:
        if n_splits > n:
            raise ValueError(f"n_splits={n_splits} exceeds the number of rows {n}")
        folds = KFold(n_splits, shuffle=True, random_state=_random_state(seed)).split(positions)
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups has shape {groups.shape}, expected ({n},)")
        # integer codes: GroupKFold is orders of magnitude slower on string labels
        codes, uniques = pd.factorize(groups, use_na_sentinel=False)
        if n_splits > len(uniques):
            raise ValueError(f"n_splits={n_splits} exceeds the number of groups {len(uniques)}")
        splitter = GroupKFold(n_splits, shuffle=True, random_state=_random_state(seed))
        folds = splitter.split(positions, groups=codes)
    return [(train.astype(np.int64), test.astype(np.int64)) for train, test in folds]


def chemical_systems(formulas: Iterable[str | Composition]) -> np.ndarray:
    """Chemical system of each formula: its elements sorted by symbol and joined by "-"
    ("Fe2O3" and "Fe3O4" -> "Fe-O"). Strings are parsed (``FormulaError`` names a bad
    row); ``Composition`` objects are used as they are. Returns (n,) object array of str."""
    values = np.asarray(
        list(formulas.to_numpy() if isinstance(formulas, pd.Series) else formulas), dtype=object
    )
    systems = np.empty(len(values), dtype=object)
    given = np.fromiter((isinstance(v, Composition) for v in values), bool, count=len(values))
    for i in np.flatnonzero(given):
        systems[i] = "-".join(sorted(values[i].elements))
    text = np.flatnonzero(~given)
    if len(text):
        parsed = parse_formulas(values[text])
        unique_systems = ["-".join(sorted(c.elements)) for c in parsed.compositions]
        systems[text] = [unique_systems[k] for k in parsed.inverse.tolist()]
    return systems


def chemical_system_split(
    formulas: Iterable[str | Composition],
    test_size: float = 0.15,
    *,
    val_size: float = 0.0,
    seed: Seed,
) -> tuple[np.ndarray, ...]:
    """Split rows so that no chemical system is in more than one of train, val and test.

    Systems are shuffled (seeded) and taken whole into test until the test rows are
    closest to ``test_size * n``, then likewise into val; train keeps the rest. Sizes are
    therefore approximate (a system cannot be cut). scikit-learn's GroupShuffleSplit is
    not used because its sizes count groups, not rows.
    Returns sorted int64 positions (train, test), or (train, val, test) when val_size > 0.
    """
    systems = chemical_systems(formulas)
    n = len(systems)
    fractions = [check_real("test_size", test_size), check_real("val_size", val_size)]
    if not 0 < test_size < 1 or not 0 <= val_size < 1 or test_size + val_size >= 1:
        raise ValueError(
            f"test_size={test_size!r}, val_size={val_size!r}: need 0 < test_size, "
            "0 <= val_size and test_size + val_size < 1"
        )
    codes, uniques = pd.factorize(systems)
    rng = _generator(seed)
    order = rng.permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))[order]
    bounds = [0]
    for fraction in fractions if val_size > 0 else fractions[:1]:
        start = bounds[-1]
        taken = np.cumsum(sizes[start:])
        k = int(np.argmin(np.abs(taken - fraction * n))) + 1
        bounds.append(start + k)
    if bounds[-1] >= len(uniques):
        raise ValueError(
            f"{len(uniques)} chemical systems cannot be split into train and "
            f"{len(bounds) - 1} other part(s) with test_size={test_size}, val_size={val_size}"
        )
    part_of = np.empty(len(uniques), dtype=np.int64)
    part_of[order] = np.searchsorted(bounds[1:], np.arange(len(uniques)), side="right")
    # part 0 test, 1 val (if any), last = train
    row_part = part_of[codes]
    parts = [np.flatnonzero(row_part == p) for p in range(len(bounds))]
    train = parts[-1]
    return (train, *parts[:-1][::-1]) if val_size > 0 else (train, parts[0])


def chemical_system_kfold(
    formulas: Iterable[str | Composition], n_splits: int = 5, *, seed: Seed
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold (train, test) positions in which each chemical system is in one test fold
    only (``kfold_indices`` grouped by ``chemical_systems``)."""
    systems = chemical_systems(formulas)
    return kfold_indices(len(systems), n_splits, seed=seed, groups=systems)


def leave_element_out(
    formulas: Iterable[str | Composition], element: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (train, test) pair of positions: test holds every formula that contains
    ``element`` (e.g. "Li"), train every other.

    Raises:
        ValueError: ``element`` is not an element symbol, or no formula / every formula
            contains it (one side would be empty).
    """
    if not isinstance(element, str):
        raise TypeError(f"element must be a symbol such as 'Li', got {element!r}")
    atomic_number(element)
    systems = chemical_systems(formulas)
    has = np.fromiter((element in s.split("-") for s in systems), bool, count=len(systems))
    if not has.any():
        raise ValueError(f"holdout element {element!r}: no formula of the {len(has)} contains "
                         "it, so the test fold would be empty")
    if has.all():
        raise ValueError(f"holdout element {element!r}: every one of the {len(has)} formulas "
                         "contains it, so nothing would be left to train on")
    return [(np.flatnonzero(~has), np.flatnonzero(has))]


def matbench_folds(data: int | pd.DataFrame | Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """Matbench v0.1's five outer (train, test) folds over the rows as given (positions
    0..n-1): ``KFold(n_splits=5, shuffle=True, random_state=MATBENCH_SEED)``.

    They equal Matbench's own folds only when the rows are in the order of its dataset;
    no row may have been dropped, merged or reordered.
    """
    n = _length(data)
    if n < 5:
        raise ValueError(f"the matbench protocol needs at least 5 rows, got {n}")
    folds = KFold(5, shuffle=True, random_state=MATBENCH_SEED).split(np.zeros((n, 1)))
    return [(train.astype(np.int64), test.astype(np.int64)) for train, test in folds]
