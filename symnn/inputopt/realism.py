"""How much a found input looks like real data: its top reference inputs, their correlation,
the nearest-neighbour distance ratio, the labels of its neighbours and of a judge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SymnnValueError


@dataclass
class _Realism:
    """How a found input compares with the real inputs: the ``top_k`` reference inputs of
    highest activation for its unit (dataset examples) and the Pearson correlation with their
    mean, its distance to the nearest reference input over the typical nearest-neighbour
    distance inside the reference set (estimated on a seeded sample); with reference labels,
    the label of most of its :data:`KNN` nearest reference inputs and, for class units (output
    units with labels), the correlation with the class mean; the ``judge``'s label."""

    reference: np.ndarray
    activations: np.ndarray  # (n_reference, n_units)
    top_k: int
    labels: np.ndarray | None = None
    class_units: bool = False
    judge: Any = None

    def measure(self, X: np.ndarray, row_units: np.ndarray) -> list[dict[str, Any]]:
        ref, X = self.reference.astype(np.float64), np.asarray(X, dtype=np.float64)
        k = min(self.top_k, len(ref))
        top = {u: np.argsort(-self.activations[:, u], kind="stable")[:k] for u in set(row_units)}
        typical = _typical_nn_distance(ref)
        nearest = _nearest_rows(X, ref, KNN)
        distance = np.sqrt(((X - ref[nearest[:, 0]]) ** 2).sum(axis=1))
        judged = _judge_labels(self.judge, X)
        out = []
        for i, (x, u) in enumerate(zip(X, row_units)):
            row = {"top_examples": top[u].tolist(), "top_corr": _pearson(x, ref[top[u]].mean(0)),
                   "nn_ratio": float(distance[i] / typical) if typical else np.inf}  # fmt: skip
            if self.labels is not None:
                row["knn_label"] = _majority(self.labels[nearest[i]])
                if self.class_units and np.any(self.labels == u):
                    row["class_corr"] = _pearson(x, ref[self.labels == u].mean(axis=0))
            if judged is not None:
                row["judge_label"] = _plain(judged[i])
            out.append(row)
        return out


#: neighbours whose majority label is a found input's k-NN label
KNN = 5


def _plain(value: Any) -> Any:
    """A label as a JSON-friendly Python value."""
    return value.item() if isinstance(value, np.generic) else value


def _majority(labels: np.ndarray) -> Any:
    """The most frequent label (ties: the one of the nearest neighbour among them)."""
    values, counts = np.unique(labels, return_counts=True)
    best = values[counts == counts.max()]
    return _plain(next(v for v in labels if v in best))


def _judge_labels(judge: Any, X: np.ndarray) -> np.ndarray | None:
    if judge is None:
        return None
    predict = getattr(judge, "predict", judge)
    labels = np.asarray(predict(X))
    if labels.shape[:1] != (len(X),):
        raise SymnnValueError(
            f"judge returned {labels.shape[:1]} labels for {len(X)} inputs; expected one each."
        )
    return labels


def _nearest_rows(X: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's ``k`` nearest rows of ``ref``, nearest first."""
    k = min(k, len(ref))
    ref_sq = (ref * ref).sum(axis=1)
    best_d = np.full((len(X), 0), np.inf)
    best_i = np.zeros((len(X), 0), dtype=np.int64)
    for s in range(0, len(ref), 4096):
        d2 = ref_sq[None, s : s + 4096] - 2 * X @ ref[s : s + 4096].T
        d = np.concatenate([best_d, d2], axis=1)
        i = np.concatenate([best_i, np.arange(s, s + d2.shape[1])[None].repeat(len(X), 0)], 1)
        keep = np.argsort(d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(d, keep, 1), np.take_along_axis(i, keep, 1)
    return best_i


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _nearest_distances(X: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Each row's Euclidean distance to its nearest row of ``ref`` (chunked products)."""
    ref_sq = (ref * ref).sum(axis=1)
    best = np.full(len(X), np.inf)
    for s in range(0, len(ref), 4096):
        d2 = (X * X).sum(axis=1)[:, None] + ref_sq[None, s : s + 4096] - 2 * X @ ref[s : s + 4096].T
        if exclude_self:
            d2[d2 <= 1e-12] = np.inf
        best = np.minimum(best, d2.min(axis=1))
    return np.sqrt(np.maximum(best, 0.0))


def _typical_nn_distance(ref: np.ndarray, sample: int = 200, pool: int = 5000) -> float:
    """The median distance from a reference input to its nearest other reference input,
    on a seeded sample (``sample`` points against a ``pool`` of the reference)."""
    rng = np.random.default_rng(0)
    pool_rows = ref[rng.permutation(len(ref))[:pool]]
    probe = pool_rows[:sample]
    return float(np.median(_nearest_distances(probe, pool_rows, exclude_self=True)))


def _realism(reference, acts, class_units: bool) -> _Realism | None:
    """The realism measures against a checked :class:`~symnn.inputopt.Reference` (or None)."""
    if reference is None:
        return None
    labels = reference.labels
    return _Realism(reference.data, acts, reference.top_k, labels,
                    class_units and labels is not None, reference.judge)  # fmt: skip
