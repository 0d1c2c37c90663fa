"""Argument checks shared by every layer of stoichnet.

The rule everywhere: a value of the wrong type raises ``TypeError``; a value of the
right type outside what is allowed raises ``ValueError``. Both messages quote the
argument's name, the value received and what is allowed, e.g.
``epochs must be an int, got '3' (str)`` or ``rate must be in [0, 1), got 1.5``.
Bools are never numbers here (``True`` is not an epoch count).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


def _got(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    def end(x):
        return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"
    return f"{'(' if low_open else '['}{end(low)}, {end(high)}{')' if high_open else ']'}"


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int in [low, high] (either end may be None: unbounded).

    Accepts Python and NumPy integers, never bools or floats.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_got(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            allowed = f">= {low}"
        elif low is None:
            allowed = f"<= {high}"
        else:
            allowed = f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {allowed}, got {value!r}")
    return value


def check_real(name: str, value, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a Python float in the interval from ``low`` to ``high``, each end
    closed or opened by ``low_open`` / ``high_open`` (default [low, high)). NaN is
    always refused; ints are accepted, bools are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_got(value)}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        raise ValueError(
            f"{name} must be in {_interval(low, high, low_open, high_open)}, got {value!r}"
        )
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool (NumPy bools included)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise TypeError(f"{name} must be True or False, got {_got(value)}")
    return bool(value)


def check_choice(name: str, value, choices: Iterable):
    """``value`` if it is one of ``choices`` (compared with ==), else ValueError listing them."""
    choices = tuple(choices)
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
