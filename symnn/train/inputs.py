"""What a network takes: one matrix ``(n, n_in)``, or, for a :class:`~symnn.layers.Graph`,
one array per :func:`~symnn.layers.Input` (``fit([X_a, X_b], y)``), held together as
:class:`Inputs` so that splitting, shuffling and blocks index every array alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import check_array, describe

__all__ = ["Inputs", "InputSignature", "arrays_of"]


class Inputs:
    """Row-aligned arrays, one per network input, indexed and sliced together.

    >>> X = Inputs([np.zeros((4, 2)), np.ones((4, 3, 3))])
    >>> len(X), [a.shape for a in X[1:3].arrays]
    (4, [(2, 2), (2, 3, 3)])
    """

    def __init__(self, arrays: Any):
        self.arrays = tuple(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> Inputs:
        return Inputs(a[index] for a in self.arrays)

    def padded(self, rows: int) -> Inputs:
        """These rows followed by zero rows, ``rows`` in all."""
        out = []
        for a in self.arrays:
            full = np.zeros((rows, *a.shape[1:]), dtype=a.dtype)
            full[: len(a)] = a
            out.append(full)
        return Inputs(out)


def arrays_of(X: Any) -> tuple:
    """The arrays a compiled function takes for ``X``."""
    return X.arrays if isinstance(X, Inputs) else (X,)


@dataclass(frozen=True)
class InputSignature:
    """The inputs of a network: a matrix of ``n_in`` features, or a Graph's ``Input`` specs."""

    dtype: str
    n_in: int | None
    specs: tuple = ()  #: a Graph's InputSpecs (empty: one matrix)

    @classmethod
    def of(cls, network: Any) -> InputSignature:
        specs = tuple(getattr(network, "input_specs", ()) or ())
        if specs and (len(specs) > 1 or len(specs[0].shape) > 1 or specs[0].dtype != network.dtype):
            return cls(network.dtype, None, specs)
        if network.n_in is None:
            raise SymnnValueError(
                "network has no known input width; start it with a Dense layer (or, for a "
                "Graph, an Input such as Input((784,)))."
            )
        return cls(network.dtype, network.n_in)

    def symbols(self) -> list:
        """One symbolic tensor per input."""
        if not self.specs:
            return [pt.matrix("x", dtype=self.dtype, shape=(None, self.n_in))]
        return [pt.tensor(name=s.name, dtype=s.dtype, shape=(None, *s.shape)) for s in self.specs]

    def network_input(self, symbols: list) -> Any:
        """What the network is called on: the one tensor, or the list."""
        return symbols[0] if len(symbols) == 1 else symbols

    def check(self, X: Any, name: str = "X", finite: bool = True) -> Any:
        """``X`` checked: an array ``(n, n_in)``, or :class:`Inputs` with one array per
        input, each of its input's per-sample shape, all of one length."""
        if not self.specs:
            return check_array(X, name, ndim=2, dtype=self.dtype, n_features=self.n_in,
                               finite=finite)  # fmt: skip
        names = ", ".join(s.name for s in self.specs)
        given = X.arrays if isinstance(X, Inputs) else X
        if len(self.specs) == 1 and not isinstance(given, list | tuple):
            given = [given]
        if not isinstance(given, list | tuple) or len(given) != len(self.specs):
            raise SymnnTypeError(
                f"{name} must be a list of {len(self.specs)} arrays, one per input ({names}); "
                f"got {describe(X)}."
            )
        arrays = []
        for i, (spec, a) in enumerate(zip(self.specs, given)):
            label = f"{name}[{i}] (input {spec.name!r})"
            arr = check_array(a, label, ndim=1 + len(spec.shape), dtype=spec.dtype,
                              finite=finite)  # fmt: skip
            if arr.shape[1:] != spec.shape:
                raise SymnnValueError(
                    f"{label} has per-sample shape {arr.shape[1:]}; the input takes {spec.shape}."
                )
            arrays.append(arr)
        lengths = sorted({len(a) for a in arrays})
        if len(lengths) > 1:
            raise SymnnValueError(f"{name}'s arrays have {lengths} rows; expected one length.")
        return Inputs(arrays)

    def zeros(self, rows: int = 1) -> Any:
        """Zero inputs of ``rows`` rows (to compile the prediction)."""
        if not self.specs:
            return np.zeros((rows, self.n_in), dtype=self.dtype)
        return Inputs(np.zeros((rows, *s.shape), dtype=s.dtype) for s in self.specs)
