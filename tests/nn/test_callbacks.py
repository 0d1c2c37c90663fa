"""Callbacks: EarlyStopping (with restore_best_weights), CSVLogger, ModelCheckpoint,
StochasticWeightAveraging, the progress display, and summary parameter counts."""

import csv
import re
import sys

import numpy as np
import pytest

from stoichnet.nn import (
    Callback,
    CSVLogger,
    Dense,
    Dropout,
    EarlyStopping,
    ModelCheckpoint,
    Sequential,
    StochasticWeightAveraging,
    load_model,
    optimizers,
)

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 3))
Y = X @ np.array([1.0, -2.0, 0.5])


class WeightRecorder(Callback):
    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.flat_params.copy())


def linear_model():
    model = Sequential([Dense(1, input_dim=3)], seed=0)
    model.compile(optimizers.SGD(learning_rate=0.05), "mse", ["mae"])
    return model


def test_early_stopping_restores_the_best_epoch():
    # learning y = f(X) makes the loss on the target -f(X) worse every epoch, so the
    # best validation epoch is the first and training stops after `patience` more
    model = linear_model()
    recorder = WeightRecorder()
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(
        X, Y, epochs=20, batch_size=8, validation_data=(X, -Y), callbacks=[recorder, stopper], verbose=0
    )
    assert len(history.history["val_loss"]) == 3
    assert stopper.best_epoch == 0 and stopper.stopped_epoch == 2
    assert stopper.best == history.history["val_loss"][0]
    assert np.array_equal(model.flat_params, recorder.weights[0])
    assert not np.array_equal(model.flat_params, recorder.weights[-1])


def test_early_stopping_keeps_going_while_improving_and_min_delta_counts():
    model = linear_model()
    stopper = EarlyStopping(monitor="loss", patience=0)
    history = model.fit(X, Y, epochs=5, batch_size=8, callbacks=[stopper], verbose=0)
    assert len(history.history["loss"]) == 5 and stopper.stopped_epoch is None
    strict = EarlyStopping(monitor="loss", patience=0, min_delta=1e9)
    history = linear_model().fit(X, Y, epochs=5, batch_size=8, callbacks=[strict], verbose=0)
    assert len(history.history["loss"]) == 2  # the first epoch always improves on +inf


def test_early_stopping_names_a_missing_metric():
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*\['loss', 'mae'\].*validation data"):
        linear_model().fit(X, Y, epochs=2, callbacks=[EarlyStopping()], verbose=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weight_averaging_leaves_the_mean_of_the_epochs_from_start_epoch(dtype):
    model = Sequential([Dense(8, "relu", input_dim=3), Dense(1)], dtype=dtype, seed=0)
    model.compile(optimizers.Adam(learning_rate=0.05), "mse")
    recorder, swa = WeightRecorder(), StochasticWeightAveraging(start_epoch=2)
    model.fit(X, Y, epochs=6, batch_size=16, verbose=0, seed=0, callbacks=[recorder, swa])
    expected = np.mean(np.array(recorder.weights[2:], dtype=np.float64), axis=0)
    assert swa.count == 4 and model.flat_params.dtype == dtype
    np.testing.assert_allclose(model.flat_params, expected, rtol=1e-6 if dtype == "float32"
                               else 1e-13, atol=1e-7 if dtype == "float32" else 1e-15)
    assert np.abs(model.flat_params - recorder.weights[-1]).max() > 1e-3  # not the last epoch


def test_weight_averaging_overrides_restored_weights_after_it_and_needs_an_epoch():
    recorder, swa = WeightRecorder(), StochasticWeightAveraging(start_epoch=3)
    stopper = EarlyStopping("loss", patience=10, restore_best_weights=True)
    model = linear_model()
    model.fit(X, Y, epochs=5, batch_size=16, verbose=0, seed=0, callbacks=[recorder, stopper, swa])
    np.testing.assert_allclose(model.flat_params, np.mean(recorder.weights[3:], axis=0),
                               rtol=1e-6)
    late = StochasticWeightAveraging(start_epoch=5)  # never reached: the weights stay
    model = linear_model()
    model.fit(X, Y, epochs=5, batch_size=16, verbose=0, seed=0, callbacks=[recorder, late])
    assert late.count == 0 and model.flat_params.tobytes() == recorder.weights[-1].tobytes()
    with pytest.raises(ValueError, match="start_epoch"):
        StochasticWeightAveraging(start_epoch=-1)


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    history = linear_model().fit(
        X, Y, epochs=3, batch_size=16, validation_split=0.25, callbacks=[CSVLogger(path)], verbose=0
    )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key, values in history.history.items():
        assert [float(r[key]) for r in rows] == values
    linear_model().fit(X, Y, epochs=2, callbacks=[CSVLogger(path, append=True)], verbose=0)
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 + 3 + 2 and lines.count(lines[0]) == 1


def test_model_checkpoint_saves_best_only(tmp_path):
    model = linear_model()
    pattern = str(tmp_path / "m-{epoch:02d}.npz")
    model.fit(
        X, Y, epochs=4, validation_data=(X, -Y), verbose=0,
        callbacks=[ModelCheckpoint(pattern, monitor="val_loss", save_best_only=True)],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-01.npz"]
    every = ModelCheckpoint(tmp_path / "last.npz")
    model.fit(X, Y, epochs=2, validation_data=(X, Y), callbacks=[every], verbose=0)
    assert np.array_equal(load_model(tmp_path / "last.npz").flat_params, model.flat_params)


def test_verbose_0_is_silent_and_verbose_2_prints_a_line_per_epoch(capsys):
    linear_model().fit(X, Y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")
    linear_model().fit(X, Y, epochs=2, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("Epoch 2/2 - loss: ")
    linear_model().fit(X, Y, epochs=1, verbose=1)
    assert "Epoch 1/1" in capsys.readouterr().err


@pytest.mark.parametrize("terminal", [True, False])
def test_verbose_1_draws_bars_on_a_terminal_and_one_line_per_epoch_elsewhere(
        monkeypatch, capsys, terminal):
    """A log file or batch job (stderr not a terminal) gets no carriage-return bar
    redraws, one line per epoch instead (issue 12, item 12)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    linear_model().fit(X, Y, epochs=3, batch_size=8, validation_data=(X, Y), verbose=1)
    out, err = capsys.readouterr()
    assert out == ""
    if terminal:
        assert "\r" in err and "8/8" in err and "Epoch 3/3" in err
    else:
        assert "\r" not in err
        lines = err.splitlines()
        assert len(lines) == 3
        for epoch, line in enumerate(lines, 1):
            assert re.fullmatch(rf"Epoch {epoch}/3 - loss: \S+ - mae: \S+ - val_loss: \S+ - "
                                r"val_mae: \S+ - \d+\.\ds", line), line


def test_history_records_what_callbacks_add_to_the_epoch_logs():
    """History runs after every callback at an epoch's end (issue 12, item 11)."""
    class AddsAScore(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_extra"] = 2.0 * epoch

    history = linear_model().fit(X, Y, epochs=3, callbacks=[AddsAScore()], verbose=0)
    assert history.history["val_extra"] == [0.0, 2.0, 4.0]
    assert list(history.history) == ["loss", "mae", "val_extra"]


def test_stop_training_from_a_callback():
    class StopAfterThreeBatches(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    model = linear_model()
    history = model.fit(X, Y, epochs=5, batch_size=8, callbacks=[StopAfterThreeBatches()], verbose=0)
    assert len(history.history["loss"]) == 1 and model.optimizer.iterations == 3


def elemnet17():
    """86 -> 1024x4 -> 512x3 -> 256x3 -> 128x3 -> 64x2 -> 32 -> 1, dropout after the first four blocks."""
    layers, n_in = [], 86
    for units, count, rate in [(1024, 4, 0.2), (512, 3, 0.1), (256, 3, 0.3), (128, 3, 0.2), (64, 2, 0), (32, 1, 0)]:
        for _ in range(count):
            layers.append(Dense(units, "relu", input_dim=n_in if not layers else None))
        if rate:
            layers.append(Dropout(rate))
    return Sequential([*layers, Dense(1)], seed=0)


def test_summary_counts_the_elemnet17_parameters():
    model = elemnet17()
    assert sum(isinstance(layer, Dense) for layer in model.layers) == 17
    assert model.count_params() == 4_631_361
    lines = []
    text = model.summary(print_fn=lines.append)
    assert lines == [text]
    assert "Total params: 4,631,361" in text
    assert "dense (Dense)" in text and "(None, 1024)" in text and "89,088" in text
