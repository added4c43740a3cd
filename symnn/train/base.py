"""What every trainer shares: the objective (network, loss, penalties), the run's settings
(mode, BLAS threads, seed), its counters and history, evaluation and prediction, and the
state and progress that files keep. :class:`~symnn.train.Trainer` (an update rule over
minibatches) and :class:`~symnn.train.ScipyTrainer` (``scipy.optimize`` on the flat
parameters) differ in how they compile and fit."""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend.threads import check_blas_threads
from ..layers import Layer
from ..utils import as_rng
from .heads import check_targets_kind
from .history import History
from .objective import Evaluator, Objective
from .state import progress_of, set_progress

__all__ = ["BaseTrainer", "locked"]


def locked(method: Callable) -> Callable:
    """Run a method holding its object's ``_lock``: a trainer's compiled functions keep
    their data in storage shared by every caller, so one thread at a time uses them."""

    @functools.wraps(method)
    def run(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class BaseTrainer(ABC):
    """The surface both trainers share (see the module docstring); not used directly."""

    def __init__(self, objective: Objective, *, seed: Any, mode: Any, blas_threads: Any):
        self.objective = objective
        self.mode = mode
        self.blas_threads = check_blas_threads(blas_threads)  # None: tuned by timing
        self.rng = as_rng(seed, name="seed")
        self.n_updates = 0
        self.n_epochs = 0
        self.history = History()
        self.evaluator = Evaluator(self.objective, mode)
        self._lock = threading.RLock()  # see locked()

    # -- what it trains ----------------------------------------------------------------
    network = property(lambda self: self.objective.network, doc="The network trained.")
    loss_name = property(
        lambda self: self.objective.loss_name, doc="The loss's name (one per output)."
    )
    loss_fn = property(lambda self: self.objective.loss_fn, doc="The per-example loss.")
    loss_weights = property(
        lambda self: self.objective.loss_weights, doc="The outputs' loss weights (None: 1)."
    )
    l1 = property(lambda self: self.objective.l1, doc="The L1 coefficient.")
    l2 = property(lambda self: self.objective.l2, doc="The L2 coefficient.")
    penalty_per_row = property(
        lambda self: self.objective.per_row, doc="Penalties divided by each batch's rows."
    )
    dtype = property(lambda self: self.objective.dtype, doc="The network's float type.")

    # -- compiling ------------------------------------------------------------------------
    @abstractmethod
    def _compile_targets(self, kind: str) -> None:
        """Compile what ``fit`` runs for targets of ``kind`` (``"labels"``/``"values"``,
        one per output joined by commas for several outputs)."""

    @locked
    def compile(self, targets: str = "labels") -> BaseTrainer:
        """Compile what ``fit`` runs, the evaluation and the prediction functions now
        (``fit`` otherwise compiles them on first use). ``targets`` is ``"labels"``
        (integer classes) or ``"values"`` (float targets); for several outputs one of them
        per output joined by commas (``"labels,values"``). Returns the trainer."""
        kind = check_targets_kind(targets, len(self.objective.heads))
        self._compile_targets(kind)
        self.evaluator._evaluation(kind)
        self.predict_proba(self.objective.signature.zeros())
        return self

    # -- state ----------------------------------------------------------------------------
    def _state_vars(self) -> list:
        """The shared variables :meth:`get_state` copies."""
        return list(self.network.get_params())

    @locked
    def get_state(self) -> list[np.ndarray]:
        """Copies of every parameter and layer state (and a rule's state, if it keeps one)."""
        return [np.asarray(v.get_value()) for v in self._state_vars()]

    @locked
    def set_state(self, values: Sequence[np.ndarray]) -> None:
        """Put back what :meth:`get_state` returned."""
        for var, val in zip(self._state_vars(), values, strict=True):
            var.set_value(np.array(val, copy=True))

    def get_progress(self) -> dict[str, Any]:
        """Counters, shuffling generator, history and the kind of targets, as JSON values."""
        return progress_of(self)

    def set_progress(self, progress: dict[str, Any]) -> None:
        """Put back what :meth:`get_progress` returned."""
        set_progress(self, progress)

    @classmethod
    def from_config(cls, network: Layer, config: dict[str, Any]) -> BaseTrainer:
        """A trainer of ``network`` with the settings of its ``get_config``."""
        return cls(network, **config)

    # -- evaluation ---------------------------------------------------------------------
    @locked
    def evaluate(self, X, y) -> dict[str, float]:
        """Loss (the objective, inference mode) and accuracy over ``(X, y)``, in chunks;
        for several outputs also each output's ``<name>_loss`` and ``<name>_accuracy``."""
        return self.evaluator.evaluate(X, y)

    @locked
    def predict_proba(self, X) -> np.ndarray | list[np.ndarray]:
        """The network's output (inference mode) for ``X``, one array per output for
        several outputs; a row's output does not depend
        on the other rows of the call (see :class:`~symnn.train.objective.Evaluator`)."""
        return self.evaluator.predict_proba(X)

    def predict(self, X) -> np.ndarray | list[np.ndarray]:
        """Classes for a classification loss (argmax of the output; ``> 0.5`` for a single
        output), the output's values for a regression loss (``squared_error``, ...) or a
        custom one; one array per output for several outputs."""
        return self.evaluator.predict(X)
