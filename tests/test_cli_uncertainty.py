"""`stoichnet train --ensemble` / `--loss gaussian_nll` and `predict` with uncertainties and
the domain warning, end to end on small tables (sigma recomputed from the saved networks)."""

import json

import numpy as np
import pandas as pd
import pytest

from stoichnet.chem import ElementFractions
from stoichnet.cli import main
from stoichnet.nn import load_models

FORMULAS = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2",
            "LiF", "KBr", "Fe3O4", "MnO2", "NiO", "CoO", "Cr2O3", "V2O5", "BaTiO3", "SrTiO3"]


def _csv(path, n, seed):
    rng = np.random.default_rng(seed)
    formulas = [FORMULAS[i % len(FORMULAS)] for i in range(n)]
    y = np.array([f.count("O") for f in formulas], float) + 0.1 * rng.normal(size=n)
    pd.DataFrame({"formula": formulas, "target": y}).to_csv(path, index=False)
    return path


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("k", [0, 1, -3])
def test_an_ensemble_needs_two_members(tmp_path, capsys, k):
    train = _csv(tmp_path / "train.csv", 40, 0)
    code, _, err = _run(capsys, "train", "--train", train, "--duplicates", "keep",
                        "--ensemble", k, "--out", tmp_path / "m.npz")
    assert code == 2 and f"an ensemble needs at least 2 members, got {k}" in err
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.slow
def test_ensemble_train_and_predict_end_to_end(tmp_path, capsys):
    """Two members in one model file; the card holds both seeds, the recalibration fitted
    on the validation rows and the domain; predict prints value ± sigma and writes sigma
    and the 95% bounds, equal to the members' spread (numpy) times the card's scale; a
    formula with an unseen element is flagged with the reason."""
    train = _csv(tmp_path / "train.csv", 200, 1)
    test = _csv(tmp_path / "test.csv", 20, 2)
    model = tmp_path / "ens.npz"
    code, out, _ = _run(capsys, "train", "--train", train, "--test", test, "--epochs", 2,
                        "--duplicates", "keep", "--ensemble", 2, "--bootstrap",
                        "--recalibration", "scale", "--out", model)
    assert code == 0 and "Trained 2 networks" in out and "95%:" in out
    card = json.loads(model.with_suffix(".json").read_text())
    assert len(card["seeds"]) == 2 and card["uncertainty"] == ["ensemble"]
    assert card["ensemble"] == {"members": 2, "bootstrap": True}
    assert card["recalibration"]["method"] == "scale" and card["recalibration"]["n_rows"] >= 20
    assert set(card["calibration_test"]) == {"raw", "recalibrated"}
    assert "Pu" not in card["domain"]["elements"]
    code, out, err = _run(capsys, "predict", model, "Fe2O3", "NaCl", "PuO2")
    assert code == 0 and "±" in out
    assert "row 3: warning: 'PuO2' lies outside the training domain: element(s) Pu absent" in err
    output = tmp_path / "p.csv"
    code, _, _ = _run(capsys, "predict", model, "Fe2O3", "NaCl", "PuO2", "--output", output)
    frame = pd.read_csv(output, keep_default_na=False)
    assert list(frame.columns) == ["row", "formula", "prediction", "sigma", "low 95%",
                                   "high 95%", "domain"]
    X = ElementFractions().transform(["Fe2O3", "NaCl", "PuO2"])
    members = np.array([net.predict(X)[:, 0] for net in load_models(model)], dtype=np.float64)
    scale = card["recalibration"]["scale"]
    np.testing.assert_allclose(frame["prediction"], members.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(frame["sigma"], scale * members.std(axis=0), rtol=1e-5)
    np.testing.assert_allclose(frame["high 95%"] - frame["prediction"],
                               1.959964 * scale * members.std(axis=0), rtol=1e-5)
    assert frame["domain"].tolist()[:2] == ["", ""] and "Pu" in frame["domain"][2]


@pytest.mark.slow
def test_gaussian_head_from_the_command_line_and_a_model_without_uncertainty(tmp_path, capsys):
    train = _csv(tmp_path / "train.csv", 120, 3)
    head, plain = tmp_path / "head.npz", tmp_path / "plain.npz"
    assert main(["train", "--train", str(train), "--epochs", "2", "--duplicates", "keep",
                 "--loss", "gaussian_nll", "--out", str(head)]) == 0
    card = json.loads(head.with_suffix(".json").read_text())
    assert card["uncertainty"] == ["aleatoric"] and card["hyperparameters"]["loss"] == (
        "gaussian_nll")
    (net,) = load_models(head)
    assert net.output_shape == (2,)
    code, out, _ = _run(capsys, "predict", head, "MgO", "--uncertainty")
    assert code == 0 and "±" in out
    assert main(["train", "--train", str(train), "--epochs", "1", "--duplicates", "keep",
                 "--out", str(plain)]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, "predict", plain, "MgO", "--uncertainty")
    assert code == 2 and "this model has no uncertainty" in err and "--ensemble" in err


@pytest.mark.parametrize("flag, says", [(("--jobs", 2), "they need --ensemble K"),
                                        (("--bootstrap",), "it needs --ensemble K")])
def test_ensemble_options_without_an_ensemble_are_a_usage_error(tmp_path, capsys, flag, says):
    train = _csv(tmp_path / "train.csv", 40, 0)
    code, _, err = _run(capsys, "train", "--train", train, "--duplicates", "keep",
                        *flag, "--out", tmp_path / "m.npz")
    assert code == 2 and says in err
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.slow
def test_ensemble_members_as_jobs_write_the_serial_model_file(tmp_path, capsys):
    """--ensemble 2 --jobs 2 (two worker processes) saves the same networks, weight for
    weight, and the same model card as --ensemble 2 trained one member after the other."""
    train = _csv(tmp_path / "train.csv", 120, 4)
    test = _csv(tmp_path / "test.csv", 20, 5)
    cards = {}
    for jobs in (1, 2):
        model = tmp_path / f"jobs{jobs}.npz"
        code, out, _ = _run(capsys, "train", "--train", train, "--test", test, "--epochs", 2,
                            "--duplicates", "keep", "--ensemble", 2, "--jobs", jobs,
                            "--out", model)
        assert code == 0 and "Trained 2 networks" in out
        cards[jobs] = json.loads(model.with_suffix(".json").read_text())
    serial, parallel = (load_models(tmp_path / f"jobs{j}.npz") for j in (1, 2))
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel, strict=True):
        assert a.flat_params.dtype == b.flat_params.dtype
        assert np.array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(serial[0].flat_params, serial[1].flat_params)
    assert cards[1] == cards[2]
