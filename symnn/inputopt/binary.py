"""Binary (0/1) inputs: rounding, and the exhaustive global maximum for small k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SymnnValueError
from .engine import compiled_value
from .maximize import check_objective

__all__ = ["BinaryMaximum", "exhaustive_binary_maximum", "evaluate_objective", "round_to_binary"]

_MAX_BITS = 20


@dataclass
class BinaryMaximum:
    """The best binary input, its objective and every input's objective (in counting order)."""

    x: np.ndarray
    value: float
    values: np.ndarray


def evaluate_objective(
    objective, x, inputs: np.ndarray, *, mode: Any = None, batch_size: int = 65536
) -> np.ndarray:
    """The objective's value for each row of ``inputs`` (compiled once per call)."""
    check_objective(objective, x)
    fn = compiled_value(objective, x, mode)
    inputs = np.asarray(inputs, dtype=x.type.dtype)
    return np.concatenate(
        [
            np.asarray(fn(inputs[s : s + batch_size]), dtype=np.float64)
            for s in range(0, len(inputs), batch_size)
        ]
    )


def _binary_rows(start: int, stop: int, k: int, dtype) -> np.ndarray:
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(k - 1, -1, -1, dtype=np.int64)) & 1  # first coordinate = high bit
    return bits.astype(dtype)


def exhaustive_binary_maximum(
    objective, x, *, k: int | None = None, mode: Any = None, batch_size: int = 65536
) -> BinaryMaximum:
    """Evaluate all ``2**k`` binary inputs in vectorised batches and return the global best.

    ``k`` is ``x``'s width (static shape) unless given; at most 20. Use it to check what a
    gradient ascent found on binary problems.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float64", shape=(None, 3))
    >>> best = exhaustive_binary_maximum(x @ np.array([1.0, -1.0, 2.0]), x, mode="FAST_COMPILE")
    >>> best.x, best.value
    (array([1., 0., 1.]), 3.0)
    """
    check_objective(objective, x)
    k = k if k is not None else x.type.shape[-1]
    if k is None:
        raise SymnnValueError("x has no static width; pass k (the number of binary inputs).")
    if not 1 <= int(k) <= _MAX_BITS:
        raise SymnnValueError(f"k={k} is not valid; exhaustive search takes 1 <= k <= {_MAX_BITS}.")
    k = int(k)
    fn = compiled_value(objective, x, mode)
    values = np.empty(2**k)
    for start in range(0, 2**k, batch_size):
        stop = min(start + batch_size, 2**k)
        values[start:stop] = np.asarray(fn(_binary_rows(start, stop, k, x.type.dtype)))
    best = int(np.argmax(values))
    return BinaryMaximum(
        _binary_rows(best, best + 1, k, x.type.dtype)[0], float(values[best]), values
    )


def round_to_binary(
    objective, x, inputs: np.ndarray, *, threshold: float = 0.5, mode: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Round inputs (e.g. ``maximize(...).x``) to {0, 1} and report the objective there.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float64", shape=(None, 2))
    >>> xb, v = round_to_binary(x @ np.array([1.0, 2.0]), x, np.array([[0.2, 0.9]]),
    ...                         mode="FAST_COMPILE")
    >>> xb, v
    (array([[0., 1.]]), array([2.]))
    """
    binary = (np.asarray(inputs) > threshold).astype(x.type.dtype)
    return binary, evaluate_objective(objective, x, binary, mode=mode)
