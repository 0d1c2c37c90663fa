"""Roost and CrabNet from the command line: compare with noble-gas rows (no
--drop-unsupported: only ElemNet's 86 inputs lack He, Ne, Ar; the forest's Magpie table
has them), train --model and predict from the model file."""

import json

import numpy as np
import pandas as pd
import pytest

from stoichnet.chem.element_sets import element_sets
from stoichnet.cli import main
from stoichnet.nn import load_model

FORMULAS = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2",
            "LiF", "KBr", "Fe3O4", "MnO2", "NiO", "CoO", "Cr2O3", "V2O5", "BaTiO3", "SrTiO3",
            "He", "Ne", "Ar", "XeF2", "KrF2", "ArH", "HeNa2", "NeLi", "Li2O", "Na2S"]


def _tables(folder):
    rng = np.random.default_rng(0)
    paths = []
    for name, rows in (("train", FORMULAS), ("val", FORMULAS[::3]), ("test", FORMULAS[1::2])):
        path = folder / f"{name}.csv"
        pd.DataFrame({"formula": rows, "target": rng.normal(size=len(rows))}).to_csv(path,
                                                                                     index=False)
        paths.append(path)
    return paths


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_compare_roost_and_forest_take_noble_gases(tmp_path, capsys):
    train, val, test = _tables(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "compare", "--train", train, "--val", val, "--test", test,
                             "--models", "roost,rf", "--epochs", 1, "--out", out)
    assert code == 0, err
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["formula", "target", "roost", "rf", "rf sigma"]
    assert {"Ne", "XeF2", "ArH"} <= set(predictions["formula"])
    assert np.isfinite(predictions[["roost", "rf"]].to_numpy()).all()
    # ElemNet among the models: its 86 inputs still refuse the same rows
    code, _, err = _run(capsys, "compare", "--train", train, "--val", val, "--test", test,
                        "--models", "elemnet,roost", "--epochs", 1, "--out", tmp_path / "e")
    assert code != 0 and "outside the network's 86 inputs" in err


def test_train_crabnet_then_predict(tmp_path, capsys):
    train, val, test = _tables(tmp_path)
    model = tmp_path / "crab.npz"
    code, out, err = _run(capsys, "train", "--model", "crabnet", "--train", train, "--val", val,
                          "--test", test, "--epochs", 1, "--out", model)
    assert code == 0, err
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["featurization"] == "element_sets" and card["hyperparameters"]["d_model"] == 256
    code, out, err = _run(capsys, "predict", model, "Fe2O3", "Qq", "He")
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["Fe2O3", "He"]
    network = load_model(model)
    expected = network.predict(element_sets(["Fe2O3", "He"], width=8).X)[:, 0]
    np.testing.assert_allclose([float(line.split()[1]) for line in lines[1:]], expected,
                               rtol=1e-4)
    assert "row 2: 'Qq'" in err
    code, _, err = _run(capsys, "train", "--model", "roost", "--init", "pretrained",
                        "--train", train, "--val", val, "--out", tmp_path / "r.npz")
    assert code != 0 and "--init starts from a trained ElemNet network" in err


def test_a_roost_ensemble_file_predicts_from_element_sets(tmp_path, capsys):
    """train --model roost --ensemble 2: the file's card says element sets (the members'
    input), so predict reads formulas as sets and gives the members' mean ± sigma."""
    train, val, test = _tables(tmp_path)
    model = tmp_path / "r2.npz"
    code, _, err = _run(capsys, "train", "--model", "roost", "--ensemble", 2, "--train", train,
                        "--val", val, "--test", test, "--epochs", 1, "--out", model)
    assert code == 0, err
    assert json.loads(model.with_suffix(".json").read_text())["featurization"] == "element_sets"
    code, out, err = _run(capsys, "predict", model, "Fe2O3", "He")
    assert code == 0, err
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert [row[0] for row in rows] == ["Fe2O3", "He"] and all(row[2] == "±" for row in rows)
