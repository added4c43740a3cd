"""scipy's optimisers (CG, L-BFGS-B, TNC, BFGS) on the flattened parameter vector.

One compiled function returns ``(cost, flat gradient)`` for a parameter vector ``theta``: the
network's shared parameters are replaced in the graph by slices of ``theta``, so scipy never
waits on Python-side copies. At the scipy boundary everything is float64 and C-contiguous
(scipy's TNC refuses other gradient arrays). Full batch by default; with ``batch_size`` a few
iterations per minibatch. :class:`ScipyTrainer` composes the same
:class:`~symnn.train.objective.Objective` and :class:`~symnn.train.objective.Evaluator` as
:class:`~symnn.train.Trainer`; :func:`minimize_flat` is the scipy call itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace

from ..backend import function, interrupt
from ..backend.threads import ThreadTuner
from ..errors import SymnnValueError
from ..layers import Layer
from ..utils import check_choice, check_positive
from .base import BaseTrainer, locked
from .callbacks import Callback, ProgressBar, run_hook
from .history import History, Stop, StopReason
from .inputs import arrays_of
from .objective import Objective, check_sample_weight
from .state import RunState

__all__ = ["ScipyTrainer", "METHODS", "pack", "unpack", "minimize_flat", "FlatObjective"]

METHODS = {"cg": "CG", "l-bfgs-b": "L-BFGS-B", "lbfgs": "L-BFGS-B", "tnc": "TNC", "bfgs": "BFGS"}


def pack(params: Sequence) -> np.ndarray:
    """The values of ``params`` as one float64, C-contiguous vector (scipy's format)."""
    return np.ascontiguousarray(
        np.concatenate([p.get_value(borrow=True).ravel() for p in params]), dtype=np.float64
    )


def unpack(params: Sequence, theta: np.ndarray) -> None:
    """Write a flat vector back into ``params`` (each in its own dtype and shape)."""
    theta = np.asarray(theta)
    total = sum(p.get_value(borrow=True).size for p in params)
    if theta.shape != (total,):
        raise SymnnValueError(f"theta has shape {theta.shape}; expected ({total},).")
    start = 0
    for p in params:
        v = p.get_value(borrow=True)
        p.set_value(theta[start : start + v.size].reshape(v.shape).astype(v.dtype))
        start += v.size


@dataclass
class FlatObjective:
    """The compiled ``(cost, flat gradient)`` of an objective at a parameter vector, over
    rows ``[start, stop)`` of data held on the compiled side."""

    fn: Any
    storage: list

    @classmethod
    def compile(
        cls, objective: Objective, kind: str, mode: Any, weighted: bool = False
    ) -> FlatObjective:
        x, ys = objective.symbols(kind)
        w = objective.weight_symbol() if weighted else None
        data = [*x, *ys] if w is None else [*x, *ys, w]
        loss, _, _ = objective.build(x, ys, kind, deterministic=True, w=w)
        theta = pt.vector("theta", dtype="float64")
        replace, start = {}, 0
        for p in objective.network.params:
            shape = p.get_value(borrow=True).shape
            size = int(np.prod(shape))
            replace[p] = pt.cast(theta[start : start + size], p.dtype).reshape(shape)
            start += size
        flat_loss = clone_replace(loss, replace)
        grad = pytensor.grad(flat_loss, theta)
        lo, hi = pt.lscalar("start"), pt.lscalar("stop")
        storage = [pytensor.shared(np.zeros((0,) * v.type.ndim, dtype=v.type.dtype)) for v in data]
        givens = {v: s[lo:hi] for v, s in zip(data, storage)}
        outputs = [pt.cast(flat_loss, "float64"), grad]
        return cls(function([theta, lo, hi], outputs, givens=givens, mode=mode), storage)

    def set_data(self, X: Any, y: np.ndarray, w: np.ndarray | None = None) -> None:
        """The rows the objective runs over (and their weights, for a weighted one)."""
        arrays = [*arrays_of(X), *arrays_of(y)] + ([] if w is None else [w])
        if len(arrays) != len(self.storage):
            raise SymnnValueError("sample weights go with a weighted flat objective only.")
        for storage, values in zip(self.storage, arrays):
            storage.set_value(values)

    def __call__(self, theta: np.ndarray, start: int, stop: int) -> tuple[float, np.ndarray]:
        """Cost and gradient; a non-finite one reads as ``(inf, 0)`` (scipy backs off)."""
        value, grad = self.fn(theta, start, stop)
        value = float(value)
        if not math.isfinite(value) or not np.all(np.isfinite(grad)):
            return math.inf, np.zeros_like(theta)
        return value, np.ascontiguousarray(grad, dtype=np.float64)


class _Stop(Exception):
    """Raised from scipy's callback to end a run early."""

    def __init__(self, kind: StopReason, reason: str):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


#: scipy returned by itself (converged or at one of its limits)
_SCIPY_ENDS = (StopReason.SCIPY, StopReason.SCIPY_LIMIT)


def minimize_flat(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta0: np.ndarray,
    *,
    method: str,
    options: dict[str, Any],
    tol: float | None = None,
    on_iterate: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray, StopReason, str]:
    """``scipy.optimize.minimize`` of ``fun`` (value and gradient) from ``theta0``; returns
    ``(theta, why, message)``. ``on_iterate(theta)`` runs after every iteration and may raise
    :class:`_Stop`; the result is then the last iterate it saw."""
    last = {"theta": np.array(theta0, dtype=np.float64)}

    def callback(xk, *args):
        last["theta"] = np.array(xk, dtype=np.float64)
        if on_iterate is not None:
            on_iterate(last["theta"])

    try:
        import scipy.optimize  # 0.2 s to import: only when a scipy trainer runs

        res = scipy.optimize.minimize(
            fun, theta0, jac=True, method=method, tol=tol, callback=callback, options=options
        )
    except _Stop as stop:
        return last["theta"], stop.kind, stop.reason
    theta = res.x if np.isfinite(res.fun) else last["theta"]
    why = StopReason.SCIPY if res.success else StopReason.SCIPY_LIMIT
    return theta, why, str(res.message)


class ScipyTrainer(BaseTrainer):
    """Fit a network's parameters with ``scipy.optimize.minimize``; the same surface as
    :class:`~symnn.train.Trainer` (``fit``, ``evaluate``, ``predict``, state, history).

    Parameters
    ----------
    network, loss, loss_weights, l1, l2, seed, mode
        As for :class:`~symnn.train.Trainer`.
    method
        ``"cg"``, ``"l-bfgs-b"``, ``"tnc"`` or ``"bfgs"``.
    options
        Extra scipy options for the method (``gtol``, ...).
    blas_threads
        ``"auto"`` (the BLAS library's default count) or a fixed count for runs that are
        bit-identical from one run to the next.

    The objective is the inference-mode one (dropout off, batch-norm running statistics),
    since line searches need a deterministic function. Callbacks see the network at scipy's
    current iterate: after every iteration the iterate is written into the network's
    parameters before ``on_batch_end`` and ``on_epoch_end`` run, so ``EarlyStopping`` keeps
    (and restores) the weights it judged.

    Examples
    --------
    >>> from symnn.layers import mlp
    >>> from symnn.datasets import xor
    >>> X, y = xor()
    >>> t = ScipyTrainer(mlp([2, 4, 2], hidden="tanh", rng=1, dtype="float64"),
    ...                  method="l-bfgs-b", mode="FAST_COMPILE")
    >>> h = t.fit(X, y, maxiter=200, progress=False)
    >>> t.evaluate(X, y)["accuracy"]
    1.0
    """

    def __init__(
        self,
        network: Layer,
        *,
        method: str = "l-bfgs-b",
        loss: Any = "categorical_crossentropy",
        loss_weights: Any = None,
        l1: float = 0.0,
        l2: float = 0.0,
        penalty_per_row: bool = False,
        seed: Any = 0,
        mode: Any = None,
        options: dict | None = None,
        blas_threads: int | str = "auto",
    ):
        objective = Objective.create(network, loss, l1, l2, penalty_per_row, loss_weights)
        super().__init__(objective, seed=seed, mode=mode, blas_threads=blas_threads)
        self.method = METHODS[check_choice(method, "method", METHODS)]
        self.options = dict(options or {})
        self._flat: dict[str, FlatObjective] = {}
        self._weighted_flat: dict[str, FlatObjective] = {}

    def __repr__(self) -> str:
        return (
            f"ScipyTrainer({self.network!r}, method={self.method!r}, loss={self.loss_name!r}, "
            f"updates={self.n_updates})"
        )

    # -- compiled functions, evaluation ---------------------------------------------------
    def flat(self, kind: str, weighted: bool = False) -> FlatObjective:
        """The compiled flat objective for targets of ``kind``, with per-row weights when
        ``weighted`` (compiled on first use)."""
        cache = self._weighted_flat if weighted else self._flat
        if kind not in cache:
            cache[kind] = FlatObjective.compile(self.objective, kind, self.mode, weighted)
        return cache[kind]

    def _compile_targets(self, kind: str) -> None:
        self.flat(kind)

    @locked
    def loss_and_grad(self, theta: np.ndarray, X, y) -> tuple[float, np.ndarray]:
        """The compiled ``(cost, flat gradient)`` at ``theta`` over ``(X, y)`` (float64)."""
        X, y = self.objective.check_xy(X, y)
        flat = self.flat(self.objective.targets_kind(y))
        flat.set_data(X, y)
        value, grad = flat.fn(np.ascontiguousarray(theta, dtype=np.float64), 0, len(X))
        return float(value), np.asarray(grad, dtype=np.float64)

    # -- state ----------------------------------------------------------------------------
    optimizer_state: list = []  # scipy keeps none between calls
    targets_kind = property(lambda self: next(iter(self._flat or self._weighted_flat), None))

    def capture_state(self, *, counters: bool = True) -> RunState:
        numbers = {"n_updates": self.n_updates, "n_epochs": self.n_epochs}
        return RunState.capture(self.network.get_params(), (), numbers if counters else None)

    def restore_state(self, state: RunState) -> None:
        state.restore(self.network.get_params())
        if state.counters:
            self.n_updates, self.n_epochs = state.counters["n_updates"], state.counters["n_epochs"]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (but the network) as plain JSON values."""
        return {
            "method": self.method,
            "loss": self.loss_name,
            "loss_weights": self.loss_weights,
            "l1": self.l1,
            "l2": self.l2,
            "penalty_per_row": self.penalty_per_row,
            "mode": self.mode,
            "options": dict(self.options),
            "blas_threads": "auto" if self.blas_threads is None else self.blas_threads,
        }

    @classmethod
    def from_config(cls, network: Layer, config: dict[str, Any]) -> ScipyTrainer:
        cfg = dict(config)
        cfg["method"] = {v: k for k, v in METHODS.items() if k != "lbfgs"}.get(
            cfg["method"], cfg["method"]
        )
        return cls(network, **cfg)

    def set_optimizer_state(self, values: Sequence[np.ndarray], targets: str = "labels") -> None:
        if len(values):
            raise SymnnValueError("a scipy trainer keeps no optimiser state; got arrays.")

    # -- fitting --------------------------------------------------------------------------
    @locked
    def fit(
        self,
        X,
        y,
        *,
        maxiter: int = 100,
        batch_size: int | None = None,
        iterations_per_batch: int = 10,
        epochs: int = 1,
        validation_data=None,
        callbacks: Sequence[Callback] = (),
        tol: float | None = None,
        progress: bool = False,
        sample_weight=None,
    ) -> History:
        """Minimise the objective; returns the History (one entry per scipy iteration in
        full-batch mode, one per pass over the data with ``batch_size``).

        ``maxiter`` bounds the iterations of a full-batch run (function evaluations for
        TNC); with ``batch_size``, each minibatch gets ``iterations_per_batch`` iterations,
        for ``epochs`` passes. ``tol`` is handed to scipy (and, per epoch, stops when the loss
        changes by less). ``sample_weight`` weighs the rows as in :meth:`Trainer.fit`. The
        keyword arguments mirror :meth:`Trainer.fit` where they mean the same thing.
        """
        options = ScipyFitOptions(
            maxiter=maxiter, batch_size=batch_size, iterations_per_batch=iterations_per_batch,
            epochs=epochs, validation_data=validation_data, callbacks=callbacks, tol=tol,
            progress=progress, sample_weight=sample_weight,
        )  # fmt: skip
        return _ScipyRun.plan(self, X, y, options).execute()


@dataclass(frozen=True)
class ScipyFitOptions:
    """``ScipyTrainer.fit``'s keyword arguments, as one value (see :meth:`ScipyTrainer.fit`)."""

    maxiter: int = 100
    batch_size: int | None = None
    iterations_per_batch: int = 10
    epochs: int = 1
    validation_data: Any = None
    callbacks: Sequence[Callback] = ()
    tol: float | None = None
    progress: bool = False
    sample_weight: Any = None


@dataclass
class _ScipyRun:
    """One ``ScipyTrainer.fit`` call: checked arguments, callbacks, history."""

    trainer: ScipyTrainer
    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    validation: tuple | None
    args: ScipyFitOptions
    callbacks: list[Callback]
    history: History = field(default_factory=History)

    @classmethod
    def plan(cls, trainer: ScipyTrainer, X, y, args: ScipyFitOptions) -> _ScipyRun:
        check_positive(args.maxiter, "maxiter", integer=True)
        check_positive(args.iterations_per_batch, "iterations_per_batch", integer=True)
        check_positive(args.epochs, "epochs", integer=True)
        X, y = trainer.objective.check_xy(X, y)
        w = check_sample_weight(args.sample_weight, len(X), trainer.dtype)
        if args.batch_size is not None:
            check_positive(args.batch_size, "batch_size", integer=True)
            if args.batch_size > len(X):
                raise SymnnValueError(
                    f"batch_size={args.batch_size} is larger than the {len(X)} training samples."
                )
        validation = args.validation_data
        if validation is not None:
            validation = trainer.objective.check_xy(
                *validation, xname="validation_data[0]", yname="validation_data[1]"
            )
        callbacks = list(args.callbacks)
        if args.progress:  # one tick per scipy iteration
            n_batches = 1 if args.batch_size is None else -(-len(X) // args.batch_size)
            per = args.epochs * n_batches * args.iterations_per_batch
            callbacks.append(ProgressBar(args.maxiter if args.batch_size is None else per))
        return cls(trainer, X, y, w, validation, args, callbacks)

    def execute(self) -> History:
        trainer = self.trainer
        flat = trainer.flat(trainer.objective.targets_kind(self.y), self.w is not None)
        for cb in self.callbacks:
            cb.on_train_begin(trainer)
        tuner = ThreadTuner(fixed=trainer.blas_threads)  # "auto": the library's default count
        try:
            with interrupt.deferred_interrupt() as interrupted:
                if self.args.batch_size is None:
                    self._full_batch(flat, interrupted)
                else:
                    self._minibatches(flat, interrupted)
        except KeyboardInterrupt:
            self._stop(StopReason.INTERRUPTED, "interrupted")
        finally:
            tuner.restore()
        self.history.interrupted = self.history.stopped_by is StopReason.INTERRUPTED
        for cb in self.callbacks:
            cb.on_train_end(trainer, self.history)
        trainer.history.extend(self.history)
        return self.history

    def _stop(self, kind: StopReason, reason: str) -> None:
        self.history.stopped_by, self.history.stop_reason = kind, reason

    def _iterations(self, flat, start: int, stop: int, iterations: int, interrupted, per_epoch):
        """scipy on rows ``[start, stop)``; the network ends at the result."""
        trainer, params, cache = self.trainer, self.trainer.network.params, {}

        def fun(theta):
            value, grad = flat(theta, start, stop)
            cache["theta"], cache["value"] = theta.copy(), value
            return value, grad

        def on_iterate(theta):
            unpack(params, theta)  # callbacks see the current iterate
            same = np.array_equal(cache.get("theta"), theta)
            value = cache["value"] if same else flat(theta, start, stop)[0]
            trainer.n_updates += 1
            self.history.batch_loss.append(value)
            logs = {"loss": value}
            hooks = [cb.on_batch_end for cb in self.callbacks]
            asked = _first([run_hook(h, trainer, trainer.n_updates, logs) for h in hooks])
            asked = asked or (per_epoch(value) if per_epoch else None)
            if asked:
                raise _Stop(asked.reason, asked.message)
            if interrupted():
                raise _Stop(StopReason.INTERRUPTED, "interrupted")

        key = "maxfun" if trainer.method == "TNC" else "maxiter"
        theta, kind, reason = minimize_flat(
            fun,
            pack(params),
            method=trainer.method,
            options={key: int(iterations), **trainer.options},
            tol=self.args.tol,
            on_iterate=on_iterate,
        )
        unpack(params, theta)
        return kind, reason

    def _full_batch(self, flat: FlatObjective, interrupted) -> None:
        flat.set_data(self.X, self.y, self.w)
        t0 = time.perf_counter()

        def per_iteration(value: float) -> Stop | None:
            return self._record_epoch(value, t0)

        kind, reason = self._iterations(
            flat, 0, len(self.X), self.args.maxiter, interrupted, per_iteration
        )
        self._stop(kind, reason)

    def _minibatches(self, flat: FlatObjective, interrupted) -> None:
        trainer, batch = self.trainer, self.args.batch_size
        previous, tol = None, self.args.tol
        for _ in range(self.args.epochs):
            t0 = time.perf_counter()
            order = trainer.rng.permutation(len(self.X))
            flat.set_data(self.X[order], self.y[order], None if self.w is None else self.w[order])
            kind = None
            for lo in range(0, len(self.X), batch):
                hi = min(lo + batch, len(self.X))
                kind, reason = self._iterations(
                    flat, lo, hi, self.args.iterations_per_batch, interrupted, None
                )
                if kind not in _SCIPY_ENDS:
                    break
            loss = trainer.evaluate(self.X, self.y)["loss"]
            going = kind in _SCIPY_ENDS
            stopped_by_callback = self._record_epoch(loss, t0, hooks=going)
            if not going:
                return self._stop(kind, reason)
            if stopped_by_callback:
                return self._stop(stopped_by_callback.reason, stopped_by_callback.message)
            if tol is not None and previous is not None and abs(previous - loss) < tol:
                return self._stop(
                    StopReason.CALLBACK, f"training loss changed by less than tol={tol}"
                )
            previous = loss
        self._stop(StopReason.COMPLETED, f"epochs={self.args.epochs} completed")

    def _record_epoch(self, loss: float, t0: float, hooks: bool = True) -> Stop | None:
        """The epoch's record (the one place it is written); the reason a callback stops."""
        trainer = self.trainer
        trainer.n_epochs += 1
        logs = {
            "loss": loss,
            "epoch": trainer.n_epochs,
            "updates": trainer.n_updates,
            "seconds": time.perf_counter() - t0,
        }
        if self.validation is not None:
            logs.update({f"val_{k}": v for k, v in trainer.evaluate(*self.validation).items()})
        self.history.epochs.append(logs)
        if not hooks:
            return None
        hooks_ = [cb.on_epoch_end for cb in self.callbacks]
        return _first([run_hook(h, trainer, trainer.n_epochs, logs) for h in hooks_])


def _first(stops: list[Stop | None]) -> Stop | None:
    return next((s for s in stops if s), None)
