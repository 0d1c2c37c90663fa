"""Checkpoints: a resumed fit equals an uninterrupted one bit for bit (epoch boundary,
mid-epoch interruption, Ctrl-C), a failed write keeps the previous checkpoint, broken
files raise ModelFileError, divergence never overwrites the last good checkpoint, and
clipnorm follows torch.nn.utils.clip_grad_norm_."""

import io
import json
import os
import pickle
import signal
import zipfile

import numpy as np
import pytest

from stoichnet.nn import (
    Callback,
    CSVLogger,
    Dense,
    Dropout,
    EarlyStopping,
    ModelCheckpoint,
    ModelFileError,
    Sequential,
    StochasticWeightAveraging,
    TrainingDivergedError,
    TrainingInterrupted,
    load_checkpoint,
    load_checkpoint_weights,
    load_model,
    optimizers,
)
from stoichnet.nn import io as nn_io
from stoichnet.nn.schedules import LearningRateScheduler, ReduceLROnPlateau

rng = np.random.default_rng(0)
X = rng.normal(size=(90, 5))
Y = np.tanh(X[:, :2].sum(1)) + 0.1 * X[:, 3]
FIT = {"epochs": 9, "batch_size": 16, "validation_split": 0.2, "verbose": 0, "seed": 7}


def make_model(units: int = 12) -> Sequential:
    model = Sequential([Dense(units, "relu", input_dim=5), Dropout(0.3), Dense(1)], seed=1)
    model.compile(optimizers.Adam(learning_rate=0.03), "mse", ["mae"])
    return model


def make_callbacks():
    return [
        EarlyStopping("val_loss", patience=4, restore_best_weights=True),
        ReduceLROnPlateau("val_loss", factor=0.5, patience=1),
    ]


class InterruptAt(Callback):
    """Calls model.interrupt() after batch ``batch`` of epoch ``epoch`` (what Ctrl-C does)."""

    def __init__(self, epoch: int, batch: int):
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.interrupt()


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted run: final weights, History and callback state."""
    model = make_model()
    callbacks = make_callbacks()
    history = model.fit(X, Y, callbacks=callbacks, **FIT)
    assert callbacks[0].stopped_epoch == 7
    return (model.flat_params.copy(), history.history, history.epoch, callbacks,
            model.optimizer.lr_multiplier)


def assert_same_run(model, history, reference):
    weights, logs, epochs = reference[:3]
    assert model.flat_params.tobytes() == weights.tobytes()
    assert history.history == logs and history.epoch == epochs


@pytest.mark.parametrize("stop_after, every", [(1, 1), (4, 2), (5, 1), (9, 3)])
def test_resume_from_an_epoch_boundary_is_bit_identical(reference, tmp_path, stop_after, every):
    path = tmp_path / "run.ckpt"
    first = make_model()
    first.fit(X, Y, callbacks=make_callbacks(), checkpoint=path, checkpoint_every=every,
              **{**FIT, "epochs": stop_after})
    config, _ = load_checkpoint(path)
    # the run of 9 epochs stops early after 8; its last checkpoint says so
    assert config["progress"]["epoch"] == min(stop_after, 8) and config["progress"]["batch"] == 0
    assert config["progress"]["stop_training"] == (stop_after == 9)
    model = make_model()
    callbacks = make_callbacks()
    # a different fit seed must not matter: the generator state comes from the checkpoint
    history = model.fit(X, Y, callbacks=callbacks, resume=path, **{**FIT, "seed": 123})
    assert_same_run(model, history, reference)
    early, plateau = callbacks
    ref_early, ref_plateau = reference[3]
    assert (early.best, early.wait, early.best_epoch) == (
        ref_early.best, ref_early.wait, ref_early.best_epoch)
    assert (plateau.best, plateau.wait) == (ref_plateau.best, ref_plateau.wait)
    assert model.optimizer.state_dict()["lr_multiplier"] == reference[4]
    assert reference[4] < 1  # the plateau callback did reduce the rate


def test_checkpoint_holds_the_optimizer_and_callback_state(tmp_path):
    path = tmp_path / "run.ckpt"
    model = make_model()
    callbacks = make_callbacks()
    model.fit(X, Y, callbacks=callbacks, checkpoint=path, **{**FIT, "epochs": 3})
    config, arrays = load_checkpoint(path)
    state = model.optimizer.state_dict()
    assert config["optimizer_state"]["iterations"] == state["iterations"] == 3 * 5
    assert config["optimizer_state"]["lr_multiplier"] == callbacks[1].model.optimizer.lr_multiplier
    for key in ("exp_avg.0", "exp_avg_sq.0"):
        assert np.array_equal(arrays[f"optimizer.{key}"], state[key])
    assert config["rng"] == json.loads(json.dumps(model.rng.bit_generator.state))
    early = config["callbacks"][0]
    assert early["class_name"] == "EarlyStopping" and early["state"]["wait"] == callbacks[0].wait
    assert config["callbacks"][1]["state"]["best"] == callbacks[1].best
    assert config["history"]["history"]["val_loss"] == model.history.history["val_loss"]


def test_model_checkpoint_remembers_its_best_across_a_resume(tmp_path):
    def callbacks(name):
        best_only = ModelCheckpoint(tmp_path / name, monitor="val_loss", save_best_only=True)
        return [*make_callbacks(), best_only]

    make_model().fit(X, Y, callbacks=callbacks("full.npz"), **FIT)
    path = tmp_path / "run.ckpt"
    # val_loss is lowest after epoch 4; epochs 6-8 are worse but would beat a forgotten best
    make_model().fit(X, Y, callbacks=callbacks("resumed.npz"), checkpoint=path,
                     **{**FIT, "epochs": 5})
    make_model().fit(X, Y, callbacks=callbacks("resumed.npz"), resume=path, **FIT)
    full, resumed = (load_model(tmp_path / name) for name in ("full.npz", "resumed.npz"))
    assert resumed.flat_params.tobytes() == full.flat_params.tobytes()


def test_numpy_scalars_a_callback_logs_are_stored(tmp_path):
    class LogFloat32(Callback):  # as MonteCarloValidation records val_mc_loss
        def on_epoch_end(self, epoch, logs=None):
            self.model.history.history.setdefault("third", []).append(np.float32(epoch) / 3)

    path = tmp_path / "run.ckpt"
    make_model().fit(X, Y, callbacks=[LogFloat32()], checkpoint=path, **{**FIT, "epochs": 2})
    assert load_checkpoint(path)[0]["history"]["history"]["third"] == [0.0, float(np.float32(1 / 3))]


@pytest.mark.parametrize("epoch, batch", [(0, 0), (2, 1), (3, 4)])
def test_interrupt_mid_epoch_then_resume_is_bit_identical(reference, tmp_path, epoch, batch):
    path = tmp_path / "run.ckpt"
    model = make_model()
    with pytest.raises(TrainingInterrupted, match="resume=") as info:
        model.fit(X, Y, callbacks=[*make_callbacks(), InterruptAt(epoch, batch)],
                  checkpoint=path, **FIT)
    assert (info.value.epoch, info.value.batch, info.value.checkpoint) == (epoch, batch + 1, path)
    config, arrays = load_checkpoint(path)
    assert config["progress"]["batch"] == batch + 1
    assert sorted(arrays["order"]) == list(range(72))  # the epoch's permutation
    model = make_model()
    history = model.fit(X, Y, callbacks=[*make_callbacks(), InterruptAt(-1, -1)], resume=path,
                        **FIT)
    assert_same_run(model, history, reference)


def test_sigint_stops_after_the_batch_and_a_second_one_aborts(reference, tmp_path):
    class SendSigint(Callback):
        def __init__(self, times):
            self.times, self.batches = times, 0

        def on_batch_end(self, batch, logs=None):
            self.batches += 1
            if self.batches == 7:
                for _ in range(self.times):
                    os.kill(os.getpid(), signal.SIGINT)

    path = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted) as info:
        make_model().fit(X, Y, callbacks=[*make_callbacks(), SendSigint(1)], checkpoint=path,
                         **FIT)
    assert (info.value.epoch, info.value.batch) == (1, 2)  # 5 batches per epoch
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    model = make_model()
    history = model.fit(X, Y, callbacks=[*make_callbacks(), SendSigint(0)], resume=path, **FIT)
    assert_same_run(model, history, reference)

    with pytest.raises(KeyboardInterrupt) as info:
        make_model().fit(X, Y, callbacks=[SendSigint(2)], **FIT)
    assert type(info.value) is KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupt_without_a_checkpoint_says_how_to_get_one():
    with pytest.raises(TrainingInterrupted, match=r"checkpoint=PATH") as info:
        make_model().fit(X, Y, callbacks=[InterruptAt(1, 0)], **FIT)
    assert info.value.checkpoint is None


def test_a_crash_mid_write_keeps_the_previous_checkpoint(reference, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    make_model().fit(X, Y, callbacks=make_callbacks(), checkpoint=path, **{**FIT, "epochs": 2})
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_crash(file, **arrays):
        real_savez(file, **arrays)
        file.truncate(file.tell() // 2)  # half the archive is on disk when the "disk fills"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nn_io.np, "savez", savez_then_crash)
    model = make_model()
    with pytest.raises(OSError, match="No space left"):
        model.fit(X, Y, callbacks=make_callbacks(), checkpoint=path, resume=path, **FIT)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]  # no temporary left
    assert load_checkpoint(path)[0]["progress"]["epoch"] == 2
    model = make_model()
    assert_same_run(model, model.fit(X, Y, callbacks=make_callbacks(), resume=path, **FIT),
                    reference)


@pytest.fixture
def checkpoint_file(tmp_path):
    path = tmp_path / "run.ckpt"
    make_model().fit(X, Y, callbacks=make_callbacks(), checkpoint=path, **{**FIT, "epochs": 2})
    return path


def resume(path):
    make_model().fit(X, Y, callbacks=make_callbacks(), resume=path, **FIT)


def test_truncated_and_bit_flipped_checkpoints_raise(checkpoint_file):
    data = checkpoint_file.read_bytes()
    checkpoint_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="run.ckpt"):
        resume(checkpoint_file)
    # flip one bit in the middle of each stored member (config, digest, every array)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    assert sorted(info.filename for info in members) == [
        "callback0.best_weights.npy", "config.npy", "optimizer.exp_avg.0.npy",
        "optimizer.exp_avg_sq.0.npy", "sha256.npy", "weights.npy"]
    for info in members:
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        flipped = bytearray(data)
        flipped[start + info.compress_size // 2] ^= 0x10
        checkpoint_file.write_bytes(bytes(flipped))
        with pytest.raises(ModelFileError, match="run.ckpt"):
            resume(checkpoint_file)


def test_foreign_and_crafted_files_raise(checkpoint_file, tmp_path):
    model_file = tmp_path / "model.npz"
    make_model().save(model_file)
    with pytest.raises(ModelFileError, match="not a stoichnet checkpoint"):
        resume(model_file)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        resume(tmp_path / "missing.ckpt")
    config, arrays = load_checkpoint(checkpoint_file)
    # a digest-valid file whose description is wrong: unknown bit generator, then version
    crafted = tmp_path / "crafted.ckpt"
    nn_io.write_archive(crafted, {**config, "rng": {**config["rng"], "bit_generator": "os"}},
                        arrays)
    with pytest.raises(ModelFileError, match="bit generator 'os'"):
        resume(crafted)
    nn_io.write_archive(crafted, {**config, "format_version": 99}, arrays, overwrite=True)
    with pytest.raises(ModelFileError, match="format_version 99"):
        resume(crafted)
    # a pickle payload inside the archive is refused, never executed
    with zipfile.ZipFile(crafted, "a") as archive:
        archive.writestr("evil.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': "
                         b"False, 'shape': (1,), }" + b" " * 59 + b"\n"
                         + pickle.dumps([os.system]))
    with pytest.raises(ModelFileError):
        resume(crafted)


def test_warm_start_takes_the_weights_only(checkpoint_file):
    """load_checkpoint_weights copies the saved weights bit for bit and nothing else: the
    next fit starts a fresh optimizer, schedule and History from them."""
    saved = load_checkpoint(checkpoint_file)[1]["weights"]
    model = make_model()
    model.build((5,))
    load_checkpoint_weights(checkpoint_file, model)
    np.testing.assert_array_equal(model.flat_params, saved)
    assert model.history is None  # no History, no optimizer state carried over
    history = model.fit(X, Y, **{**FIT, "epochs": 1})
    assert history.epoch == [0]
    assert not np.array_equal(model.flat_params, saved)
    other = make_model(units=8)
    other.build((5,))
    with pytest.raises(ValueError, match=r"another architecture: its layers\[0\]\.config\.units "
                                         r"is 12, this model's 8$"):
        load_checkpoint_weights(checkpoint_file, other)
    config, arrays = load_checkpoint(checkpoint_file)
    nn_io.write_archive(checkpoint_file, config, {**arrays, "weights": saved[:-1]},
                        overwrite=True)
    with pytest.raises(ModelFileError, match=r"holds weights float32 \(84,\), the model needs float32 \(85,\)"):
        load_checkpoint_weights(checkpoint_file, model)


def test_resume_refuses_another_model_or_setup(checkpoint_file, tmp_path):
    with pytest.raises(ValueError, match="another architecture"):
        make_model(units=8).fit(X, Y, callbacks=make_callbacks(), resume=checkpoint_file, **FIT)
    with pytest.raises(ValueError, match="callbacks"):
        make_model().fit(X, Y, resume=checkpoint_file, **FIT)
    other = make_model()
    other.compile(optimizers.SGD(learning_rate=0.01), "mse", ["mae"])
    with pytest.raises(ValueError, match="other compile settings: its optimizer.name is 'Adam', "
                                         "this model's 'SGD'"):
        other.fit(X, Y, callbacks=make_callbacks(), resume=checkpoint_file, **FIT)
    for change in ({"batch_size": 8}, {"shuffle": False}, {"validation_split": 0.3}):
        with pytest.raises(ValueError, match="same data, batch_size and shuffle"):
            make_model().fit(X, Y, callbacks=make_callbacks(), resume=checkpoint_file,
                             **{**FIT, **change})
    with pytest.raises(ValueError, match="same data"):
        make_model().fit(X, Y + 1e-6, callbacks=make_callbacks(), resume=checkpoint_file, **FIT)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        make_model().fit(X, Y, resume=tmp_path / "missing.ckpt", **FIT)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_model().fit(X, Y, checkpoint=tmp_path / "no" / "run.ckpt", **FIT)


@pytest.mark.parametrize("append", [False, True])
def test_csv_logger_after_resume_holds_each_epoch_once(tmp_path, append):
    full, resumed, path = tmp_path / "full.csv", tmp_path / "resumed.csv", tmp_path / "run.ckpt"
    if append:  # rows of an earlier run stay
        full.write_text("epoch,loss\n0,1.0\n")
        resumed.write_text("epoch,loss\n0,1.0\n")
    make_model().fit(X, Y, callbacks=[CSVLogger(full, append=append)], **FIT)

    class CrashAt(Callback):
        def __init__(self, epoch):
            self.epoch = epoch

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.epoch:
                raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):  # 4 rows, checkpoint after 3
        make_model().fit(X, Y, callbacks=[CSVLogger(resumed, append=append), CrashAt(4)],
                         checkpoint=path, checkpoint_every=3, **FIT)
    assert load_checkpoint(path)[0]["progress"]["epoch"] == 3
    assert resumed.read_text().splitlines()[-1].startswith("3,")
    make_model().fit(X, Y, callbacks=[CSVLogger(resumed, append=append), CrashAt(-1)],
                     resume=path, **FIT)
    assert resumed.read_text() == full.read_text()


class SetAt(Callback):
    """At the end of epoch ``epoch``, apply ``action(model)``."""

    def __init__(self, epoch, action):
        self.epoch, self.action = epoch, action

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.action(self.model)


@pytest.mark.filterwarnings("ignore:.*encountered:RuntimeWarning")  # the overflow itself
@pytest.mark.parametrize("fault", ["huge learning rate", "inf weights at epoch end"])
def test_divergence_keeps_the_last_good_checkpoint(tmp_path, fault):
    path = tmp_path / "run.ckpt"
    if fault == "huge learning rate":
        def action(model):
            model.optimizer.learning_rate = 1e30
    else:
        def action(model):
            model.flat_params[3] = np.inf
    with pytest.raises(TrainingDivergedError, match="became non-finite|loss became") as info:
        make_model().fit(X, Y, callbacks=[SetAt(2, action)], checkpoint=path, **FIT)
    config, arrays = load_checkpoint(path)
    expected = 3 if fault == "huge learning rate" else 2  # epoch 3's end was never saved
    assert config["progress"]["epoch"] == expected
    assert np.isfinite(arrays["weights"]).all()
    if fault != "huge learning rate":
        assert "last good checkpoint" in str(info.value)


def test_bad_arguments():
    model = make_model()
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1"):
        model.fit(X, Y, checkpoint_every=0, **FIT)
    with pytest.raises(TypeError, match="checkpoint_every must be an int"):
        model.fit(X, Y, checkpoint_every=1.5, **FIT)
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"clipnorm must be in \(0, inf\)"):
            model.fit(X, Y, clipnorm=bad, **FIT)
    for bad in ("1", True):  # a wrong type is a TypeError (issue 12, item 6)
        with pytest.raises(TypeError, match="clipnorm must be a number"):
            model.fit(X, Y, clipnorm=bad, **FIT)


@pytest.mark.oracle
@pytest.mark.parametrize("max_norm", [0.05, 1e6])
def test_clipnorm_matches_torch_clip_grad_norm(max_norm):
    import torch  # the oracle: a missing torch fails, never skips
    model = Sequential([Dense(6, "tanh", input_dim=5), Dense(2)], dtype="float64", seed=3)
    model.compile(optimizers.SGD(learning_rate=0.1, momentum=0.9), "mse")
    W1, b1, W2, b2 = (torch.tensor(w, requires_grad=True) for w in model.get_weights())
    Y2 = np.stack([Y, -Y], axis=1)
    model.fit(X, Y2, epochs=3, batch_size=30, shuffle=False, verbose=0, clipnorm=max_norm)

    params = [W1, b1, W2, b2]
    sgd = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    norms = []
    for _ in range(3):
        for start in range(0, 90, 30):
            xb = torch.tensor(X[start : start + 30])
            yb = torch.tensor(Y2[start : start + 30])
            sgd.zero_grad()
            loss = torch.nn.functional.mse_loss(torch.tanh(xb @ W1 + b1) @ W2 + b2, yb)
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
            sgd.step()
    assert (max(norms) > max_norm) == (max_norm < 1)  # the small bound clips, the large never
    for ours, theirs in zip(model.get_weights(), params, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("stop", ["after epoch 3", "mid-epoch"])
def test_learning_rate_scheduler_run_resumes_bit_identically(tmp_path, stop):
    """LearningRateScheduler acts through lr_multiplier (training state), so the compile
    settings a checkpoint compares stay those of compile (issue 12, item 5)."""
    def scheduler():
        return [LearningRateScheduler(lambda epoch: 1e-3 * 0.5 ** epoch)]

    fit = {**FIT, "epochs": 6}
    full = make_model()
    full_history = full.fit(X, Y, callbacks=scheduler(), **fit)
    path = tmp_path / "run.ckpt"
    if stop == "mid-epoch":
        with pytest.raises(TrainingInterrupted):
            make_model().fit(X, Y, callbacks=[*scheduler(), InterruptAt(3, 1)], checkpoint=path,
                             **fit)
        resumed = make_model()
        history = resumed.fit(X, Y, callbacks=[*scheduler(), InterruptAt(-1, -1)], resume=path,
                              **fit)
    else:
        make_model().fit(X, Y, callbacks=scheduler(), checkpoint=path, **{**fit, "epochs": 3})
        resumed = make_model()
        history = resumed.fit(X, Y, callbacks=scheduler(), resume=path, **fit)
    assert load_checkpoint(path)[0]["compile"]["optimizer"]["learning_rate"] == 0.03
    assert resumed.optimizer.current_learning_rate == 1e-3 * 0.5 ** 5
    assert resumed.flat_params.tobytes() == full.flat_params.tobytes()
    assert history.history == full_history.history


@pytest.mark.parametrize("stop", ["after epoch 3", "mid-epoch"])
def test_weight_averaging_resumes_bit_identically(tmp_path, stop):
    """The running mean and its count travel in the checkpoint."""
    fit = {**FIT, "epochs": 6}
    full = make_model()
    full.fit(X, Y, callbacks=[StochasticWeightAveraging(1)], **fit)
    path = tmp_path / "run.ckpt"
    if stop == "mid-epoch":
        with pytest.raises(TrainingInterrupted):
            make_model().fit(X, Y, callbacks=[StochasticWeightAveraging(1), InterruptAt(3, 1)],
                             checkpoint=path, **fit)
        extra = [InterruptAt(-1, -1)]
    else:
        make_model().fit(X, Y, callbacks=[StochasticWeightAveraging(1)], checkpoint=path,
                         **{**fit, "epochs": 3})
        extra = []
    resumed, swa = make_model(), StochasticWeightAveraging(1)
    resumed.fit(X, Y, callbacks=[swa, *extra], resume=path, **fit)
    assert swa.count == 5
    assert resumed.flat_params.tobytes() == full.flat_params.tobytes()
