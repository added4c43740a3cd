"""``maximize``: projected gradient ascent (or scipy with box bounds) over the inputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from ..backend import interrupt
from ..backend.threads import ThreadTuner, check_blas_threads
from ..errors import SymnnTypeError, SymnnValueError
from ..utils import as_rng, check_array, check_choice, check_positive, describe
from .engine import PROJECTED, SCIPY, compiled_ascent, compiled_scipy

__all__ = [
    "maximize",
    "MaximizeResult",
    "Ascent",
    "check_objective",
    "resolve_bounds",
    "draw_starts",
    "check_ascent_options",
    "METHODS",
]

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


def draw_starts(dtype: str, x0, n_starts: int, seed: Any, box: tuple) -> np.ndarray:
    """The starting inputs: ``x0`` checked against the box ``(lo, hi)``, or ``n_starts``
    points drawn uniformly in the box from ``seed``.

    >>> lo, hi = np.zeros(2), np.ones(2)
    >>> draw_starts("float64", None, 3, 0, (lo, hi)).shape
    (3, 2)
    """
    lo, hi = box
    width = len(lo)
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
    keep: str = "best",
) -> MaximizeResult:
    """Find inputs in the box ``bounds`` that maximise ``objective``, from several starts.

    The keyword names are a published contract of symnn's input optimisation (code outside
    this package calls them); they stay as they are.

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
        the faster (:mod:`symnn.backend.threads`), the scipy methods use the library's default; the
        count can change the last bits of the iterates, so a number (``2``) makes runs from
        the same seed bit-identical.
    keep
        Which iterate of each start the projected methods return: ``"best"`` (the one with
        the highest recorded objective, recovered by replaying the ascent from a snapshot)
        or ``"last"`` (no replay; for objectives that change from step to step, e.g. under
        random transformations, where the highest recorded value is partly noise).

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
    ascent = Ascent.plan(objective, x, locals())
    return ascent.run_scipy() if ascent.method in SCIPY else ascent.run_projected()


@dataclass
class Ascent:
    """One :func:`maximize` call: its checked settings and its run."""

    objective: Any
    x: Any
    starts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    steps: int
    learning_rate: float
    method: str
    tol: float | None
    mode: Any
    every: tuple[int, Callable] | None
    fixed_threads: int | None  # None: tuned by timing
    keep: str  # "best" or "last" iterate per start

    @property
    def width(self) -> int:
        return self.starts.shape[1]

    @classmethod
    def plan(cls, objective, x, args: dict[str, Any]) -> Ascent:
        """Check every argument of :func:`maximize` (naming the bad one)."""
        options = check_ascent_options(
            method=args["method"], steps=args["steps"], learning_rate=args["learning_rate"],
            tol=args["tol"], blas_threads=args["blas_threads"], every=args["every"],
            keep=args["keep"],
        )  # fmt: skip
        width = _width(x, args["x0"])
        lo, hi = resolve_bounds(args["bounds"], width, x.type.dtype)
        starts = draw_starts(x.type.dtype, args["x0"], args["n_starts"], args["seed"], (lo, hi))
        return cls(objective, x, starts, lo, hi, **options, mode=args["mode"])

    # -- projected methods ----------------------------------------------------------------
    def run_projected(self) -> MaximizeResult:
        fns = compiled_ascent(self.objective, self.x, self.method, self.width, self.mode)
        with fns.lock:  # the shared inputs and optimiser state are this call's until it ends
            fns.reset(self.starts, self.lo, self.hi, self.learning_rate)
            tuner = ThreadTuner(fns.threads.get(len(self.starts)), fixed=self.fixed_threads)
            try:
                trace, reason, seconds = self._ascend(fns, tuner)
                if tuner.choice is not None and tuner.fixed is None:
                    fns.threads[len(self.starts)] = tuner.choice
                x_last = np.array(fns.X.get_value())  # numpy also on JAX
                X = x_last
                if self.keep == "best":
                    final = np.asarray(fns.value())
                    X = _best_by_replay(fns, trace, final, x_last, tuner, self._advance)
            finally:
                tuner.restore()
            fns.X.set_value(X)
            value = np.asarray(fns.value(), dtype=np.float64)
        out = self._result(X, value, trace.history, seconds, reason)
        out.x_last = x_last
        return out

    def _advance(self, fns, tuner, i: int, replay: bool = False) -> np.ndarray:
        """Step ``i`` (a replay runs with the count its caller set, not the tuner's)."""
        values = np.asarray(fns.step() if replay else tuner(fns.step))
        if self.every is not None and (i + 1) % self.every[0] == 0:
            new = np.asarray(self.every[1](fns.X.get_value()), dtype=fns.X.dtype)
            fns.X.set_value(np.clip(new, self.lo, self.hi))
        return values

    def _ascend(self, fns, tuner) -> tuple[_Trace, str, float]:
        trace, reason, previous = _Trace(), f"steps={self.steps} completed", None
        t0 = time.perf_counter()
        with interrupt.deferred_interrupt() as interrupted:
            try:
                for i in range(self.steps):
                    if i % _SNAPSHOT_EVERY == 0:
                        trace.snapshots[i] = fns.snapshot()
                    values = self._advance(fns, tuner, i)
                    trace.threads.append(tuner.current)  # the count this step ran with
                    trace.history.append(values)
                    reason = self._stop_reason(i, values, previous, interrupted) or reason
                    if reason.startswith(("non-finite", "no start", "interrupted")):
                        break
                    previous = values
            except KeyboardInterrupt:
                reason = "interrupted"
        return trace, reason, time.perf_counter() - t0

    def _stop_reason(self, i: int, values, previous, interrupted) -> str | None:
        if not np.all(np.isfinite(values)):
            return f"non-finite objective at step {i + 1}"
        if self.tol is not None and previous is not None and np.all(values - previous <= self.tol):
            return f"no start improved by more than tol={self.tol}"
        return "interrupted" if interrupted() else None

    # -- scipy methods --------------------------------------------------------------------
    def run_scipy(self) -> MaximizeResult:
        fns = compiled_scipy(self.objective, self.x, self.width, self.mode)
        with fns.lock:  # one run at a time on the compiled function's storage
            return self._scipy(fns)

    def _scipy(self, fns) -> MaximizeResult:
        n, history, cache = len(self.starts), [], {}
        last = {"x": self.starts.astype(np.float64).ravel()}  # the last accepted iterate

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

        box = list(
            zip(np.tile(self.lo, n).astype(np.float64), np.tile(self.hi, n).astype(np.float64))
        )
        key = "maxfun" if self.method == "tnc" else "maxiter"
        scipy_method = "L-BFGS-B" if self.method == "l-bfgs-b" else "TNC"
        t0 = time.perf_counter()
        with interrupt.deferred_interrupt() as interrupted, _blas_threads(self.fixed_threads):
            try:
                import scipy.optimize  # 0.2 s to import: only for the scipy methods

                res = scipy.optimize.minimize(
                    fun, last["x"], jac=True, method=scipy_method, bounds=box, tol=self.tol,
                    callback=callback, options={key: int(self.steps)},
                )  # fmt: skip
                final, reason = res.x, str(res.message)
            except (_Interrupted, KeyboardInterrupt):
                final, reason = last["x"], "interrupted"
            X = np.clip(final.reshape(n, self.width), self.lo, self.hi).astype(self.x.type.dtype)
            rows = np.asarray(fns.fn(X.astype(np.float64).ravel())[0], dtype=np.float64)
        return self._result(X, rows, history, time.perf_counter() - t0, reason)

    def _result(self, X, value, history, seconds: float, reason: str) -> MaximizeResult:
        X = np.asarray(X)
        scale = np.maximum(np.abs(self.hi - self.lo), 1.0)
        on_bound = (np.abs(X - self.lo) <= 1e-6 * scale) | (np.abs(X - self.hi) <= 1e-6 * scale)
        hist = (
            np.asarray(history, dtype=np.float64).reshape(len(history), len(X))
            if history
            else np.zeros((0, len(X)))
        )
        return MaximizeResult(
            x=X,
            value=np.asarray(value, dtype=np.float64),
            history=hist,
            at_bounds=on_bound.mean(axis=1),
            n_steps=len(history),
            seconds=float(seconds),
            method=self.method,
            stop_reason=reason,
            interrupted=reason == "interrupted",
        )


@dataclass
class _Trace:
    """What a projected ascent records: the objective per step and start, the BLAS thread
    count of each step, and snapshots for the replay."""

    history: list = field(default_factory=list)
    threads: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)


def check_ascent_options(
    *, method: str = "gradient", steps: int = 200, learning_rate: float | None = None,
    tol: float | None = None, blas_threads: int | str = "auto", every: Any = None,
    keep: str = "best",
) -> dict[str, Any]:
    """:func:`maximize`'s ascent options checked (naming the bad one), as :class:`Ascent`
    holds them; callers that compile first (activation maximisation) check them before.

    >>> check_ascent_options(method="tnc", learning_rate=0.1)
    Traceback (most recent call last):
    ...
    symnn.errors.SymnnValueError: learning_rate=0.1 has no effect with method='tnc' (scipy...
    """
    method = check_choice(method, "method", METHODS)
    steps = check_positive(steps, "steps", integer=True)
    if method in SCIPY:
        given = (("learning_rate", learning_rate), ("every", every),
                 ("keep", None if keep == "best" else keep))  # fmt: skip
        for name, value in given:
            if value is not None:
                raise SymnnValueError(
                    f"{name}={value!r} has no effect with method={method!r} (scipy chooses "
                    "its own steps and runs no per-step hook); leave it out or use a "
                    f"projected method ({', '.join(PROJECTED)})."
                )
    learning_rate = check_positive(0.1 if learning_rate is None else learning_rate,
                                   "learning_rate")  # fmt: skip
    if tol is not None:
        check_positive(tol, "tol", allow_zero=True)
    _check_every(every)
    return dict(steps=steps, learning_rate=float(learning_rate), method=method, tol=tol,
                every=every, fixed_threads=check_blas_threads(blas_threads),
                keep=check_choice(keep, "keep", ("best", "last")))  # fmt: skip


def _check_every(every) -> None:
    if every is not None:
        k, fn = every
        check_positive(k, "every[0]", integer=True)
        if not callable(fn):
            raise SymnnTypeError(f"every[1] must be callable; got {describe(fn)}.")


class _Interrupted(Exception):
    pass


@contextmanager
def _blas_threads(fixed: int | None):
    """Run the block with ``fixed`` BLAS threads (None: the library's default)."""
    tuner = ThreadTuner(fixed=fixed)
    try:
        yield
    finally:
        tuner.restore()


def _best_by_replay(fns, trace: _Trace, final, x_last, tuner, advance) -> np.ndarray:
    """The best iterate of every start, recovered without copying inputs on every step.

    ``trace.history[j]`` is the objective at the inputs *before* step ``j``. Starts whose
    final value is their best (the usual case) take the final inputs. For the others, the
    ascent is replayed from the snapshot before their best step, with the same BLAS thread
    counts, which reproduces the iterates exactly, and their rows are copied at that step.
    """
    X = x_last.copy()
    if not trace.history:
        return X
    hist = np.asarray(trace.history, dtype=np.float64)
    hist = np.where(np.isfinite(hist), hist, -np.inf)
    best_step = hist.argmax(axis=0)
    need = np.flatnonzero(hist.max(axis=0) > np.where(np.isfinite(final), final, -np.inf))
    for start in sorted({int(s) // _SNAPSHOT_EVERY * _SNAPSHOT_EVERY for s in best_step[need]}):
        rows = need[best_step[need] // _SNAPSHOT_EVERY * _SNAPSHOT_EVERY == start]
        fns.restore(trace.snapshots[start])
        targets = best_step[rows]
        for j in range(start, int(targets.max()) + 1):
            hit = rows[targets == j]
            if hit.size:
                X[hit] = fns.X.get_value(borrow=True)[hit]
            if j < targets.max():
                tuner.set(trace.threads[j])
                advance(fns, tuner, j, replay=True)
    return X
