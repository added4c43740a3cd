"""The record of a training run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import SymnnValueError

__all__ = ["Stop", "History", "StopReason"]


class StopReason(Enum):
    """Why a run ended (``History.stopped_by``; ``History.stop_reason`` says it in words)."""

    COMPLETED = "completed"
    CALLBACK = "callback"
    INTERRUPTED = "interrupted"
    NON_FINITE = "non-finite"
    NO_DATA = "no-data"
    SCIPY = "scipy"  #: scipy's optimiser converged
    SCIPY_LIMIT = "scipy-limit"  #: scipy stopped without converging (an iteration limit, ...)


@dataclass(frozen=True)
class Stop:
    """Why a run stops, as a callback or the loop says it: the kind
    (``History.stopped_by``) and the words (``History.stop_reason``). A callback hook may
    return one (or a message, or True)."""

    reason: StopReason
    message: str


@dataclass
class History:
    """Per-epoch metrics, per-update losses and why training stopped.

    ``epochs`` holds one dict per completed epoch (``epoch``, ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``learning_rate``, ``updates``, ``seconds``, as
    available); ``batch_loss`` the training loss of every update. ``as_dict()`` gives plain
    lists for JSON.
    """

    epochs: list[dict[str, float]] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    stop_reason: str = ""
    interrupted: bool = False
    best_epoch: int | None = None
    notes: list[str] = field(default_factory=list)
    stopped_by: StopReason | None = None  #: what ``stop_reason`` says, as a value

    def __repr__(self) -> str:
        last = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in (self.epochs[-1].items() if self.epochs else ())
        )
        return (
            f"History({len(self.epochs)} epochs, {len(self.batch_loss)} updates, "
            f"stop_reason={self.stop_reason!r}" + (f"; last epoch: {last})" if last else ")")
        )

    def __getitem__(self, key: str) -> list[float]:
        """The values of one metric across epochs: ``history["val_loss"]``."""
        if self.epochs and key not in self.epochs[-1]:
            raise KeyError(f"{key!r} was not recorded; recorded: {', '.join(self.epochs[-1])}")
        return [e.get(key, math.nan) for e in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def metrics(self) -> list[str]:
        return list(self.epochs[-1]) if self.epochs else []

    def last(self, key: str, default: Any = None) -> Any:
        return self.epochs[-1].get(key, default) if self.epochs else default

    def extend(self, other: History) -> None:
        """Append another run (a resumed ``fit``) to this one."""
        self.epochs.extend(other.epochs)
        self.batch_loss.extend(other.batch_loss)
        self.stop_reason, self.interrupted = other.stop_reason, other.interrupted
        self.stopped_by = other.stopped_by
        self.notes.extend(other.notes)
        self.best_epoch = other.best_epoch if other.best_epoch is not None else self.best_epoch

    def as_dict(self) -> dict[str, Any]:
        """Plain lists and scalars, ready for ``json.dump``."""
        keys: list[str] = []
        for e in self.epochs:
            keys += [k for k in e if k not in keys]
        return {
            "metrics": {k: [e.get(k) for e in self.epochs] for k in keys},
            "batch_loss": list(self.batch_loss),
            "stop_reason": self.stop_reason,
            "interrupted": self.interrupted,
            "best_epoch": self.best_epoch,
            "notes": list(self.notes),
            "stopped_by": None if self.stopped_by is None else self.stopped_by.value,
        }

    @classmethod
    def from_dict(cls, data: Any) -> History:
        """The inverse of :meth:`as_dict`; anything else raises ``SymnnValueError``.

        >>> History.from_dict({"metrics": {"loss": [0.5, 0.25]}, "batch_loss": [1.0]})
        History(2 epochs, 1 updates, stop_reason=''; last epoch: loss=0.25)
        >>> History.from_dict({"metrics": {"loss": "abc"}})
        Traceback (most recent call last):
        ...
        symnn.errors.SymnnValueError: history metric 'loss' is not a list of numbers.
        """
        if not isinstance(data, dict):
            raise SymnnValueError(f"history is a {type(data).__name__}; expected a mapping.")
        metrics = data.get("metrics", {})
        if not isinstance(metrics, dict):
            raise SymnnValueError("history metrics are not a mapping of name -> list.")
        for k, v in metrics.items():
            if not isinstance(v, list) or not all(_number_or_none(x) for x in v):
                raise SymnnValueError(f"history metric {k!r} is not a list of numbers.")
        n = max((len(v) for v in metrics.values()), default=0)
        epochs = [
            {k: v[i] for k, v in metrics.items() if i < len(v) and v[i] is not None}
            for i in range(n)
        ]
        batch_loss = data.get("batch_loss", [])
        if not isinstance(batch_loss, list) or not all(_number_or_none(x) for x in batch_loss):
            raise SymnnValueError("history batch_loss is not a list of numbers.")
        notes = data.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
            raise SymnnValueError("history notes are not a list of strings.")
        stop_reason, best = data.get("stop_reason", ""), data.get("best_epoch")
        if not isinstance(stop_reason, str):
            raise SymnnValueError("history stop_reason is not a string.")
        if best is not None and not (isinstance(best, int) and not isinstance(best, bool)):
            raise SymnnValueError("history best_epoch is not an integer.")
        stopped = data.get("stopped_by")
        try:
            stopped_by = None if stopped is None else StopReason(stopped)
        except (ValueError, TypeError):
            raise SymnnValueError(f"history stopped_by {stopped!r} is not a stop reason.") from None
        return cls(
            epochs,
            [float(x) for x in batch_loss],
            stop_reason,
            bool(data.get("interrupted", False)),
            best,
            list(notes),
            stopped_by,
        )


def _number_or_none(x: Any) -> bool:
    return x is None or (isinstance(x, int | float) and not isinstance(x, bool))
