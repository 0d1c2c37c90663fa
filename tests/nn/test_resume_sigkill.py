"""A training process killed with SIGKILL at a random moment loses nothing: resumed
from its last checkpoint in a new process, it ends with the weights of an
uninterrupted run, bit for bit."""

import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

EPOCHS = 30
# trains a small dropout network; --checkpoint PATH writes one every epoch, --resume PATH
# continues; a per-batch pause makes the run last ~3 s without loading the CPU
TRAIN = f"""
import sys, time
import numpy as np
from stoichnet.nn import Callback, Dense, Dropout, EarlyStopping, Sequential, optimizers

class Pause(Callback):
    def on_batch_end(self, batch, logs=None):
        time.sleep(0.02)

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 6))
y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
model = Sequential([Dense(32, "relu", input_dim=6), Dropout(0.2), Dense(16, "tanh"), Dense(1)],
                   seed=4)
model.compile(optimizers.Adam(learning_rate=3e-3), "mse")
model.fit(X, y, epochs={EPOCHS}, batch_size=40, validation_split=0.2, verbose=0, seed=11,
          callbacks=[EarlyStopping("val_loss", patience=50, restore_best_weights=True), Pause()],
          checkpoint=args.get("--checkpoint"), checkpoint_every=1, resume=args.get("--resume"))
np.save(args["--out"], model.flat_params)
"""


def run(script, *args, timeout=120):
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, check=True)


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("sigkill") / "train.py"
    path.write_text(TRAIN)
    return path


@pytest.fixture(scope="module")
def uninterrupted(script):
    out = script.parent / "uninterrupted.npy"
    run(script, "--out", out)
    return np.load(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(
        tmp_path, script, uninterrupted, seed):
    ckpt = tmp_path / "run.ckpt"
    child = subprocess.Popen([sys.executable, str(script), "--checkpoint", ckpt,
                              "--out", tmp_path / "killed.npy"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ckpt.exists():  # the first checkpoint, after epoch 1
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared within 60 s"
        time.sleep(0.005)
    time.sleep(np.random.default_rng(seed).uniform(0.0, 1.5))
    child.kill()  # SIGKILL: no handler, no cleanup, possibly in the middle of a write
    child.wait(timeout=30)
    child.stderr.close()
    assert child.returncode == -9, "the child finished before it could be killed"
    assert not (tmp_path / "killed.npy").exists()

    from stoichnet.nn import load_checkpoint

    done = load_checkpoint(ckpt)[0]["progress"]["epoch"]
    assert 1 <= done < EPOCHS
    run(script, "--checkpoint", ckpt, "--resume", ckpt, "--out", tmp_path / "resumed.npy")
    resumed = np.load(tmp_path / "resumed.npy")
    assert resumed.dtype == uninterrupted.dtype == np.float32
    assert resumed.tobytes() == uninterrupted.tobytes()
