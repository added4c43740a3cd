"""``maximize``: projected gradient ascent (or scipy with box bounds) over the inputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt
import scipy.optimize
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from ..errors import SymnnTypeError, SymnnValueError
from ..threads import ThreadTuner, check_blas_threads
from ..utils import as_rng, check_array, check_choice, check_positive, describe
from .engine import PROJECTED, SCIPY, compiled_ascent, compiled_scipy

__all__ = ["maximize", "MaximizeResult", "check_objective", "resolve_bounds", "METHODS"]

METHODS = PROJECTED + SCIPY

#: inputs and optimiser state are copied every this many steps, for replaying to a best step
_SNAPSHOT_EVERY = 32


@dataclass
class MaximizeResult:
    """What :func:`maximize` found, one row per start."""

    x: np.ndarray  #: best input per start, inside the bounds
    value: np.ndarray  #: objective at ``x`` per start
    history: np.ndarray  #: objective per step and start, shape (n_steps, n_starts)
    at_bounds: np.ndarray  #: fraction of each start's coordinates on a bound
    n_steps: int
    seconds: float
    method: str
    stop_reason: str = ""
    interrupted: bool = False
    x_last: np.ndarray | None = None  #: the last iterate per start (projected methods)

    @property
    def best(self) -> int:
        """Index of the start with the highest objective."""
        return int(np.argmax(self.value))


def check_objective(objective, x):
    """Validate a symbolic objective of a symbolic input matrix ``x``."""
    if not isinstance(x, pt.TensorVariable) or x.owner is not None or isinstance(x, SharedVariable):
        raise SymnnTypeError(
            f"x must be a symbolic input matrix such as pt.matrix('x', shape=(None, 784)); "
            f"got {describe(x)}."
        )
    if x.type.ndim != 2:
        raise SymnnValueError(f"x must be a matrix (one row per start); got {x.type}.")
    if x.type.dtype not in ("float32", "float64"):
        raise SymnnTypeError(f"x has dtype {x.type.dtype}; expected float32 or float64.")
    if not isinstance(objective, pt.TensorVariable):
        raise SymnnTypeError(
            f"objective must be a symbolic expression of x; got {describe(objective)}."
        )
    inputs = [
        v
        for v in graph_inputs([objective])
        if v.owner is None and not isinstance(v, SharedVariable | Constant)
    ]
    if x not in inputs:
        raise SymnnValueError(
            "objective does not depend on x; expected an expression built "
            "from x (e.g. network(x)[:, 0])."
        )
    others = [v for v in inputs if v is not x]
    if others:
        raise SymnnValueError(
            f"objective depends on other symbolic inputs "
            f"({', '.join(str(v) for v in others)}); make them shared "
            "variables or constants."
        )
    if objective.type.ndim != 1:
        raise SymnnValueError(
            f"objective must have one value per row of x (a vector); got {objective.type}. "
            "For a network output use e.g. net(x)[:, k]."
        )


def resolve_bounds(bounds, width: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` as arrays of ``width`` values, checked ``lo < hi``."""
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise SymnnTypeError(f"bounds must be a pair (lo, hi); got {describe(bounds)}.") from None
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (width,)).astype(dtype)
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (width,)).astype(dtype)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise SymnnValueError("bounds must be finite numbers.")
    if np.any(lo >= hi):
        i = int(np.argmax(lo >= hi))
        raise SymnnValueError(
            f"bounds have lo >= hi at coordinate {i} ({lo[i]} >= {hi[i]}); "
            "expected lo < hi everywhere."
        )
    return lo, hi


def _starts(x, x0, n_starts, seed, lo, hi, width) -> np.ndarray:
    dtype = x.type.dtype
    if x0 is None:
        check_positive(n_starts, "n_starts", integer=True)
        rng = as_rng(seed, name="seed")
        return (lo + (hi - lo) * rng.random((n_starts, width))).astype(dtype)
    x0 = check_array(x0, "x0", ndim=(1, 2), dtype=dtype)
    if x0.ndim == 1:
        x0 = x0[None, :]
    if x0.shape[1] != width:
        raise SymnnValueError(f"x0 has {x0.shape[1]} columns; x has {width} (x0 shape {x0.shape}).")
    outside = (x0 < lo) | (x0 > hi)
    if outside.any():
        r, c = np.argwhere(outside)[0]
        raise SymnnValueError(
            f"x0 has starts outside the bounds: x0[{r}, {c}] = {x0[r, c]} is not "
            f"in [{lo[c]}, {hi[c]}]."
        )
    return x0


def _width(x, x0) -> int:
    width = x.type.shape[-1]
    if width is not None:
        return int(width)
    if x0 is not None:
        arr = np.asarray(x0)
        if arr.ndim in (1, 2) and arr.shape[-1] > 0:
            return int(arr.shape[-1])
    raise SymnnValueError(
        "x has no static width and no x0 was given; declare it, e.g. "
        "pt.matrix('x', shape=(None, 784)), or pass x0."
    )


def maximize(
    objective,
    x,
    *,
    x0=None,
    n_starts: int = 1,
    seed: Any = 0,
    bounds=(0.0, 1.0),
    steps: int = 200,
    learning_rate: float | None = None,
    method: str = "gradient",
    tol: float | None = None,
    mode: Any = None,
    every: tuple[int, Callable[[np.ndarray], np.ndarray]] | None = None,
    blas_threads: int | str = "auto",
) -> MaximizeResult:
    """Find inputs in the box ``bounds`` that maximise ``objective``, from several starts.

    Parameters
    ----------
    objective
        A symbolic vector: one value per row of ``x``. The network's weights are whatever
        shared variables the graph holds; they are not changed.
    x
        The symbolic input matrix (one row per start), e.g. ``pt.matrix("x", shape=(None, 784))``.
    x0
        Starting points ``(n_starts, width)`` inside the bounds; by default ``n_starts`` points
        drawn uniformly in the box from ``seed``.
    bounds
        ``(lo, hi)``, scalars or one value per coordinate.
    steps
        Number of ascent steps (iterations for scipy methods).
    learning_rate
        Step size of the projected methods (for ``"normalized"``, the step per unit RMS);
        default 0.1. The scipy methods choose their own steps: passing it with them is an
        error, as is ``every``.
    method
        ``"gradient"`` (projected ascent), ``"normalized"`` (gradient divided by its RMS per
        start, as Keras' filter visualisation does), ``"momentum"``, ``"adam"``, or
        ``"l-bfgs-b"`` / ``"tnc"`` (scipy with box bounds on the flattened input).
    tol
        Stop when a step improves no start by more than ``tol``; ``None`` runs every step.
    mode
        Compile mode. A second call with the same objective, ``x`` and method reuses the
        compiled function: new starts, step counts and learning rates are data.
    every
        ``(k, fn)``: every ``k`` steps replace the inputs by ``fn(inputs)`` (then project);
        used for blurring in activation maximisation.
    blas_threads
        ``"auto"``: the projected methods time one BLAS thread against all of them and keep
        the faster (:mod:`symnn.threads`), the scipy methods use the library's default; the
        count can change the last bits of the iterates, so a number (``2``) makes runs from
        the same seed bit-identical.

    Returns
    -------
    MaximizeResult

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float64", shape=(None, 2))
    >>> objective = -pt.sum((x - np.array([0.3, 2.0])) ** 2, axis=1)  # optimum outside the box
    >>> r = maximize(objective, x, n_starts=3, steps=100, mode="FAST_COMPILE")
    >>> np.round(r.x, 3)
    array([[0.3, 1. ],
           [0.3, 1. ],
           [0.3, 1. ]])
    """
    check_objective(objective, x)
    method = check_choice(method, "method", METHODS)
    steps = check_positive(steps, "steps", integer=True)
    if method in SCIPY:
        for name, value in (("learning_rate", learning_rate), ("every", every)):
            if value is not None:
                raise SymnnValueError(
                    f"{name}={value!r} has no effect with method={method!r} (scipy chooses its "
                    "own steps and runs no per-step hook); leave it out or use a projected "
                    f"method ({', '.join(PROJECTED)})."
                )
    learning_rate = 0.1 if learning_rate is None else learning_rate
    check_positive(learning_rate, "learning_rate")
    if tol is not None:
        check_positive(tol, "tol", allow_zero=True)
    threads = check_blas_threads(blas_threads)
    width = _width(x, x0)
    lo, hi = resolve_bounds(bounds, width, x.type.dtype)
    starts = _starts(x, x0, n_starts, seed, lo, hi, width)
    if every is not None:
        k, fn = every
        check_positive(k, "every[0]", integer=True)
        if not callable(fn):
            raise SymnnTypeError(f"every[1] must be callable; got {describe(fn)}.")
    if method in SCIPY:
        return _maximize_scipy(
            objective, x, starts, lo, hi, steps, method, tol, mode, width, threads
        )
    return _maximize_projected(
        objective, x, starts, lo, hi, steps, learning_rate, method, tol, mode, width, every, threads
    )


def _maximize_projected(
    objective, x, starts, lo, hi, steps, learning_rate, method, tol, mode, width, every, fixed
) -> MaximizeResult:
    fns = compiled_ascent(objective, x, method, width, mode)
    with fns.lock:  # the shared inputs and optimiser state are this call's until it ends
        return _ascend(fns, starts, lo, hi, steps, learning_rate, method, tol, every, fixed)


def _ascend(fns, starts, lo, hi, steps, learning_rate, method, tol, every, fixed):
    from ..train.trainer import _deferred_interrupt

    fns.reset(starts, lo, hi, learning_rate)
    t0 = time.perf_counter()
    history: list[np.ndarray] = []
    threads: list[int] = []
    snapshots: dict[int, tuple] = {}
    reason = f"steps={steps} completed"
    previous = None
    tuner = ThreadTuner(fns.threads.get(len(starts)), fixed=fixed)

    def advance(i: int, replay: bool = False) -> np.ndarray:
        # a replay runs with the recorded thread count (set by the caller), not the tuner's
        values = np.asarray(fns.step() if replay else tuner(fns.step))
        if every is not None and (i + 1) % every[0] == 0:
            new = np.asarray(every[1](fns.X.get_value()), dtype=fns.X.dtype)
            fns.X.set_value(np.clip(new, lo, hi))
        return values

    try:
        with _deferred_interrupt() as interrupted:
            try:
                for i in range(steps):
                    if i % _SNAPSHOT_EVERY == 0:
                        snapshots[i] = fns.snapshot()
                    values = advance(i)
                    threads.append(tuner.current)  # the count this step ran with
                    history.append(values)
                    if not np.all(np.isfinite(values)):
                        reason = f"non-finite objective at step {i + 1}"
                        break
                    if tol is not None and previous is not None:
                        if np.all(values - previous <= tol):
                            reason = f"no start improved by more than tol={tol}"
                            break
                    previous = values
                    if interrupted():
                        reason = "interrupted"
                        break
            except KeyboardInterrupt:
                reason = "interrupted"
        if tuner.choice is not None and tuner.fixed is None:
            fns.threads[len(starts)] = tuner.choice
        x_last = fns.X.get_value()
        final = np.asarray(fns.value())
        X = _best_by_replay(fns, history, final, x_last, snapshots, threads, tuner, advance)
    finally:
        tuner.restore()
    fns.X.set_value(X)
    value = np.asarray(fns.value(), dtype=np.float64)
    out = _result(X, value, history, lo, hi, len(history), time.perf_counter() - t0, method, reason)
    out.x_last = x_last
    return out


def _best_by_replay(fns, history, final, x_last, snapshots, threads, tuner, advance):
    """The best iterate of every start, recovered without copying inputs on every step.

    ``history[j]`` is the objective at the inputs *before* step ``j``. Starts whose final
    value is their best (the usual case) take the final inputs. For the others, the ascent
    is replayed from the snapshot before their best step, with the same BLAS thread counts,
    which reproduces the iterates exactly, and their rows are copied at that step.
    """
    X = x_last.copy()
    if not history:
        return X
    hist = np.asarray(history, dtype=np.float64)
    hist = np.where(np.isfinite(hist), hist, -np.inf)
    best_step = hist.argmax(axis=0)
    need = np.flatnonzero(hist.max(axis=0) > np.where(np.isfinite(final), final, -np.inf))
    for start in sorted({int(s) // _SNAPSHOT_EVERY * _SNAPSHOT_EVERY for s in best_step[need]}):
        rows = need[best_step[need] // _SNAPSHOT_EVERY * _SNAPSHOT_EVERY == start]
        fns.restore(snapshots[start])
        targets = best_step[rows]
        for j in range(start, int(targets.max()) + 1):
            hit = rows[targets == j]
            if hit.size:
                X[hit] = fns.X.get_value(borrow=True)[hit]
            if j < targets.max():
                tuner.set(threads[j])
                advance(j, replay=True)
    return X


class _Interrupted(Exception):
    pass


def _maximize_scipy(objective, x, starts, lo, hi, steps, method, tol, mode, width, fixed):
    fns = compiled_scipy(objective, x, width, mode)
    with fns.lock:  # one run at a time on the compiled function's storage
        return _scipy_run(fns, x, starts, lo, hi, steps, method, tol, width, fixed)


def _scipy_run(fns, x, starts, lo, hi, steps, method, tol, width, fixed) -> MaximizeResult:
    from ..train.trainer import _deferred_interrupt

    n = len(starts)
    history: list[np.ndarray] = []
    cache: dict[str, Any] = {}
    last = {"x": starts.astype(np.float64).ravel()}  # the last accepted iterate

    def fun(flat):
        rows, neg, grad = fns.fn(flat)
        cache["flat"], cache["rows"] = flat.copy(), np.asarray(rows, dtype=np.float64)
        return float(neg), np.ascontiguousarray(grad, dtype=np.float64)

    def callback(xk, *args):
        if not np.array_equal(cache.get("flat"), xk):
            fun(np.asarray(xk, dtype=np.float64))
        history.append(cache["rows"].copy())
        last["x"] = np.array(xk, dtype=np.float64)
        if interrupted():
            raise _Interrupted

    box = list(zip(np.tile(lo, n).astype(np.float64), np.tile(hi, n).astype(np.float64)))
    key = "maxfun" if method == "tnc" else "maxiter"
    t0 = time.perf_counter()
    with _deferred_interrupt() as interrupted, _blas_threads(fixed):
        try:
            res = scipy.optimize.minimize(
                fun,
                last["x"],
                jac=True,
                method="L-BFGS-B" if method == "l-bfgs-b" else "TNC",
                bounds=box,
                tol=tol,
                callback=callback,
                options={key: int(steps)},
            )
            final, reason = res.x, res.message if isinstance(res.message, str) else str(res.message)
        except (_Interrupted, KeyboardInterrupt):
            final, reason = last["x"], "interrupted"
        X = np.clip(final.reshape(n, width), lo, hi).astype(x.type.dtype)
        rows = np.asarray(fns.fn(X.astype(np.float64).ravel())[0], dtype=np.float64)
    return _result(X, rows, history, lo, hi, len(history), time.perf_counter() - t0, method, reason)


@contextmanager
def _blas_threads(fixed: int | None):
    """Run the block with ``fixed`` BLAS threads (None: the library's default)."""
    tuner = ThreadTuner(fixed=fixed)
    try:
        yield
    finally:
        tuner.restore()


def _result(X, value, history, lo, hi, n_steps, seconds, method, reason) -> MaximizeResult:
    X = np.asarray(X)
    scale = np.maximum(np.abs(hi - lo), 1.0)
    on_bound = (np.abs(X - lo) <= 1e-6 * scale) | (np.abs(X - hi) <= 1e-6 * scale)
    hist = (
        np.asarray(history, dtype=np.float64).reshape(len(history), len(X))
        if history
        else (np.zeros((0, len(X))))
    )
    return MaximizeResult(
        x=X,
        value=np.asarray(value, dtype=np.float64),
        history=hist,
        at_bounds=on_bound.mean(axis=1),
        n_steps=int(n_steps),
        seconds=float(seconds),
        method=method,
        stop_reason=reason,
        interrupted=reason == "interrupted",
    )
