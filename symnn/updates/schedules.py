"""Learning-rate schedules: callables ``schedule(t) -> learning rate``.

``t`` counts steps or epochs (the trainer's ``schedule_every`` says which). The trainer
keeps the learning rate in a shared variable and sets it from the schedule, so changing
the rate never recompiles.

>>> ExponentialDecay(0.3, 0.5)(2)
0.075
>>> StepDecay(0.1, drop=0.5, every=10)(25)
0.025
>>> InverseTimeDecay(1.0, decay=1.0)(3)
0.25
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor

from ..errors import SymnnValueError
from ..utils import check_positive

__all__ = ["Constant", "ExponentialDecay", "StepDecay", "InverseTimeDecay", "shared_learning_rate"]


def _positive(value: float, name: str) -> float:
    return float(check_positive(value, name))


@dataclass(frozen=True)
class Constant:
    """The same rate at every ``t``."""

    learning_rate: float

    def __post_init__(self):
        _positive(self.learning_rate, "learning_rate")

    def __call__(self, t: int) -> float:
        return float(self.learning_rate)


@dataclass(frozen=True)
class ExponentialDecay:
    """``learning_rate * decay ** t``: an exponential decay applied per step."""

    learning_rate: float
    decay: float

    def __post_init__(self):
        _positive(self.learning_rate, "learning_rate")
        if not 0 < self.decay <= 1:
            raise SymnnValueError(f"decay={self.decay!r} is not valid; expected 0 < decay <= 1.")

    def __call__(self, t: int) -> float:
        return float(self.learning_rate * self.decay**t)


@dataclass(frozen=True)
class StepDecay:
    """``learning_rate * drop ** (t // every)``: drop the rate every ``every`` epochs."""

    learning_rate: float
    drop: float = 0.5
    every: int = 10

    def __post_init__(self):
        _positive(self.learning_rate, "learning_rate")
        if not 0 < self.drop <= 1:
            raise SymnnValueError(f"drop={self.drop!r} is not valid; expected 0 < drop <= 1.")
        check_positive(self.every, "every", integer=True)

    def __call__(self, t: int) -> float:
        return float(self.learning_rate * self.drop ** (int(t) // int(self.every)))


@dataclass(frozen=True)
class InverseTimeDecay:
    """``learning_rate / (1 + decay * t)``: 1/t annealing."""

    learning_rate: float
    decay: float = 1.0

    def __post_init__(self):
        _positive(self.learning_rate, "learning_rate")
        if self.decay < 0:
            raise SymnnValueError(f"decay={self.decay!r} is not valid; expected decay >= 0.")

    def __call__(self, t: int) -> float:
        return float(self.learning_rate / (1.0 + self.decay * t))


def shared_learning_rate(value: float, dtype: str = "float32", name: str = "learning_rate"):
    """A shared scalar holding a learning rate, to pass to an update rule and change later."""
    return pytensor.shared(np.asarray(_positive(value, name), dtype=dtype), name=name)
