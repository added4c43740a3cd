"""The ``Trainer``: a network, a loss and an update rule, compiled once and driven over
shuffled minibatches by :meth:`Trainer.fit`."""

from __future__ import annotations

import functools
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytensor.tensor as pt

from .. import costs
from .. import regularization as reg
from ..backend import function
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer, get_updates
from ..ops.gather import nonfinite_row
from ..threads import ThreadTuner, check_blas_threads
from ..updates import RULES, shared_learning_rate, total_norm_constraint
from ..updates.rules import get_or_compute_grads
from ..utils import as_rng, check_array, check_choice, check_labels, check_positive, describe
from .callbacks import Callback, ProgressBar, StopTraining
from .history import History
from .rollback import Rollback
from .step import TrainStep, compile_train_step

__all__ = ["Trainer", "LOSSES", "DEFAULTS"]

#: The defaults of every training entry point (``Trainer``, ``symnn train``, the
#: estimators): scikit-learn's MLP defaults (Adam, learning rate 0.001, minibatches of 200).
DEFAULTS = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 200}

#: Inputs whose magnitude exceeds this draw a warning (raw 0-255 pixels, unscaled features).
_SCALE_WARNING = 50.0

#: Per-example losses by name: ``loss(predictions, targets) -> per-example values``.
LOSSES: dict[str, Callable] = {
    "categorical_crossentropy": costs.categorical_crossentropy,
    "crossentropy": costs.categorical_crossentropy,
    "categorical_crossentropy_from_logits": costs.categorical_crossentropy_from_logits,
    "binary_crossentropy": costs.binary_crossentropy,
    "squared_error": costs.squared_error,
}

_EVAL_CHUNK = 4096


def locked(method: Callable) -> Callable:
    """Run a method holding its object's ``_lock``: a trainer's compiled functions keep
    their data in storage shared by every caller, so one thread at a time uses them."""

    @functools.wraps(method)
    def run(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return run
#: rows per call of the prediction function (every call has exactly this shape)
PREDICT_BLOCK = 64


def run_in_blocks(fn: Callable, X: np.ndarray, block: int) -> np.ndarray:
    """``fn`` over ``X`` in calls of exactly ``block`` rows (the last block padded with
    zeros), concatenated: each row's result is independent of the rest of ``X``.

    >>> run_in_blocks(lambda b: b * 2, np.arange(5.0)[:, None], 2).ravel()
    array([0., 2., 4., 6., 8.])
    """
    n = len(X)
    full = n - n % block
    parts = [fn(X[s : s + block]) for s in range(0, full, block)]
    if full < n or n == 0:
        padded = np.zeros((block, *X.shape[1:]), dtype=X.dtype)
        padded[: n - full] = X[full:]
        parts.append(fn(padded)[: n - full])
    return np.concatenate(parts)


class Trainer:
    """Compile a network's training step once and fit it over minibatches.

    Parameters
    ----------
    network
        A :class:`symnn.layers.Layer` (e.g. from :func:`symnn.layers.mlp`).
    loss
        A name from :data:`LOSSES` or a callable ``(predictions, targets) -> per-example``.
    optimizer
        A name from :data:`symnn.updates.RULES` or an update rule with Lasagne's signature
        (default ``"adam"``, see :data:`DEFAULTS`).
    learning_rate
        Initial learning rate (default 0.001; kept in a shared variable, schedules change it).
    l1, l2
        Penalty coefficients on the regularisable parameters (weights, not biases); the
        objective adds ``l1 * sum|W| + l2 / 2 * sum W**2``.
    max_norm
        Rescale the joint gradient norm to at most this (``total_norm_constraint``).
    guard
        On a NaN or infinite loss, put back the state after the last finite update (by
        snapshot and exact replay, see :mod:`symnn.train.rollback`; nearly free). Off, the
        weights after a non-finite loss may hold NaN.
    seed
        Seed of the shuffling generator (the network's own seed set its weights).
    mode
        Compile mode (default: symnn's C backend with BLAS).
    blas_threads
        ``"auto"`` (default): each ``fit`` times its first steps with one BLAS thread and with
        all of them, keeps the faster and re-checks it as it goes (:mod:`symnn.threads`).
        The count can change the last bits of a matrix product, so two runs from the same
        seed may then differ in the last bits of their weights; a number (``2``) fixes the
        count and makes such runs bit-identical.
    **optimizer_kwargs
        Passed to the update rule (``momentum=0.9``, ``beta1=...``).

    Examples
    --------
    >>> import numpy as np
    >>> from symnn.layers import mlp
    >>> from symnn.datasets import xor
    >>> X, y = xor()
    >>> trainer = Trainer(mlp([2, 8, 2], hidden="tanh", rng=0), optimizer="adam",
    ...                   learning_rate=0.05, mode="FAST_COMPILE")
    >>> history = trainer.fit(X, y, epochs=200, batch_size=4, progress=False)
    >>> trainer.evaluate(X, y)["accuracy"]
    1.0
    """

    def __init__(
        self,
        network: Layer,
        *,
        loss: str | Callable = "categorical_crossentropy",
        optimizer: str | Callable = DEFAULTS["optimizer"],
        learning_rate: float = DEFAULTS["learning_rate"],
        l1: float = 0.0,
        l2: float = 0.0,
        max_norm: float | None = None,
        guard: bool = True,
        seed: Any = 0,
        mode: Any = None,
        blas_threads: int | str = "auto",
        **optimizer_kwargs: Any,
    ):
        if not isinstance(network, Layer):
            raise SymnnTypeError(
                f"network must be a symnn Layer (e.g. symnn.layers.mlp); got {describe(network)}."
            )
        if network.n_in is None:
            raise SymnnValueError("network has no known input width; start it with a Dense layer.")
        self.network = network
        self._lock = threading.RLock()  # see locked()
        if isinstance(loss, str):
            self.loss_name = check_choice(loss, "loss", LOSSES)
            self.loss_fn = LOSSES[self.loss_name]
        elif callable(loss):
            self.loss_name, self.loss_fn = getattr(loss, "__name__", "custom"), loss
        else:
            raise SymnnTypeError(f"loss must be a name or a callable; got {describe(loss)}.")
        if isinstance(optimizer, str):
            self.optimizer_name = check_choice(optimizer, "optimizer", RULES)
            self.rule = RULES[self.optimizer_name]
        elif callable(optimizer):
            self.optimizer_name, self.rule = getattr(optimizer, "__name__", "custom"), optimizer
        else:
            raise SymnnTypeError(
                f"optimizer must be a name or an update rule; got {describe(optimizer)}."
            )
        check_positive(learning_rate, "learning_rate")
        self.l1 = float(check_positive(l1, "l1", allow_zero=True))
        self.l2 = float(check_positive(l2, "l2", allow_zero=True))
        self.max_norm = None if max_norm is None else float(check_positive(max_norm, "max_norm"))
        self.guard, self.mode = bool(guard), mode
        self.blas_threads = check_blas_threads(blas_threads)  # None: tuned by timing
        self.optimizer_kwargs = optimizer_kwargs
        self.dtype = network.dtype
        self.learning_rate = shared_learning_rate(learning_rate, self.dtype)
        self.rng = as_rng(seed, name="seed")
        self.n_updates = 0
        self.n_epochs = 0
        self.history = History()
        self._compiled: dict[str, dict[str, Any]] = {}
        self._optimizer_state: list = []
        self._pending_state: tuple[str, list[np.ndarray]] | None = None  # set by symnn.load
        self._threads: dict[int, int] = {}  # batch size -> fastest BLAS thread count
        self._predict = None  # compiled inference function

    def __repr__(self) -> str:
        lr = float(self.learning_rate.get_value())
        return (
            f"{type(self).__name__}({self.network!r}, loss={self.loss_name!r}, "
            f"optimizer={self.optimizer_name!r}, learning_rate={lr:g}, "
            f"updates={self.n_updates}, epochs={self.n_epochs})"
        )

    # -- graphs -------------------------------------------------------------------------
    def _targets_kind(self, y: np.ndarray) -> str:
        return "labels" if y.dtype.kind in "biu" else "values"

    def _symbols(self, kind: str):
        x = pt.matrix("x", dtype=self.dtype, shape=(None, self.network.n_in))
        y = pt.ivector("y") if kind == "labels" else pt.matrix("y", dtype=self.dtype)
        return x, y

    def _objective(self, x, y, kind: str, deterministic: bool):
        out = self.network(x, deterministic=deterministic)
        target = y
        if kind == "labels" and self.loss_fn in (costs.squared_error, costs.binary_crossentropy):
            n_out = out.type.shape[-1]
            target = (
                pt.eye(n_out, dtype=self.dtype)[y]
                if n_out and n_out > 1
                else pt.cast(y, self.dtype).dimshuffle(0, "x")
            )
        data_loss = costs.aggregate(self.loss_fn(out, target))
        if data_loss.type.ndim != 0:
            raise SymnnValueError(f"loss {self.loss_name!r} did not reduce to a scalar.")
        penalty = 0
        weights = self.network.regularizable_params
        if self.l2 and weights:
            penalty = penalty + np.asarray(self.l2 / 2, dtype=self.dtype) * reg.l2(weights)
        if self.l1 and weights:
            penalty = penalty + np.asarray(self.l1, dtype=self.dtype) * reg.l1(weights)
        objective = pt.cast(data_loss + penalty, self.dtype)
        metrics = {}
        if kind == "labels":
            metrics["accuracy"] = costs.accuracy(out, y)
        return objective, out, metrics

    def _compile(self, kind: str) -> dict[str, Any]:
        if kind in self._compiled:
            return self._compiled[kind]
        x, y = self._symbols(kind)
        loss, _, metrics = self._objective(x, y, kind, deterministic=False)
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
        step = compile_train_step(
            loss, ups, inputs=[x, y], outputs=metrics, guard=False, mode=self.mode
        )
        ex, ey = self._symbols(kind)
        eloss, eout, emetrics = self._objective(ex, ey, kind, deterministic=True)
        evaluate = function([ex, ey], [eloss, *emetrics.values()], mode=self.mode)
        self._optimizer_state = state
        if self._pending_state is not None and self._pending_state[0] == kind:
            self._restore_optimizer_state(self._pending_state[1])
            self._pending_state = None
        self._compiled[kind] = {
            "step": step,
            "evaluate": evaluate,
            "metric_names": ["loss", *emetrics],
        }
        return self._compiled[kind]

    @locked
    def compile(self, targets: str = "labels") -> Trainer:
        """Compile the step, evaluation and prediction functions now (``fit`` otherwise
        compiles them on first use). ``targets`` is ``"labels"`` (integer classes) or
        ``"values"`` (float targets). Returns the trainer."""
        self._compile(check_choice(targets, "targets", ["labels", "values"]))
        self.predict_proba(np.zeros((1, self.network.n_in), dtype=self.dtype))
        return self

    # -- state --------------------------------------------------------------------------
    @property
    def optimizer_state(self) -> list:
        """Shared variables of the update rule (velocities, moments, step counter)."""
        return list(self._optimizer_state)

    @locked
    def get_state(self) -> list[np.ndarray]:
        """Copies of every parameter, layer state, optimiser state and the learning rate."""
        return [v.get_value() for v in self._state_vars()]

    @locked
    def set_state(self, values: Sequence[np.ndarray]) -> None:
        for var, val in zip(self._state_vars(), values, strict=True):
            var.set_value(np.array(val, copy=True))

    def _checkpoint(self, shuffle_state: dict) -> tuple:
        """Everything ``fit`` changes: state, generators, counters (once compiled)."""
        rngs = [r.get_value() for r in self.network.get_rngs()]
        return self.get_state(), rngs, shuffle_state, self.n_updates, self.n_epochs

    def _restore_checkpoint(self, checkpoint: tuple) -> None:
        state, rngs, shuffle_state, self.n_updates, self.n_epochs = checkpoint
        self.set_state(state)
        for r, value in zip(self.network.get_rngs(), rngs):
            r.set_value(value)
        self.rng.bit_generator.state = shuffle_state

    @property
    def targets_kind(self) -> str | None:
        """``"labels"`` or ``"values"`` once compiled (what ``fit`` was given), else None."""
        return next(iter(self._compiled), None)

    def _restore_optimizer_state(self, values: Sequence[np.ndarray]) -> None:
        if len(values) != len(self._optimizer_state):
            raise SymnnValueError(
                f"the saved optimiser state has {len(values)} arrays; the "
                f"{self.optimizer_name} rule has {len(self._optimizer_state)}."
            )
        for var, val in zip(self._optimizer_state, values):
            want = var.get_value(borrow=True)
            if np.shape(val) != want.shape:
                raise SymnnValueError(
                    f"the saved optimiser state {var.name} has shape "
                    f"{np.shape(val)}; expected {want.shape}."
                )
        for var, val in zip(self._optimizer_state, values):
            var.set_value(np.asarray(val, dtype=var.get_value(borrow=True).dtype))

    def _state_vars(self) -> list:
        return [*self.network.get_params(), *self._optimizer_state, self.learning_rate]

    # -- data checks --------------------------------------------------------------------
    def _check_xy(self, X, y, xname: str = "X", yname: str = "y", finite_x: bool = True):
        X = check_array(
            X, xname, ndim=2, dtype=self.dtype, n_features=self.network.n_in, finite=finite_x
        )
        y_arr = _one_hot_to_labels(np.asarray(y), self.loss_fn)
        if y_arr.dtype.kind in "biu" or (
            y_arr.ndim == 1
            and self.loss_fn
            in (costs.categorical_crossentropy, costs.categorical_crossentropy_from_logits)
        ):
            n_out = getattr(self.network, "n_out", None) or 2
            y_arr = check_labels(y_arr, yname, max(n_out, 2), n_samples=len(X))
        else:
            y_arr = check_array(y_arr, yname, ndim=(1, 2), dtype=self.dtype)
            if y_arr.ndim == 1:
                y_arr = y_arr[:, None]
            if len(y_arr) != len(X):
                raise SymnnValueError(
                    f"{yname} has {len(y_arr)} rows but {xname} has {len(X)} "
                    "samples; expected equal lengths."
                )
        return X, y_arr

    # -- evaluation ---------------------------------------------------------------------
    @locked
    def evaluate(self, X, y) -> dict[str, float]:
        """Loss (the objective, inference mode) and accuracy over ``(X, y)``, in chunks."""
        X, y = self._check_xy(X, y)
        fns = self._compile(self._targets_kind(y))
        totals = np.zeros(len(fns["metric_names"]))
        for start in range(0, len(X), _EVAL_CHUNK):
            xb, yb = X[start : start + _EVAL_CHUNK], y[start : start + _EVAL_CHUNK]
            totals += len(xb) * np.array([float(v) for v in fns["evaluate"](xb, yb)])
        return dict(zip(fns["metric_names"], (totals / len(X)).tolist()))

    @locked
    def predict_proba(self, X) -> np.ndarray:
        """The network's output (inference mode) for ``X``.

        A row's output does not depend on the other rows of the call: the network runs on
        blocks of exactly :data:`PREDICT_BLOCK` rows (the last one padded). BLAS libraries
        pick their kernels and summation order by matrix shape (OpenBLAS turns a one-row
        product into a matrix-vector product, and small products use other kernels), so
        without fixed blocks the same row could come out a few units in the last place
        different when predicted alone or with others.
        """
        X = check_array(X, "X", ndim=2, dtype=self.dtype, n_features=self.network.n_in)
        if self._predict is None:  # needs no loss or targets: compiled on its own
            x = pt.matrix("x", dtype=self.dtype, shape=(None, self.network.n_in))
            self._predict = function([x], self.network(x, deterministic=True), mode=self.mode)
        return run_in_blocks(self._predict, X, PREDICT_BLOCK)

    def predict(self, X) -> np.ndarray:
        """Class predictions (argmax of the output; ``> 0.5`` for a single output)."""
        out = self.predict_proba(X)
        return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)

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
    ) -> History:
        """Train over ``epochs`` passes of shuffled minibatches; returns this run's History.

        Parameters
        ----------
        X, y
            Inputs ``(n, n_in)`` and targets: integer class labels, or float values.
        epochs
            Maximum number of epochs in this call.
        batch_size
            Minibatch size (default 200; the last minibatch of an epoch may be smaller). A
            batch size larger than the training set is clipped to it, with a warning.
        validation_data, validation_split
            ``(X_val, y_val)``, or the fraction of ``(X, y)`` held out (seeded, stratified
            by nothing: a random subset); adds ``val_loss``/``val_accuracy`` each epoch.
        callbacks
            :class:`~symnn.train.callbacks.Callback` objects (early stopping, patience, ...).
        max_updates
            Stop after this many updates in this call (seed 000's ``maxiter``).
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
        started with, so the model is as it was before the call. Validation data and float
        targets are checked before training starts.
        """
        epochs = check_positive(epochs, "epochs", integer=True)
        batch_size = check_positive(batch_size, "batch_size", integer=True)
        schedule_every = check_choice(schedule_every, "schedule_every", ["epoch", "step"])
        on_nonfinite = check_choice(on_nonfinite, "on_nonfinite", ["stop", "halve"])
        check_positive(max_retries, "max_retries", integer=True, allow_zero=True)
        if max_updates is not None:
            check_positive(max_updates, "max_updates", integer=True)
        if tol is not None:
            check_positive(tol, "tol", allow_zero=True)
        if schedule is not None and not callable(schedule):
            raise SymnnTypeError(
                f"schedule must be callable t -> learning rate; got {describe(schedule)}."
            )
        # NaN and infinity in X are found by the step's gather as it copies each minibatch
        # (free; a separate pass over X cost 5 % of a one-epoch fit), see symnn.ops.gather
        X, y = self._check_xy(X, y, finite_x=False)
        rows = None  # positions in the caller's X of the training rows, after a split
        shuffle_state = self.rng.bit_generator.state  # the split below draws from it
        if validation_split:
            if validation_data is not None:
                raise SymnnValueError("pass validation_data or validation_split, not both.")
            if not 0.0 < float(validation_split) < 1.0:
                raise SymnnValueError(
                    f"validation_split={validation_split!r} is not valid; "
                    "expected a fraction between 0 and 1."
                )
            order = self.rng.permutation(len(X))
            n_val = max(1, int(round(len(X) * float(validation_split))))
            validation_data = (X[order[:n_val]], y[order[:n_val]])
            X, y, rows = X[order[n_val:]], y[order[n_val:]], order[n_val:]
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise SymnnTypeError("validation_data must be a pair (X_val, y_val).")
            Xv, yv = self._check_xy(
                *validation_data, xname="validation_data[0]", yname="validation_data[1]"
            )
            if self._targets_kind(yv) != self._targets_kind(y):
                raise SymnnValueError("validation_data targets are not of the same kind as y.")
        if batch_size > len(X):
            warnings.warn(
                f"symnn: batch_size={batch_size} is larger than the {len(X)} training samples; "
                f"using batch_size={len(X)}.",
                UserWarning,
                stacklevel=2,
            )
            batch_size = len(X)
        _warn_if_unscaled(X)

        fns = self._compile(self._targets_kind(y))
        step: TrainStep = fns["step"]
        step.set_data(X, y)
        start = self._checkpoint(shuffle_state)  # put back if X turns out to hold NaN or inf
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise SymnnTypeError(f"callbacks must be Callback objects; got {describe(cb)}.")
        n_batches = math.ceil(len(X) / batch_size)
        if progress is None:
            progress = interactive()
        if progress:
            total = (
                epochs * n_batches if max_updates is None else min(max_updates, epochs * n_batches)
            )
            callbacks.append(ProgressBar(total))

        history = History()
        names = step.names
        start_updates = self.n_updates
        for cb in callbacks:
            cb.on_train_begin(self)
        prev_loss = None
        tuner = ThreadTuner(self._threads.get(batch_size), fixed=self.blas_threads)
        rollback = Rollback(self, step, tuner) if self.guard else None
        max_retries = 0 if on_nonfinite == "stop" or rollback is None else int(max_retries)
        retries = 0
        bad_row = None
        try:
            with _deferred_interrupt() as interrupted:
                for _ in range(epochs):
                    if schedule is not None and schedule_every == "epoch":
                        self._set_lr(schedule(self.n_epochs))
                    t0 = time.perf_counter()
                    order = self.rng.permutation(len(X)) if shuffle else np.arange(len(X))
                    sums = [0.0] * len(names)
                    seen = 0
                    stop = ""
                    for b in range(n_batches):
                        if schedule is not None and schedule_every == "step":
                            self._set_lr(schedule(self.n_updates))
                        idx = order[b * batch_size : (b + 1) * batch_size]
                        if rollback is not None:
                            rollback.maybe_snapshot()
                        values = [float(v) for v in tuner(step, idx)]
                        while not math.isfinite(values[0]) and retries < max_retries:
                            retries += 1
                            values = self._retry_halved(step, idx, rollback, tuner, history)
                        if not math.isfinite(values[0]):
                            stop = self._non_finite(values[0], rollback, history)
                            break
                        if rollback is not None:
                            rollback.record(idx, float(self.learning_rate.get_value(borrow=True)))
                        self.n_updates += 1
                        n_idx = len(idx)
                        sums = [t + n_idx * v for t, v in zip(sums, values)]
                        seen += n_idx
                        history.batch_loss.append(values[0])
                        if callbacks and any(
                            _call(cb.on_batch_end, self, self.n_updates, dict(zip(names, values)))
                            for cb in callbacks
                        ):
                            stop = "a callback stopped training"
                            break
                        if interrupted():
                            stop = "interrupted"
                            break
                        if (
                            max_updates is not None
                            and self.n_updates - start_updates >= max_updates
                        ):
                            stop = f"max_updates={max_updates} reached"
                            break
                    if seen == 0:
                        history.stop_reason = stop
                        break
                    self.n_epochs += 1
                    logs = {k: t / seen for k, t in zip(names, sums)}
                    if validation_data is not None:
                        logs.update({f"val_{k}": v for k, v in self.evaluate(Xv, yv).items()})
                    logs.update(
                        epoch=self.n_epochs,
                        updates=self.n_updates,
                        learning_rate=float(self.learning_rate.get_value()),
                        seconds=time.perf_counter() - t0,
                    )
                    history.epochs.append(logs)
                    if stop:
                        history.stop_reason = stop
                        break
                    if any(_call(cb.on_epoch_end, self, self.n_epochs, logs) for cb in callbacks):
                        history.stop_reason = "a callback stopped training"
                        break
                    if interrupted():
                        history.stop_reason = "interrupted"
                        break
                    if (
                        tol is not None
                        and prev_loss is not None
                        and abs(prev_loss - logs["loss"]) < tol
                    ):
                        history.stop_reason = f"training loss changed by less than tol={tol}"
                        break
                    prev_loss = logs["loss"]
                else:
                    history.stop_reason = f"epochs={epochs} completed"
        except KeyboardInterrupt:  # raised by a callback, or a second Ctrl-C
            history.stop_reason = "interrupted"
        except ValueError as exc:
            bad_row = nonfinite_row(exc)
            if bad_row is None:
                raise
        finally:
            tuner.restore()
        if bad_row is not None:
            for cb in callbacks:
                cb.on_train_end(self, history)
            self._restore_checkpoint(start)
            where = bad_row if rows is None else int(rows[bad_row])
            raise SymnnValueError(
                f"X contains NaN or infinity (row {where}); expected finite numbers. The model "
                "keeps the weights it had before this fit."
            )
        if tuner.choice is not None and tuner.fixed is None:
            self._threads[batch_size] = tuner.choice
        history.interrupted = history.stop_reason == "interrupted"
        for cb in callbacks:
            cb.on_train_end(self, history)
        if history.stop_reason.startswith("non-finite"):
            warnings.warn(
                f"symnn: training stopped: {history.stop_reason}", RuntimeWarning, stacklevel=2
            )
        self.history.extend(history)
        return history

    def _retry_halved(self, step, idx, rollback: Rollback, tuner, history: History) -> list:
        """Undo the update that led to a non-finite loss, halve the learning rate, redo the
        undone minibatches and this one; returns this minibatch's outputs."""
        undone = rollback.restore(drop_last=1)
        if undone is None:
            return [math.nan]
        self.n_updates -= undone
        del history.batch_loss[len(history.batch_loss) - undone :]
        self.learning_rate.set_value(self.learning_rate.get_value() / 2)
        history.notes.append(
            f"update {self.n_updates + 1}: non-finite loss; rolled back {undone} update(s), "
            f"learning rate halved to {float(self.learning_rate.get_value()):.3g}"
        )
        rollback.maybe_snapshot(force=True)
        for redo in rollback.dropped:
            values = [float(v) for v in tuner(step, redo)]
            if not math.isfinite(values[0]):
                return values
            rollback.record(redo, float(self.learning_rate.get_value()))
            self.n_updates += 1
            history.batch_loss.append(values[0])
        return [float(v) for v in tuner(step, idx)]

    def _non_finite(self, loss: float, rollback: Rollback | None, history: History) -> str:
        """Handle a non-finite loss: roll back when guarded; return the stop reason."""
        where = f"non-finite training loss ({loss}) at update {self.n_updates + 1}"
        if rollback is None:
            return f"{where}; guard=False, so the weights may hold NaN."
        undone = rollback.restore()
        if undone is None:
            return f"{where}; no finite state could be rebuilt, the weights may hold NaN."
        if undone:  # updates with a finite loss whose result overflowed
            self.n_updates -= undone
            del history.batch_loss[len(history.batch_loss) - undone :]
        return (
            f"{where}; the network was put back to the weights and optimiser state of "
            f"the last update that left them finite (update {self.n_updates}). Lower the "
            "learning rate or check the data."
        )

    def _set_lr(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise SymnnValueError(
                f"the schedule gave learning rate {value}; expected a number > 0."
            )
        self.learning_rate.set_value(np.asarray(value, dtype=self.dtype))


def interactive() -> bool:
    """Whether a person is watching: stderr is a terminal, or the code runs in a Jupyter
    kernel (where tqdm's notebook-aware bar shows; stderr is no terminal there)."""
    if hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        return True
    shell = sys.modules.get("IPython")
    ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return type(ipython).__name__ == "ZMQInteractiveShell"


def _one_hot_to_labels(y: np.ndarray, loss_fn: Callable) -> np.ndarray:
    """One-hot targets for a categorical cross-entropy are the same objective as their
    integer labels, which also give accuracy and the fused C op: convert them."""
    categorical = (costs.categorical_crossentropy, costs.categorical_crossentropy_from_logits)
    if loss_fn not in categorical or y.ndim != 2 or y.shape[1] < 2 or y.dtype.kind not in "biuf":
        return y
    if np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        return y.argmax(axis=1).astype(np.int32)
    return y


def _warn_if_unscaled(X: np.ndarray) -> None:
    """Warn when inputs are far from the scale the initialisations assume (order 1), judged
    on at most 1,000 evenly spaced rows (no pass over all the data)."""
    sample = X[:: max(1, len(X) // 1000)]
    with np.errstate(invalid="ignore"):
        big = float(np.nanmax(np.abs(sample))) if sample.size else 0.0
    if big > _SCALE_WARNING:
        warnings.warn(
            f"symnn: X has values up to {big:g}; the weight initialisations (and input "
            "optimisation's default box [0, 1]) assume inputs of order 1. Scale the data "
            "(e.g. pixels / 255, or sklearn's StandardScaler), or training may stall.",
            UserWarning,
            stacklevel=3,
        )


def _call(hook, *args) -> bool:
    try:
        return bool(hook(*args))
    except StopTraining:
        return True


@contextmanager
def _deferred_interrupt():
    """Turn SIGINT into a flag checked between updates (main thread only; a process that
    ignores SIGINT, as one started in the background by a shell does, keeps ignoring it)."""
    flag = {"hit": False}
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield lambda: False
        return

    def handler(signum, frame):
        if flag["hit"]:  # a second Ctrl-C interrupts at once
            raise KeyboardInterrupt
        flag["hit"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["hit"]
    finally:
        signal.signal(signal.SIGINT, previous)
