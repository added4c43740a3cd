"""A user-facing finite-difference check of symbolic gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from .backend import function
from .errors import SymnnTypeError, SymnnValueError
from .utils import as_rng, describe

__all__ = ["check_grad"]


def check_grad(
    cost,
    wrt: Any,
    values: Sequence[Any] | None = None,
    *,
    givens: dict | None = None,
    eps: float | None = None,
    max_coords: int = 64,
    rng: Any = 0,
    mode: Any = None,
) -> float:
    """Compare the symbolic gradient of a scalar ``cost`` with central finite differences.

    Parameters
    ----------
    cost
        A scalar symbolic expression.
    wrt
        A shared variable or symbolic input, or a list of them.
    values
        Numbers for the symbolic (non-shared) entries of ``wrt``, in order.
    givens
        Numbers for any other symbolic input the cost needs, as ``{variable: value}``.
    eps
        Finite-difference step; default ``1e-6`` for float64 graphs and ``1e-3`` for float32.
    max_coords
        At most this many coordinates per variable are checked (a seeded random subset).
    rng
        Seed for choosing coordinates.
    mode
        Compile mode (default: symnn's).

    Returns
    -------
    float
        The worst relative error ``|analytic - numeric| / max(|analytic|, |numeric|, floor)``
        over the checked coordinates, where ``floor`` is ``1e-4`` (float64) or ``1e-2``
        (float32) times ``max(1, |cost|)``, so that gradient entries tiny next to the cost are
        compared absolutely (finite differences cannot resolve them better). Below ``1e-6``
        (float64) or ``1e-2`` (float32) the gradient is right.

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> w = pytensor.shared(np.array([0.5, -1.0]), name="w")
    >>> x = pt.vector("x", dtype="float64")
    >>> err = check_grad(pt.sum(pt.tanh(w * x) ** 2), [w, x], [np.array([1.0, 2.0])],
    ...                  mode="FAST_COMPILE")
    >>> err < 1e-6
    True
    """
    cost, wrt, symbolic, arrays = _checked(cost, wrt, values, givens)
    given_vars = list(givens or {})
    given_vals = [np.asarray(givens[v], dtype=v.type.dtype) for v in given_vars]
    inputs = symbolic + given_vars
    grads = pytensor.grad(cost, wrt, disconnected_inputs="ignore")
    f_cost = function(inputs, cost, mode=mode)
    f_grad = function(inputs, grads, mode=mode)

    float32 = any(np.dtype(getattr(v, "dtype", "float64")) == np.float32 for v in [cost, *wrt])
    step = eps if eps is not None else (1e-3 if float32 else 1e-6)
    floor = (1e-2 if float32 else 1e-4) * max(1.0, abs(float(f_cost(*arrays, *given_vals))))
    analytic = [np.asarray(g, dtype=np.float64) for g in f_grad(*arrays, *given_vals)]
    gen = as_rng(rng)
    worst = 0.0
    for k, var in enumerate(wrt):

        def evaluate(point, var=var):
            if isinstance(var, SharedVariable):
                var.set_value(point)
                return float(f_cost(*arrays, *given_vals))
            args = list(arrays)
            args[symbolic.index(var)] = point
            return float(f_cost(*args, *given_vals))

        original = (
            var.get_value() if isinstance(var, SharedVariable) else arrays[symbolic.index(var)]
        )
        try:
            errors = _relative_errors(
                evaluate, original, analytic[k], step, floor, (max_coords, gen)
            )
            worst = max(worst, *errors)
        finally:
            if isinstance(var, SharedVariable):
                var.set_value(original)
    return float(worst)


def _checked(cost, wrt, values, givens):
    """``(cost, wrt, symbolic entries of wrt, their values)``, every argument checked."""
    cost = pt.as_tensor_variable(cost)
    if cost.type.ndim != 0:
        raise SymnnValueError(f"cost must be a scalar expression; got {cost.type}.")
    wrt = list(wrt) if isinstance(wrt, list | tuple) else [wrt]
    if not wrt:
        raise SymnnValueError("wrt is empty; expected at least one variable.")
    symbolic = [v for v in wrt if not isinstance(v, SharedVariable)]
    for v in symbolic:
        if not isinstance(v, pt.TensorVariable) or v.owner is not None:
            raise SymnnTypeError(
                f"wrt must hold shared variables or symbolic inputs; got {describe(v)}."
            )
    values = [] if values is None else list(values)
    if len(values) != len(symbolic):
        raise SymnnValueError(
            f"values has {len(values)} arrays for {len(symbolic)} symbolic entries of wrt; "
            "expected one value per symbolic input, in order."
        )
    given = dict(givens or {})
    free = [
        v
        for v in graph_inputs([cost])
        if v.owner is None
        and not isinstance(v, SharedVariable | Constant)
        and v not in symbolic
        and v not in given
    ]
    if free:
        raise SymnnValueError(
            f"cost depends on {', '.join(str(v) for v in free)}, which has no value; "
            "pass it in wrt (with values) or in givens."
        )
    arrays = [np.array(val, dtype=v.type.dtype) for v, val in zip(symbolic, values)]
    for v, a in zip(symbolic, arrays):
        if a.ndim != v.type.ndim:
            raise SymnnValueError(f"values for {v} has shape {a.shape}; expected {v.type.ndim}-D.")
    return cost, wrt, symbolic, arrays


def _relative_errors(evaluate, original, analytic, step, floor, sample) -> list[float]:
    """Central differences at (a seeded sample of) the coordinates of ``original``, each
    compared with ``analytic``; ``sample`` is ``(max_coords, generator)``."""
    max_coords, gen = sample
    point = np.array(original, copy=True)
    n = point.size
    coords = np.arange(n) if n <= max_coords else gen.choice(n, max_coords, replace=False)
    errors = [0.0]
    for c in coords:
        idx = np.unravel_index(c, point.shape)
        plus, minus = point.copy(), point.copy()
        plus[idx] += step
        minus[idx] -= step
        numeric = (evaluate(plus) - evaluate(minus)) / (2 * step)
        a = analytic[idx] if analytic.ndim else float(analytic)
        errors.append(abs(a - numeric) / max(abs(a), abs(numeric), floor))
    return errors
