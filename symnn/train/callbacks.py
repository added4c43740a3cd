"""Callbacks and stopping rules for :meth:`symnn.train.Trainer.fit`.

A callback sees the trainer at the start, after every update and after every epoch; it
stops training by returning ``True`` or a message saying why (or by raising
:class:`StopTraining`). Stopping rules are callbacks too: :class:`EarlyStopping`,
:class:`PatienceRule`, :class:`MaxUpdates`, :class:`Tolerance`; so is a learning-rate
:class:`LearningRateScheduler`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import check_choice, check_positive, describe
from .history import Stop, StopReason

__all__ = [
    "Callback",
    "StopTraining",
    "LambdaCallback",
    "EarlyStopping",
    "PatienceRule",
    "ProgressBar",
    "MaxUpdates",
    "Tolerance",
    "LearningRateScheduler",
]


class StopTraining(Exception):
    """Raise from a callback to end training after the current update."""


class Callback:
    """Base class: override the hooks you need. A hook returning ``True`` stops training."""

    def on_train_begin(self, trainer) -> None:
        """Called when ``fit`` starts (after data are loaded, before the first update)."""

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        """Called before every epoch (``epoch`` counts from 1)."""

    def on_batch_begin(self, trainer, step: int) -> None:
        """Called before every update (``step`` is the number of the update to come)."""

    def on_batch_end(self, trainer, step: int, logs: dict[str, float]) -> bool | str | None:
        """Called after every update; ``logs`` has ``loss`` (and metrics) of that minibatch."""
        return None

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> bool | str | None:
        """Called after every epoch with that epoch's metrics (also written to the history)."""
        return None

    def on_train_end(self, trainer, history) -> None:
        """Called when ``fit`` ends, for whatever reason."""


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda t, e, logs: ...)``."""

    def __init__(
        self,
        on_epoch_end: Callable | None = None,
        on_batch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
    ):
        self._epoch, self._batch = on_epoch_end, on_batch_end
        self._begin, self._end = on_train_begin, on_train_end

    def on_train_begin(self, trainer):
        if self._begin:
            self._begin(trainer)

    def on_batch_end(self, trainer, step, logs):
        return self._batch(trainer, step, logs) if self._batch else None

    def on_epoch_end(self, trainer, epoch, logs):
        return self._epoch(trainer, epoch, logs) if self._epoch else None

    def on_train_end(self, trainer, history):
        if self._end:
            self._end(trainer, history)


def _mode_for(monitor: str, mode: str) -> str:
    if mode != "auto":
        if mode not in ("min", "max"):
            raise SymnnValueError(f"mode={mode!r} is not known; expected 'auto', 'min' or 'max'.")
        return mode
    return "max" if "acc" in monitor else "min"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, and
    (with ``restore_best=True``) put back the weights of the best epoch.

    >>> EarlyStopping(monitor="val_accuracy").mode
    'max'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ):
        if int(patience) < 0:
            raise SymnnValueError(f"patience={patience!r} is not valid; expected an integer >= 0.")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = _mode_for(monitor, mode)
        self.restore_best = restore_best

    def on_train_begin(self, trainer):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: list | None = None
        self.wait = 0

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise SymnnValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not recorded; recorded: "
                f"{', '.join(logs)}. Pass validation data to monitor validation metrics."
            )
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = trainer.capture_state(counters=False)
            return None
        self.wait += 1
        return self.wait > self.patience

    def on_train_end(self, trainer, history):
        if self.best_epoch is not None:
            history.best_epoch = self.best_epoch
            if self.restore_best and self.best_state is not None:
                trainer.restore_state(self.best_state)


class PatienceRule(Callback):
    """The Theano tutorials' early-stopping rule, counted in updates.

    Training goes on for at least ``patience`` updates; whenever the monitored validation
    loss improves on the best by more than the factor ``improvement_threshold``, patience
    grows to ``max(patience, updates * patience_increase)``. Training stops once the number
    of updates reaches the patience. The best weights are restored at the end.
    """

    def __init__(
        self,
        patience: int = 5000,
        patience_increase: float = 2.0,
        improvement_threshold: float = 0.995,
        monitor: str = "val_loss",
    ):
        self.initial_patience = int(patience)
        self.patience_increase = float(patience_increase)
        self.improvement_threshold = float(improvement_threshold)
        self.monitor = monitor

    def on_train_begin(self, trainer):
        self.patience = self.initial_patience
        self.best = math.inf
        self.best_epoch = None
        self.best_state = None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise SymnnValueError(f"PatienceRule monitors {self.monitor!r}, which is not recorded.")
        value, done = logs[self.monitor], trainer.n_updates
        if value < self.best:
            if value < self.best * self.improvement_threshold:
                self.patience = max(self.patience, int(done * self.patience_increase))
            self.best, self.best_epoch = value, epoch
            self.best_state = trainer.capture_state(counters=False)
        return done >= self.patience

    def on_train_end(self, trainer, history):
        if self.best_state is not None:
            history.best_epoch = self.best_epoch
            trainer.restore_state(self.best_state)


class MaxUpdates(Callback):
    """Stop after ``max_updates`` updates in one ``fit`` call.

    >>> MaxUpdates(100).max_updates
    100
    """

    def __init__(self, max_updates: int):
        self.max_updates = int(check_positive(max_updates, "max_updates", integer=True))

    def on_train_begin(self, trainer) -> None:
        self.start = trainer.n_updates

    def on_batch_end(self, trainer, step: int, logs: dict[str, float]) -> str | None:
        if trainer.n_updates - self.start >= self.max_updates:
            return f"max_updates={self.max_updates} reached"
        return None


class Tolerance(Callback):
    """Stop when ``monitor`` (the epoch's training loss) changes by less than ``tol``."""

    def __init__(self, tol: float, monitor: str = "loss"):
        self.tol = float(check_positive(tol, "tol", allow_zero=True))
        self.monitor = monitor

    def on_train_begin(self, trainer) -> None:
        self.previous: float | None = None

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> str | None:
        value, previous = logs[self.monitor], self.previous
        self.previous = value
        if previous is not None and abs(previous - value) < self.tol:
            return f"training {self.monitor} changed by less than tol={self.tol:g}"
        return None


class LearningRateScheduler(Callback):
    """Set the learning rate from ``schedule(t)`` before every epoch (``every="epoch"``, t the
    number of epochs done) or every update (``every="step"``, t the number of updates done)."""

    def __init__(self, schedule: Callable[[int], float], every: str = "epoch"):
        if not callable(schedule):
            raise SymnnTypeError(
                f"schedule must be callable t -> learning rate; got {describe(schedule)}."
            )
        self.schedule = schedule
        self.every = check_choice(every, "schedule_every", ["epoch", "step"])

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        if self.every == "epoch":
            trainer.set_learning_rate(self.schedule(trainer.n_epochs))

    def on_batch_begin(self, trainer, step: int) -> None:
        if self.every == "step":
            trainer.set_learning_rate(self.schedule(trainer.n_updates))


class ProgressBar(Callback):
    """A tqdm progress bar over updates, with the latest metrics (writes to stderr)."""

    def __init__(self, total_updates: int | None = None, file: Any = None, leave: bool = True):
        self.total, self.file, self.leave = total_updates, file, leave
        self.bar = None

    def on_train_begin(self, trainer):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.total,
            unit="upd",
            file=self.file or sys.stderr,
            leave=self.leave,
            dynamic_ncols=True,
            mininterval=0.25,
        )

    def on_batch_end(self, trainer, step, logs):
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.bar is not None:
            shown = {k: f"{v:.4g}" for k, v in logs.items() if k not in ("seconds", "updates")}
            self.bar.set_postfix(shown, refresh=False)

    def on_train_end(self, trainer, history):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_hook(hook: Callable, *args: Any) -> Stop | None:
    """Call a callback hook; the :class:`~symnn.train.history.Stop` it asks for (a returned
    ``Stop`` as it is, a message as a callback's stop, ``True`` and :class:`StopTraining` as
    "a callback stopped training"), else None."""
    try:
        result = hook(*args)
    except StopTraining:
        return Stop(StopReason.CALLBACK, "a callback stopped training")
    if isinstance(result, Stop):
        return result
    if isinstance(result, str):
        return Stop(StopReason.CALLBACK, result) if result else None
    return Stop(StopReason.CALLBACK, "a callback stopped training") if result else None
