"""The formation-energy network shipped in the package: found through importlib.resources,
at most 10 MB, refused when its SHA-256 is not the registered one, accurate on CritExam__Ef
test formulas it never saw (the data themselves are the oracle), with a sigma whose
recalibrated intervals cover those test formulas as stated, and usable from the CLI with no
model file."""

import hashlib
import shutil
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from stoichnet.chem import load_dataset
from stoichnet.cli import main
from stoichnet.evaluate.uncertainty import Recalibration, calibration_report
from stoichnet.models import (
    PRETRAINED,
    ElemNetRegressor,
    load_pretrained,
    predict_dist,
    pretrained,
    shipped,
    uncertainty_kinds,
)
from stoichnet.nn import ModelFileError

PACKAGE_FILES = resources.files("stoichnet.models") / "pretrained"


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_files_are_registered_small_and_described(name):
    entry = PRETRAINED[name]
    data = (PACKAGE_FILES / entry.file).read_bytes()
    assert len(data) <= 10_000_000
    assert hashlib.sha256(data).hexdigest() == entry.sha256
    model, card = load_pretrained(name)
    assert card["unit"] == entry.unit and card["task"] == "regression"
    for key in ("training_data", "licence", "citations", "architecture", "made_by"):
        assert card[key], key
    assert f"{model.count_params():,} parameters" in card["architecture"]


def test_the_formation_energy_model_is_accurate_on_test_formulas_it_never_saw(data_dir):
    """2,000 rows of CritExam__Ef's test split (the network trained on train, stopped on
    val): MAE within 0.005 eV/atom of what its card says for the whole split, and far
    below the mean predictor's ~0.95."""
    test = load_dataset("CritExam__Ef", split="test").sample(2000, random_state=0)
    model = pretrained("formation_energy", unit="eV/atom")
    assert isinstance(model, ElemNetRegressor)
    error = np.abs(model.predict(test["formula"]) - test["target"].to_numpy()).mean()
    assert error < 0.09
    assert abs(error - model.card_["scores"]["test_mae_float16"]) < 0.005


HIDDEN_LAYERS_SHA256 = "74fac1ccd67d39d3aa9be74f490d4c92a1d36f61fe41b8cc1c4cfb40bf6eec84"
"""SHA-256 of formation_energy's hidden weights and biases (float16, layer order): those of
the network before it got its sigma head. The transfer-learning table and the inspection
in benchmarks/README.md read these layers; a repacked file must keep them."""


def test_the_sigma_head_left_the_hidden_layers_as_they_were():
    model, _ = load_pretrained("formation_energy")
    hidden = b"".join(layer.params[key].astype(np.float16).tobytes()
                      for layer in model.layers[:-1] for key in layer.params)
    assert hashlib.sha256(hidden).hexdigest() == HIDDEN_LAYERS_SHA256


def test_the_formation_energy_model_has_a_sigma_calibrated_on_test_formulas(data_dir):
    """The same 2,000 test rows: the mean of predict_dist is predict's, and with the card's
    recalibration (fitted on the val split) the 68% and 95% intervals cover about that
    share of rows (wide bounds for 2,000 rows) and agree with the card's whole-split numbers."""
    test = load_dataset("CritExam__Ef", split="test").sample(2000, random_state=0)
    model = pretrained("formation_energy")
    assert uncertainty_kinds(model) == ("aleatoric",)
    mean, sigma = predict_dist(model, test["formula"])
    np.testing.assert_array_equal(mean, model.predict(test["formula"]))
    assert (sigma > 0).all() and np.ptp(sigma) > 0
    recal = Recalibration.from_dict(model.card_["recalibration"])
    assert recal.method == "isotonic" and recal.n_rows == 12752
    report = calibration_report(test["target"].to_numpy(), mean, sigma, recal)
    card = model.card_["calibration_test"]["recalibrated"]
    for level, low, high in (("68%", 0.62, 0.74), ("95%", 0.93, 0.97)):
        assert low < report[f"coverage {level}"] < high
        assert abs(report[f"coverage {level}"] - card[f"coverage {level}"]) < 0.03
    assert report["Spearman(sigma, |error|)"] > 0.05


def test_a_damaged_or_replaced_file_is_never_loaded(tmp_path, monkeypatch):
    entry = PRETRAINED["formation_energy"]
    copy = tmp_path / "pretrained"
    shutil.copytree(PACKAGE_FILES, copy)
    data = bytearray((copy / entry.file).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / entry.file).write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "_resource", lambda file: copy / file)
    with pytest.raises(ModelFileError, match="damaged or was replaced"):
        load_pretrained("formation_energy")
    (copy / entry.file).unlink()
    with pytest.raises(ModelFileError, match="not installed"):
        load_pretrained("formation_energy")


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match=r"predicts formation energy .* in 'eV/atom', not 'eV'"):
        pretrained("formation_energy", unit="eV")
    with pytest.raises(ValueError, match="pretrained model must be one of"):
        pretrained("band_gap_x")


def test_predict_without_a_model_uses_the_shipped_network(capsys):
    assert main(["predict", "Fe2O3", "NaCl", "Qq"]) == 0
    out, err = capsys.readouterr()
    rows = [line.split() for line in out.strip().splitlines()]
    assert rows[0] == ["formula", "prediction", "(eV/atom)"]
    mean, sigma = predict_dist(pretrained(), ["Fe2O3", "NaCl"])
    assert [r[2] for r in rows[1:]] == ["±", "±"]  # value ± sigma
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], mean, rtol=1e-3)
    recal = Recalibration.from_dict(pretrained().card_["recalibration"])
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]], recal.sigma(sigma), rtol=0.01)
    assert "Using stoichnet's pretrained network 'formation_energy'" in err
    assert "row 3: 'Qq'" in err
    assert main(["predict", "--pretrained", "formation_energy", "MgO"]) == 0
    assert "MgO" in capsys.readouterr().out


def test_predict_writes_sigma_and_the_interval_of_the_shipped_network(tmp_path):
    out = tmp_path / "p.csv"
    assert main(["predict", "Fe2O3", "NaCl", "--output", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[:6]) == ["row", "formula", "prediction", "sigma", "low 95%",
                                       "high 95%"]
    assert ((frame["low 95%"] < frame["prediction"])
            & (frame["prediction"] < frame["high 95%"]) & (frame["sigma"] > 0)).all()


def test_train_refuses_bad_transfer_settings_before_training(tmp_path, capsys):
    train = tmp_path / "t.csv"
    train.write_text("formula,target\n" + "".join(f"Fe{i}O,{i}\n" for i in range(1, 30)))
    for args, message in (
            (["--init", "pretrained", "--freeze", "17"], "freeze=17 is deeper than the "
                                                          "network's 16 hidden layers"),
            (["--freeze", "2"], "--freeze N freezes pretrained layers: it needs --init"),
            (["--init", str(tmp_path / "none.npz")], "no model file"),
    ):
        code = main(["train", "--train", str(train), "--out", str(tmp_path / "m.npz"), *args])
        assert code != 0
        assert message in capsys.readouterr().err
        assert not (tmp_path / "m.npz").exists()
