"""`stoichnet train --checkpoint-dir`: Ctrl-C saves a checkpoint and exits 130 with the
way to resume; `--resume` ends with the model an uninterrupted run writes, bit for bit."""

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from stoichnet.cli import main
from stoichnet.nn import load_checkpoint, load_model

FORMULAS = ["NaCl", "KCl", "MgO", "CaO", "Fe2O3", "Al2O3", "SiO2", "TiO2", "ZnO", "CuO",
            "LiF", "NaF", "BaO", "SrO", "NiO", "CoO", "MnO", "Cr2O3", "V2O5", "GaN"]


@pytest.fixture
def train_csv(tmp_path):
    rng = np.random.default_rng(0)
    formulas = [f for f in FORMULAS for _ in range(24)]  # 432 rows
    path = tmp_path / "train.csv"
    pd.DataFrame({"formula": formulas, "target": rng.normal(size=len(formulas))}).to_csv(
        path, index=False)
    return path


def train_args(train_csv, out, *extra):
    return ["train", "--train", str(train_csv), "--duplicates", "keep", "--epochs", "4",
            "--out", str(out), *map(str, extra)]


@pytest.mark.slow
def test_ctrl_c_then_resume_gives_the_uninterrupted_model(tmp_path, train_csv, capsys):
    ckpt_dir = tmp_path / "ckpt"
    argv = train_args(train_csv, tmp_path / "resumed.npz", "--checkpoint-dir", ckpt_dir)
    proc = subprocess.Popen([sys.executable, "-m", "stoichnet.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + 120, ""
    while "Epoch 2/" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read(1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (seen + stderr)[-2000:]
    assert "run the same command with --resume" in stderr
    assert not (tmp_path / "resumed.npz").exists()
    assert load_checkpoint(ckpt_dir / "train.ckpt")[0]["progress"]["epoch"] >= 1

    assert main(train_args(train_csv, tmp_path / "resumed.npz", "--checkpoint-dir", ckpt_dir,
                           "--resume")) == 0
    assert main(train_args(train_csv, tmp_path / "plain.npz")) == 0
    resumed = load_model(tmp_path / "resumed.npz").flat_params
    assert resumed.tobytes() == load_model(tmp_path / "plain.npz").flat_params.tobytes()


def test_resume_and_checkpoint_dir_usage_errors(tmp_path, train_csv, capsys):
    out = tmp_path / "m.npz"
    assert main(train_args(train_csv, out, "--resume")) == 2
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err
    assert main(train_args(train_csv, out, "--checkpoint-dir", tmp_path / "c", "--resume")) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train.ckpt").write_text("an earlier run")
    assert main(train_args(train_csv, out, "--checkpoint-dir", tmp_path / "c")) == 2
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_compare_ctrl_c_then_resume_predicts_as_uninterrupted(tmp_path, train_csv, capsys,
                                                              monkeypatch):
    from stoichnet.nn import Sequential

    def compare_args(out, *extra):
        return ["compare", "--train", str(train_csv), "--test", str(train_csv), "--duplicates",
                "keep", "--models", "mean,elemnet", "--epochs", "2", "--out", str(out),
                *map(str, extra)]

    train_step, count = Sequential._train_step, [0]

    def ctrl_c_at_batch_2(self, *args, **kwargs):
        out = train_step(self, *args, **kwargs)
        count[0] += 1
        if count[0] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends, to the CLI's handler
        return out

    monkeypatch.setattr(Sequential, "_train_step", ctrl_c_at_batch_2)
    ckpt_dir = tmp_path / "ckpt"
    assert main(compare_args(tmp_path / "resumed", "--checkpoint-dir", ckpt_dir)) == 130
    stderr = capsys.readouterr().err
    assert f"{ckpt_dir / 'elemnet.ckpt'} holds the run so far" in stderr
    assert "run the same command with --resume" in stderr
    assert not (tmp_path / "resumed").exists()
    assert load_checkpoint(ckpt_dir / "elemnet.ckpt")[0]["progress"]["batch"] == 2

    assert main(compare_args(tmp_path / "again", "--checkpoint-dir", ckpt_dir)) == 2
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    assert main(compare_args(tmp_path / "resumed", "--checkpoint-dir", ckpt_dir, "--resume")) == 0
    assert main(compare_args(tmp_path / "plain")) == 0
    resumed, plain = (pd.read_csv(tmp_path / name / "predictions.csv") for name in
                      ("resumed", "plain"))
    assert resumed["elemnet"].to_numpy().tobytes() == plain["elemnet"].to_numpy().tobytes()


@pytest.mark.slow
def test_depth_study_ctrl_c_then_resume_reuses_finished_values(tmp_path, train_csv, capsys,
                                                              monkeypatch):
    from stoichnet.nn import Sequential

    def study_args(out, *extra):
        return ["depth-study", "--depths", "1,2", "--train", str(train_csv), "--test",
                str(train_csv), "--duplicates", "keep", "--epochs", "2", "--out", str(out),
                *map(str, extra)]

    from stoichnet.evaluate.data import load_split
    from stoichnet.models.recipes import get_recipe

    # the recipe sizes the batch to the training rows: depth 1 takes 2 epochs of n_batches
    n_train = len(load_split(train=train_csv, test=train_csv, duplicates="keep").train)
    n_batches = math.ceil(n_train / get_recipe().budget(n_train)[0])
    train_step, count = Sequential._train_step, [0]

    def ctrl_c_in_depth_2(self, *args, **kwargs):
        out = train_step(self, *args, **kwargs)
        count[0] += 1
        if count[0] == 2 * n_batches + 1:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Sequential, "_train_step", ctrl_c_in_depth_2)
    ckpt_dir = tmp_path / "ckpt"
    assert main(study_args(tmp_path / "study", "--checkpoint-dir", ckpt_dir)) == 130
    stderr = capsys.readouterr().err
    assert "holds the run so far. To continue, run the same command with --resume" in stderr
    assert not (tmp_path / "study" / "study.csv").exists()

    count[0] = -10_000  # no second Ctrl-C
    assert main(study_args(tmp_path / "study", "--checkpoint-dir", ckpt_dir, "--resume")) == 0
    assert "1 value(s) trained, 1 reused" in capsys.readouterr().out
    assert count[0] == -10_000 + 2 * n_batches - 1  # depth 2's batches after the interrupt only
    assert main(study_args(tmp_path / "plain")) == 0
    resumed, plain = (pd.read_csv(tmp_path / name / "study.csv") for name in ("study", "plain"))
    assert resumed["test_mae"].tolist() == plain["test_mae"].tolist()


def test_study_checkpoint_usage_errors(tmp_path, train_csv, capsys):
    args = ["depth-study", "--train", str(train_csv), "--test", str(train_csv), "--out",
            str(tmp_path / "s")]
    assert main([*args, "--resume"]) == 2
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err
    assert main([*args, "--checkpoint-dir", str(tmp_path / "c"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
