"""One way to capture and restore the state of a run: the values of its shared variables
(parameters, layer statistics, optimiser state, learning rate, the inputs of an ascent), its
random generators (dropout, jitter) and its counters, as plain copies.

Used by the fit loop's start checkpoint and non-finite rollback, by early stopping, by the
ascent's replay snapshots and by :mod:`symnn.io`; :meth:`RunState.capture` and
:meth:`RunState.restore` are each other's inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .history import History

__all__ = ["RunState", "progress_of", "set_progress"]


@dataclass(frozen=True)
class RunState:
    """Copies of shared variables' values and random generators, plus counters.

    >>> import pytensor
    >>> w = pytensor.shared(np.zeros(2))
    >>> state = RunState.capture([w], counters={"updates": 3})
    >>> w.set_value(np.ones(2))
    >>> state.restore([w])
    >>> w.get_value(), state.counters["updates"]
    (array([0., 0.]), 3)
    """

    values: tuple[np.ndarray, ...]
    generators: tuple[Any, ...] = ()
    counters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def capture(
        cls,
        variables: Sequence[Any],
        generators: Sequence[Any] = (),
        counters: dict[str, Any] | None = None,
    ) -> RunState:
        """Copy the values of ``variables`` and ``generators`` (shared variables)."""
        return cls(
            tuple(v.get_value() for v in variables),
            tuple(g.get_value() for g in generators),
            dict(counters or {}),
        )

    def restore(self, variables: Sequence[Any], generators: Sequence[Any] = ()) -> None:
        """Write the copies back (the same variables, in the same order, as captured)."""
        for var, value in zip(variables, self.values, strict=True):
            var.set_value(np.array(value, copy=True))
        for gen, value in zip(generators, self.generators, strict=True):
            gen.set_value(value)

    @property
    def finite(self) -> bool:
        """Whether every float value is finite."""
        return all(np.all(np.isfinite(v)) for v in self.values if v.dtype.kind == "f")


def progress_of(trainer: Any) -> dict[str, Any]:
    """A trainer's counters, shuffling generator, history and kind of targets, as JSON
    values (what a file keeps besides the arrays)."""
    return {
        "n_updates": trainer.n_updates,
        "n_epochs": trainer.n_epochs,
        "rng_state": trainer.rng.bit_generator.state,
        "history": trainer.history.as_dict(),
        "targets_kind": trainer.targets_kind,
    }


def set_progress(trainer: Any, progress: dict[str, Any]) -> None:
    """Put back what :func:`progress_of` returned."""
    trainer.n_updates, trainer.n_epochs = int(progress["n_updates"]), int(progress["n_epochs"])
    trainer.rng.bit_generator.state = progress["rng_state"]
    trainer.history = History.from_dict(progress["history"])
