"""Where the ascent starts: random points, or from data (the reference mean, the class mean,
facets: k-means centres of a unit's most activating inputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SymnnValueError
from ..utils import as_rng
from .maximize import draw_starts, resolve_bounds


@dataclass(frozen=True)
class _Reference:
    """The reference inputs, their labels (or None) and every unit's activation on them."""

    X: np.ndarray | None
    labels: np.ndarray | None
    acts: np.ndarray | None

    @classmethod
    def of(cls, reference: Any, acts: np.ndarray | None) -> _Reference:
        """From a checked :class:`~symnn.inputopt.Reference` (or None)."""
        if reference is None:
            return cls(None, None, None)
        return cls(reference.data, reference.labels, acts)


#: how many of a unit's most activating reference inputs ``x0="facets"`` clusters, per start
FACET_POOL = 20


STARTS = ("mean", "class-mean", "facets")


def _unit_facets(X: np.ndarray, act: np.ndarray, n_facets: int, seed: Any) -> np.ndarray:
    """``n_facets`` centres of the ``FACET_POOL * n_facets`` inputs of ``X`` with the highest
    ``act`` (k-means), ordered by the mean activation of their cluster."""
    from sklearn.cluster import KMeans

    top = np.argsort(-act, kind="stable")[: FACET_POOL * n_facets]
    if n_facets == 1 or len(top) <= n_facets:
        return np.repeat(X[top].mean(axis=0, keepdims=True), n_facets, axis=0)
    state = int(as_rng(seed).integers(2**31 - 1))
    km = KMeans(n_clusters=n_facets, n_init=3, random_state=state).fit(X[top])
    mean_act = [act[top][km.labels_ == c].mean() for c in range(n_facets)]
    return km.cluster_centers_[np.argsort(mean_act)[::-1]]


def _facet_starts(row_units: np.ndarray, reference: _Reference, seed: Any) -> np.ndarray:
    """One facet per start of each unit (a unit's starts are consecutive rows)."""
    units, counts = np.unique(row_units, return_counts=True)
    facets = {
        unit: list(_unit_facets(reference.X, reference.acts[:, unit], n, seed))
        for unit, n in zip(units.tolist(), counts.tolist())
    }
    return np.stack([facets[u].pop(0) for u in row_units.tolist()])


def _data_starts(kind: str, row_units: np.ndarray, reference: _Reference, seed: Any) -> np.ndarray:
    X, labels = reference.X, reference.labels
    if X is None:
        raise SymnnValueError(f"x0={kind!r} needs reference inputs.")
    if kind == "mean":
        return np.repeat(X.mean(axis=0, keepdims=True), len(row_units), axis=0)
    if kind == "facets":
        return _facet_starts(row_units, reference, seed)
    if labels is None:
        raise SymnnValueError("x0='class-mean' needs reference=Reference(X, labels=...).")
    missing = sorted(set(row_units.tolist()) - set(labels.tolist()))
    if missing:
        raise SymnnValueError(f"x0='class-mean': no reference input has label {missing[0]}.")
    means = {u: X[labels == u].mean(axis=0) for u in set(row_units.tolist())}
    return np.stack([means[u] for u in row_units.tolist()])


def check_starts(x0: Any, reference: Any) -> None:
    """Refuse a start from data that the reference (a checked :class:`~symnn.inputopt.
    Reference` or None) cannot give, before anything compiles."""
    if not isinstance(x0, str):
        return
    if x0 not in STARTS:
        raise SymnnValueError(
            f"x0={x0!r} is not known; expected an array, None, {', '.join(map(repr, STARTS))}."
        )
    if reference is None:
        raise SymnnValueError(f"x0={x0!r} needs reference inputs.")
    if x0 == "class-mean" and reference.labels is None:
        raise SymnnValueError("x0='class-mean' needs reference=Reference(X, labels=...).")


def _starts(target: Any, x0: Any, row_units, seed: Any, bounds: Any, reference) -> np.ndarray:
    """One start per unit and start index of ``target`` (a :class:`~symnn.inputopt.units.
    Target`): ``x0`` checked, taken from the reference data (``"mean"``, ``"class-mean"``,
    ``"facets"``), or drawn in the box."""
    n, dtype = len(row_units), target.dtype
    lo, hi = resolve_bounds(bounds, target.n_in, dtype)
    if isinstance(x0, str):
        if x0 not in STARTS:
            raise SymnnValueError(
                f"x0={x0!r} is not known; expected an array, None, {', '.join(map(repr, STARTS))}."
            )
        x0 = np.clip(_data_starts(x0, row_units, reference, seed), lo, hi).astype(dtype)
    x0 = draw_starts(dtype, x0, n, seed, (lo, hi))
    if len(x0) != n:
        raise SymnnValueError(f"x0 has {len(x0)} rows; expected one per unit and start ({n}).")
    return x0
