"""The record of a training run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        metrics = data.get("metrics", {})
        n = max((len(v) for v in metrics.values()), default=0)
        epochs = [{k: v[i] for k, v in metrics.items() if v[i] is not None} for i in range(n)]
        return cls(
            epochs,
            list(data.get("batch_loss", [])),
            data.get("stop_reason", ""),
            bool(data.get("interrupted", False)),
            data.get("best_epoch"),
            list(data.get("notes", [])),
        )
