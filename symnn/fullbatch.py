"""scipy's optimisers (CG, L-BFGS-B, TNC, BFGS) on the flattened parameter vector.

One compiled function returns ``(cost, flat gradient)`` for a parameter vector ``theta``: the
network's shared parameters are replaced in the graph by slices of ``theta``, so scipy never
waits on Python-side copies. At the scipy boundary everything is float64 and C-contiguous
(seed 004's "tnc: invalid gradient vector" came from handing scipy another array type).
Full batch by default; with ``batch_size`` a few iterations per minibatch (seed 000).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.optimize
from pytensor.graph.replace import clone_replace

from .backend import function
from .errors import SymnnValueError
from .threads import ThreadTuner
from .train.callbacks import Callback, ProgressBar, StopTraining
from .train.history import History
from .train.trainer import Trainer, _call, _deferred_interrupt, locked
from .utils import check_choice, check_positive

__all__ = ["ScipyTrainer", "METHODS", "pack", "unpack"]

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


class _Stop(Exception):
    pass


class ScipyTrainer(Trainer):
    """A :class:`~symnn.train.Trainer` whose updates come from ``scipy.optimize.minimize``.

    Parameters
    ----------
    network, loss, l1, l2, seed, mode
        As for :class:`~symnn.train.Trainer`.
    method
        ``"cg"``, ``"l-bfgs-b"``, ``"tnc"`` or ``"bfgs"``.
    options
        Extra scipy options for the method (``gtol``, ...).
    blas_threads
        ``"auto"`` (the BLAS library's default count) or a fixed count for runs that are
        bit-identical from one run to the next.

    Callbacks see the network at scipy's current iterate: after every iteration the
    iterate is written into the network's parameters before ``on_batch_end`` and
    ``on_epoch_end`` run, so ``EarlyStopping`` keeps (and restores) the weights it judged.

    The objective is the inference-mode one (dropout off, batch-norm running statistics),
    since line searches need a deterministic function.

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
        network,
        *,
        method: str = "l-bfgs-b",
        loss="categorical_crossentropy",
        l1: float = 0.0,
        l2: float = 0.0,
        seed: Any = 0,
        mode: Any = None,
        options: dict | None = None,
        blas_threads: int | str = "auto",
    ):
        super().__init__(
            network,
            loss=loss,
            optimizer="sgd",
            learning_rate=1.0,
            l1=l1,
            l2=l2,
            seed=seed,
            mode=mode,
            blas_threads=blas_threads,
        )
        self.method = METHODS[check_choice(method, "method", METHODS)]
        self.options = dict(options or {})
        self._flat: dict[str, Any] = {}

    @locked
    def compile(self, targets: str = "labels") -> ScipyTrainer:
        """Compile the flat ``(cost, gradient)`` function and the evaluation functions now."""
        super().compile(targets)
        self._compile_flat(targets)
        return self

    def _compile_flat(self, kind: str):
        if kind in self._flat:
            return self._flat[kind]
        x, y = self._symbols(kind)
        loss, _, _ = self._objective(x, y, kind, deterministic=True)
        params = self.network.params
        theta = pt.vector("theta", dtype="float64")
        replace, start = {}, 0
        for p in params:
            shape = p.get_value(borrow=True).shape
            size = int(np.prod(shape))
            replace[p] = pt.cast(theta[start : start + size], p.dtype).reshape(shape)
            start += size
        flat_loss = clone_replace(loss, replace)
        grad = pytensor.grad(flat_loss, theta)
        lo, hi = pt.lscalar("start"), pt.lscalar("stop")
        storage = [
            pytensor.shared(np.zeros((0,) * v.type.ndim, dtype=v.type.dtype)) for v in (x, y)
        ]
        givens = {x: storage[0][lo:hi], y: storage[1][lo:hi]}
        fn = function(
            [theta, lo, hi], [pt.cast(flat_loss, "float64"), grad], givens=givens, mode=self.mode
        )
        self._flat[kind] = (fn, storage)
        return self._flat[kind]

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
    ) -> History:
        """Minimise the objective; returns the History (one entry per scipy iteration in
        full-batch mode, one per pass over the data with ``batch_size``).

        ``maxiter`` bounds the iterations of a full-batch run (function evaluations for
        TNC); with ``batch_size``, each minibatch gets ``iterations_per_batch`` iterations,
        for ``epochs`` passes. ``tol`` is handed to scipy (and, per epoch, stops when the loss
        changes by less).
        """
        check_positive(maxiter, "maxiter", integer=True)
        check_positive(iterations_per_batch, "iterations_per_batch", integer=True)
        check_positive(epochs, "epochs", integer=True)
        X, y = self._check_xy(X, y)
        if batch_size is not None:
            check_positive(batch_size, "batch_size", integer=True)
            if batch_size > len(X):
                raise SymnnValueError(
                    f"batch_size={batch_size} is larger than the {len(X)} training samples."
                )
        if validation_data is not None:
            Xv, yv = self._check_xy(
                *validation_data, xname="validation_data[0]", yname="validation_data[1]"
            )
        kind = self._targets_kind(y)
        fn, storage = self._compile_flat(kind)
        params = self.network.params
        history = History()
        callbacks = list(callbacks)
        if progress:  # one tick per scipy iteration
            n_batches = 1 if batch_size is None else -(-len(X) // batch_size)
            total = maxiter if batch_size is None else epochs * n_batches * iterations_per_batch
            callbacks.append(ProgressBar(total))
        for cb in callbacks:
            cb.on_train_begin(self)
        cache: dict[str, Any] = {}

        def fun(theta, lo, hi):
            value, grad = fn(theta, lo, hi)
            value = float(value)
            cache["theta"], cache["value"] = theta.copy(), value
            if not math.isfinite(value) or not np.all(np.isfinite(grad)):
                return math.inf, np.zeros_like(theta)
            return value, np.ascontiguousarray(grad, dtype=np.float64)

        def run(lo, hi, iterations, interrupted, epoch_logs):
            theta0 = pack(params)
            best = {"theta": theta0}

            def callback(xk, *args):
                best["theta"] = np.array(xk, dtype=np.float64)
                unpack(params, best["theta"])  # callbacks see the current iterate
                value = (
                    cache["value"] if np.array_equal(cache.get("theta"), xk) else fun(xk, lo, hi)[0]
                )
                self.n_updates += 1
                history.batch_loss.append(value)
                logs = {"loss": value}
                if epoch_logs is not None:
                    epoch_logs(value, xk)
                for cb in callbacks:
                    try:
                        if cb.on_batch_end(self, self.n_updates, logs):
                            raise _Stop("a callback stopped training")
                    except StopTraining:
                        raise _Stop("a callback stopped training") from None
                if interrupted():
                    raise _Stop("interrupted")

            # TNC counts function evaluations (``maxfun``), the others iterations
            key = "maxfun" if self.method == "TNC" else "maxiter"
            options = {key: int(iterations), **self.options}
            try:
                res = scipy.optimize.minimize(
                    fun,
                    theta0,
                    args=(lo, hi),
                    jac=True,
                    method=self.method,
                    tol=tol,
                    callback=callback,
                    options=options,
                )
                final = res.x if np.isfinite(res.fun) else best["theta"]
                unpack(params, final)
                return res.message if isinstance(res.message, str) else str(res.message)
            except _Stop as stop:
                unpack(params, best["theta"])
                return str(stop)

        tuner = ThreadTuner(fixed=self.blas_threads)  # "auto": the library's default count
        try:
            with _deferred_interrupt() as interrupted:
                if batch_size is None:
                    storage[0].set_value(X)
                    storage[1].set_value(y)
                    t0 = time.perf_counter()

                    def per_iteration(value, xk):
                        self.n_epochs += 1
                        logs = {
                            "loss": value,
                            "epoch": self.n_epochs,
                            "updates": self.n_updates,
                            "seconds": time.perf_counter() - t0,
                        }
                        if validation_data is not None:
                            logs.update({f"val_{k}": v for k, v in self.evaluate(Xv, yv).items()})
                        history.epochs.append(logs)
                        if any(
                            _call(cb.on_epoch_end, self, self.n_epochs, logs) for cb in callbacks
                        ):
                            raise _Stop("a callback stopped training")

                    history.stop_reason = run(0, len(X), maxiter, interrupted, per_iteration)
                else:
                    prev = None
                    for _ in range(epochs):
                        t0 = time.perf_counter()
                        order = self.rng.permutation(len(X))
                        storage[0].set_value(X[order])
                        storage[1].set_value(y[order])
                        reason = ""
                        for lo in range(0, len(X), batch_size):
                            reason = run(
                                lo,
                                min(lo + batch_size, len(X)),
                                iterations_per_batch,
                                interrupted,
                                None,
                            )
                            if reason in ("interrupted", "a callback stopped training"):
                                break
                        self.n_epochs += 1
                        logs = {
                            "loss": self.evaluate(X, y)["loss"],
                            "epoch": self.n_epochs,
                            "updates": self.n_updates,
                            "seconds": time.perf_counter() - t0,
                        }
                        if validation_data is not None:
                            logs.update({f"val_{k}": v for k, v in self.evaluate(Xv, yv).items()})
                        history.epochs.append(logs)
                        if reason in ("interrupted", "a callback stopped training"):
                            history.stop_reason = reason
                            break
                        if any(
                            _call(cb.on_epoch_end, self, self.n_epochs, logs) for cb in callbacks
                        ):
                            history.stop_reason = "a callback stopped training"
                            break
                        if tol is not None and prev is not None and abs(prev - logs["loss"]) < tol:
                            history.stop_reason = f"training loss changed by less than tol={tol}"
                            break
                        prev = logs["loss"]
                    else:
                        history.stop_reason = f"epochs={epochs} completed"
        except KeyboardInterrupt:
            history.stop_reason = "interrupted"
        finally:
            tuner.restore()
        history.interrupted = history.stop_reason == "interrupted"
        for cb in callbacks:
            cb.on_train_end(self, history)
        self.history.extend(history)
        return history

    @locked
    def loss_and_grad(self, theta: np.ndarray, X, y) -> tuple[float, np.ndarray]:
        """The compiled ``(cost, flat gradient)`` at ``theta`` over ``(X, y)`` (float64)."""
        X, y = self._check_xy(X, y)
        fn, storage = self._compile_flat(self._targets_kind(y))
        storage[0].set_value(X)
        storage[1].set_value(y)
        value, grad = fn(np.ascontiguousarray(theta, dtype=np.float64), 0, len(X))
        return float(value), np.asarray(grad, dtype=np.float64)
