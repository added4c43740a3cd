"""Weight penalties over a list of parameters.

>>> import numpy as np, pytensor
>>> w = pytensor.shared(np.array([1.0, -2.0]))
>>> float(l2([w]).eval()), float(l1([w]).eval())
(5.0, 3.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytensor.tensor as pt
from pytensor.tensor import TensorVariable

from .errors import SymnnValueError

__all__ = ["l1", "l2", "apply_penalty"]


def _check(params) -> list:
    params = list(params) if isinstance(params, Sequence | tuple | list) else [params]
    if not params:
        raise SymnnValueError("params is empty; expected at least one parameter to penalise.")
    return params


def l2(params: Sequence | TensorVariable) -> TensorVariable:
    """Sum of squares of every parameter (multiply by ``lambda / 2`` for weight decay)."""
    return pt.add(*[pt.sum(pt.square(p)) for p in _check(params)])


def l1(params: Sequence | TensorVariable) -> TensorVariable:
    """Sum of absolute values of every parameter."""
    return pt.add(*[pt.sum(pt.abs(p)) for p in _check(params)])


def apply_penalty(
    params: Sequence | TensorVariable, penalty: Callable, coefficient: float = 1.0
) -> TensorVariable:
    """``coefficient * penalty(params)``.

    For example ``apply_penalty(net.regularizable_params, l2, 1e-4)``.
    """
    return coefficient * penalty(_check(params))
