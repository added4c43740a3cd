"""Which units: a layer by position or name, its activations as a symbolic ``(n, units)``
matrix (a convolutional layer's channels reduced over the image), and unit selections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.traversal import ancestors

from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Conv2D, Graph, Layer, Sequential
from ..layers.base import calls_of
from ..nonlinearities import softmax
from ..utils import describe


def _layers(network: Layer) -> list[Layer]:
    """The layers ``layer=`` counts: a Sequential's in order, a Graph's in topological order."""
    return list(network.layers) if isinstance(network, Sequential | Graph) else [network]


def _resolve_layer(network: Layer, layer: int | str) -> int | str:
    """Where ``layer`` is: its position in ``network.layers`` (every layer counts, dropout
    and batch normalisation included; negative from the end), or, given a name, that
    position or a dotted path to a sub-layer (``"block.conv_a"``), checked."""
    layers = _layers(network)
    if isinstance(layer, str):
        names = [la.name for la in layers]
        if layer in names:  # a name with dots of its own ("block0.add") first
            return names.index(layer)
        head, _, rest = layer.partition(".")
        if head not in names:
            named = ", ".join(repr(n) for n in names if n is not None)
            raise SymnnValueError(
                f"layer={layer!r} is not a layer name; the network's layers are named "
                f"{named or '(none)'}"
                + ("" if None not in names else " (the others have no name: use their position)")
                + ".",
                parameter="layer",
            )
        if not rest:
            return names.index(head)
        layers[names.index(head)].get_sublayer(rest)
        return layer
    if not isinstance(layer, int | np.integer) or not -len(layers) <= layer < len(layers):
        raise SymnnValueError(
            f"layer={layer!r} is out of range; the network has {len(layers)} "
            f"layers (0..{len(layers) - 1}, or negative from the end)."
        )
    return int(layer) % len(layers)


def _layer_at(network: Layer, where: int | str) -> Layer:
    layers = _layers(network)
    if isinstance(where, str):
        head, _, rest = where.partition(".")
        return next(la for la in layers if la.name == head).get_sublayer(rest)
    return layers[where]


def _output_layer(network: Layer) -> Layer | None:
    """The layer that makes the network's (only) output."""
    if isinstance(network, Graph):
        return network.output_layer()
    return _layers(network)[-1]


_RECTIFIERS = ("relu", "leaky_relu", "elu", "softplus")

#: nonlinearities that act on each value alone (one channel's values need no other channel)
ELEMENTWISE = frozenset(n for n in nonlinearities.NAMES if "softmax" not in n)


def per_row_channels(layer: Layer, preactivation: bool) -> bool:
    """Whether a unit per row of ``layer`` can be computed alone: a convolution with
    ``groups=1`` read before its nonlinearity or after an elementwise one."""
    if not isinstance(layer, Conv2D) or layer.groups != 1:
        return False
    return preactivation or nonlinearities.name_of(layer.activation) in ELEMENTWISE


def _default_preactivation(network: Layer, where: int | str, probability: bool) -> bool:
    """Pre-activation for a classifier's logits and for a rectifier layer (a ReLU unit that
    is off at the start gets no gradient, so its ascent would never move)."""
    if probability:
        return False
    layer = _layer_at(network, where)
    fn = getattr(layer, "activation", None)
    rectifier = hasattr(layer, "preactivation") and any(
        fn is nonlinearities.NAMES[n] for n in _RECTIFIERS
    )
    return _is_softmax_output(network, where) or rectifier


def _is_softmax_output(network: Layer, where: int | str) -> bool:
    layer = _layer_at(network, where)
    return layer is _output_layer(network) and getattr(layer, "activation", None) is softmax


def _tagged(network: Layer, layer: Layer, x, preactivation: bool, spatial: Any):
    """``(the activations of layer, the network's output)`` read from the graph of
    ``network(x)``: the tensor the layer's call returned (or its pre-activation, from the
    tensor it was called on)."""
    var, call, output = _call_of(network, layer, x)
    if preactivation:
        if not hasattr(layer, "preactivation"):
            raise SymnnValueError(
                f"{type(layer).__name__}{layer._label()}: preactivation needs a Dense or "
                "Conv2D layer."
            )
        var = layer.preactivation(call.inputs[0])
    return _reduce_spatial(var, spatial), output


def _call_of(network: Layer, layer: Layer, x) -> tuple[Any, Any, Any]:
    """``(layer's output, its call, the network's output)`` in the graph of ``network(x)``
    (inference mode); the layer must be called once."""
    out = network(x, deterministic=True)
    outs = out if isinstance(out, list) else [out]
    found = [(v, c) for v in ancestors(outs) for c in calls_of(v) if c.layer is layer]
    if len({id(c) for _, c in found}) != 1:
        raise SymnnValueError(
            f"{type(layer).__name__}{layer._label()} is called {len(found)} times in the "
            "network; its units are those of one call: maximise a layer called once."
        )
    return (*found[0], outs[0])


def unit_activations(
    network: Layer, x, layer: int = -1, *, preactivation: bool = False, spatial: Any = None
):
    """The symbolic activations ``(n, n_units)`` of one layer (inference mode).

    ``preactivation=True`` gives a Dense or Conv2D layer's output before its nonlinearity
    (for the output layer of a classifier: the logits). The units of an image layer
    ``(n, C, H, W)`` are its channels, reduced over the image by ``spatial``: ``"mean"``
    (default; Lucid's channel objective), ``"center"`` or a position ``(y, x)`` (a neuron).
    """
    where = _resolve_layer(network, layer)
    if isinstance(network, Sequential) and isinstance(where, int):
        return _walk(_layers(network), where, x, preactivation, spatial)[0]
    return _tagged(network, _layer_at(network, where), x, preactivation, spatial)[0]


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
    index: int | str  #: a position in ``network.layers``, or a dotted path to a sub-layer
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
    def layer(self) -> Layer:
        return _layer_at(self.network, self.index)

    @property
    def is_output(self) -> bool:
        return self.layer is _output_layer(self.network)

    @property
    def has_probabilities(self) -> bool:
        """Whether the layer is a softmax output (the report adds each class's probability)."""
        return self.is_output and getattr(self.layer, "activation", None) is softmax

    def activations(self, x: Any, *, with_output: bool = False) -> Any:
        """The symbolic ``(n, units)`` of the target's layer for inputs ``x`` (inference
        mode; with ``probability``, the softmax output's probabilities); ``with_output``:
        the pair ``(units, the network's output)``."""
        pre = self.preactivation and not self.probability
        if isinstance(self.network, Sequential) and isinstance(self.index, int):
            units, out = _walk(list(self.layers), self.index, x, pre, self.spatial, with_output)
        else:
            units, out = _tagged(self.network, self.layer, x, pre, self.spatial)
        return (units, out) if with_output else units

    def unit_per_row(self, x: Any, units: Any) -> Any:
        """Row ``i``'s unit ``units[i]`` (a symbolic or constant int vector), ``(n,)``: of
        a :class:`~symnn.layers.Conv2D` (``groups=1``, an elementwise nonlinearity or the
        pre-activation) only that channel is computed (:meth:`~symnn.layers.Conv2D.
        channel_per_row`); otherwise picked from :meth:`activations`."""
        layer, pre = self.layer, self.preactivation and not self.probability
        if not per_row_channels(layer, pre) or self.probability:
            return self.activations(x)[pt.arange(x.shape[0]), units]
        if isinstance(self.network, Sequential) and isinstance(self.index, int):
            h = x
            for la in list(self.layers)[: self.index]:
                h = la(h, deterministic=True)
        else:
            h = _call_of(self.network, layer, x)[1].inputs[0]
        z = layer.channel_per_row(h, units)
        z = z if pre else layer.activation(z)
        return _reduce_spatial(z[:, None], self.spatial)[:, 0]

    def n_units(self) -> int | None:
        """The layer's unit count when known without compiling."""
        return self.layer.output_size(None)


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
