"""Activation maximisation: the input that most excites a unit, for many units at once.

Row ``k`` of one compiled batch maximises unit ``units[k]`` (repeated ``n_starts`` times), so
all ten class units of a classifier take one compiled call. Regularisers (L2 decay, L1, total
variation, jitter, a diversity penalty across starts of the same unit) are part of the
objective; Gaussian blur is applied to the inputs every ``blur_every`` steps.
"""

from __future__ import annotations

import json
import threading
import warnings
import weakref
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt

from .. import nonlinearities
from ..backend import function
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer, Sequential, attach_updates
from ..nonlinearities import softmax
from ..utils import as_rng, check_array, check_positive, describe
from .engine import SCIPY
from .maximize import MaximizeResult, draw_starts, maximize, resolve_bounds
from .priors import PRIORS, GaussianPrior, MixturePrior
from .transforms import precondition, spectral_filter, warp_rows, warp_tables

__all__ = [
    "activation_maximization",
    "ActivationReport",
    "InputPenalties",
    "UnitResult",
    "unit_activations",
    "parse_units",
    "layer_width",
]

_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GRAPHS_LOCK = threading.RLock()


def _layers(network: Layer) -> list[Layer]:
    return list(network.layers) if isinstance(network, Sequential) else [network]


def _resolve_layer(network: Layer, layer: int | str) -> int:
    """The index of ``layer``: a position in ``network.layers`` (every layer counts, dropout
    and batch normalisation included; negative from the end) or a layer's name."""
    layers = _layers(network)
    if isinstance(layer, str):
        names = [la.name for la in layers]
        if layer not in names:
            raise SymnnValueError(
                f"layer={layer!r} is not a layer name; the network's layers are named "
                f"{', '.join(repr(n) for n in names)}."
            )
        return names.index(layer)
    if not isinstance(layer, int | np.integer) or not -len(layers) <= layer < len(layers):
        raise SymnnValueError(
            f"layer={layer!r} is out of range; the network has {len(layers)} "
            f"layers (0..{len(layers) - 1}, or negative from the end)."
        )
    return int(layer) % len(layers)


_RECTIFIERS = ("relu", "leaky_relu", "elu", "softplus")


def _default_preactivation(network: Layer, index: int, probability: bool) -> bool:
    """Pre-activation for a classifier's logits and for a rectifier layer (a ReLU unit that
    is off at the start gets no gradient, so its ascent would never move)."""
    if probability:
        return False
    layer = _layers(network)[index]
    fn = getattr(layer, "activation", None)
    rectifier = hasattr(layer, "preactivation") and any(
        fn is nonlinearities.NAMES[n] for n in _RECTIFIERS
    )
    return _is_softmax_output(network, index) or rectifier


def _is_softmax_output(network: Layer, index: int) -> bool:
    layers = _layers(network)
    return index == len(layers) - 1 and getattr(layers[index], "activation", None) is softmax


def unit_activations(
    network: Layer, x, layer: int = -1, *, preactivation: bool = False, spatial: Any = None
):
    """The symbolic activations ``(n, n_units)`` of one layer (inference mode).

    ``preactivation=True`` gives a Dense or Conv2D layer's output before its nonlinearity
    (for the output layer of a classifier: the logits). The units of an image layer
    ``(n, C, H, W)`` are its channels, reduced over the image by ``spatial``: ``"mean"``
    (default; Lucid's channel objective), ``"center"`` or a position ``(y, x)`` (a neuron).
    """
    index = _resolve_layer(network, layer)
    layers = _layers(network)
    h = x
    for i, la in enumerate(layers):
        if i == index:
            if preactivation:
                if not hasattr(la, "preactivation"):
                    raise SymnnValueError(
                        f"layer {index} is a {type(la).__name__}; "
                        "preactivation needs a Dense or Conv2D layer."
                    )
                return _reduce_spatial(la.preactivation(h), spatial)
            return _reduce_spatial(la(h, deterministic=True), spatial)
        h = la(h, deterministic=True)
    raise AssertionError("unreachable")  # pragma: no cover


SPATIAL = ("mean", "center")


def _reduce_spatial(act, spatial: Any):
    """Channel activations ``(n, C)`` of an image layer's output; ``spatial`` refused for a
    layer whose units are already features."""
    if act.ndim == 2:
        if spatial is not None:
            raise SymnnValueError(
                f"spatial={spatial!r} has no effect: the layer's units are features, not "
                "channels of an image."
            )
        return act
    if act.ndim != 4:
        raise SymnnValueError(f"the layer's output has {act.ndim} axes; expected 2 or 4.")
    if spatial is None or spatial == "mean":
        return act.mean(axis=(2, 3))
    if spatial == "center":
        return act[:, :, act.shape[2] // 2, act.shape[3] // 2]
    if isinstance(spatial, tuple | list) and len(spatial) == 2:
        y, x = (int(v) for v in spatial)
        h, w = act.type.shape[2:]
        if (h is not None and not 0 <= y < h) or (w is not None and not 0 <= x < w):
            raise SymnnValueError(f"spatial={spatial!r} lies outside the {h}x{w} feature map.")
        return act[:, :, y, x]
    raise SymnnValueError(
        f"spatial={spatial!r} is not known; expected 'mean', 'center' or a position (y, x)."
    )


def layer_width(network: Layer, layer: int = -1) -> int | None:
    """The number of units of ``network``'s layer ``layer`` when known without compiling."""
    return _layers(network)[_resolve_layer(network, layer)].output_size(None)


def parse_units(units: Any, n_units: int) -> np.ndarray:
    """Units as an int array: an int, a sequence, ``range``, ``"all"`` or ``"0-9"``/``"1,3,5"``.

    >>> parse_units("0-2,5", 10).tolist()
    [0, 1, 2, 5]
    """
    if isinstance(units, str):
        if units == "all":
            return np.arange(n_units)
        out: list[int] = []
        try:
            for part in units.split(","):
                a, _, b = part.strip().partition("-")
                out += list(range(int(a), int(b) + 1)) if b else [int(a)]
        except ValueError:
            raise SymnnValueError(
                f"units={units!r} is not a unit list; expected e.g. '0-9' or '1,3,5'."
            ) from None
        units = out
    arr = np.atleast_1d(np.asarray(units))
    if arr.dtype.kind not in "iu" or arr.ndim != 1 or arr.size == 0:
        raise SymnnValueError(f"units={units!r} is not valid; expected unit indices (ints).")
    bad = (arr < 0) | (arr >= n_units)
    if bad.any():
        raise SymnnValueError(
            f"units has index {int(arr[bad][0])} out of range; the layer has "
            f"{n_units} units (0..{n_units - 1})."
        )
    return arr.astype(np.int64)


def _total_variation(img):
    dh = img[:, 1:, :] - img[:, :-1, :]
    dw = img[:, :, 1:] - img[:, :, :-1]
    eps = np.asarray(1e-8, dtype=img.dtype)
    return pt.sum(pt.sqrt(dh[:, :, :-1] ** 2 + dw[:, :-1, :] ** 2 + eps), axis=(1, 2))


@dataclass
class _Graph:
    x: Any
    objective: Any
    unit_index: Any  # shared int64 vector: the unit of each row
    same_unit: Any  # shared (n, n) mask of other starts of the same unit
    coef: dict[str, Any]  # shared regulariser coefficients
    measure: Any  # compiled x -> [activations, (probabilities)]
    n_units: int
    has_probs: bool
    jitter_rng: Any = None  # shared generator of the jitter shifts and warps
    prior: dict[str, Any] | None = None  # shared arrays of a Gaussian prior
    warp: dict[str, Any] | None = None  # shared warp tables (index, weight)
    image_shape: tuple[int, ...] | None = None
    lock: Any = field(default_factory=threading.RLock)  #: held for a whole call

    def configure(
        self, rows: _Rows, penalties: InputPenalties, seed: Any, prior: Any = None
    ) -> None:
        """Set the graph's shared settings for one call (the caller holds :attr:`lock`);
        ``prior`` is ``(GaussianPrior, per-row weights)`` for a graph built with one."""
        dtype = self.x.type.dtype
        n = len(rows.units)
        self.unit_index.set_value(rows.units)
        if self.jitter_rng is not None:  # the same seed gives the same shifts
            self.jitter_rng.set_value(np.random.default_rng(as_rng(seed).integers(2**31 - 1)))
        group = rows.units * len(rows.weights_of) + rows.weight_index  # one weight, one unit
        same = (group[:, None] == group[None, :]) & ~np.eye(n, dtype=bool)
        self.same_unit.set_value(same.astype(dtype))
        for name in ("l2", "l1", "tv", "diversity"):
            self.coef[name].set_value(np.asarray(getattr(penalties, name), dtype=dtype))
        if self.warp is not None:
            index, weight = warp_tables(self.image_shape, penalties.scale, penalties.rotate, seed)
            self.warp["index"].set_value(index)
            self.warp["weight"].set_value(weight.astype(dtype))
        if self.prior is not None:
            model, weights = prior
            for name, value in model.arrays(dtype).items():
                self.prior[name].set_value(value)
            self.prior["weight"].set_value(np.asarray(weights, dtype=dtype))

    @staticmethod
    def prior_weights(density, rows: _Rows, acts: np.ndarray | None):
        """``(prior, per-row weights)``: each row's relative weight times its unit's
        activation spread on the reference inputs (best minus mean), so that one weight
        suits units of any scale; without reference activations, the weight itself."""
        if density is None:
            return None
        model, _ = density
        relative = np.asarray(rows.weights_of)[rows.weight_index]
        if acts is None:
            return model, relative
        spread = np.maximum(acts.max(axis=0) - acts.mean(axis=0), 1e-6)
        return model, relative * spread[rows.units]

    def rows(self, result, row_units, n_starts: int, realism: _Realism | None) -> list[UnitResult]:
        """The report's rows: each start's activations, best and last, probability and, with
        ``reference``, the unit's best activation there, its ``top_k`` reference inputs and
        how much the found input looks like real data."""
        dtype, n = self.x.type.dtype, len(row_units)
        pick = (np.arange(n), row_units)
        measured = self.measure(result.x.astype(dtype))
        best = np.asarray(measured[0])[pick]
        probs = np.asarray(measured[1])[pick] if self.has_probs else [None] * n
        last = result.x_last if result.x_last is not None else result.x
        final = np.asarray(self.measure(last.astype(dtype))[0])[pick]
        acts = None if realism is None else realism.activations
        ref_max = None if acts is None else acts.max(axis=0)
        real = None if realism is None else realism.measure(result.x, row_units)
        rows = [
            UnitResult(
                unit=int(u),
                start=k % n_starts,
                final=float(final[k]),
                best=float(best[k]),
                reference_max=None if ref_max is None else float(ref_max[u]),
                exceeds_reference=None if ref_max is None else bool(best[k] > ref_max[u]),
                probability=None if probs[k] is None else float(probs[k]),
                at_bounds=float(result.at_bounds[k]),
                steps=result.n_steps,
                seconds=result.seconds,
                moved=bool(len(result.history) < 2 or np.ptp(result.history[:, k]) > 0),
            )
            for k, u in enumerate(row_units)
        ]
        for k, row in enumerate(rows if real is not None else ()):
            for name, value in real[k].items():
                setattr(row, name, value)
        return rows

    def reference_activations(self, reference: np.ndarray | None) -> np.ndarray | None:
        """Every unit's activation on each (checked) reference input."""
        if reference is None:
            return None
        chunks = [np.asarray(self.measure(reference[s : s + 4096])[0])
                  for s in range(0, len(reference), 4096)]  # fmt: skip
        return np.concatenate(chunks)


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


@dataclass(frozen=True)
class _Rows:
    """The rows of one call: each row's unit and the index of its prior weight in
    ``weights_of`` (several weights per unit and start when the weight is chosen per unit)."""

    units: np.ndarray
    weight_index: np.ndarray
    weights_of: tuple[float, ...]

    @classmethod
    def expand(cls, row_units: np.ndarray, weights: tuple[float, ...]) -> _Rows:
        k = len(weights)
        return cls(np.repeat(row_units, k), np.tile(np.arange(k), len(row_units)), weights)


#: the relative prior weights tried per unit when none is given (one compiled call): each
#: unit keeps the strongest under which it still beats its best reference input
AUTO_PRIOR_WEIGHTS = (0.5, 1.0, 2.0, 4.0)


def _choose_weights(graph: _Graph, result, rows: _Rows, acts) -> np.ndarray:
    """Per (unit, start), the row of the strongest weight whose input still activates the
    unit beyond its best reference input (else the weakest weight's row)."""
    k = len(rows.weights_of)
    n = len(rows.units)
    activation = np.asarray(graph.measure(result.x.astype(graph.x.type.dtype))[0])
    reached = activation[np.arange(n), rows.units] > acts.max(axis=0)[rows.units]
    chosen = []
    for start in range(0, n, k):
        ok = [i for i in range(start, start + k) if reached[i]]
        chosen.append(max(ok, key=lambda i: rows.weight_index[i]) if ok else start)
    return np.asarray(chosen)


def _realism(reference, acts, labels, top_k: int, judge: Any, class_units: bool):
    if reference is None:
        if judge is not None:
            raise SymnnValueError("judge needs reference inputs (the report compares with them).")
        return None
    return _Realism(reference, acts, top_k, labels, class_units and labels is not None, judge)


def _keep_chosen_weights(graph: _Graph, result, rows: _Rows, acts) -> tuple[Any, np.ndarray]:
    """``(result, weights)``: one row per unit and start, run with the prior weight chosen
    among its candidates (all rows when there was one candidate)."""
    if len(rows.weights_of) == 1:
        return result, np.full(len(rows.weight_index), rows.weights_of[0])
    keep = _choose_weights(graph, result, rows, acts)
    return _subset(result, keep), np.asarray(rows.weights_of)[rows.weight_index[keep]]


def _prior_settings(density) -> dict[str, Any]:
    if density is None:
        return {"prior": None, "prior_weight": None}
    return {"prior": density[0].kind, "prior_weight": density[1] or "auto"}


def _subset(result: MaximizeResult, keep: np.ndarray) -> MaximizeResult:
    """``result`` restricted to the rows ``keep``."""
    return replace(
        result,
        x=result.x[keep],
        value=result.value[keep],
        history=result.history[:, keep] if result.history.ndim == 2 else result.history,
        at_bounds=result.at_bounds[keep],
        x_last=None if result.x_last is None else result.x_last[keep],
    )


@dataclass(frozen=True)
class _GraphKey:
    """What makes two activation-maximisation graphs of one network differ."""

    index: int
    preactivation: bool
    probability: bool
    image_shape: tuple[int, ...] | None
    jitter: int
    prior: str | None  #: the prior's kind (``PRIORS``), or None
    mode: str
    spatial: Any = None  #: how an image layer's channels are reduced (``unit_activations``)
    warp: bool = False  #: random scalings and rotations in the step
    precondition: bool = False  #: the gradient through a 1/f filter

    def __post_init__(self):
        if isinstance(self.spatial, list):  # hashable
            object.__setattr__(self, "spatial", tuple(self.spatial))


def _graph(network, key: _GraphKey, mode) -> _Graph:
    with _GRAPHS_LOCK:
        return _build_graph(network, key, mode)


def _prior_arrays(kind: str, dtype: str) -> dict[str, Any]:
    shapes = {**PRIORS[kind].SHAPES, "weight": (1,)}
    return {
        name: pytensor.shared(np.zeros(shape, dtype=dtype), name=f"prior.{name}")
        for name, shape in shapes.items()
    }


def _shift_rows(x: Any, shift: Any, image_shape: tuple[int, ...]) -> Any:
    """Each row of ``x`` (an image of ``image_shape``, rows then columns first) shifted
    cyclically by its own ``shift[n] = (rows, columns)``, as ``np.roll`` on axes 0 and 1.

    One flat gather (C code, and its gradient a C scatter-add), so every row of a batch sees
    its own jitter.
    """
    height, width = image_shape[0], image_shape[1]
    depth = int(np.prod(image_shape[2:], dtype=int))
    n = x.shape[0]
    rows = (pt.arange(height)[None, :] - shift[:, 0][:, None]) % height  # (n, height)
    cols = (pt.arange(width)[None, :] - shift[:, 1][:, None]) % width  # (n, width)
    pixel = rows[:, :, None] * width + cols[:, None, :]  # (n, height, width)
    flat = pixel[:, :, :, None] * depth + pt.arange(depth)[None, None, None, :]
    flat = flat.reshape((n, -1)) + (pt.arange(n) * x.shape[1])[:, None]
    return x.reshape((-1,))[flat.reshape((-1,))].reshape(x.shape)


def _step_input(x, key: _GraphKey, network: Layer):
    """What the step's objective sees: ``(x for the penalties, x for the network, the shared
    generator, the shared warp tables, the generator's update)``. With ``precondition`` both
    are ``x`` with its gradient filtered; warps then jitter, drawn per row, for the network."""
    dtype, shape = network.dtype, key.image_shape
    if key.precondition:
        x = precondition(x, pt.constant(spectral_filter(shape).astype(dtype)))
    inp, rng, warp = x, None, None
    if key.jitter or key.warp:  # one generator, advanced by every draw of the step
        rng = pt.random.shared_rng(seed=int(as_rng(0).integers(2**31 - 1)), name="jitter.rng")
    state = rng
    if key.warp:
        warp = {"index": pytensor.shared(np.zeros((1, network.n_in, 4), dtype=np.int64)),
                "weight": pytensor.shared(np.zeros((1, network.n_in, 4), dtype=dtype))}  # fmt: skip
        state, choice = state.integers(0, warp["index"].shape[0], size=(x.shape[0],))
        inp = warp_rows(inp, choice, warp["index"], warp["weight"])
    if key.jitter:
        jitter = int(key.jitter)
        state, shift = state.integers(-jitter, jitter + 1, size=(x.shape[0], 2))
        inp = _shift_rows(inp, shift, shape)
    return x, inp, rng, warp, ({} if rng is None else {rng: state})


def _penalty_terms(x, coef: dict, same_unit, image_shape):
    """The per-row sum of the input penalties (l2, l1, total variation, diversity)."""
    total = coef["l2"] * pt.sum(pt.square(x), axis=1) + coef["l1"] * pt.sum(pt.abs(x), axis=1)
    if image_shape is not None:
        total = total + coef["tv"] * _total_variation(x.reshape((x.shape[0], *image_shape)))
    sim = pt.dot(x, x.T) / np.asarray(x.type.shape[1], dtype=x.dtype)
    return total + coef["diversity"] * pt.sum(same_unit * sim, axis=1)


def _build_graph(network, key: _GraphKey, mode) -> _Graph:
    index, preactivation, probability = key.index, key.preactivation, key.probability
    image_shape = key.image_shape
    per_net = _GRAPHS.setdefault(network, {})
    if key in per_net:
        return per_net[key]
    dtype = network.dtype
    x = pt.matrix("x", dtype=dtype, shape=(None, network.n_in))
    unit_index = pytensor.shared(np.zeros(1, dtype=np.int64), name="unit_index")
    same_unit = pytensor.shared(np.zeros((1, 1), dtype=dtype), name="same_unit")
    coef = {
        k: pytensor.shared(np.asarray(0.0, dtype=dtype), name=k)
        for k in ("l2", "l1", "tv", "diversity")
    }
    xo, inp, rng, warp, rng_updates = _step_input(x, key, network)
    pre = preactivation and not probability
    act = unit_activations(network, inp, index, preactivation=pre, spatial=key.spatial)
    objective = act[pt.arange(x.shape[0]), unit_index]
    objective = objective - _penalty_terms(xo, coef, same_unit, image_shape)
    prior = _prior_arrays(key.prior, dtype) if key.prior else None
    if prior is not None:
        penalty = PRIORS[key.prior].penalty(xo, prior, network.n_in)
        objective = objective - prior["weight"] * penalty
    objective = attach_updates(objective, rng_updates)
    plain = unit_activations(network, x, index, preactivation=pre, spatial=key.spatial)
    outs = [plain]
    has_probs = _is_softmax_output(network, index)
    if has_probs:
        outs.append(network(x, deterministic=True))
    measure = function([x], outs, mode=mode)
    n_units = _layers(network)[index].output_size(None) or int(
        np.asarray(measure(np.zeros((1, network.n_in), dtype=dtype))[0]).shape[1]
    )
    graph = _Graph(
        x, objective, unit_index, same_unit, coef, measure, int(n_units), has_probs, rng, prior,
        warp=warp, image_shape=image_shape,
    )  # fmt: skip
    per_net[key] = graph
    return graph


@dataclass
class ActivationReport:
    """Inputs found per (unit, start) and a per-row report (:class:`UnitResult` rows)."""

    units: np.ndarray
    x: np.ndarray
    rows: list[UnitResult]
    result: MaximizeResult
    image_shape: tuple[int, ...] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def images(self) -> np.ndarray:
        """The inputs reshaped to ``image_shape`` (for plotting)."""
        if self.image_shape is None:
            raise SymnnValueError("no image_shape was given; the inputs are not images.")
        return self.x.reshape((len(self.x), *self.image_shape))

    def to_json(self) -> dict[str, Any]:
        """Plain numbers and lists for ``json.dump``."""
        return {
            "settings": self.settings,
            "units": [r.as_dict() for r in self.rows],
            "seconds": self.result.seconds,
            "steps": self.result.n_steps,
            "method": self.result.method,
        }

    def to_table(self) -> str:
        """The per-row report as a fixed-width text table."""
        cols = [
            ("unit", "unit", "{:>4d}"),
            ("start", "start", "{:>5d}"),
            ("final", "final", "{:>9.3f}"),
            ("best", "best", "{:>9.3f}"),
            ("reference_max", "ref max", "{:>9.3f}"),
            ("top_corr", "top corr", "{:>8.2f}"),
            ("nn_ratio", "nn ratio", "{:>8.2f}"),
            ("class_corr", "class corr", "{:>10.2f}"),
            ("knn_label", "5-NN", "{!s:>5}"),
            ("judge_label", "judge", "{!s:>5}"),
            ("prior_weight", "prior w", "{:>7.1f}"),
            ("probability", "p(class)", "{:>8.4f}"),
            ("at_bounds", "at bounds", "{:>9.1%}"),
            ("steps", "steps", "{:>5d}"),
            ("seconds", "seconds", "{:>7.2f}"),
        ]
        cols = [c for c in cols if any(r.get(c[0]) is not None for r in self.rows)]
        widths = [max(len(h), len(f.format(0 if "d}" in f else 0.0))) for _, h, f in cols]
        lines = ["  ".join(h.rjust(w) for (_, h, _), w in zip(cols, widths))]
        for r in self.rows:
            cells = []
            for (k, _, f), w in zip(cols, widths):
                v = r.get(k)
                cells.append(("-" if v is None else f.format(v)).rjust(w))
            lines.append("  ".join(cells))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_table()

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def _blur(image_shape, sigma):
    from scipy.ndimage import gaussian_filter

    def blur(X):
        imgs = X.reshape((len(X), *image_shape))
        out = gaussian_filter(imgs, sigma=(0,) + (sigma,) * len(image_shape))
        return out.reshape(len(X), -1)

    return blur


@dataclass(frozen=True)
class InputPenalties:
    """The penalties and image regularisers of activation maximisation, as one value.

    ``l2``, ``l1``: decay of the input; ``tv``: total variation (images); ``blur_every``,
    ``blur_sigma``: a Gaussian blur (default 0.5 pixels) of every input every ``blur_every``
    steps; ``jitter``: random shifts of up to ``jitter`` pixels before each forward pass,
    drawn for each row on its own; ``scale``, ``rotate``: a random scaling by up to
    ``scale`` (relative) and rotation by up to ``rotate`` degrees per row and step (bilinear,
    :mod:`~symnn.inputopt.transforms`); ``precondition``: the gradient through a 1/f
    filter (:func:`~symnn.inputopt.transforms.spectral_filter`), low frequencies first;
    ``diversity``: a penalty on the similarity between starts of the same unit.

    >>> InputPenalties(l2=0.1, tv=0.3).needs_image
    True
    """

    l2: float = 0.0
    l1: float = 0.0
    tv: float = 0.0
    blur_every: int = 0
    blur_sigma: float | None = None
    jitter: int = 0
    diversity: float = 0.0
    scale: float = 0.0
    rotate: float = 0.0
    precondition: bool = False

    @property
    def needs_image(self) -> bool:
        return bool(self.tv or self.blur_every or self.jitter or self.warps or self.precondition)

    @property
    def warps(self) -> bool:
        """Whether the inputs are randomly scaled or rotated in each step."""
        return bool(self.scale or self.rotate)

    def check(self, image_shape: tuple[int, ...] | None, method: str) -> None:
        """Refuse values that are invalid or would have no effect, naming them."""
        for name in ("l2", "l1", "tv", "diversity", "jitter", "blur_every", "scale", "rotate"):
            check_positive(getattr(self, name), name, allow_zero=True)
        if self.scale >= 0.5 or self.rotate > 45:
            raise SymnnValueError(
                f"scale={self.scale!r}, rotate={self.rotate!r}: small transformations are "
                "expected (scale < 0.5, rotate <= 45 degrees)."
            )
        for name in ("tv", "blur_every", "jitter", "scale", "rotate", "precondition"):
            if getattr(self, name) and image_shape is None:
                value = getattr(self, name)
                raise SymnnValueError(f"{name}={value!r} needs image_shape (e.g. (28, 28)).")
        if self.blur_sigma is not None and not self.blur_every:
            raise SymnnValueError(
                f"blur_sigma={self.blur_sigma!r} has no effect without blur_every; pass "
                "blur_every=k to blur every k steps."
            )
        for name in ("jitter", "scale", "rotate", "precondition"):
            if getattr(self, name) and method in SCIPY:
                raise SymnnValueError(
                    f"{name}={getattr(self, name)!r} has no effect with method={method!r} "
                    "(scipy needs one fixed objective); use a projected method such as 'adam'."
                )

    def every(self, image_shape) -> tuple[int, Any] | None:
        """The blur as ``maximize``'s ``every`` hook."""
        sigma = 0.5 if self.blur_sigma is None else float(self.blur_sigma)
        return (int(self.blur_every), _blur(image_shape, sigma)) if self.blur_every else None


@dataclass
class UnitResult:
    """One row of an :class:`ActivationReport`: one start of one unit. Also reads like a
    dict (``row["best"]``)."""

    unit: int
    start: int
    final: float  #: the unit's activation at the last iterate
    best: float  #: its activation at the returned (best) input
    reference_max: float | None  #: its highest activation on the reference inputs
    exceeds_reference: bool | None
    probability: float | None  #: the class probability (softmax output layers)
    at_bounds: float  #: fraction of the input's coordinates on a bound
    steps: int
    seconds: float
    moved: bool = True  #: False when the objective never changed (no gradient reached it)
    top_examples: list[int] | None = None  #: the unit's top reference inputs (indices)
    top_corr: float | None = None  #: Pearson correlation with the mean of those inputs
    nn_ratio: float | None = None  #: nearest reference distance / typical NN distance
    prior_weight: float | None = None  #: the relative weight of the density prior used
    class_corr: float | None = None  #: correlation with the mean reference input of its class
    knn_label: Any = None  #: the majority label of its 5 nearest reference inputs
    judge_label: Any = None  #: the label the ``judge`` gives it

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def activation_maximization(
    network: Layer,
    units: Any = "all",
    *,
    layer: int | str = -1,
    preactivation: bool | None = None,
    probability: bool = False,
    n_starts: int = 1,
    x0=None,
    seed: Any = 0,
    bounds=(0.0, 1.0),
    steps: int = 200,
    learning_rate: float | None = None,
    method: str = "adam",
    tol: float | None = None,
    penalties: InputPenalties | None = None,
    image_shape: tuple[int, ...] | None = None,
    reference=None,
    top_k: int = 5,
    judge: Any = None,
    prior: str | GaussianPrior | MixturePrior | None = "auto",
    prior_weight: float | None = None,
    mode: Any = None,
    blas_threads: int | str = "auto",
    spatial: Any = None,
    **penalty_values: Any,
) -> ActivationReport:
    """Maximise units of a layer, many units in one compiled call.

    The keywords are :func:`~symnn.inputopt.maximize`'s (a published contract) plus what
    picks the units, the input penalties, the reference data and the density prior.

    Parameters
    ----------
    network
        A trained network (a :class:`~symnn.layers.Sequential` such as ``mlp(...)``).
    units
        Unit indices (``[0, 3]``, ``range(10)``, ``"0-9"``, ``"all"``); row ``k`` of the batch
        maximises ``units[k]``, each repeated ``n_starts`` times.
    layer
        Which layer: its position in ``network.layers`` (every layer counts, dropout and
        batch normalisation included; default the output layer) or its name. The units of
        a convolutional layer are its channels.
    spatial
        For an image layer, how a channel's map becomes one value: ``"mean"`` (default),
        ``"center"`` or a position ``(y, x)`` (see :func:`unit_activations`); refused for
        dense layers.
    preactivation
        Maximise ``x @ W + b`` before the nonlinearity. Default: True for a softmax output
        layer (the class logit) and for rectifier layers (relu, leaky_relu, elu, softplus: a
        unit that is off at the start gets no gradient otherwise), False otherwise.
        ``probability=True`` maximises the softmax probability of the class instead. Rows
        whose objective never changed are marked ``moved=False`` and warned about.
    steps, learning_rate, method, tol
        As for :func:`~symnn.inputopt.maximize`; ``learning_rate`` defaults to 0.05 for the
        projected methods and is refused with the scipy ones.
    penalties, **penalty_values
        An :class:`InputPenalties`, or its fields as keywords (``l2=0.1, tv=0.3``).
    image_shape
        The inputs' image shape, for ``tv``, ``blur_every`` and ``jitter`` and the report.
    x0
        Starts: an array (one row per unit and start), None (uniform in the box),
        ``"mean"`` (the mean reference input), ``"class-mean"`` (for class units, the mean
        reference input of the unit's class; needs ``reference=(X, y)``) or ``"facets"``
        (the k-means centres of the unit's :data:`FACET_POOL` times ``n_starts`` most
        activating reference inputs, one start per facet, so the starts of a unit show its
        different facets; combine with ``diversity`` to keep them apart).
    prior, prior_weight
        A density prior on the input: ``"gaussian"`` (a :class:`~symnn.inputopt.priors.
        GaussianPrior` fitted to ``reference``), ``"gmm"`` (a :class:`~symnn.inputopt.priors.
        MixturePrior`: ten diagonal Gaussians on the principal components), a fitted prior,
        or None (plain activation maximisation). ``"auto"`` (default) is ``"gaussian"`` when
        ``reference`` is given, else None. The ascent maximises ``activation - prior_weight
        * penalty``, the penalty being about 0.5 for a real input. ``prior_weight`` is
        relative to the unit's activation spread on the reference (its best minus its mean),
        so one value suits units of any scale. By default each unit and start runs with every
        weight of :data:`AUTO_PRIOR_WEIGHTS` in the same compiled call and keeps the strongest
        under which it still beats its best reference input (``row.prior_weight`` says which);
        without reference inputs (a fitted prior given) the weight is absolute,
        :data:`DEFAULT_PRIOR_WEIGHT` by default.
    reference, top_k, judge
        Inputs ``X`` or ``(X, labels)`` (e.g. the training set): each row then reports its
        unit's highest activation on them, the unit's ``top_k`` reference inputs (dataset
        examples) and realism figures: ``top_corr``, the correlation of the found input with
        the mean of those examples; ``nn_ratio``, its distance to the nearest reference input
        over the typical nearest-neighbour distance inside the reference set (about 1 for a
        realistic input, much more for noise); with labels, ``knn_label`` (the majority label
        of its 5 nearest reference inputs) and, for output units, ``class_corr`` (the
        correlation with the mean input of the unit's class). ``judge``, a fitted classifier
        (its ``predict``) or a callable returning labels, adds ``judge_label``.
    Other arguments are those of :func:`symnn.inputopt.maximize`.
    """
    index, preactivation, image_shape = _check_target(
        network, layer, probability, preactivation, image_shape
    )
    penalties = _penalties(penalties, penalty_values, image_shape, method)
    learning_rate = 0.05 if learning_rate is None and method not in SCIPY else learning_rate
    _check_counts(n_starts=n_starts, top_k=top_k)
    reference, labels = _reference_parts(reference, network)
    density = _resolve_prior(prior, prior_weight, reference, network)
    target = (index, preactivation, bool(probability), image_shape, spatial)
    graph = _graph(network, _graph_key(target, penalties, density, mode), mode)
    with graph.lock:  # the graph's shared settings and functions are this call's
        unit_list = parse_units(units, graph.n_units)
        row_units = np.repeat(unit_list, n_starts)
        acts = graph.reference_activations(reference)
        x0 = _starts(network, x0, row_units, seed, bounds, _Reference(reference, labels, acts))
        rows = _Rows.expand(row_units, _weight_candidates(density, acts))
        graph.configure(rows, penalties, seed, graph.prior_weights(density, rows, acts))
        ascent = dict(bounds=bounds, steps=steps, learning_rate=learning_rate, method=method)
        result = maximize(
            graph.objective, graph.x, x0=np.repeat(x0, len(rows.weights_of), axis=0), tol=tol,
            mode=mode, blas_threads=blas_threads, every=penalties.every(image_shape), **ascent,
        )  # fmt: skip
        result, chosen = _keep_chosen_weights(graph, result, rows, acts)
        realism = _realism(reference, acts, labels, top_k, judge, _is_output(network, index))
        report_rows = graph.rows(result, row_units, n_starts, realism)
        _record_weights(report_rows, chosen, density)
    _warn_if_stuck(report_rows)
    settings = dict(
        layer=index, preactivation=preactivation, probability=bool(probability), spatial=spatial,
        method=result.method, steps=steps, learning_rate=learning_rate, **asdict(penalties),
        **_prior_settings(density), n_starts=n_starts, bounds=_bounds_setting(bounds),
    )  # fmt: skip
    return ActivationReport(unit_list, result.x, report_rows, result, image_shape, settings)


def _graph_key(target: tuple, penalties: InputPenalties, density: Any, mode: Any) -> _GraphKey:
    """The graph a call needs: ``target`` is (layer index, preactivation, probability, image
    shape, spatial)."""
    index, preactivation, probability, image_shape, spatial = target
    return _GraphKey(
        index, preactivation, probability, image_shape, int(penalties.jitter),
        density and density[0].kind, repr(mode), spatial, penalties.warps,
        bool(penalties.precondition),
    )  # fmt: skip


def _check_counts(**counts: Any) -> None:
    for name, value in counts.items():
        check_positive(value, name, integer=True)


def _is_output(network: Layer, index: int) -> bool:
    return index == len(_layers(network)) - 1


def _bounds_setting(bounds: Any) -> list[float]:
    return [float(np.min(bounds[0])), float(np.max(bounds[1]))]


def _record_weights(rows: list[UnitResult], chosen: Any, density: Any) -> None:
    """Each row's chosen relative prior weight (None without a prior)."""
    for row, weight in zip(rows, chosen):
        row.prior_weight = None if density is None else float(weight)


#: the prior weight when none is given (measured: docs/performance.md, "Readable activation
#: maximisation")
DEFAULT_PRIOR_WEIGHT = 2.0


def _reference_parts(reference: Any, network: Layer) -> tuple[np.ndarray | None, Any]:
    """``reference`` as ``(X, labels or None)``, ``X`` checked against the network."""
    if reference is None:
        return None, None
    labels = None
    if isinstance(reference, tuple):
        if len(reference) != 2:
            raise SymnnValueError("reference must be X or a pair (X, labels).")
        reference, labels = reference
        labels = np.asarray(labels)
    X = check_array(reference, "reference", ndim=2, dtype=network.dtype, n_features=network.n_in)
    if labels is not None and labels.shape != (len(X),):
        raise SymnnValueError(f"reference labels have shape {labels.shape}; expected ({len(X)},).")
    return X, labels


def _resolve_prior(prior: Any, weight: Any, reference, network: Layer):
    """``(prior model, weight)`` or None."""
    if isinstance(prior, str) and prior == "auto":
        prior = "gaussian" if reference is not None else None
    if prior is None:
        if weight is not None:
            raise SymnnValueError(f"prior_weight={weight!r} has no effect without a prior.")
        return None
    if isinstance(prior, str):
        if prior not in PRIORS:
            raise SymnnValueError(
                f"prior={prior!r} is not known; expected 'auto', {', '.join(map(repr, PRIORS))}, "
                "a fitted prior or None."
            )
        if reference is None:
            raise SymnnValueError(f"prior={prior!r} needs reference inputs to fit it to.")
        prior = PRIORS[prior].fit(reference)
    if not isinstance(prior, tuple(PRIORS.values())) or prior.width != network.n_in:
        raise SymnnTypeError(
            f"prior must be a GaussianPrior or MixturePrior of width {network.n_in}; got "
            f"{describe(prior)}."
        )
    if weight is None:
        return prior, None  # chosen per unit among AUTO_PRIOR_WEIGHTS
    return prior, float(check_positive(weight, "prior_weight", allow_zero=True))


def _weight_candidates(density, acts) -> tuple[float, ...]:
    """The relative prior weights each unit and start runs with."""
    if density is None:
        return (0.0,)
    if density[1] is not None:
        return (density[1],)
    return AUTO_PRIOR_WEIGHTS if acts is not None else (DEFAULT_PRIOR_WEIGHT,)


@dataclass(frozen=True)
class _Reference:
    """The reference inputs, their labels (or None) and every unit's activation on them."""

    X: np.ndarray | None
    labels: np.ndarray | None
    acts: np.ndarray | None


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
        raise SymnnValueError("x0='class-mean' needs reference=(X, labels).")
    missing = sorted(set(row_units.tolist()) - set(labels.tolist()))
    if missing:
        raise SymnnValueError(f"x0='class-mean': no reference input has label {missing[0]}.")
    means = {u: X[labels == u].mean(axis=0) for u in set(row_units.tolist())}
    return np.stack([means[u] for u in row_units.tolist()])


def _starts(network: Layer, x0: Any, row_units, seed: Any, bounds: Any, reference) -> np.ndarray:
    """One start per unit and start index: ``x0`` checked, taken from the reference data
    (``"mean"``, ``"class-mean"``, ``"facets"``), or drawn in the box."""
    n = len(row_units)
    lo, hi = resolve_bounds(bounds, network.n_in, network.dtype)
    if isinstance(x0, str):
        if x0 not in STARTS:
            raise SymnnValueError(
                f"x0={x0!r} is not known; expected an array, None, {', '.join(map(repr, STARTS))}."
            )
        x0 = np.clip(_data_starts(x0, row_units, reference, seed), lo, hi).astype(network.dtype)
    x0 = draw_starts(network.dtype, x0, n, seed, (lo, hi))
    if len(x0) != n:
        raise SymnnValueError(f"x0 has {len(x0)} rows; expected one per unit and start ({n}).")
    return x0


def _warn_if_stuck(rows: list[UnitResult]) -> None:
    stuck = sorted({r.unit for r in rows if not r.moved})
    if stuck:
        warnings.warn(
            f"symnn: the objective of unit(s) {stuck[:20]}{' ...' if len(stuck) > 20 else ''} "
            "never changed during the ascent (no gradient reached the input; e.g. a unit that "
            "is off everywhere near its start). Their rows are marked moved=False; try "
            "preactivation=True, other starts (x0) or more steps.",
            RuntimeWarning,
            stacklevel=3,
        )


def _penalties(
    penalties: InputPenalties | None, values: dict[str, Any], image_shape: Any, method: str
) -> InputPenalties:
    """The call's :class:`InputPenalties`, checked against the image shape and method."""
    known = {f.name for f in fields(InputPenalties)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SymnnTypeError(
            f"activation_maximization got unexpected keyword {unknown[0]!r}; penalties are "
            f"{', '.join(sorted(known))}."
        )
    if penalties is not None and values:
        raise SymnnValueError("pass penalties=InputPenalties(...) or penalty keywords, not both.")
    if penalties is not None and not isinstance(penalties, InputPenalties):
        raise SymnnTypeError(f"penalties must be an InputPenalties; got {describe(penalties)}.")
    penalties = penalties or InputPenalties(**values)
    penalties.check(image_shape, method)
    return penalties


def _check_target(network, layer, probability, preactivation, image_shape):
    """``(layer index, preactivation, image shape)`` checked against the network."""
    if isinstance(getattr(network, "network", None), Layer):  # a Trainer (symnn.load's too)
        raise SymnnTypeError(
            f"network must be a symnn network; got a {type(network).__name__}: pass its "
            f".network (activation_maximization(trainer.network, ...))."
        )
    if not isinstance(network, Layer) or network.n_in is None:
        raise SymnnTypeError(
            f"network must be a symnn network with a known input width; got {describe(network)}."
        )
    index = _resolve_layer(network, layer)
    if probability and not _is_softmax_output(network, index):
        raise SymnnValueError(
            "probability=True needs the softmax output layer (layer=-1 of a classifier)."
        )
    if preactivation is None:
        preactivation = _default_preactivation(network, index, probability)
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) != network.n_in:
            raise SymnnValueError(
                f"image_shape={image_shape} has {int(np.prod(image_shape))} "
                f"pixels; the network takes {network.n_in} inputs."
            )
    return index, bool(preactivation), image_shape
