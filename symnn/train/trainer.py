"""The ``Trainer``: a network, a loss and an update rule, compiled once and driven over
shuffled minibatches by :meth:`Trainer.fit`."""

from __future__ import annotations

import inspect
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor
from pytensor.tensor import TensorType

from ..backend import COMPILE_LOCK, mode_name
from ..backend.cache import COMPILED, CompiledCache
from ..costs import LOSSES
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer, get_updates, layer_to_spec
from ..updates import RULES, shared_learning_rate, total_norm_constraint
from ..updates.rules import get_or_compute_grads
from ..utils import check_choice, check_positive, describe
from .base import BaseTrainer, locked
from .callbacks import Callback
from .fitloop import FitOptions, FitRun, plan_fit
from .heads import check_targets_kind
from .history import History
from .objective import Objective
from .state import RunState
from .step import TrainStep, compile_train_step

__all__ = ["Trainer", "LOSSES", "DEFAULTS", "Compiled", "locked", "interactive"]

#: The defaults of every training entry point (``Trainer``, ``symnn train``, the
#: estimators): scikit-learn's MLP defaults (Adam, learning rate 0.001, minibatches of 200).
DEFAULTS = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 200}


def interactive() -> bool:
    """Whether a person is watching: stderr is a terminal, or the code runs in a Jupyter
    kernel (where tqdm's notebook-aware bar shows; stderr is no terminal there)."""
    if hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        return True
    shell = sys.modules.get("IPython")
    ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return type(ipython).__name__ == "ZMQInteractiveShell"


class _StepTemplates:
    """Compiled training steps by model (architecture, loss, optimizer and its settings,
    which penalties it has, mode), so that a trainer of a model already compiled in this
    process (a scikit-learn clone, a search candidate, a refit) copies the compiled code onto
    its own shared variables instead of rewriting and compiling the graph again. Penalty
    coefficients are shared variables too, so a search over ``alpha`` compiles once. Kept in
    the process's :data:`~symnn.backend.cache.COMPILED` cache (its last ``size`` models)."""

    def __init__(self, cache: CompiledCache = COMPILED):
        self.cache = cache

    def templates(self) -> dict[str, tuple[TrainStep, list]]:
        """The kept templates by model key."""
        return {k[1]: v for k, v in self.cache.items(None) if k[0] == "train step"}

    def copy(self, key: str | None, roles: list) -> TrainStep | None:
        found = self.cache.lookup(None, ("train step", key)) if key is not None else None
        if found is None:
            return None
        step, template_roles = found
        if len(roles) != len(template_roles):
            return None
        with COMPILE_LOCK:  # linking touches PyTensor's shared state
            return step.copy_with(dict(zip(template_roles, roles)))

    def add(self, key: str | None, step: TrainStep, roles: list) -> None:
        """Keep ``step`` as the template of ``key``, copied onto placeholder variables of
        its own (the trainer's weights and data are not kept alive by the cache)."""
        if key is None:
            return
        placeholders = [_placeholder(v) for v in roles]
        with COMPILE_LOCK:
            template = step.copy_with(dict(zip(roles, placeholders)))
        if template is not None:  # the cache's lock is taken after COMPILE_LOCK is released
            self.cache.put(None, ("train step", key), (template, placeholders))


def _placeholder(var: Any) -> Any:
    """A shared variable of ``var``'s type holding a copy of its value."""
    value = var.get_value()
    if isinstance(var.type, TensorType):
        return pytensor.shared(value, name=var.name, shape=var.type.shape)
    return pytensor.shared(value, name=var.name)


_TEMPLATES = _StepTemplates()


@dataclass
class Compiled:
    """A trainer's compiled training step for one kind of targets, and the shared
    variables of its update rule (velocities, moments, step counter)."""

    kind: str
    step: TrainStep
    optimizer_state: list
    weighted: bool = False  #: the step takes per-row weights (``sample_weight``)


class Trainer(BaseTrainer):
    """Compile a network's training step once and fit it over minibatches.

    The settings are keyword-only and mirror Keras' ``Model.compile``/``Model.fit`` and
    Lasagne's update-rule arguments (``**optimizer_kwargs`` go to the rule).

    Parameters
    ----------
    network
        A :class:`symnn.layers.Layer` (e.g. from :func:`symnn.layers.mlp`).
    loss
        A name from :data:`symnn.costs.LOSSES` or a callable ``(predictions, targets) ->
        per-example``; for a :class:`~symnn.layers.Graph` of several outputs, one loss for
        all, a list of one per output or a dict by output name (Keras' ``loss``).
    loss_weights
        Each output's weight in the objective, as a list or a dict by output name (default
        1 each; Keras' ``loss_weights``). ``fit`` then takes one target array per output
        (``fit(X, [y_a, y_b])``); ``evaluate`` adds each output's loss and accuracy and
        ``predict`` returns one array per output.
    optimizer
        A name from :data:`symnn.updates.RULES` or an update rule with Lasagne's signature
        (default ``"adam"``, see :data:`DEFAULTS`).
    learning_rate
        Initial learning rate (default 0.001; kept in a shared variable, schedules change it).
    l1, l2
        Penalty coefficients on the regularisable parameters (weights, not biases); the
        objective adds ``l1 * sum|W| + l2 / 2 * sum W**2``.
    penalty_per_row
        Divide the penalties by the number of rows of each batch, as scikit-learn's ``alpha``
        does (``alpha / (2 n) * sum W**2``); off, they are added once per batch.
    max_norm
        Rescale the joint gradient norm to at most this (``total_norm_constraint``).
    guard
        On a NaN or infinite loss, put back the state after the last finite update (by
        snapshot and exact replay, see :mod:`symnn.train.rollback`). Off, the weights after
        a non-finite loss may hold NaN.
    seed
        Seed of the shuffling generator (the network's own seed set its weights).
    mode
        Compile mode (default: symnn's C backend with BLAS).
    blas_threads
        ``"auto"`` (default): each ``fit`` times its first steps with one BLAS thread and with
        all of them, keeps the faster and re-checks it as it goes
        (:mod:`symnn.backend.threads`). The count can change the last bits of a matrix
        product, so a number (``2``) fixes it for runs that are bit-identical.
    **optimizer_kwargs
        Passed to the update rule (``momentum=0.9``, ``beta1=...``).

    Examples
    --------
    >>> from symnn.layers import mlp
    >>> from symnn.datasets import xor
    >>> X, y = xor()
    >>> trainer = Trainer(mlp([2, 8, 2], hidden="tanh", rng=0), learning_rate=0.05,
    ...                   mode="FAST_COMPILE")
    >>> history = trainer.fit(X, y, epochs=200, batch_size=4, progress=False)
    >>> trainer.evaluate(X, y)["accuracy"]
    1.0
    """

    def __init__(
        self,
        network: Layer,
        *,
        loss: Any = "categorical_crossentropy",
        loss_weights: Any = None,
        optimizer: str | Callable = DEFAULTS["optimizer"],
        learning_rate: float = DEFAULTS["learning_rate"],
        l1: float = 0.0,
        l2: float = 0.0,
        penalty_per_row: bool = False,
        max_norm: float | None = None,
        guard: bool = True,
        seed: Any = 0,
        mode: Any = None,
        blas_threads: int | str = "auto",
        **optimizer_kwargs: Any,
    ):
        objective = Objective.create(network, loss, l1, l2, penalty_per_row, loss_weights)
        super().__init__(objective, seed=seed, mode=mode, blas_threads=blas_threads)
        self.optimizer_name, self.rule = _update_rule(optimizer)
        check_positive(learning_rate, "learning_rate")
        self.max_norm = None if max_norm is None else float(check_positive(max_norm, "max_norm"))
        self.guard = bool(guard)
        self.optimizer_kwargs = _checked_rule_kwargs(self.rule, self.optimizer_name,
                                                     optimizer_kwargs)
        self.learning_rate = shared_learning_rate(learning_rate, self.dtype)
        self._compiled: Compiled | None = None
        self._pending_state: tuple[str, list[np.ndarray]] | None = None
        self._threads: dict[int, int] = {}  # batch size -> fastest BLAS thread count

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.network!r}, loss={self.loss_name!r}, "
            f"optimizer={self.optimizer_name!r}, learning_rate={self.current_learning_rate():g}, "
            f"updates={self.n_updates}, epochs={self.n_epochs})"
        )

    # -- compiling ------------------------------------------------------------------------
    def compiled(self, kind: str, weighted: bool = False) -> Compiled:
        """The compiled step for targets of ``kind``, with per-row weights when
        ``weighted`` (compiled on first use; a step of the other weighting takes over the
        optimiser state)."""
        if self._compiled is not None and self._compiled.kind != kind:
            raise SymnnValueError(
                f"this trainer was compiled for {self._compiled.kind} targets; got {kind}."
            )
        if self._compiled is not None and self._compiled.weighted != weighted:
            self._pending_state = (kind, [np.asarray(v.get_value()) for v in self.optimizer_state])
            self._compiled = None
        if self._compiled is None:
            self._compiled = self._compile(kind, weighted)
            if self._pending_state is not None and self._pending_state[0] == kind:
                self._write_optimizer_state(self._pending_state[1])
            self._pending_state = None
        return self._compiled

    def _compile(self, kind: str, weighted: bool = False) -> Compiled:
        x, ys = self.objective.symbols(kind)
        w = self.objective.weight_symbol() if weighted else None
        loss, _, metrics = self.objective.build(x, ys, kind, deterministic=False, w=w)
        params = self.network.params
        grads = get_or_compute_grads(loss, params)
        if self.max_norm is not None:
            grads = total_norm_constraint(grads, self.max_norm)
        try:
            ups = dict(
                self.rule(grads, params, learning_rate=self.learning_rate, **self.optimizer_kwargs)
            )
        except TypeError as exc:
            raise SymnnTypeError(
                f"optimizer {self.optimizer_name!r} rejected its arguments "
                f"{sorted(self.optimizer_kwargs)}: {exc}"
            ) from None
        state = [k for k in ups if k not in params]
        ups.update(get_updates(loss))
        roles = [*self.network.get_params(), *state, self.learning_rate, *self.network.get_rngs(),
                 *self.objective.penalty_variables()]  # fmt: skip
        key = self._template_key(kind if w is None else f"{kind}, weighted")
        step = _TEMPLATES.copy(key, roles)  # the compiled code of an identical model, if any
        if step is None:
            inputs = [*x, *ys] if w is None else [*x, *ys, w]
            step = compile_train_step(
                loss, ups, inputs=inputs, outputs=metrics, guard=False, mode=self.mode
            )
            _TEMPLATES.add(key, step, roles)
        return Compiled(kind, step, state, w is not None)

    def _template_key(self, kind: str) -> str | None:
        """What makes two trainers' steps the same graph (None: not shareable)."""
        heads = self.objective.heads
        if any(h.loss_name not in LOSSES for h in heads) or self.optimizer_name not in RULES:
            return None
        if self.mode is not None and not isinstance(self.mode, str):
            return None
        try:
            spec = layer_to_spec(self.network)
            return json.dumps(
                [spec, kind, self.loss_name, self.loss_weights, self.optimizer_name,
                 self.optimizer_kwargs,
                 bool(self.l1), bool(self.l2), self.penalty_per_row, self.max_norm,
                 _mode_name(self.mode)],
                sort_keys=True,
            )  # fmt: skip
        except (SymnnValueError, SymnnTypeError, TypeError, ValueError):
            return None

    def _compile_targets(self, kind: str) -> None:
        self.compiled(kind)

    @property
    def targets_kind(self) -> str | None:
        """``"labels"`` or ``"values"`` (one per output, joined by commas) once compiled
        (what ``fit`` was given), else None."""
        return None if self._compiled is None else self._compiled.kind

    # -- state --------------------------------------------------------------------------
    @property
    def optimizer_state(self) -> list:
        """Shared variables of the update rule (velocities, moments, step counter)."""
        return [] if self._compiled is None else list(self._compiled.optimizer_state)

    def _state_vars(self) -> list:
        return [*self.network.get_params(), *self.optimizer_state, self.learning_rate]

    def capture_state(
        self, *, counters: bool = True, shuffle_state: dict | None = None
    ) -> RunState:
        """Everything ``fit`` changes: the state of :meth:`get_state`, the network's random
        generators and (with ``counters``) the update and epoch counters and the shuffling
        generator (``shuffle_state`` if given)."""
        numbers = {
            "n_updates": self.n_updates,
            "n_epochs": self.n_epochs,
            "shuffle": shuffle_state or self.rng.bit_generator.state,
        }
        return RunState.capture(
            self._state_vars(), self.network.get_rngs(), numbers if counters else None
        )

    def restore_state(self, state: RunState) -> None:
        """Put back what :meth:`capture_state` captured."""
        state.restore(self._state_vars(), self.network.get_rngs())
        if state.counters:
            self.n_updates = state.counters["n_updates"]
            self.n_epochs = state.counters["n_epochs"]
            self.rng.bit_generator.state = state.counters["shuffle"]

    def set_optimizer_state(self, values: Sequence[np.ndarray], targets: str = "labels") -> None:
        """Set the update rule's state (as :attr:`optimizer_state` lists it), e.g. from a
        file: now if the step for ``targets`` is compiled, else when it is."""
        if self._compiled is not None:
            self._write_optimizer_state(values)
        else:
            kind = check_targets_kind(targets, len(self.objective.heads))
            self._pending_state = (kind, list(values))

    def _write_optimizer_state(self, values: Sequence[np.ndarray]) -> None:
        state = self.optimizer_state
        if len(values) != len(state):
            raise SymnnValueError(
                f"the saved optimiser state has {len(values)} arrays; the "
                f"{self.optimizer_name} rule has {len(state)}."
            )
        for var, val in zip(state, values):
            want = var.get_value(borrow=True)
            if np.shape(val) != want.shape:
                raise SymnnValueError(
                    f"the saved optimiser state {var.name} has shape {np.shape(val)}; "
                    f"expected {want.shape}."
                )
        for var, val in zip(state, values):
            var.set_value(np.asarray(val, dtype=var.get_value(borrow=True).dtype))

    # -- settings, for files --------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (but the network) as plain JSON values."""
        return {
            "loss": self.loss_name,
            "loss_weights": self.loss_weights,
            "optimizer": self.optimizer_name,
            "learning_rate": self.current_learning_rate(),
            "l1": self.l1,
            "l2": self.l2,
            "penalty_per_row": self.penalty_per_row,
            "max_norm": self.max_norm,
            "guard": self.guard,
            "optimizer_kwargs": dict(self.optimizer_kwargs),
            "mode": self.mode,
            "blas_threads": "auto" if self.blas_threads is None else self.blas_threads,
        }

    @classmethod
    def from_config(cls, network: Layer, config: dict[str, Any]) -> Trainer:
        """A trainer of ``network`` with the settings of :meth:`get_config`."""
        cfg = dict(config)
        return cls(network, **cfg.pop("optimizer_kwargs", {}), **cfg)

    # -- learning rate and BLAS threads ---------------------------------------------------
    def current_learning_rate(self) -> float:
        return float(self.learning_rate.get_value(borrow=True))

    def set_learning_rate(self, value: float) -> None:
        """Set the learning rate (a number > 0) for the next updates."""
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise SymnnValueError(
                f"the schedule gave learning rate {value}; expected a number > 0."
            )
        self.learning_rate.set_value(np.asarray(value, dtype=self.dtype))

    def tuned_threads(self, batch_size: int) -> int | None:
        """The BLAS thread count an earlier ``fit`` found fastest at this batch size."""
        return self._threads.get(batch_size)

    def remember_threads(self, batch_size: int, count: int) -> None:
        self._threads[batch_size] = count

    # -- fitting ------------------------------------------------------------------------
    @locked
    def fit(
        self,
        X,
        y,
        *,
        epochs: int = 10,
        batch_size: int = DEFAULTS["batch_size"],
        validation_data: tuple | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        callbacks: Sequence[Callback] = (),
        max_updates: int | None = None,
        tol: float | None = None,
        schedule: Callable[[int], float] | None = None,
        schedule_every: str = "epoch",
        progress: bool | None = None,
        on_nonfinite: str = "stop",
        max_retries: int = 5,
        sample_weight=None,
    ) -> History:
        """Train over ``epochs`` passes of shuffled minibatches; returns this run's History.

        The keyword arguments mirror Keras' ``Model.fit``; ``max_updates``, ``tol`` and
        ``schedule`` are shorthands for the :class:`~symnn.train.MaxUpdates`,
        :class:`~symnn.train.Tolerance` and :class:`~symnn.train.LearningRateScheduler`
        callbacks.

        Parameters
        ----------
        X, y
            Inputs ``(n, n_in)`` and targets: integer class labels, one-hot rows (taken as
            their labels), or float values.
        epochs
            Maximum number of epochs in this call.
        batch_size
            Minibatch size (default 200; the last minibatch of an epoch may be smaller). A
            batch size larger than the training set is clipped to it, with a warning.
        validation_data, validation_split
            ``(X_val, y_val)``, or the fraction of ``(X, y)`` held out (a seeded random
            subset); adds ``val_loss``/``val_accuracy`` each epoch.
        shuffle
            Shuffle the rows every epoch (from the trainer's seeded generator).
        callbacks
            :class:`~symnn.train.callbacks.Callback` objects (early stopping, patience, ...).
        max_updates
            Stop after this many updates in this call.
        tol
            Stop when the epoch's training loss changes by less than ``tol``.
        schedule, schedule_every
            A learning-rate schedule ``t -> rate`` applied per ``"epoch"`` or per ``"step"``.
        progress
            Show a progress bar (default: when stderr is a terminal or in a Jupyter
            notebook, see :func:`interactive`).
        on_nonfinite, max_retries
            On a NaN or infinite loss (with ``guard=True``): ``"stop"`` (default) rolls back to
            the last finite update and stops; ``"halve"`` rolls back, halves the learning rate
            and retries, at most ``max_retries`` times in this call (``history.notes`` says
            when).
        sample_weight
            A weight per row of ``X`` (Keras' and scikit-learn's name): the loss is
            ``sum(w * loss) / sum(w)`` over each minibatch, and a per-row penalty is divided
            by ``sum(w)``. Validation losses are unweighted.

        Notes
        -----
        Ctrl-C (``KeyboardInterrupt``) is deferred to the end of the current update: the
        network keeps the weights of the last completed update and ``fit`` returns the history
        so far with ``interrupted=True``; calling ``fit`` again continues from there. A
        non-finite loss stops training with the weights of the last finite update and a
        ``RuntimeWarning`` that says so (``history.stop_reason`` too).

        NaN or infinity in ``X`` is found by the compiled step as it gathers each minibatch
        (no separate pass over the data): ``fit`` then raises ``SymnnValueError`` naming the
        row, after putting back the weights, optimiser state, generators and counters it
        started with, so the model is as it was before the call.
        """
        options = FitOptions(
            epochs=epochs, batch_size=batch_size, validation_data=validation_data,
            validation_split=validation_split, shuffle=shuffle, callbacks=callbacks,
            max_updates=max_updates, tol=tol, schedule=schedule, schedule_every=schedule_every,
            on_nonfinite=on_nonfinite, max_retries=max_retries, sample_weight=sample_weight,
        )  # fmt: skip
        plan = plan_fit(self, X, y, options)
        return FitRun(self, plan, interactive() if progress is None else bool(progress)).execute()


def _mode_name(mode: str | None) -> str:
    """A stable name of the mode a step compiles with (symnn's modes are Mode objects)."""
    return mode_name(mode)


def _checked_rule_kwargs(rule: Callable, name: str, kwargs: dict) -> dict:
    """``kwargs`` when the update rule takes every one of them; otherwise an error now, not at
    the first ``fit`` (``Trainer(..., clipvalue=0.5)`` names ``clipvalue``)."""
    try:
        params = inspect.signature(rule).parameters
    except (TypeError, ValueError):  # a callable without a signature: the rule decides
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    taken = [k for k in list(params)[2:] if k != "learning_rate"]  # after (grads, params)
    unknown = sorted(set(kwargs) - set(taken))
    if unknown:
        raise SymnnTypeError(
            f"optimizer {name!r} takes no argument {', '.join(map(repr, unknown))}; "
            f"its arguments besides learning_rate are {taken}."
        )
    return kwargs


def _update_rule(optimizer: str | Callable) -> tuple[str, Callable]:
    if isinstance(optimizer, str):
        name = check_choice(optimizer, "optimizer", RULES)
        return name, RULES[name]
    if callable(optimizer):
        return getattr(optimizer, "__name__", "custom"), optimizer
    raise SymnnTypeError(f"optimizer must be a name or an update rule; got {describe(optimizer)}.")
