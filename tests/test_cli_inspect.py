"""`stoichnet inspect`: a small network trained in the test, inspected on a table and on
a registered dataset's test rows; what it prints against what it writes, and its refusals."""

import json

import numpy as np
import pandas as pd
import pytest

from stoichnet.chem import ELEMNET_ELEMENTS, ElementFractions, element_table
from stoichnet.cli import main
from stoichnet.evaluate.inspect import FILES
from stoichnet.evaluate.model_card import save_network
from stoichnet.models import ElemNetRegressor


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def random_formulas(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(f"{e}{rng.integers(1, 5)}"
                    for e in rng.choice(ELEMNET_ELEMENTS, size=rng.integers(1, 4), replace=False))
            for _ in range(n)]


def mean_electronegativity(formulas) -> np.ndarray:
    table = element_table("magpie").to_frame()
    return (ElementFractions().transform(formulas)
            @ table.loc[list(ELEMNET_ELEMENTS), "Electronegativity"].to_numpy())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-epoch 32x2D-16-1 network on 300 formulas, saved as `stoichnet train` saves it,
    and a table of 200 other formulas."""
    folder = tmp_path_factory.mktemp("inspect")
    formulas = random_formulas(300, seed=0)
    net = ElemNetRegressor("32x2D-16-1", epochs=3, random_state=0)
    net.fit(formulas, mean_electronegativity(formulas))
    model = folder / "m.npz"
    save_network(net, model, {"unit": "Pauling"})
    held_out = random_formulas(200, seed=1)
    table = folder / "held_out.csv"
    pd.DataFrame({"formula": held_out, "en": mean_electronegativity(held_out)}).to_csv(
        table, index=False)
    return model, table


@pytest.mark.slow
def test_inspect_a_table(trained, tmp_path, capsys):
    model, table = trained
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "inspect", model, "--data", table, "--target-col", "en",
                             "--sample", 150, "--folds", 3, "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    summary = json.loads((out / "inspect.json").read_text())
    assert summary["samples"] == 150 and summary["folds"] == 3 and summary["unit"] == "Pauling"
    assert summary["model"] == str(model) and summary["target"] == "en"
    layers = [row["layer"] for row in summary["layers"]]
    assert layers == ["input", "dense", "dense_1", "dense_2", "dense_3"]  # dropout left out
    assert "a random 150 of the 200 formulas (seed 0)" in err
    # the printed table is the CSV's
    csv = pd.read_csv(out / "inspect.csv")
    printed = stdout.splitlines()
    assert printed[0].split()[:3] == ["layer", "width", "dead_fraction"]
    for line, (_, row) in zip(printed[1:6], csv.iterrows(), strict=True):
        cells = line.split()
        assert cells[0] == row["layer"] and float(cells[-6]) == pytest.approx(
            row["r2 target"], abs=5e-4)
    assert "Elements in dense: the nearest neighbour of" in stdout
    # the same run again: refused, then replaced with --overwrite
    code, _, err = _run(capsys, "inspect", model, "--data", table, "--target-col", "en",
                        "--out", out)
    assert code == 1 and "--overwrite" in err
    code, _, _ = _run(capsys, "inspect", model, "--data", table, "--target-col", "en",
                      "--sample", 100, "--folds", 2, "--out", out, "--overwrite")
    assert code == 0 and json.loads((out / "inspect.json").read_text())["samples"] == 100


def test_inspect_a_datasets_test_rows(trained, tmp_path, capsys, data_dir):
    model, _ = trained
    code, stdout, err = _run(capsys, "inspect", model, "--dataset", "CritExam__Ef", "--sample",
                             120, "--folds", 2, "--element-layer", "dense_1", "--out", tmp_path)
    assert code == 0, err
    assert "CritExam__Ef: its 12,753 test rows" in err
    summary = json.loads((tmp_path / "inspect.json").read_text())
    assert summary["unit"] == "eV/atom" and summary["element_layer"] == "dense_1"
    assert "Elements in dense_1" in stdout


@pytest.mark.parametrize("args, message", [
    ((), "either --dataset NAME or --data FILE"),
    (("--dataset", "CritExam__Ef", "--data", "TABLE"), "(not both)"),
    (("--projection", "tsne"), "'tsne' is not one of 'pca', 'umap'"),
])
def test_usage_errors(trained, tmp_path, capsys, args, message):
    model, table = trained
    args = [table if a == "TABLE" else a for a in args]
    code, _, err = _run(capsys, "inspect", model, "--out", tmp_path, *args)
    assert code == 2 and message in err


def test_errors_say_what_is_wrong(trained, tmp_path, capsys):
    model, table = trained
    code, _, err = _run(capsys, "inspect", model, "--data", table, "--target-col", "en",
                        "--element-layer", "dropout", "--out", tmp_path)
    assert code == 1 and "element_layer must be one of" in err
    try:
        import umap  # noqa: F401
    except ImportError:
        code, _, err = _run(capsys, "inspect", model, "--data", table, "--target-col", "en",
                            "--projection", "umap", "--out", tmp_path)
        assert code == 2 and "pip install umap-learn" in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_help_has_examples(capsys):
    code, out, _ = _run(capsys, "inspect", "--help")
    assert code == 0 and "Examples:" in out and "stoichnet inspect " in out
