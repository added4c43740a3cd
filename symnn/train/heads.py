"""What each output of a network is trained for: a loss and a weight per output, as Keras'
``compile(loss=[...], loss_weights=[...])`` has them. A network of one output has one head;
a :class:`~symnn.layers.Graph` of several outputs has one per output, named after the layer
that makes it, and its targets are one array per output (``fit(X, [y_a, y_b])``)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import costs
from ..errors import SymnnTypeError, SymnnValueError
from ..utils import check_choice, describe

__all__ = ["Head", "make_heads", "check_targets_kind", "TARGET_KINDS"]

#: what the targets of one output are: integer class labels or float values
TARGET_KINDS = ("labels", "values")


@dataclass(frozen=True)
class Head:
    """One output of a network: its name, its per-example loss and the loss's weight in the
    objective, and the output's width (its last axis; None when unknown)."""

    name: str
    loss_name: str
    loss_fn: Callable
    weight: float = 1.0
    width: int | None = None


def make_heads(network: Any, loss: Any, loss_weights: Any = None) -> tuple[Head, ...]:
    """The heads of ``network``: ``loss`` is one loss for every output (a name from
    :data:`symnn.costs.LOSSES` or a callable), a list of one per output, or a dict by output
    name; ``loss_weights`` likewise (numbers >= 0; default 1 each).

    >>> from symnn.layers import mlp
    >>> [(h.name, h.loss_name, h.weight) for h in make_heads(mlp([2, 3]), "squared_error")]
    [('output', 'squared_error', 1.0)]
    """
    names, widths = _outputs(network)
    losses = _per_output(loss, names, "loss")
    weights = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights")
    heads = []
    for name, width, value, weight in zip(names, widths, losses, weights):
        label = "loss" if len(names) == 1 else f"loss for output {name!r}"
        heads.append(Head(name, *_loss(value, label), _weight(weight, name), width))
    return tuple(heads)


def check_targets_kind(kind: Any, n_heads: int, name: str = "targets") -> str:
    """``kind`` checked: ``"labels"`` or ``"values"``, or for several outputs one of them
    per output joined by commas (``"labels,values"``)."""
    if not isinstance(kind, str):
        raise SymnnTypeError(f"{name} must be a string; got {describe(kind)}.")
    parts = kind.split(",")
    if len(parts) != n_heads:
        want = "'labels' or 'values'" if n_heads == 1 else f"{n_heads} kinds joined by commas"
        raise SymnnValueError(f"{name}={kind!r} has {len(parts)} kinds; expected {want}.")
    return ",".join(check_choice(p, name, list(TARGET_KINDS)) for p in parts)


def _outputs(network: Any) -> tuple[list[str], list[int | None]]:
    refs = getattr(network, "output_refs", None)
    if not refs or len(refs) == 1:
        return ["output"], [getattr(network, "n_out", None)]
    names = network.output_names()
    names = [n if names.count(n) == 1 else f"{n}_{k}" for k, n in enumerate(names)]
    widths = [s[-1] if s else None for s in network.output_shapes_per_sample()]
    return names, widths


def _per_output(value: Any, names: list[str], what: str) -> list:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names), key=str)
        missing = [n for n in names if n not in value]
        if unknown or missing:
            problem = f"names no output {unknown[0]!r}" if unknown else f"lacks {missing[0]!r}"
            raise SymnnValueError(
                f"{what} {problem}; expected one entry per output: {', '.join(names)}."
            )
        return [value[n] for n in names]
    if isinstance(value, list | tuple):
        if len(value) != len(names):
            raise SymnnValueError(
                f"{what} has {len(value)} entries; the network has {len(names)} output(s) "
                f"({', '.join(names)})."
            )
        return list(value)
    return [value] * len(names)


def _loss(value: Any, label: str) -> tuple[str, Callable]:
    if isinstance(value, str):
        name = check_choice(value, label, costs.LOSSES)
        return name, costs.LOSSES[name]
    if callable(value):
        return getattr(value, "__name__", "custom"), value
    raise SymnnTypeError(f"{label} must be a name or a callable; got {describe(value)}.")


def _weight(value: Any, name: str) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise SymnnValueError(
            f"loss_weights for output {name!r} is {value!r}; expected a finite number >= 0."
        )
    return float(value)
