import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition as PymatgenComposition

from stoichnet.chem.datasets import load_dataset
from stoichnet.chem.formula import FormulaError, parse_formula
from stoichnet.chem.splits import (
    MATBENCH_SEED,
    chemical_system_kfold,
    chemical_system_split,
    chemical_systems,
    kfold_indices,
    leave_element_out,
    matbench_folds,
    train_val_test_split,
)


@pytest.fixture(scope="module")
def critexam(data_dir):
    return load_dataset("CritExam__Ef", split="train", data_dir=data_dir, download=False)


def assert_partition(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


# --- random splits -------------------------------------------------------------------

def test_random_split_sizes_partition_and_seed():
    parts = train_val_test_split(1001, seed=3)
    assert [len(p) for p in parts] == [701, 150, 150]  # round(0.15 * 1001) = 150
    assert_partition(parts, 1001)
    assert all(np.all(np.diff(p) > 0) and p.dtype == np.int64 for p in parts)
    again = train_val_test_split(1001, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = train_val_test_split(1001, seed=4)
    assert not np.array_equal(parts[2], other[2])
    from_generator = train_val_test_split(1001, seed=np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(parts, from_generator, strict=True))


def test_random_split_of_a_frame_and_two_sizes():
    frame = pd.DataFrame({"formula": [f"H{i + 1}" for i in range(20)], "target": range(20)},
                         index=range(100, 120))
    train, test = train_val_test_split(frame, (0.75, 0.25), seed=0)
    assert len(train) == 15 and len(test) == 5
    assert sorted([*train.index, *test.index]) == list(range(100, 120))
    assert (train["target"] == train.index - 100).all()


@pytest.mark.parametrize(
    ("sizes", "n", "message"),
    [((0.7, 0.2, 0.2), 100, "sum to 1"), ((1.2, -0.2), 100, "positive"),
     ((0.5, 0.5, 0.0), 100, "positive"), ((1.0,), 100, "expected 2 fractions"),
     ((0.7, float("nan"), 0.3), 100, "fractions"), ((0.98, 0.01, 0.01), 20, r"\['val', 'test'\]"),
     ((0.7, 0.15, 0.15), 0, "positive")],
)
def test_random_split_rejects_bad_sizes(sizes, n, message):
    with pytest.raises(ValueError, match=message):
        train_val_test_split(n, sizes, seed=0)


@pytest.mark.parametrize("seed", [1.5, True, "0", None])
def test_seed_must_be_an_int_or_generator(seed):
    with pytest.raises(TypeError, match="seed"):
        train_val_test_split(10, seed=seed)


def test_a_negative_seed_is_out_of_range():
    # an int of the right type outside the allowed range: ValueError (issue 12, item 6)
    with pytest.raises(ValueError, match="seed"):
        train_val_test_split(10, seed=-1)


def test_seed_is_required():
    with pytest.raises(TypeError, match="seed"):
        train_val_test_split(10)  # no hidden default: every split names its seed


def test_kfold_covers_every_row_once_and_respects_groups():
    folds = kfold_indices(103, 5, seed=0)
    assert len(folds) == 5
    assert_partition([test for _, test in folds], 103)
    for train, test in folds:
        assert_partition([train, test], 103)
    assert all(np.array_equal(a[1], b[1])
               for a, b in zip(folds, kfold_indices(103, 5, seed=0), strict=True))
    groups = np.arange(103) // 4
    grouped = kfold_indices(103, 4, seed=1, groups=groups)
    assert_partition([test for _, test in grouped], 103)
    for train, test in grouped:
        assert not set(groups[train]) & set(groups[test])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_splits": 1}, "n_splits"), ({"n_splits": 11}, "exceeds the number of rows"),
     ({"groups": [0] * 9}, r"shape \(9,\)"), ({"groups": [0, 1] * 5, "n_splits": 3}, "groups 2")],
)
def test_kfold_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kfold_indices(10, seed=0, **kwargs)


# --- chemical systems --------------------------------------------------------------------

@pytest.mark.oracle
def test_chemical_systems_agree_with_pymatgen(critexam):
    sample = critexam["formula"].iloc[::30].tolist() + ["Fe2O3", "Ca(OH)2", "NaN", "K4[Fe(CN)6]"]
    ours = chemical_systems(sample)
    theirs = [PymatgenComposition(f).chemical_system for f in sample]
    assert ours.tolist() == theirs
    assert chemical_systems([parse_formula("O3Fe2"), "Fe3O4"]).tolist() == ["Fe-O", "Fe-O"]


def test_chemical_systems_name_the_bad_row():
    with pytest.raises(FormulaError, match="row 1"):
        chemical_systems(["NaCl", "Xq2"])


@pytest.mark.slow
def test_no_chemical_system_on_two_sides_on_real_data(critexam):
    systems = chemical_systems(critexam["formula"])
    n = len(systems)
    parts = chemical_system_split(critexam["formula"], 0.2, val_size=0.1, seed=7)
    train, val, test = parts
    assert_partition(parts, n)
    sides = [set(systems[p]) for p in parts]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    assert abs(len(test) - 0.2 * n) < 0.005 * n and abs(len(val) - 0.1 * n) < 0.005 * n
    again = chemical_system_split(critexam["formula"], 0.2, val_size=0.1, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = chemical_system_split(critexam["formula"], 0.2, val_size=0.1, seed=8)
    assert not np.array_equal(test, other[2])
    folds = chemical_system_kfold(critexam["formula"], 5, seed=0)
    assert_partition([t for _, t in folds], n)
    seen = set()
    for train_fold, test_fold in folds:
        test_systems = set(systems[test_fold])
        assert not test_systems & set(systems[train_fold]) and not test_systems & seen
        seen |= test_systems


def test_chemical_system_split_keeps_polymorph_systems_together():
    formulas = ["Fe2O3", "Fe3O4", "FeO", "NaCl", "Na2Cl2", "KBr", "LiF", "CuO", "Cu2O", "MgO"]
    for seed in range(10):
        train, test = chemical_system_split(formulas, 0.3, seed=seed)
        assert_partition([train, test], 10)
        fe_o = {0, 1, 2}
        assert fe_o <= set(train) or fe_o <= set(test)


@pytest.mark.parametrize(
    ("test_size", "val_size"), [(0.0, 0.0), (1.0, 0.0), (0.6, 0.4), (0.2, -0.1)]
)
def test_chemical_system_split_rejects_bad_sizes(test_size, val_size):
    with pytest.raises(ValueError, match="test_size"):
        chemical_system_split(["NaCl", "KCl"], test_size, val_size=val_size, seed=0)


def test_one_chemical_system_cannot_be_split():
    with pytest.raises(ValueError, match="1 chemical systems cannot be split"):
        chemical_system_split(["Fe2O3", "Fe3O4", "FeO"], 0.3, seed=0)


# --- leave-one-element-out and matbench folds ------------------------------------------

LITHIUM = ["LiF", "Li2O", "NaCl", "LiFePO4", "Fe2O3", "KBr", "Li", "MgO"]


def test_leave_element_out_tests_every_formula_with_the_element_and_trains_on_the_rest():
    [(train, test)] = leave_element_out(LITHIUM, "Li")
    assert test.tolist() == [0, 1, 3, 6] and train.tolist() == [2, 4, 5, 7]
    assert_partition([train, test], len(LITHIUM))


@pytest.mark.parametrize(("element", "error", "message"), [
    ("Cs", ValueError, "no formula of the 8 contains it"),
    ("Xx", ValueError, "unknown element symbol 'Xx'"),
    ("li", ValueError, "unknown element symbol 'li'"),
    (3, TypeError, "symbol such as 'Li'"),
])
def test_leave_element_out_refuses_an_element_no_formula_has(element, error, message):
    with pytest.raises(error, match=message):
        leave_element_out(LITHIUM, element)


def test_leave_element_out_refuses_an_element_every_formula_has():
    with pytest.raises(ValueError, match="every one of the 3 formulas contains it"):
        leave_element_out(["FeO", "Fe2O3", "Fe"], "Fe")


def test_matbench_folds_are_sklearns_kfold_with_matbenchs_seed():
    from sklearn.model_selection import KFold

    assert MATBENCH_SEED == 18012019
    folds = matbench_folds(4921)
    expected = KFold(n_splits=5, shuffle=True, random_state=18012019).split(np.zeros(4921))
    for (train, test), (want_train, want_test) in zip(folds, expected, strict=True):
        assert np.array_equal(train, want_train) and np.array_equal(test, want_test)
    assert_partition([test for _, test in folds], 4921)
    assert matbench_folds(pd.DataFrame({"a": range(12)}))[0][1].tolist() == (
        matbench_folds(12)[0][1].tolist())
    with pytest.raises(ValueError, match="at least 5 rows"):
        matbench_folds(4)


@pytest.mark.parametrize("seed", [0, 7])
def test_every_fold_generator_is_disjoint_and_covers_every_row_once(critexam, seed):
    formulas = critexam["formula"].iloc[:600]
    for folds in (kfold_indices(600, 5, seed=seed), chemical_system_kfold(formulas, 5, seed=seed),
                  matbench_folds(600)):
        assert_partition([test for _, test in folds], 600)
        for train, test in folds:
            assert not np.intersect1d(train, test).size and len(train) + len(test) == 600
    systems = chemical_systems(formulas)
    fold_of = {}
    for k, (_, test) in enumerate(chemical_system_kfold(formulas, 5, seed=seed)):
        for system in set(systems[test]):
            assert fold_of.setdefault(system, k) == k  # never in two test folds
