"""Objectives as values (Lucid's objective algebra): what a feature visualisation maximises,
named by layer and unit, composed with ``+``, ``-`` and scalar ``*`` before anything is built.

An :class:`Objective` is a weighted sum of terms. Called on a network and its symbolic input
``x`` it returns the symbolic vector, one value per row of ``x``, that :func:`~symnn.inputopt.
maximize` ascends; every term reads the one graph of ``network(x)``, so the whole sum compiles
into one step. Layers are named as ``activation_maximization``'s ``layer=``: a position in
``network.layers`` or a name (a node of a :class:`~symnn.layers.Graph`, so imported ONNX
networks work unchanged); the layer's output is read in inference mode.

The terms, with Lucid's meaning (channels first: an image layer is ``(n, C, H, W)``):

- :func:`channel` ``(layer, c)``: the mean of channel ``c`` over the image (a unit of a dense
  layer: its value); like ``activation_maximization``, before the nonlinearity of a rectifier
  layer by default (``preactivation=``; Lucid names such tensors ``..._pre_relu``);
- :func:`neuron` ``(layer, c, y, x)``: channel ``c`` at one position (the centre by default);
- :func:`direction` ``(layer, vector)``: the dot product of the activation with ``vector``
  at every position, averaged over the image;
- :func:`class_logit` ``(k)``: the output layer's pre-activation of class ``k``;
- :func:`deepdream` ``(layer)``: the mean of the layer's squared activations;
- :func:`diversity` ``(layer)``: how alike the rows are: the cosine similarity of each row's
  Gram matrix of channels with every other row's, summed over the other rows and divided by
  the number of rows (the rows' values add up to Lucid's ``diversity``). Subtract it to push
  the rows of a batch apart: ``channel("conv1", 3) - 0.5 * diversity("conv1")``.

:func:`parse_objective` reads the command line's form of the same sums
(``"channel:conv1:3 - 0.5*diversity:conv1"``).

Examples
--------
>>> import numpy as np, pytensor.tensor as pt
>>> from symnn.layers import from_arch
>>> from symnn.inputopt import maximize
>>> net = from_arch("conv4x3,pool2,8,3", (6, 6), rng=0)
>>> objective = channel("conv0", 1) - 0.5 * diversity("conv0")
>>> objective
channel('conv0', 1) - 0.5 * diversity('conv0')
>>> x = pt.matrix("x", dtype="float32", shape=(None, 36))
>>> values = objective(net, x)          # one value per row of x
>>> result = maximize(values, x, n_starts=3, steps=20, mode="FAST_COMPILE")
>>> result.x.shape
(3, 36)
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.traversal import ancestors

from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer
from ..layers.base import calls_of
from .units import (
    Target,
    _check_network,
    _default_preactivation,
    _layer_at,
    _resolve_layer,
    per_row_channels,
)

__all__ = [
    "Objective",
    "channel",
    "neuron",
    "direction",
    "class_logit",
    "deepdream",
    "diversity",
    "parse_objective",
]


@dataclass(frozen=True)
class _Term:
    """One named term: ``kind`` with its ``layer`` (None for ``class_logit``) and arguments."""

    kind: str
    layer: int | str | None
    args: tuple = ()
    #: read the layer before its nonlinearity (None: as activation maximisation decides)
    preactivation: bool | None = None

    def __repr__(self) -> str:
        parts = [] if self.layer is None else [repr(self.layer)]
        parts += [repr(a) for a in self.args]
        if self.preactivation is not None:
            parts.append(f"preactivation={self.preactivation}")
        return f"{self.kind}({', '.join(parts)})"


class Objective:
    """A weighted sum of terms; call it on ``(network, x)`` for the symbolic per-row values.

    Build one with :func:`channel`, :func:`neuron`, :func:`direction`,
    :func:`class_logit`, :func:`deepdream` or :func:`diversity` and combine with ``+``,
    ``-``, unary ``-`` and multiplication or division by a number.
    """

    def __init__(self, terms: tuple[tuple[float, _Term], ...]):
        self.terms = tuple((float(w), t) for w, t in terms)

    # -- the algebra ----------------------------------------------------------------------
    def __add__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Number) and other == 0:  # sum([...]) starts at 0
            return self
        if not isinstance(other, Objective):
            raise SymnnTypeError(
                f"an objective adds only to an objective; got {type(other).__name__} "
                f"{other!r} (a constant does not change where the maximum is)."
            )
        return Objective(self.terms + other.terms)

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Any) -> Objective:
        if not isinstance(other, Objective):
            raise SymnnTypeError(
                f"an objective subtracts only an objective; got {type(other).__name__}."
            )
        return self + (-other)

    def __mul__(self, factor: Any) -> Objective:
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
            raise SymnnTypeError(
                f"an objective is multiplied by a number; got {type(factor).__name__}."
            )
        if not np.isfinite(factor):
            raise SymnnValueError(f"an objective's weight must be finite; got {factor}.")
        return Objective(tuple((w * float(factor), t) for w, t in self.terms))

    __rmul__ = __mul__

    def __truediv__(self, divisor: Any) -> Objective:
        if isinstance(divisor, numbers.Real) and divisor == 0:
            raise SymnnValueError("an objective divided by 0.")
        return self * (1.0 / divisor)

    def __repr__(self) -> str:
        text = ""
        for w, t in self.terms:
            sign = "-" if w < 0 else "+"
            size = abs(w)
            term = repr(t) if size == 1 else f"{size:g} * {t!r}"
            text = (f"-{term}" if sign == "-" else term) if not text else f"{text} {sign} {term}"
        return text

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Objective) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.terms)

    @property
    def rows(self) -> int | None:
        """The batch size the objective needs: the length of its per-row indices (a
        ``channel``, ``neuron`` or ``class_logit`` given a sequence), else None."""
        lengths = {len(a) for _, t in self.terms for a in t.args[:1]
                   if isinstance(a, tuple) and t.kind != "direction"}  # fmt: skip
        if len(lengths) > 1:
            raise SymnnValueError(
                f"{self!r}: its terms index {sorted(lengths)} rows; per-row indices must "
                "all have one length (the batch size)."
            )
        return lengths.pop() if lengths else None

    # -- building -------------------------------------------------------------------------
    def check(self, network: Layer) -> None:
        """Check every term against ``network`` (layer names, channel ranges, vector
        lengths) without building anything; raises naming the term."""
        _check_network(network)
        self.rows  # noqa: B018 (the per-row lengths agree)
        for _, term in self.terms:
            _check_term(network, term)

    def __call__(self, network: Layer, x: Any) -> Any:
        """The symbolic objective: one value per row of ``x`` (the network's dtype)."""
        self.check(network)
        outputs = _Outputs(network, x)
        total = None
        for w, term in self.terms:
            value = _BUILDERS[term.kind](outputs, term)
            value = value if w == 1 else value * np.asarray(w, dtype=value.dtype)
            total = value if total is None else total + value
        return pt.cast(total, network.dtype)


class _Outputs:
    """The layers' outputs for ``x``, read from one graph of ``network(x)`` (inference)."""

    def __init__(self, network: Layer, x: Any):
        self.network, self.x = network, x
        out = network(x, deterministic=True)
        self.outs = out if isinstance(out, list) else [out]
        self._found: dict[int, list] = {}  # id(layer) -> [(its output, its call)]
        for var in ancestors(self.outs):
            for call in calls_of(var):
                self._found.setdefault(id(call.layer), [])
                if all(v is not var for v, _ in self._found[id(call.layer)]):
                    self._found[id(call.layer)].append((var, call))

    def call(self, where: int | str) -> tuple[Layer, Any, Any]:
        """``(layer, its output, its call)`` for the layer at ``where`` (called once)."""
        layer = _layer_at(self.network, _resolve_layer(self.network, where))
        found = self._found.get(id(layer), [])
        if len(found) != 1:
            raise SymnnValueError(
                f"layer={where!r} is called {len(found)} times in the network; an objective "
                "reads a layer called once."
            )
        return layer, *found[0]

    def of(self, where: int | str, preactivation: bool = False) -> Any:
        """The output of the layer at ``where`` (or, with ``preactivation``, its value
        before the nonlinearity)."""
        layer, var, call = self.call(where)
        if not preactivation:
            return var
        if not hasattr(layer, "preactivation"):
            raise SymnnValueError(
                f"layer={where!r} is a {type(layer).__name__}; preactivation=True needs a "
                "Dense or Conv2D layer."
            )
        return layer.preactivation(call.inputs[0])


def _channels_first(act: Any) -> Any:
    """``(n, C, positions)``: an image layer's channels, a dense layer's units as channels
    of one position."""
    if act.ndim == 2:
        return act[:, :, None]
    if act.ndim == 4:
        return act.reshape((act.shape[0], act.shape[1], -1))
    raise SymnnValueError(f"the layer's output has {act.ndim} axes; expected 2 or 4.")


def _built(outputs: _Outputs, term: _Term) -> Any:
    """The term's layer output, its indices checked against the static shape (a layer that
    cannot tell its channels before it is built, such as pooling, is checked here)."""
    pre = term.preactivation
    if pre is None and term.kind in ("channel", "neuron"):  # a rectifier's unit that is off
        where = _resolve_layer(outputs.network, term.layer)  # at the start gets no gradient
        pre = _default_preactivation(outputs.network, where, False)
    act = outputs.of(term.layer, pre)
    if term.kind in ("channel", "neuron"):
        _check_index(term.args[0], act.type.shape[1], "channel", term)
    if term.kind == "neuron" and act.ndim == 2 and term.args[1:] != (None, None):
        raise SymnnValueError(f"{term!r}: y and x name a position of an image layer; the "
                              "layer's units are features.")  # fmt: skip
    if term.kind == "neuron" and act.ndim == 4:
        for value, size, what in zip(term.args[1:], act.type.shape[2:], ("y", "x")):
            _check_index(value if value is not None else 0, size, what, term)
    if term.kind == "direction" and act.type.shape[1] not in (None, len(term.args[0])):
        raise SymnnValueError(f"{term!r}: the vector has {len(term.args[0])} values; the "
                              f"layer has {act.type.shape[1]} channels.")  # fmt: skip
    return act


def _pick(matrix: Any, index: int | tuple[int, ...]) -> Any:
    """Column ``index`` of ``(n, units)``, or, for one index per row, row ``i``'s ``index[i]``."""
    if isinstance(index, tuple):
        return matrix[pt.arange(matrix.shape[0]), np.asarray(index, dtype="int64")]
    return matrix[:, index]


def _channel(outputs: _Outputs, term: _Term) -> Any:
    rows = _channel_per_row(outputs, term)
    if rows is not None:
        return rows
    return _pick(_channels_first(_built(outputs, term)).mean(axis=-1), term.args[0])


def _channel_per_row(outputs: _Outputs, term: _Term) -> Any:
    """A channel per row of a convolution (``groups=1``, an elementwise nonlinearity or
    none): only the channel each row reads is computed (:meth:`~symnn.layers.Conv2D.
    channel_per_row`); None for any other term, which reads the whole layer."""
    channels = term.args[0]
    if not isinstance(channels, tuple):
        return None
    layer, _, call = outputs.call(term.layer)
    pre = term.preactivation
    if pre is None:
        pre = _default_preactivation(outputs.network, _resolve_layer(outputs.network,
                                                                     term.layer), False)
    if not per_row_channels(layer, pre):
        return None
    _check_index(channels, layer.out_channels, "channel", term)
    z = layer.channel_per_row(call.inputs[0], channels)
    return (z if pre else layer.activation(z)).mean(axis=(1, 2))


def _neuron(outputs: _Outputs, term: _Term) -> Any:
    act = _built(outputs, term)
    c, y, x = term.args
    if act.ndim == 2:
        return _pick(act, c)
    y = act.shape[2] // 2 if y is None else y
    x = act.shape[3] // 2 if x is None else x
    return _pick(act[:, :, y, x], c)


def _direction(outputs: _Outputs, term: _Term) -> Any:
    act = _channels_first(_built(outputs, term))
    vector = np.asarray(term.args[0], dtype=act.dtype)
    return pt.tensordot(act, vector, axes=[[1], [0]]).mean(axis=-1)


def _class_logit(outputs: _Outputs, term: _Term) -> Any:
    logits = Target.resolve(outputs.network, -1, preactivation=True).activations(outputs.x)
    return _pick(logits, term.args[0])


def _deepdream(outputs: _Outputs, term: _Term) -> Any:
    act = _channels_first(outputs.of(term.layer))
    return pt.sqr(act).mean(axis=(1, 2))


def _diversity(outputs: _Outputs, term: _Term) -> Any:
    flat = _channels_first(outputs.of(term.layer))  # (n, C, P)
    grams = pt.matmul(flat, flat.transpose(0, 2, 1))  # (n, C, C)
    norms = pt.sqrt(pt.maximum(pt.sqr(grams).sum(axis=(1, 2)), 1e-10))
    unit = grams / norms[:, None, None]
    pairs = pt.tensordot(unit, unit, axes=[[1, 2], [1, 2]])  # (n, n): cosine similarities
    itself = pt.sqr(unit).sum(axis=(1, 2))  # the diagonal of pairs: 1 (0 for a zero Gram)
    return (pairs.sum(axis=1) - itself) / pt.cast(pairs.shape[0], pairs.dtype)


_BUILDERS: dict[str, Callable[[_Outputs, _Term], Any]] = {
    "channel": _channel, "neuron": _neuron, "direction": _direction,
    "class_logit": _class_logit, "deepdream": _deepdream, "diversity": _diversity,
}  # fmt: skip


# -- checks before anything is built ----------------------------------------------------
def _n_channels(network: Layer, where: int | str) -> int | None:
    """The channels (units) of ``where`` when the layer says so without its input."""
    layer = _layer_at(network, _resolve_layer(network, where))
    return getattr(layer, "out_channels", None) or layer.output_size(None)


def _check_index(value: Any, n: int | None, what: str, term: _Term) -> None:
    for v in value if isinstance(value, tuple) else (value,):
        if n is not None and not 0 <= v < n:
            raise SymnnValueError(f"{term!r}: {what} {v} is out of range; the layer has {n} "
                                  f"(0..{n - 1}).")  # fmt: skip


def _check_term(network: Layer, term: _Term) -> None:
    if term.kind == "class_logit":
        target = Target.resolve(network, -1, preactivation=True)
        _check_index(term.args[0], target.n_units(), "class", term)
        return
    n = _n_channels(network, term.layer)
    if term.kind in ("channel", "neuron"):
        _check_index(term.args[0], n, "channel", term)
    if term.kind == "direction" and n is not None and len(term.args[0]) != n:
        raise SymnnValueError(
            f"{term!r}: the vector has {len(term.args[0])} values; the layer has {n} channels."
        )


# -- the terms ---------------------------------------------------------------------------
def _layer_arg(layer: Any) -> int | str:
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer | str):
        raise SymnnTypeError(f"layer must be a layer's name or position; got {layer!r}.")
    return layer if isinstance(layer, str) else int(layer)


def _index_arg(value: Any, name: str, *, optional: bool = False,
               per_row: bool = False) -> int | tuple[int, ...] | None:  # fmt: skip
    """An index, or with ``per_row`` a sequence of them (one per row of the batch)."""
    if value is None and optional:
        return None
    if per_row and isinstance(value, range | list | tuple | np.ndarray):
        values = tuple(_index_arg(v, name) for v in np.asarray(value).ravel().tolist())
        if not values:
            raise SymnnValueError(f"{name} is an empty sequence; expected one index per row.")
        return values
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise SymnnValueError(f"{name} must be an index >= 0; got {value!r}.")
    return int(value)


def _single(kind: str, layer: Any, *args: Any, preactivation: bool | None = None) -> Objective:
    if preactivation not in (None, True, False):
        raise SymnnValueError(f"preactivation={preactivation!r}: expected None, True or False.")
    layer = None if layer is None else _layer_arg(layer)
    return Objective(((1.0, _Term(kind, layer, args, preactivation)),))


def channel(layer: int | str, c: int | Any, *, preactivation: bool | None = None) -> Objective:
    """Channel ``c`` of ``layer`` averaged over the image (a dense layer: unit ``c``); a
    sequence ``c`` gives row ``i`` of the batch channel ``c[i]`` (many channels, one step).
    ``preactivation``: read the channel before the layer's nonlinearity; by default (None)
    as ``activation_maximization`` does, before a rectifier (relu, leaky_relu, elu,
    softplus: a channel that is off at the start gets no gradient) and after any other.
    With one index per row of a :class:`~symnn.layers.Conv2D` (``groups=1``, an
    elementwise nonlinearity), only the channel each row reads is computed
    (:meth:`~symnn.layers.Conv2D.channel_per_row`), with the same values and gradients."""
    c = _index_arg(c, "c", per_row=True)
    return _single("channel", layer, c, preactivation=preactivation)


def neuron(layer: int | str, c: int, y: int | None = None, x: int | None = None, *,
           preactivation: bool | None = None) -> Objective:  # fmt: skip
    """Channel ``c`` of ``layer`` at position ``(y, x)`` (default the centre, Lucid's
    ``shape // 2``); a dense layer's unit ``c`` (then ``y`` and ``x`` must be None).
    ``preactivation`` as for :func:`channel`."""
    c = _index_arg(c, "c", per_row=True)
    y, x = _index_arg(y, "y", optional=True), _index_arg(x, "x", optional=True)
    return _single("neuron", layer, c, y, x, preactivation=preactivation)


def direction(layer: int | str, vector: Any) -> Objective:
    """The dot product of ``layer``'s activation with ``vector`` (one value per channel) at
    each position, averaged over the image (Lucid's ``direction``, ``cossim_pow=0``)."""
    vec = np.asarray(vector, dtype="float64")
    if vec.ndim != 1 or not len(vec) or not np.isfinite(vec).all():
        raise SymnnValueError(
            f"vector must be a finite 1-D array (one value per channel); got shape {vec.shape}."
        )
    return _single("direction", layer, tuple(vec.tolist()))


def class_logit(k: int | Any) -> Objective:
    """The output layer's pre-activation (the logit) of class ``k``; a sequence ``k`` gives
    row ``i`` of the batch class ``k[i]``."""
    return _single("class_logit", None, _index_arg(k, "k", per_row=True))


def deepdream(layer: int | str) -> Objective:
    """The mean of ``layer``'s squared activations (DeepDream's objective)."""
    return _single("deepdream", layer)


def diversity(layer: int | str) -> Objective:
    """How alike each row's ``layer`` activations are to the other rows' (cosine similarity
    of Gram matrices of channels, Lucid's ``diversity``); subtract it to make rows differ."""
    return _single("diversity", layer)


# -- the command line's form ---------------------------------------------------------------
_MAKERS: dict[str, tuple[Callable[..., Objective], int, int]] = {
    # name: (maker, least, most arguments after the name)
    "channel": (channel, 2, 2), "neuron": (neuron, 2, 4), "class_logit": (class_logit, 1, 1),
    "deepdream": (deepdream, 1, 1), "diversity": (diversity, 1, 1),
}  # fmt: skip

_TOKEN = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)\s*\*\s*)?([^\s+*]+)")


def _term_from_text(text: str, spec: str) -> Objective:
    name, *fields = text.split(":")
    if name not in _MAKERS:
        raise SymnnValueError(
            f"objective={spec!r}: {name!r} is not an objective; expected one of "
            f"{', '.join(_MAKERS)} (direction takes a vector: build it in Python)."
        )
    maker, least, most = _MAKERS[name]
    if not least <= len(fields) <= most:
        raise SymnnValueError(
            f"objective={spec!r}: {name} takes {least}"
            f"{'' if least == most else f' to {most}'} ':'-separated values; got {text!r}."
        )
    values = [int(f) if f.lstrip("-").isdigit() else f for f in fields]
    if name == "class_logit":
        return maker(*values)
    return maker(*values[:1], *[_as_int(v, text, spec) for v in values[1:]])


def _as_int(value: Any, text: str, spec: str) -> int:
    if not isinstance(value, int):
        raise SymnnValueError(f"objective={spec!r}: {value!r} in {text!r} is not an integer.")
    return value


def parse_objective(spec: str) -> Objective:
    """An :class:`Objective` from its command-line form: terms ``kind:layer[:c[:y:x]]``
    (``class_logit:k``) joined by ``+`` and ``-``, each optionally weighted ``w*``.

    >>> parse_objective("channel:conv1:3 - 0.5*diversity:conv1")
    channel('conv1', 3) - 0.5 * diversity('conv1')
    >>> parse_objective("neuron:2:5:0:1 + class_logit:7")
    neuron(2, 5, 0, 1) + class_logit(7)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SymnnValueError(f"objective must be a non-empty string; got {spec!r}.")
    total, pos, spec_text = None, 0, spec.strip()
    while pos < len(spec_text):
        match = _TOKEN.match(spec_text, pos)
        if not match or (total is not None and not match.group(1)):
            raise SymnnValueError(
                f"objective={spec!r}: cannot read it from position {pos} "
                f"({spec_text[pos:]!r}); expected terms like 'channel:conv1:3' joined by "
                "'+' or '-', each with an optional weight 'w*'."
            )
        sign, weight, text = match.groups()
        term = _term_from_text(text, spec)
        term = term * (float(weight) if weight else 1.0) * (-1.0 if sign == "-" else 1.0)
        total = term if total is None else total + term
        pos = match.end()
    return total
