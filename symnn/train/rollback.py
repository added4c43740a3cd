"""The non-finite guard of :meth:`Trainer.fit`: snapshots and an exact replay.

A guard inside the compiled step would have to keep a copy of every parameter on every
update (an update in place destroys the old value), which costs about a sixth of the step
(see ``benchmarks/train_speed.py``). Instead the trainer takes a snapshot of the whole state
(parameters, layer statistics, optimiser state, learning rate, dropout generators) every
``every`` updates and records the minibatches since. When a loss comes back NaN or infinite,
the state is restored from the snapshot and the recorded updates are replayed: on a CPU the
compiled step is deterministic, so this reproduces, bit for bit, the state after the last
finite update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Rollback"]


class Rollback:
    """Snapshot-and-replay for one ``fit`` call."""

    def __init__(self, trainer: Any, step: Callable, tuner: Any, every: int = 256):
        self.trainer, self.step, self.tuner, self.every = trainer, step, tuner, int(every)
        self.snapshot: tuple[list, list] | None = None
        self.recorded: list[tuple[np.ndarray, float, int]] = []
        self.dropped: list[np.ndarray] = []

    def maybe_snapshot(self, force: bool = False) -> None:
        """Take a snapshot when none exists or ``every`` updates were recorded since."""
        if force or self.snapshot is None or len(self.recorded) >= self.every:
            rngs = [r.get_value() for r in self.trainer.network.get_rngs()]
            self.snapshot = (self.trainer.get_state(), rngs)
            self.recorded = []

    def record(self, indices: np.ndarray, learning_rate: float) -> None:
        """Remember a completed (finite) update, with the BLAS thread count it ran with (a
        different count can change the last bits of a matrix product)."""
        self.recorded.append((indices, learning_rate, self.tuner.current))

    def restore(self, drop_last: int = 0) -> int | None:
        """Put back the state after the last recorded update whose result is entirely
        finite (an update with a finite loss can still overflow the weights), or ``drop_last``
        updates before it. Returns how many recorded updates were undone (their minibatches
        are in :attr:`dropped`), or None when no finite state could be rebuilt."""
        if self.snapshot is None:
            return None
        state, rngs = self.snapshot
        if not _finite(state):
            return None
        self.trainer.set_state(state)
        for r, value in zip(self.trainer.network.get_rngs(), rngs):
            r.set_value(value)
        lr = self.trainer.learning_rate
        last_good = (state, [r.get_value() for r in self.trainer.network.get_rngs()])
        kept = 0
        for indices, rate, threads in self.recorded:
            lr.set_value(np.asarray(rate, dtype=lr.dtype))
            self.tuner.set(threads)
            loss = float(self.step(indices)[0])
            now = self.trainer.get_state()
            if not (np.isfinite(loss) and _finite(now)):
                break
            last_good = (now, [r.get_value() for r in self.trainer.network.get_rngs()])
            kept += 1
        if drop_last:
            self.trainer.set_state(state)
            for r, value in zip(self.trainer.network.get_rngs(), rngs):
                r.set_value(value)
            keep = max(kept - drop_last, 0)
            for indices, rate, threads in self.recorded[:keep]:
                lr.set_value(np.asarray(rate, dtype=lr.dtype))
                self.tuner.set(threads)
                self.step(indices)
            self.dropped = [rec[0] for rec in self.recorded[keep:]]
            self.recorded = self.recorded[:keep]
            return len(self.dropped)
        undone = len(self.recorded) - kept
        self.dropped = [rec[0] for rec in self.recorded[kept:]]
        self.recorded = self.recorded[:kept]
        self.trainer.set_state(last_good[0])
        for r, value in zip(self.trainer.network.get_rngs(), last_good[1]):
            r.set_value(value)
        return undone


def _finite(arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)
