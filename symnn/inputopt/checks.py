"""Checks that a visualisation can be trusted, read from the network's own layers.

- :func:`path_similarity` (the sanity check of Geirhos et al., "Don't trust your eyes", ICML
  2024): a visualisation and the natural images that drive its unit should travel through the
  layers along the same path. Per layer, the Pearson correlation of the visualisation's
  activations with the mean activations of its dataset examples, against the same figure for
  the examples themselves (each example with the mean of the others, the least typical one):
  the visualisation *leaves the natural path* at the first layer where it correlates less than
  every example does.
- :func:`plausibility` (MaCo's benchmark, Fel et al. 2023): the cosine similarity, in the
  network's penultimate-layer features, between a visualisation and real inputs (of its class),
  averaged over those inputs.
- :func:`dataset_examples`: the real inputs that drive each channel of a layer most (what a
  visualisation is shown next to, and the examples :func:`path_similarity` takes).

Both compile one function per network (every layer's output, inference mode) and reuse it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..backend import function
from ..errors import SymnnValueError
from ..layers import Layer
from ..utils import check_array
from .objectives import _Outputs
from .units import _check_network, _layers, _resolve_layer

__all__ = [
    "PathSimilarity", "path_similarity", "plausibility", "layer_features", "annotate_rows",
    "dataset_examples",
]  # fmt: skip

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _compiled(network: Layer, mode: Any):
    """``(positions, fn, lock)``: every layer called once in ``network(x)``, one function
    ``X -> [its output per layer]`` (compiled once per network and mode) and the lock its
    callers hold while they run it and copy its outputs (its storage is shared)."""
    with _LOCK:
        per_mode = _COMPILED.setdefault(network, {})
        key = repr(mode)
        if key not in per_mode:
            x = pt.matrix("x", dtype=network.dtype, shape=(None, network.n_in))
            outputs = _Outputs(network, x)
            positions = [i for i, _ in enumerate(_layers(network)) if _once(outputs, i)]
            outs = [outputs.of(i).flatten(2) for i in positions]
            per_mode[key] = (positions, function([x], outs, mode=mode), threading.Lock())
        return per_mode[key]


def _once(outputs: _Outputs, position: int) -> bool:
    try:
        outputs.of(position)
    except SymnnValueError:  # a layer called several times (or never) has no one output
        return False
    return True


#: rows per call of the compiled function (every layer's output of a block is held at once)
BLOCK = 256


def layer_features(
    network: Layer, X: Any, *, layers: Any = None, mode: Any = None
) -> dict[int, np.ndarray]:
    """``{position: (n, features)}``: each layer's output for the rows of ``X`` (flattened,
    inference mode), for every layer called once in the network (or those of ``layers``, a
    collection of positions), computed in blocks of :data:`BLOCK` rows."""
    _check_network(network)
    X = check_array(X, "X", ndim=2, dtype=network.dtype)
    if X.shape[1] != network.n_in or not len(X):
        raise SymnnValueError(
            f"X has shape {X.shape}; expected rows of the network's {network.n_in} inputs."
        )
    positions, fn, lock = _compiled(network, mode)
    keep = {p: [] for p in positions if layers is None or p in layers}
    for start in range(0, len(X), BLOCK):
        with lock:  # the function's storage is shared: copy its outputs before releasing
            outs = [np.array(a, dtype=np.float64) for a in fn(X[start : start + BLOCK])]
        for p, a in zip(positions, outs):
            if p in keep:
                keep[p].append(a)
    return {p: np.concatenate(blocks) for p, blocks in keep.items()}


def dataset_examples(
    network: Layer, layer: int | str, channels: Any, X: Any, *, k: int = 4, mode: Any = None
) -> np.ndarray:
    """``(len(channels), k)`` row indices of ``X``: per channel of ``layer`` (a name or a
    position; a dense layer's units count as channels), the ``k`` rows whose mean activation
    over the channel's positions is highest, highest first (ties: the earlier row).

    >>> from symnn.layers import from_arch
    >>> net = from_arch("conv4x3,pool2,8,3", (8, 8), rng=0)
    >>> X = np.random.default_rng(0).random((20, 64))
    >>> dataset_examples(net, "conv0", [0, 3], X, k=2, mode="FAST_COMPILE").shape
    (2, 2)
    """
    where = _resolve_layer(network, layer)
    if not isinstance(where, int):
        raise SymnnValueError(f"layer={layer!r}: a sub-layer has no output of its own here; "
                              "give a layer of the network.")  # fmt: skip
    channels = np.atleast_1d(np.asarray(channels))
    feats = layer_features(network, X, layers={where}, mode=mode)
    if where not in feats:
        raise SymnnValueError(f"layer={layer!r} is called more than once; pick another layer.")
    n_channels = _n_channels_of(network, where)
    per_channel = feats[where].reshape(len(feats[where]), n_channels, -1).mean(axis=2)
    if channels.dtype.kind not in "iu" or channels.min() < 0 or channels.max() >= n_channels:
        raise SymnnValueError(f"channels={channels.tolist()} must be indices below the layer's "
                              f"{n_channels} channels.")  # fmt: skip
    if not 1 <= k <= len(per_channel):
        raise SymnnValueError(f"k={k} must be between 1 and the {len(per_channel)} rows of X.")
    order = np.argsort(-per_channel[:, channels].T, axis=1, kind="stable")
    return order[:, :k]


def _n_channels_of(network: Layer, where: int) -> int:
    """The channels of the layer at ``where`` (axis 1 of its output), from the graph's static
    shapes (nothing compiled)."""
    x = pt.matrix("x", dtype=network.dtype, shape=(None, network.n_in))
    act = _Outputs(network, x).of(where)
    if act.ndim not in (2, 4) or act.type.shape[1] is None:
        raise SymnnValueError(f"layer {where}'s output {act.type} has no known channel axis "
                              "(expected (n, units) or (n, C, H, W)).")  # fmt: skip
    return int(act.type.shape[1])


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (0 for a constant
    row)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1), 0.0)


@dataclass
class PathSimilarity:
    """What :func:`path_similarity` measured for ``n`` visualisations over ``layers``."""

    layers: list[int]  #: the layers' positions in ``network.layers``
    visualisation: np.ndarray  #: (n, layers): correlation with the examples' mean
    natural: np.ndarray  #: (n, layers): the least typical example's, with the others' mean
    leaves_at: np.ndarray  #: (n,): first position where it falls below natural, else -1


def path_similarity(
    network: Layer, images: Any, examples: Any, *, until: int | None = None, mode: Any = None
) -> PathSimilarity:
    """Does each visualisation travel through the layers as its dataset examples do?

    ``images`` ``(n, width)``; ``examples`` ``(n, k, width)``, the ``k >= 2`` real inputs of
    highest objective for each visualisation. ``until``: the position of the target layer
    (the layers after it are left out). See the module docstring for the figures.
    """
    images = check_array(images, "images", ndim=2, dtype=network.dtype)
    examples = check_array(examples, "examples", ndim=3, dtype=network.dtype)
    n, k = examples.shape[:2]
    if len(images) != n or k < 2:
        raise SymnnValueError(
            f"examples must be (n, k >= 2, width) with n = {len(images)} images; got "
            f"{examples.shape}."
        )
    feats = layer_features(network, np.concatenate([images, examples.reshape(n * k, -1)]),
                           mode=mode)  # fmt: skip
    layers = [p for p in feats if until is None or p <= until]
    vis, nat = np.zeros((n, len(layers))), np.zeros((n, len(layers)))
    for j, p in enumerate(layers):
        f = feats[p]
        ex = f[n:].reshape(n, k, -1)
        mean = ex.mean(axis=1)
        vis[:, j] = _pearson_rows(f[:n], mean)
        others = (mean[:, None] * k - ex) / (k - 1)  # each example's leave-one-out mean
        per_example = _pearson_rows(ex.reshape(n * k, -1), others.reshape(n * k, -1))
        nat[:, j] = per_example.reshape(n, k).min(axis=1)
    below = vis < nat
    leaves = np.where(below.any(axis=1), np.array(layers)[below.argmax(axis=1)], -1)
    return PathSimilarity(layers, vis, nat, leaves)


def plausibility(
    network: Layer, images: Any, real: Any, *, layer: int = -2, mode: Any = None
) -> np.ndarray:
    """For each image, the mean cosine similarity of its ``layer`` features (default the
    penultimate layer) with those of the ``real`` inputs (e.g. the training rows of its
    class)."""
    images = check_array(images, "images", ndim=2, dtype=network.dtype)
    real = check_array(real, "real", ndim=2, dtype=network.dtype)
    unit = _unit_features(network, np.concatenate([images, real]), layer, mode)
    return (unit[: len(images)] @ unit[len(images) :].T).mean(axis=1)


def _unit_features(network: Layer, X: np.ndarray, layer: int, mode: Any) -> np.ndarray:
    """The rows' ``layer`` features scaled to unit length (plausibility's cosines)."""
    n_layers = len(_layers(network))
    if not -n_layers <= layer < n_layers:
        raise SymnnValueError(f"layer={layer} is out of range for {n_layers} layers.")
    position = layer % n_layers
    feats = layer_features(network, X, layers={position}, mode=mode)
    if position not in feats:
        raise SymnnValueError(f"layer={layer} is called more than once; pick another layer.")
    f = feats[position]
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def annotate_rows(rows: list, network: Layer, X: np.ndarray, reference: Any, until: Any,
                  mode: Any = None) -> None:  # fmt: skip
    """Add :func:`path_similarity` and :func:`plausibility` to activation-maximisation report
    rows (each with its ``top_examples`` of ``reference.data``): the path against the top
    examples (up to the target layer ``until``, a position; None: every layer), plausibility
    against the reference inputs labelled as the row's unit for class units, else against
    its top examples."""
    if not rows or rows[0].top_examples is None or len(rows[0].top_examples) < 2:
        return
    data, labels = reference.data, reference.labels
    top = np.stack([data[r.top_examples] for r in rows])
    until = until if isinstance(until, int) else None
    path = path_similarity(network, X, top, until=until, mode=mode)
    by_class = labels is not None and any(r.class_corr is not None for r in rows)
    # every reference row's features once (the class rows of all units), then cosines
    ref = _unit_features(network, data if by_class else top.reshape(-1, data.shape[1]), -2, mode)
    found = _unit_features(network, np.asarray(X), -2, mode)
    k = top.shape[1]
    for i, row in enumerate(rows):
        row.path_corr = [round(float(v), 6) for v in path.visualisation[i]]
        row.path_leaves_at = int(path.leaves_at[i])
        if by_class and row.class_corr is not None:
            real = ref[labels == row.unit]
        else:
            real = (_unit_features(network, top[i], -2, mode) if by_class
                    else ref[i * k : (i + 1) * k])  # fmt: skip
        row.plausibility = float((real @ found[i]).mean())

