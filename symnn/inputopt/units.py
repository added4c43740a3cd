"""Which units: a layer by position or name, its activations as a symbolic ``(n, units)``
matrix (a convolutional layer's channels reduced over the image), and unit selections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer, Sequential
from ..nonlinearities import softmax
from ..utils import describe


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
    return _walk(_layers(network), index, x, preactivation, spatial)[0]


def _walk(layers: list[Layer], index: int, x, preactivation: bool, spatial: Any, output=False):
    """``(activations of layer index, the network's output or None)``: one pass through
    ``layers`` in inference mode (on to the last layer only when ``output``)."""
    h, units = x, None
    for i, la in enumerate(layers):
        if i == index:
            if preactivation and not hasattr(la, "preactivation"):
                raise SymnnValueError(
                    f"layer {index} is a {type(la).__name__}; "
                    "preactivation needs a Dense or Conv2D layer."
                )
            pre = la.preactivation(h) if preactivation else None
            h = la(h, deterministic=True)
            units = _reduce_spatial(h if pre is None else pre, spatial)
            if not output:
                return units, None
        else:
            h = la(h, deterministic=True)
    return units, h


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
            f"{n_units} units (0..{n_units - 1}).",
            parameter="units",
        )
    return arr.astype(np.int64)


@dataclass(frozen=True)
class Target:
    """What activation maximisation maximises, resolved once from a call's arguments: the
    units of one layer of ``network`` (its position ``index``), before the nonlinearity or
    not, a softmax output's probabilities or not, a convolutional layer's channels reduced
    by ``spatial``, inputs that are images of ``image_shape``.

    >>> from symnn.layers import mlp
    >>> target = Target.resolve(mlp([4, 3, 2], rng=0), layer=1, image_shape=(2, 2))
    >>> target.index, target.preactivation, target.n_in  # a relu layer: before the relu
    (1, True, 4)
    """

    network: Layer
    index: int
    preactivation: bool
    probability: bool = False
    image_shape: tuple[int, ...] | None = None
    spatial: Any = None
    #: the network's layers, in the order :func:`unit_activations` counts them
    layers: tuple[Layer, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def resolve(
        cls,
        network: Layer,
        layer: int | str = -1,
        *,
        preactivation: bool | None = None,
        probability: bool = False,
        image_shape: Any = None,
        spatial: Any = None,
    ) -> Target:
        """The target of these arguments, each checked against ``network`` (naming it)."""
        _check_network(network)
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
        spatial = tuple(spatial) if isinstance(spatial, list) else spatial
        return cls(network, index, bool(preactivation), bool(probability), image_shape, spatial,
                   tuple(_layers(network)))  # fmt: skip

    @property
    def n_in(self) -> int:
        return self.network.n_in

    @property
    def dtype(self) -> str:
        return self.network.dtype

    @property
    def is_output(self) -> bool:
        return self.index == len(self.layers) - 1

    @property
    def has_probabilities(self) -> bool:
        """Whether the layer is a softmax output (the report adds each class's probability)."""
        return self.is_output and getattr(self.layers[-1], "activation", None) is softmax

    def activations(self, x: Any, *, with_output: bool = False) -> Any:
        """The symbolic ``(n, units)`` of the target's layer for inputs ``x`` (inference
        mode; with ``probability``, the softmax output's probabilities); ``with_output``:
        the pair ``(units, the network's output)``."""
        pre = self.preactivation and not self.probability
        units, out = _walk(list(self.layers), self.index, x, pre, self.spatial, with_output)
        return (units, out) if with_output else units

    def n_units(self) -> int | None:
        """The layer's unit count when known without compiling."""
        return self.layers[self.index].output_size(None)


def _check_network(network: Any) -> None:
    if isinstance(getattr(network, "network", None), Layer):  # a Trainer (symnn.load's too)
        raise SymnnTypeError(
            f"network must be a symnn network; got a {type(network).__name__}: pass its "
            f".network (activation_maximization(trainer.network, ...))."
        )
    if not isinstance(network, Layer) or network.n_in is None:
        raise SymnnTypeError(
            f"network must be a symnn network with a known input width; got {describe(network)}."
        )
