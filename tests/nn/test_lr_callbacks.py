"""The learning-rate callbacks (ReduceLROnPlateau against torch.optim.lr_scheduler,
LearningRateScheduler) and the one rule deciding whether a monitored metric is
minimised or maximised."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stoichnet.nn.callbacks import (
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    monitor_mode,
)
from stoichnet.nn.optimizers import SGD
from stoichnet.nn.schedules import StepDecay


@pytest.mark.parametrize("make, error, message", [
    (lambda: ReduceLROnPlateau(factor=1.0), ValueError, r"factor must be in \(0, 1\)"),
    (lambda: ReduceLROnPlateau(patience=-1), ValueError, "patience"),
    (lambda: ReduceLROnPlateau(mode="smallest"), ValueError, "mode"),
    (lambda: LearningRateScheduler(0.1), TypeError, "schedule must be callable"),
])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("monitor, mode", [
    ("val_loss", "min"), ("loss", "min"), ("val_mae", "min"), ("accuracy", "max"),
    ("val_accuracy", "max"), ("val_acc", "max"), ("binary_crossentropy", "min"),
    ("sparse_categorical_crossentropy", "min"),
])
def test_one_rule_decides_the_mode_of_every_monitoring_callback(monitor, mode):
    assert monitor_mode(monitor, "auto") == mode
    assert monitor_mode(monitor, "min") == "min" and monitor_mode(monitor, "max") == "max"
    assert ReduceLROnPlateau(monitor).mode == mode
    assert EarlyStopping(monitor).tracker.mode == mode
    assert ModelCheckpoint("m.npz", monitor).tracker.mode == mode


PLATEAU_LOSSES = [1.0, 0.9, 0.95, 0.93, 0.895, 0.91, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6,
                  0.49, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]


@pytest.mark.oracle
@pytest.mark.parametrize("kwargs", [
    {"factor": 0.5, "patience": 2, "min_delta": 0.01, "cooldown": 0, "min_lr": 0.0},
    {"factor": 0.3, "patience": 1, "min_delta": 0.0, "cooldown": 2, "min_lr": 0.004},
    {"factor": 0.5, "patience": 0, "min_delta": 0.02, "cooldown": 1, "min_lr": 0.0},
])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_reduce_lr_on_plateau_matches_torch(kwargs, mode):
    losses = PLATEAU_LOSSES if mode == "min" else [-v for v in PLATEAU_LOSSES]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=mode, factor=kwargs["factor"], patience=kwargs["patience"],
        threshold=kwargs["min_delta"], threshold_mode="abs", cooldown=kwargs["cooldown"],
        min_lr=kwargs["min_lr"])
    callback = ReduceLROnPlateau(monitor="val_loss", mode=mode, **kwargs)
    model = SimpleNamespace(optimizer=SGD(0.1), stop_training=False)
    callback.set_model(model)
    callback.on_train_begin()
    theirs, ours = [], []
    for epoch, value in enumerate(losses):
        scheduler.step(value)
        callback.on_epoch_end(epoch, {"loss": 0.0, "val_loss": value})
        theirs.append(opt.param_groups[0]["lr"])
        ours.append(model.optimizer.current_learning_rate)
    assert len(set(theirs)) >= 3, "fewer than two reductions: the test would be void"
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_reduce_lr_on_plateau_scales_a_schedule_and_names_missing_monitor():
    model = SimpleNamespace(optimizer=SGD(StepDecay(0.1, step_size=1, gamma=0.5)))
    callback = ReduceLROnPlateau(monitor="val_mae", factor=0.1, patience=0)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_mae": 1.0})
    callback.on_epoch_end(1, {"val_mae": 2.0})
    assert model.optimizer.lr_multiplier == pytest.approx(0.1)
    model.optimizer.iterations = 2
    assert model.optimizer.current_learning_rate == pytest.approx(0.1 * 0.25 * 0.1)
    with pytest.raises(ValueError, match=r"monitors 'val_mae' but the epoch logs hold \['loss'\]"):
        callback.on_epoch_end(2, {"loss": 1.0})
    assert ReduceLROnPlateau(monitor="val_accuracy").mode == "max"


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    model = SimpleNamespace(optimizer=SGD(0.1))
    callback = LearningRateScheduler(lambda epoch: 0.1 * math.exp(-epoch))
    callback.set_model(model)
    callback.on_epoch_begin(2)
    assert model.optimizer.current_learning_rate == pytest.approx(0.1 * math.exp(-2))
    bad = LearningRateScheduler(lambda epoch: -1.0)
    bad.set_model(model)
    with pytest.raises(ValueError, match=r"schedule\(3\) must be in \[0, inf\), got -1.0"):
        bad.on_epoch_begin(3)


def test_learning_rate_scheduler_keeps_the_configured_rate_and_hits_the_scheduled_one():
    """It acts through lr_multiplier (training state): get_config, which a checkpoint
    compares on resume, does not change, and the rate used is the scheduled one."""
    optimizer = SGD(0.03)
    config = optimizer.get_config()
    callback = LearningRateScheduler(lambda epoch: 0.1 * 0.7 ** epoch)
    callback.set_model(SimpleNamespace(optimizer=optimizer))
    for epoch in range(40):
        callback.on_epoch_begin(epoch)
        assert optimizer.current_learning_rate == 0.1 * 0.7 ** epoch
    assert optimizer.get_config() == config and optimizer.learning_rate == 0.03
    for base in (StepDecay(0.1, step_size=2), 0.0):
        callback.set_model(SimpleNamespace(optimizer=SGD(base)))
        with pytest.raises(ValueError, match="must be a float > 0"):
            callback.on_epoch_begin(0)
