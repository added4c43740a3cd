"""Reference data of activation maximisation: real inputs to compare found inputs with, their
labels, how many dataset examples to report per unit, and an optional judge."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import check_array, check_positive, describe

__all__ = ["Reference"]


@dataclass(frozen=True)
class Reference:
    """Real inputs for activation maximisation to start from and compare with.

    ``data``: inputs ``(n, n_in)`` (e.g. the training set); ``labels``: their labels or None;
    ``top_k``: how many of a unit's most activating inputs the report lists (dataset
    examples); ``judge``: a fitted classifier (its ``predict``) or a callable returning
    labels, whose label of each found input the report adds.

    >>> import numpy as np
    >>> ref = Reference(np.zeros((3, 4)), labels=[0, 1, 1], top_k=2)
    >>> ref.checked(width=4, dtype="float32").data.dtype
    dtype('float32')
    """

    data: Any
    labels: Any = None
    top_k: int = 5
    judge: Any = None

    def checked(self, width: int, dtype: str) -> Reference:
        """This reference with ``data`` checked against an input of ``width`` features and
        ``labels`` as an array of one label per row."""
        X = check_array(self.data, "reference.data", ndim=2, dtype=dtype, n_features=width)
        check_positive(self.top_k, "reference.top_k", integer=True)
        labels = None if self.labels is None else np.asarray(self.labels)
        if labels is not None and labels.shape != (len(X),):
            raise SymnnValueError(
                f"reference.labels has shape {labels.shape}; expected ({len(X)},), one per row "
                "of reference.data."
            )
        return replace(self, data=X, labels=labels)


def as_reference(value: Any, legacy: dict[str, Any]) -> Reference | None:
    """``reference=`` as a :class:`Reference` (or None): a Reference, or the inputs alone.

    ``legacy`` holds the deprecated forms' values (``top_k``, ``judge`` given as keywords of
    :func:`activation_maximization`); ``reference=(X, labels)`` is deprecated too."""
    if legacy or isinstance(value, tuple):
        given = ", ".join([*(f"{k}=" for k in legacy), *(["reference=(X, labels)"] * isinstance(
            value, tuple))])  # fmt: skip
        warnings.warn(
            f"activation_maximization({given}) is deprecated (goes in 0.3); pass "
            "reference=Reference(X, labels=..., top_k=..., judge=...).",
            DeprecationWarning,
            stacklevel=3,
        )
    if isinstance(value, tuple):
        if len(value) != 2:
            raise SymnnValueError(
                f"reference must be a Reference or inputs X; got a {len(value)}-tuple."
            )
        value = Reference(value[0], labels=value[1])
    if value is None:
        if legacy.get("judge") is not None:
            raise SymnnValueError("judge needs reference inputs (the report compares with them).")
        return None
    if not isinstance(value, Reference):
        if isinstance(value, str | dict) or not hasattr(value, "__len__"):
            raise SymnnTypeError(
                f"reference must be a Reference or an array of inputs; got {describe(value)}."
            )
        value = Reference(value)
    return replace(value, **legacy) if legacy else value
