"""Learning-rate schedules: the rate as a function of the optimizer step.

A schedule is a callable ``step -> learning rate`` (``step`` = optimizer steps taken
so far, 0 on the first step); pass it as an optimizer's ``learning_rate``. Where
``torch.optim.lr_scheduler`` has a counterpart (stepped once per optimizer step) the
docstring names it and the tests compare the two. Each has ``get_config()``;
``get(config)`` rebuilds it.

The callbacks that change the rate during ``fit`` (``ReduceLROnPlateau``,
``LearningRateScheduler``) live in ``nn.callbacks``; they are importable from here too.
"""

from __future__ import annotations

import math

from stoichnet.util.checks import check_bool, check_choice, check_int, check_real

# moved to nn.callbacks beside the other callbacks; importable from here as before
from .callbacks import LearningRateScheduler, ReduceLROnPlateau  # noqa: F401


def _check_step(step) -> int:
    return check_int("step", step, 0)


class LearningRateSchedule:
    """Base class: ``schedule(step)`` -> learning rate (float) at optimizer step ``step``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def _arguments(self) -> dict:
        raise NotImplementedError

    def get_config(self) -> dict:
        """JSON-serialisable ``{"name": class name, **constructor arguments}``."""
        return {"name": type(self).__name__, **self._arguments()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments().items())
        return f"{type(self).__name__}({args})"


class StepDecay(LearningRateSchedule):
    """lr(t) = initial_learning_rate * gamma ** (t // step_size): multiply by ``gamma``
    every ``step_size`` steps. PyTorch: ``StepLR(step_size, gamma)``."""

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1):
        self.initial_learning_rate = check_real(
            "initial_learning_rate", initial_learning_rate, 0.0)
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_real("gamma", gamma, 0.0, 1.0, high_open=False)

    def __call__(self, step):
        return self.initial_learning_rate * self.gamma ** (_check_step(step) // self.step_size)

    def _arguments(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(LearningRateSchedule):
    """lr(t) = initial_learning_rate * decay_rate ** (t / decay_steps), with the exponent
    floored when ``staircase`` (Keras' ``ExponentialDecay``). PyTorch:
    ``ExponentialLR(gamma=decay_rate)`` is ``decay_steps=1``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False):
        self.initial_learning_rate = check_real(
            "initial_learning_rate", initial_learning_rate, 0.0)
        self.decay_steps = check_int("decay_steps", decay_steps, 1)
        self.decay_rate = check_real("decay_rate", decay_rate, 0.0, 1.0, high_open=False)
        self.staircase = check_bool("staircase", staircase)

    def __call__(self, step):
        exponent = _check_step(step) / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate ** exponent

    def _arguments(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class CosineDecay(LearningRateSchedule):
    """Cosine decay (Loshchilov & Hutter, "SGDR", ICLR 2017), optionally after a linear
    warm-up (Goyal et al., "Accurate, large minibatch SGD", 2017); Keras' ``CosineDecay``.

    Without warm-up: lr(t) = lr0 * (alpha + (1 - alpha) * (1 + cos(pi * t / decay_steps)) / 2)
    for t <= decay_steps, then lr0 * alpha, with lr0 = initial_learning_rate. With
    ``warmup_steps`` > 0 the rate first rises linearly from initial_learning_rate to
    ``warmup_target`` over ``warmup_steps`` steps, then decays from warmup_target as above.
    PyTorch: ``CosineAnnealingLR(T_max=decay_steps, eta_min=alpha * lr0)``, which rises
    again after T_max where this one stays at its floor.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0):
        self.initial_learning_rate = check_real(
            "initial_learning_rate", initial_learning_rate, 0.0)
        self.decay_steps = check_int("decay_steps", decay_steps, 1)
        self.alpha = check_real("alpha", alpha, 0.0, 1.0, high_open=False)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        if (warmup_target is None) != (self.warmup_steps == 0):
            raise ValueError(f"warmup_target and warmup_steps go together: got warmup_target="
                             f"{warmup_target!r}, warmup_steps={warmup_steps!r}")
        self.warmup_target = (None if warmup_target is None
                              else check_real("warmup_target", warmup_target, 0.0))

    def __call__(self, step):
        step = _check_step(step)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return (self.initial_learning_rate
                    + (self.warmup_target - self.initial_learning_rate) * fraction)
        peak = self.initial_learning_rate if self.warmup_target is None else self.warmup_target
        fraction = min(step - self.warmup_steps, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return peak * (self.alpha + (1.0 - self.alpha) * cosine)

    def _arguments(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class LinearWarmup(LearningRateSchedule):
    """lr(t) = learning_rate * (start_factor + (1 - start_factor) * min(t, warmup_steps) /
    warmup_steps): a linear ramp from start_factor * learning_rate to learning_rate, then
    constant. PyTorch: ``LinearLR(start_factor, end_factor=1.0, total_iters=warmup_steps)``
    (which requires start_factor > 0)."""

    def __init__(self, learning_rate: float, warmup_steps: int, start_factor: float = 0.0):
        self.learning_rate = check_real("learning_rate", learning_rate, 0.0)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 1)
        self.start_factor = check_real("start_factor", start_factor, 0.0, 1.0, high_open=False)

    def __call__(self, step):
        fraction = min(_check_step(step), self.warmup_steps) / self.warmup_steps
        return self.learning_rate * (self.start_factor + (1.0 - self.start_factor) * fraction)

    def _arguments(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "start_factor": self.start_factor}


class OneCycle(LearningRateSchedule):
    """The one-cycle policy (Smith & Topin, "Super-convergence", 2018), as PyTorch's
    ``OneCycleLR`` with ``cycle_momentum=False`` (momentum/beta_1 are not cycled).

    The rate rises from max_learning_rate / div_factor to max_learning_rate over the first
    ``pct_start`` of ``total_steps``, then anneals to (max_learning_rate / div_factor) /
    final_div_factor at step total_steps - 1 and stays there. With ``three_phase`` it
    first returns to the initial rate symmetrically, then anneals to the minimum.
    ``anneal_strategy``: "cos" or "linear".
    """

    def __init__(self, max_learning_rate: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False):
        self.max_learning_rate = check_real("max_learning_rate", max_learning_rate, 0.0)
        self.total_steps = check_int("total_steps", total_steps, 2)
        self.pct_start = check_real("pct_start", pct_start, 0.0, 1.0, low_open=True)
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.div_factor = check_real("div_factor", div_factor, 0.0, low_open=True)
        self.final_div_factor = check_real("final_div_factor", final_div_factor, 0.0, low_open=True)
        self.three_phase = check_bool("three_phase", three_phase)
        initial = self.max_learning_rate / self.div_factor
        minimum = initial / self.final_div_factor
        warm_end = self.pct_start * self.total_steps - 1
        last = self.total_steps - 1
        if three_phase:
            # (end step, start rate, end rate) of each phase
            self._phases = [(warm_end, initial, self.max_learning_rate),
                            (2 * warm_end, self.max_learning_rate, initial),
                            (last, initial, minimum)]
        else:
            self._phases = [(warm_end, initial, self.max_learning_rate),
                            (last, self.max_learning_rate, minimum)]
        # as in PyTorch, a cycle too short for its warm-up (pct_start * total_steps < 1)
        # starts in the annealing phase; only a phase of length zero cannot be interpolated
        ends = [end for end, _, _ in self._phases]
        if any(b == a for a, b in zip([0.0, *ends], ends, strict=False)):
            raise ValueError(f"pct_start={pct_start!r} with total_steps={total_steps!r} gives a "
                             "phase of the cycle zero length")

    def __call__(self, step):
        step = min(_check_step(step), self.total_steps - 1)
        start = 0.0
        for end, lr_start, lr_end in self._phases:  # the last phase ends at total_steps - 1
            if step <= end:
                fraction = (step - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return lr_end + (lr_start - lr_end) / 2.0 * (math.cos(math.pi * fraction) + 1)
                return lr_start + (lr_end - lr_start) * fraction
            start = end

    def _arguments(self):
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor,
                "three_phase": self.three_phase}


SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__.lower(): cls
    for cls in (StepDecay, ExponentialDecay, CosineDecay, LinearWarmup, OneCycle)}


def get(identifier) -> LearningRateSchedule:
    """A schedule from a config dict ``{"name": ..., **kwargs}`` (as written by
    ``get_config``; name case-insensitive) or a ``LearningRateSchedule`` (returned as is)."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if not isinstance(identifier, dict) or "name" not in identifier:
        raise TypeError(f"a schedule must be a LearningRateSchedule or a config dict with a "
                        f"'name', got {identifier!r}")
    kwargs = dict(identifier)
    name = kwargs.pop("name")
    cls = SCHEDULES.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown schedule {name!r}; valid names: {sorted(SCHEDULES)}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"bad arguments for schedule {cls.__name__}: {err}") from err


# the schedules a training recipe names, each spanning the run's optimizer steps
RECIPE_SCHEDULES = (None, "constant", "cosine", "warmup_cosine", "onecycle")


def from_name(name: str | None, learning_rate: float, total_steps: int,
              warmup_fraction: float = 0.0):
    """The learning rate of a run of ``total_steps`` optimizer steps for a recipe's
    schedule ``name`` (see ``RECIPE_SCHEDULES``): the float ``learning_rate`` for None or
    "constant"; else a schedule peaking at ``learning_rate`` and spanning the steps:
    "cosine" (``CosineDecay``), "warmup_cosine" (a linear warm-up over
    ``warmup_fraction`` of the steps, at least one, then cosine decay to 0) or
    "onecycle" (``OneCycle``)."""
    if name not in RECIPE_SCHEDULES:
        raise ValueError(f"schedule must be one of {RECIPE_SCHEDULES}, got {name!r}")
    if name in (None, "constant"):
        return learning_rate
    if name == "cosine":
        return CosineDecay(learning_rate, decay_steps=max(total_steps, 1))
    if name == "warmup_cosine":
        warmup = max(1, round(warmup_fraction * total_steps))
        return CosineDecay(0.0, decay_steps=max(total_steps - warmup, 1),
                           warmup_target=learning_rate, warmup_steps=warmup)
    return OneCycle(learning_rate, total_steps=max(total_steps, 2))
