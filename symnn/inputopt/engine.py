"""The compiled machinery of input optimisation: projected ascent steps and the scipy path.

``x`` is replaced in the objective's graph by a shared batch of inputs (one row per start);
a step is an update rule from :mod:`symnn.updates` on that shared variable, followed by the
projection ``x <- clip(x + step, lo, hi)`` *in the update* (PyTensor's ``clip`` would pass the
gradient through at the bounds if it were inside the differentiated graph). The step returns
the objective per start, so no input array crosses into Python during the ascent; the best
inputs are recovered afterwards by exact replay from snapshots (see ``maximize``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace

from .. import updates as rules
from ..backend import LockedFunction, function
from ..backend.cache import COMPILED
from ..layers import get_updates
from ..train.state import RunState

__all__ = [
    "AscentFunctions",
    "ScipyFunctions",
    "compiled_ascent",
    "compiled_scipy",
    "compiled_value",
    "PROJECTED",
    "SCIPY",
]

PROJECTED = ("gradient", "normalized", "momentum", "adam")
SCIPY = ("l-bfgs-b", "tnc")

_MOMENTUM = 0.9
_NORM_EPS = 1e-8


def _mode_key(mode: Any) -> Any:
    return mode if isinstance(mode, str | type(None)) else id(mode)


@dataclass
class AscentFunctions:
    """Shared storage and compiled functions of the projected methods."""

    X: Any  # shared (n, d) batch of inputs
    lo: Any  # shared (d,) lower bounds
    hi: Any  # shared (d,) upper bounds
    lr: Any  # shared scalar learning rate
    state: list  # optimiser state to reset per call
    rngs: list  # random generators of the objective (jitter)
    step: Any  # () -> objective per row before the update
    value: Any  # () -> objective per row at X (no update)
    threads: dict = field(default_factory=dict)  # batch size -> fastest BLAS thread count
    #: held for a whole ascent: the storage above is shared by every caller
    lock: Any = field(default_factory=threading.RLock)

    def reset(self, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, learning_rate: float) -> None:
        dtype = self.X.dtype
        self.X.set_value(np.array(x0, dtype=dtype))
        self.lo.set_value(np.asarray(lo, dtype=dtype))
        self.hi.set_value(np.asarray(hi, dtype=dtype))
        self.lr.set_value(np.asarray(learning_rate, dtype=dtype))
        for var in self.state:
            value = var.get_value(borrow=True)
            shape = value.shape if value.ndim == 0 else (len(x0), *value.shape[1:])
            var.set_value(np.zeros(shape, dtype=value.dtype))

    def snapshot(self) -> RunState:
        """Copies of the inputs, the optimiser state and the random generators."""
        return RunState.capture([self.X, *self.state], self.rngs)

    def restore(self, snap: RunState) -> None:
        snap.restore([self.X, *self.state], self.rngs)


def _replace_x(objective, x, X):
    """The objective and its layers' state updates with ``x`` replaced by ``X``, cloned
    together so that a random draw shared by both stays one draw."""
    state = get_updates(objective)
    keys = list(state)
    cloned = clone_replace([objective, *[state[k] for k in keys]], {x: X})
    return cloned[0], dict(zip(keys, cloned[1:]))


def compiled_ascent(objective, x, method: str, width: int, mode: Any = None) -> AscentFunctions:
    """Compile (once per objective, ``x``, method, width and mode) the projected ascent step.
    The caller holds the returned functions' ``lock`` while it uses them."""
    key = (x, method, width, _mode_key(mode))
    return COMPILED.get(objective, key, lambda: _compiled_ascent(objective, x, method, width, mode))


def _compiled_ascent(objective, x, method: str, width: int, mode: Any) -> AscentFunctions:
    dtype = x.type.dtype
    X = pytensor.shared(np.zeros((1, width), dtype=dtype), name="inputs")
    lo = pytensor.shared(np.zeros(width, dtype=dtype), name="lo")
    hi = pytensor.shared(np.ones(width, dtype=dtype), name="hi")
    lr = pytensor.shared(np.asarray(0.1, dtype=dtype), name="learning_rate")
    obj, layer_state = _replace_x(objective, x, X)
    total = -pt.sum(obj)  # rows are independent starts: one sum gives every row's gradient
    (grad,) = pytensor.grad(total, [X])
    if method == "gradient":
        ups = rules.sgd([grad], [X], lr)
    elif method == "normalized":
        rms = pt.sqrt(pt.mean(pt.square(grad), axis=1, keepdims=True))
        ups = rules.sgd([grad / (rms + np.asarray(_NORM_EPS, dtype=dtype))], [X], lr)
    elif method == "momentum":
        ups = rules.momentum([grad], [X], lr, momentum=_MOMENTUM)
    else:  # adam
        ups = rules.adam([grad], [X], lr)
    ups = dict(ups)
    state = [k for k in ups if k is not X]
    ups[X] = pt.clip(ups[X], lo, hi)  # the projection is part of the update
    ups.update(layer_state)  # e.g. the random generator of a jitter
    step = function([], obj, updates=ups, mode=mode)
    value = function([], obj, mode=mode, on_unused_input="ignore")
    return AscentFunctions(X, lo, hi, lr, state, list(layer_state), step, value)


@dataclass
class ScipyFunctions:
    """A compiled ``(rows of the objective, -sum, -gradient)`` of a flat float64 input."""

    fn: Any
    width: int
    lock: Any = field(default_factory=threading.RLock)  #: held for a whole run


def compiled_value(objective, x, mode: Any = None):
    """The objective as a compiled function of a batch of inputs (once per objective)."""
    key = (x, "value", _mode_key(mode))
    return COMPILED.get(objective, key, lambda: LockedFunction(function([x], objective, mode=mode)))


def compiled_scipy(objective, x, width: int, mode: Any = None) -> ScipyFunctions:
    """The scipy path's compiled function (once per objective, ``x``, width and mode); the
    caller holds its ``lock`` while it uses it."""
    key = (x, "scipy", width, _mode_key(mode))
    return COMPILED.get(objective, key, lambda: _compiled_scipy(objective, x, width, mode))


def _compiled_scipy(objective, x, width: int, mode: Any) -> ScipyFunctions:
    flat = pt.vector("x_flat", dtype="float64")
    batch = pt.cast(flat, x.type.dtype).reshape((-1, width))
    obj, _ = _replace_x(objective, x, batch)
    neg = -pt.sum(pt.cast(obj, "float64"))
    grad = pytensor.grad(neg, flat)
    fn = function([flat], [obj, neg, grad], mode=mode)
    return ScipyFunctions(fn, width)
