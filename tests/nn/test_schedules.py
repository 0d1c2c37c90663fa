"""Learning-rate schedules against torch.optim.lr_scheduler (the learning-rate callbacks:
test_lr_callbacks.py)."""

import json

import numpy as np
import pytest
import torch

from stoichnet.nn import callbacks, schedules
from stoichnet.nn.schedules import (
    CosineDecay,
    ExponentialDecay,
    LinearWarmup,
    OneCycle,
    StepDecay,
)


def torch_rates(lr, make_scheduler, steps):
    """The rate torch uses at each of ``steps`` optimizer steps."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.array(rates)


S = torch.optim.lr_scheduler
SCHEDULE_CASES = {
    "step": (StepDecay(0.1, step_size=3, gamma=0.5), 0.1,
             lambda o: S.StepLR(o, step_size=3, gamma=0.5), 12),
    "exponential": (ExponentialDecay(0.1, decay_steps=1, decay_rate=0.9), 0.1,
                    lambda o: S.ExponentialLR(o, gamma=0.9), 15),
    "cosine": (CosineDecay(0.1, decay_steps=10, alpha=0.01), 0.1,
               lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 11),
    "linear_warmup": (LinearWarmup(0.1, warmup_steps=4, start_factor=0.25), 0.1,
                      lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
                      9),
    "one_cycle_cos": (OneCycle(0.1, total_steps=20), 0.1,
                      lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=20,
                                             cycle_momentum=False), 20),
    "one_cycle_linear_three_phase": (
        OneCycle(0.2, total_steps=30, pct_start=0.2, anneal_strategy="linear", div_factor=10,
                 final_div_factor=100, three_phase=True), 0.2,
        lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=30, pct_start=0.2,
                               anneal_strategy="linear", div_factor=10, final_div_factor=100,
                               three_phase=True, cycle_momentum=False), 30),
    "one_cycle_shorter_than_its_warmup": (
        OneCycle(0.1, total_steps=3), 0.1,
        lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=3, cycle_momentum=False), 3),
}


@pytest.mark.oracle
@pytest.mark.parametrize("case", SCHEDULE_CASES)
def test_schedule_matches_torch(case):
    schedule, lr, make_scheduler, steps = SCHEDULE_CASES[case]
    theirs = torch_rates(lr, make_scheduler, steps)
    ours = np.array([schedule(t) for t in range(steps)])
    assert np.ptp(theirs) > 0.01 * lr, "the rate never changed: the test would be void"
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_exponential_staircase_and_decay_steps():
    schedule = ExponentialDecay(1.0, decay_steps=4, decay_rate=0.5, staircase=True)
    assert [schedule(t) for t in (0, 3, 4, 7, 8)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert ExponentialDecay(1.0, decay_steps=4, decay_rate=0.5)(2) == pytest.approx(0.5**0.5)


def test_cosine_warmup_by_hand():
    schedule = CosineDecay(0.0, decay_steps=10, alpha=0.1, warmup_target=1.0, warmup_steps=4)
    assert schedule(0) == 0.0
    assert schedule(2) == pytest.approx(0.5)
    assert schedule(4) == pytest.approx(1.0)
    assert schedule(9) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert schedule(14) == pytest.approx(0.1)
    assert schedule(100) == pytest.approx(0.1)  # stays at its floor


def test_one_cycle_stays_at_its_minimum_after_the_cycle():
    schedule = OneCycle(0.1, total_steps=20)
    assert schedule(19) == pytest.approx(0.1 / 25 / 1e4)
    assert schedule(25) == schedule(19)


@pytest.mark.parametrize("schedule", [case[0] for case in SCHEDULE_CASES.values()]
                         + [CosineDecay(0.0, 5, warmup_target=0.1, warmup_steps=2)])
def test_get_config_round_trips_through_json(schedule):
    config = json.loads(json.dumps(schedule.get_config()))
    rebuilt = schedules.get(config)
    assert type(rebuilt) is type(schedule)
    assert [rebuilt(t) for t in range(12)] == [schedule(t) for t in range(12)]
    assert schedules.get(schedule) is schedule


def test_get_errors():
    with pytest.raises(ValueError, match=r"unknown schedule 'cosine'.*'cosinedecay'"):
        schedules.get({"name": "cosine"})
    with pytest.raises(TypeError, match="config dict with a 'name'"):
        schedules.get(0.1)
    with pytest.raises(TypeError, match="bad arguments for schedule StepDecay"):
        schedules.get({"name": "StepDecay", "initial_learning_rate": 0.1})


@pytest.mark.parametrize("make, error, message", [
    (lambda: StepDecay(-0.1, 3), ValueError, "initial_learning_rate must be in"),
    (lambda: StepDecay(0.1, 0), ValueError, r"step_size must be an int >= 1, got 0"),
    (lambda: StepDecay(0.1, 2.5), TypeError, "step_size must be an int"),
    (lambda: ExponentialDecay(0.1, 1, 1.5), ValueError, "decay_rate"),
    (lambda: CosineDecay(0.1, 10, warmup_steps=3), ValueError, "warmup_target and warmup_steps"),
    (lambda: CosineDecay(0.1, 10, alpha=2.0), ValueError, "alpha"),
    (lambda: LinearWarmup(0.1, 5, start_factor=1.5), ValueError, "start_factor"),
    (lambda: OneCycle(0.1, 10, anneal_strategy="cosine"), ValueError, "anneal_strategy"),
    (lambda: OneCycle(0.1, 10, pct_start=0.1), ValueError, "zero length"),
])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_step():
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        StepDecay(0.1, 3)(-1)


def test_the_learning_rate_callbacks_are_importable_from_here_as_before():
    assert schedules.ReduceLROnPlateau is callbacks.ReduceLROnPlateau
    assert schedules.LearningRateScheduler is callbacks.LearningRateScheduler
