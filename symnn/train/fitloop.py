"""One call of :meth:`Trainer.fit`: its checked arguments (:class:`FitPlan`) and its running
state (:class:`FitRun`: history, BLAS thread tuner, non-finite rollback, retries, the
checkpoint to put back if the data turn out to hold NaN)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import interrupt
from ..backend.threads import ThreadTuner
from ..errors import SymnnTypeError, SymnnValueError
from ..ops.gather import NonFiniteRowError
from ..utils import check_choice, check_positive, describe, split_validation
from .callbacks import (
    Callback,
    LearningRateScheduler,
    MaxUpdates,
    ProgressBar,
    Tolerance,
    run_hook,
)
from .history import History, Stop, StopReason
from .inputs import arrays_of
from .objective import check_sample_weight
from .rollback import Rollback

__all__ = ["FitPlan", "FitRun", "StopReason"]

#: Inputs whose magnitude exceeds this draw a warning (raw 0-255 pixels, unscaled features).
_SCALE_WARNING = 50.0


@dataclass
class FitPlan:
    """The checked arguments of one ``fit`` call."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None  # sample weights of the training rows
    rows: np.ndarray | None  # positions in the caller's X of the training rows (after a split)
    validation: tuple[np.ndarray, np.ndarray] | None
    epochs: int
    batch_size: int
    shuffle: bool
    callbacks: list[Callback] = field(default_factory=list)
    max_retries: int = 0  # retries with a halved learning rate after a non-finite loss
    shuffle_state: dict = field(default_factory=dict)  # before the split drew from it


#: the stop of a run that Ctrl-C ended (after the update it was in)
INTERRUPTED = Stop(StopReason.INTERRUPTED, "interrupted")


@dataclass(frozen=True)
class FitOptions:
    """``Trainer.fit``'s keyword arguments, as one value (see :meth:`Trainer.fit`)."""

    epochs: int = 10
    batch_size: int = 200
    validation_data: tuple | None = None
    validation_split: float = 0.0
    shuffle: bool = True
    callbacks: Sequence[Callback] = ()
    max_updates: int | None = None
    tol: float | None = None
    schedule: Callable[[int], float] | None = None
    schedule_every: str = "epoch"
    on_nonfinite: str = "stop"
    max_retries: int = 5
    sample_weight: Any = None


def plan_fit(trainer: Any, X: Any, y: Any, args: FitOptions) -> FitPlan:
    """Check every argument of ``fit`` (naming the bad one) before anything is compiled."""
    epochs = check_positive(args.epochs, "epochs", integer=True)
    batch_size = check_positive(args.batch_size, "batch_size", integer=True)
    rules = _rules(args)
    on_nonfinite = check_choice(args.on_nonfinite, "on_nonfinite", ["stop", "halve"])
    retries = check_positive(args.max_retries, "max_retries", integer=True, allow_zero=True)
    # NaN and infinity in X are found by the step's gather as it copies each minibatch
    X, y = trainer.objective.check_xy(X, y, finite_x=False)
    w = check_sample_weight(args.sample_weight, len(X), trainer.dtype)
    shuffle_state = trainer.rng.bit_generator.state  # the split below draws from it
    X, y, rows, validation = _validation(trainer, X, y, args)
    w = w if w is None or rows is None else w[rows]
    if batch_size > len(X):
        warnings.warn(
            f"symnn: batch_size={batch_size} is larger than the {len(X)} training samples; "
            f"using batch_size={len(X)}.",
            UserWarning,
            stacklevel=4,
        )
        batch_size = len(X)
    _warn_if_unscaled(X)
    callbacks = list(args.callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise SymnnTypeError(f"callbacks must be Callback objects; got {describe(cb)}.")
    halve = on_nonfinite == "halve" and trainer.guard
    schedulers = [r for r in rules if isinstance(r, LearningRateScheduler)]
    stops = [r for r in rules if not isinstance(r, LearningRateScheduler)]
    return FitPlan(
        X,
        y,
        w,
        rows,
        validation,
        epochs,
        batch_size,
        bool(args.shuffle),
        [*schedulers, *callbacks, *stops],
        int(retries) if halve else 0,
        shuffle_state,
    )


def _rules(args: FitOptions) -> list[Callback]:
    """``max_updates``, ``tol`` and ``schedule`` as the callbacks that implement them."""
    rules: list[Callback] = []
    if args.schedule is not None:
        rules.append(LearningRateScheduler(args.schedule, args.schedule_every))
    else:
        check_choice(args.schedule_every, "schedule_every", ["epoch", "step"])
    if args.max_updates is not None:
        rules.append(MaxUpdates(args.max_updates))
    if args.tol is not None:
        rules.append(Tolerance(args.tol))
    return rules


def _validation(trainer: Any, X, y, args: FitOptions):
    data, fraction = args.validation_data, args.validation_split
    rows = None
    if fraction:
        if data is not None:
            raise SymnnValueError("pass validation_data or validation_split, not both.")
        (X, y, rows), data = split_validation(X, y, fraction, trainer.rng)
    if data is None:
        return X, y, rows, None
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise SymnnTypeError("validation_data must be a pair (X_val, y_val).")
    Xv, yv = trainer.objective.check_xy(
        *data, xname="validation_data[0]", yname="validation_data[1]"
    )
    if trainer.objective.targets_kind(yv) != trainer.objective.targets_kind(y):
        raise SymnnValueError("validation_data targets are not of the same kind as y.")
    return X, y, rows, (Xv, yv)


def _warn_if_unscaled(X: Any) -> None:
    """Warn when inputs are far from the scale the initialisations assume (order 1), judged
    on at most 1,000 evenly spaced rows (no pass over all the data)."""
    big = 0.0
    for a in arrays_of(X):
        if a.dtype.kind != "f":  # token ids
            continue
        sample = np.abs(a[:: max(1, len(a) // 1000)])
        sample = sample[np.isfinite(sample)]  # NaN and infinity get their own error
        big = max(big, float(sample.max()) if sample.size else 0.0)
    if big > _SCALE_WARNING:
        warnings.warn(
            f"symnn: X has values up to {big:g}; the weight initialisations (and input "
            "optimisation's default box [0, 1]) assume inputs of order 1. Scale the data "
            "(e.g. pixels / 255, or sklearn's StandardScaler), or training may stall.",
            UserWarning,
            stacklevel=5,
        )


class FitRun:
    """The state of one ``fit`` call and its epoch loop."""

    def __init__(self, trainer: Any, plan: FitPlan, progress: bool):
        self.trainer, self.plan = trainer, plan
        kind = trainer.objective.targets_kind(plan.y)
        self.step = trainer.compiled(kind, weighted=plan.w is not None).step
        self.step.set_data(*arrays_of(plan.X), *arrays_of(plan.y),
                           *([] if plan.w is None else [plan.w]))  # fmt: skip
        self.start = trainer.capture_state(shuffle_state=plan.shuffle_state)
        self.callbacks = list(plan.callbacks)
        if progress:
            n_batches = math.ceil(len(plan.X) / plan.batch_size)
            self.callbacks.append(ProgressBar(plan.epochs * n_batches))
        self.history = History()
        self.tuner = ThreadTuner(trainer.tuned_threads(plan.batch_size), fixed=trainer.blas_threads)
        self.rollback = Rollback(trainer, self.step, self.tuner) if trainer.guard else None
        self.retries = 0

    def execute(self) -> History:
        """Run the epochs; returns this call's History."""
        for cb in self.callbacks:
            cb.on_train_begin(self.trainer)
        try:
            with interrupt.deferred_interrupt() as interrupted:
                for _ in range(self.plan.epochs):
                    if self._epoch(interrupted):
                        break
                else:
                    self._stop(Stop(StopReason.COMPLETED, f"epochs={self.plan.epochs} completed"))
        except KeyboardInterrupt:  # raised by a callback, or a second Ctrl-C
            self._stop(INTERRUPTED)
        except NonFiniteRowError as bad:
            self._bad_row(bad.row)
        finally:
            self.tuner.restore()
        return self._finish()

    # -- one epoch ----------------------------------------------------------------------
    def _epoch(self, interrupted: Callable[[], bool]) -> bool:
        """One pass over the data; True when training stops."""
        trainer, plan = self.trainer, self.plan
        for cb in self.callbacks:
            cb.on_epoch_begin(trainer, trainer.n_epochs + 1)
        t0 = time.perf_counter()
        n = len(plan.X)
        order = trainer.rng.permutation(n) if plan.shuffle else np.arange(n)
        sums, seen, stop = [0.0] * len(self.step.names), 0, None
        for start in range(0, n, plan.batch_size):
            idx = order[start : start + plan.batch_size]
            values, stop = self._update(idx)
            if values is not None:
                sums = [t + len(idx) * v for t, v in zip(sums, values)]
                seen += len(idx)
            stop = stop or (INTERRUPTED if interrupted() else None)
            if stop:
                break
        if seen == 0:
            return self._stop(stop or Stop(StopReason.NON_FINITE, "non-finite"))
        logs = self._record_epoch([t / seen for t in sums], t0)
        stop = stop or self._first_stop("on_epoch_end", trainer.n_epochs, logs)
        stop = stop or (INTERRUPTED if interrupted() else None)
        return self._stop(stop) if stop else False

    def _update(self, idx: np.ndarray) -> tuple[list[float] | None, Stop | None]:
        """One update; ``(its outputs or None, why training stops or None)``."""
        trainer, rollback, callbacks = self.trainer, self.rollback, self.callbacks
        for cb in callbacks:
            cb.on_batch_begin(trainer, trainer.n_updates + 1)
        if rollback is not None:
            rollback.maybe_snapshot()
        values = [float(v) for v in self.tuner(self.step, idx)]
        while not math.isfinite(values[0]) and self.retries < self.plan.max_retries:
            self.retries += 1
            values = self._retry_halved(idx)
        if not math.isfinite(values[0]):
            return None, self._non_finite(values[0])
        if rollback is not None:
            rollback.record(idx, trainer.current_learning_rate())
        trainer.n_updates += 1
        self.history.batch_loss.append(values[0])
        if not callbacks:
            return values, None
        logs = dict(zip(self.step.names, values))
        return values, self._first_stop("on_batch_end", trainer.n_updates, logs)

    def _first_stop(self, hook: str, counter: int, logs: dict[str, float]) -> Stop | None:
        """Run ``hook`` of every callback (all of them); the first reason to stop, if any."""
        reasons = [
            run_hook(getattr(cb, hook), self.trainer, counter, logs) for cb in self.callbacks
        ]
        return next((r for r in reasons if r), None)

    def _record_epoch(self, means: list[float], t0: float) -> dict[str, float]:
        trainer = self.trainer
        trainer.n_epochs += 1
        logs = dict(zip(self.step.names, means))
        if self.plan.validation is not None:
            logs.update({f"val_{k}": v for k, v in trainer.evaluate(*self.plan.validation).items()})
        logs.update(
            epoch=trainer.n_epochs,
            updates=trainer.n_updates,
            learning_rate=trainer.current_learning_rate(),
            seconds=time.perf_counter() - t0,
        )
        self.history.epochs.append(logs)
        return logs

    # -- non-finite losses --------------------------------------------------------------
    def _retry_halved(self, idx: np.ndarray) -> list[float]:
        """Undo the update that led to a non-finite loss, halve the learning rate, redo the
        undone minibatches and this one; returns this minibatch's outputs."""
        trainer, rollback, history = self.trainer, self.rollback, self.history
        undone = rollback.restore(drop_last=1)
        if undone is None:
            return [math.nan]
        trainer.n_updates -= undone
        del history.batch_loss[len(history.batch_loss) - undone :]
        trainer.set_learning_rate(trainer.current_learning_rate() / 2)
        history.notes.append(
            f"update {trainer.n_updates + 1}: non-finite loss; rolled back {undone} update(s), "
            f"learning rate halved to {trainer.current_learning_rate():.3g}"
        )
        rollback.maybe_snapshot(force=True)
        for redo in rollback.dropped:
            values = [float(v) for v in self.tuner(self.step, redo)]
            if not math.isfinite(values[0]):
                return values
            rollback.record(redo, trainer.current_learning_rate())
            trainer.n_updates += 1
            history.batch_loss.append(values[0])
        return [float(v) for v in self.tuner(self.step, idx)]

    def _non_finite(self, loss: float) -> Stop:
        """Handle a non-finite loss: roll back when guarded; return the stop."""
        return Stop(StopReason.NON_FINITE, self._roll_back(loss))

    def _roll_back(self, loss: float) -> str:
        """Roll back when guarded; what happened, in words."""
        trainer, rollback = self.trainer, self.rollback
        where = f"non-finite training loss ({loss}) at update {trainer.n_updates + 1}"
        if rollback is None:
            return f"{where}; guard=False, so the weights may hold NaN."
        undone = rollback.restore()
        if undone is None:
            return f"{where}; no finite state could be rebuilt, the weights may hold NaN."
        if undone:  # updates with a finite loss whose result overflowed
            trainer.n_updates -= undone
            del self.history.batch_loss[len(self.history.batch_loss) - undone :]
        return (
            f"{where}; the network was put back to the weights and optimiser state of "
            f"the last update that left them finite (update {trainer.n_updates}). Lower the "
            "learning rate or check the data."
        )

    # -- the end ------------------------------------------------------------------------
    def _stop(self, stop: Stop) -> bool:
        self.history.stopped_by, self.history.stop_reason = stop.reason, stop.message
        return True

    def _bad_row(self, row: int) -> None:
        for cb in self.callbacks:
            cb.on_train_end(self.trainer, self.history)
        self.trainer.restore_state(self.start)
        where = row if self.plan.rows is None else int(self.plan.rows[row])
        raise SymnnValueError(
            f"X contains NaN or infinity (row {where}); expected finite numbers. The model "
            "keeps the weights it had before this fit."
        )

    def _finish(self) -> History:
        trainer, history = self.trainer, self.history
        if self.tuner.choice is not None and self.tuner.fixed is None:
            trainer.remember_threads(self.plan.batch_size, self.tuner.choice)
        history.interrupted = history.stopped_by is StopReason.INTERRUPTED
        for cb in self.callbacks:
            cb.on_train_end(trainer, history)
        if history.stopped_by is StopReason.NON_FINITE:
            warnings.warn(
                f"symnn: training stopped: {history.stop_reason}", RuntimeWarning, stacklevel=4
            )
        trainer.history.extend(history)
        return history
