"""The non-finite guard of :meth:`Trainer.fit`: snapshots and an exact replay.

A guard inside the compiled step would have to keep a copy of every parameter on every
update (an update in place destroys the old value). Instead the trainer captures its state
(:class:`~symnn.train.state.RunState`: parameters, layer statistics, optimiser state,
learning rate, dropout generators) every ``every`` updates and records the minibatches since.
When a loss comes back NaN or infinite, the state is restored from the snapshot and the
recorded updates are replayed with the same learning rates and BLAS thread counts: on a CPU
the compiled step is deterministic, so this reproduces, bit for bit, the state after the last
finite update. The cost of the snapshots is in ``docs/performance.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .state import RunState

__all__ = ["Rollback"]


class Rollback:
    """Snapshot-and-replay for one ``fit`` call."""

    def __init__(self, trainer: Any, step: Callable, tuner: Any, every: int = 256):
        self.trainer, self.step, self.tuner, self.every = trainer, step, tuner, int(every)
        self.snapshot: RunState | None = None
        self.recorded: list[tuple[np.ndarray, float, int]] = []
        self.dropped: list[np.ndarray] = []

    def maybe_snapshot(self, force: bool = False) -> None:
        """Take a snapshot when none exists or ``every`` updates were recorded since."""
        if force or self.snapshot is None or len(self.recorded) >= self.every:
            self.snapshot = self.trainer.capture_state(counters=False)
            self.recorded = []

    def record(self, indices: np.ndarray, learning_rate: float) -> None:
        """Remember a completed (finite) update, with the BLAS thread count it ran with (a
        different count can change the last bits of a matrix product)."""
        self.recorded.append((indices, learning_rate, self.tuner.current))

    def _replay(self, records: list) -> int:
        """Redo ``records`` from the current state, stopping at the first whose loss or
        result is not finite; returns how many were redone."""
        lr = self.trainer.learning_rate
        for done, (indices, rate, threads) in enumerate(records):
            lr.set_value(np.asarray(rate, dtype=lr.dtype))
            self.tuner.set(threads)
            loss = float(self.step(indices)[0])
            if not (np.isfinite(loss) and self.trainer.capture_state(counters=False).finite):
                return done
        return len(records)

    def restore(self, drop_last: int = 0) -> int | None:
        """Put back the state after the last recorded update whose result is entirely
        finite (an update with a finite loss can still overflow the weights), or ``drop_last``
        updates before it. Returns how many recorded updates were undone (their minibatches
        are in :attr:`dropped`), or None when no finite state could be rebuilt."""
        if self.snapshot is None or not self.snapshot.finite:
            return None
        self.trainer.restore_state(self.snapshot)
        kept = self._replay(self.recorded)
        keep = max(kept - drop_last, 0)
        self.trainer.restore_state(self.snapshot)
        self._replay(self.recorded[:keep])
        self.dropped = [rec[0] for rec in self.recorded[keep:]]
        self.recorded = self.recorded[:keep]
        return len(self.dropped)
