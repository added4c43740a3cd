"""Rebuilding layers from their JSON description (for :mod:`symnn.io`)."""

from __future__ import annotations

from typing import Any

from ..errors import SymnnValueError
from .base import Layer
from .containers import Sequential
from .dense import Activation, Dense, PReLU
from .noise import Dropout
from .normalization import BatchNorm

__all__ = ["LAYER_CLASSES", "layer_to_spec", "layer_from_spec"]

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, PReLU, Activation, Dropout, BatchNorm, Sequential)
}


def layer_to_spec(layer: Layer) -> dict[str, Any]:
    """``{"class": name, "config": {...}}`` for a layer symnn can rebuild."""
    name = type(layer).__name__
    if LAYER_CLASSES.get(name) is not type(layer):
        raise SymnnValueError(
            f"{name} is not a symnn layer that can be saved; expected one of "
            f"{', '.join(LAYER_CLASSES)}."
        )
    return {"class": name, "config": layer.get_config()}


def layer_from_spec(spec: Any) -> Layer:
    """Rebuild a layer (weights freshly allocated; the caller sets their values)."""
    if not isinstance(spec, dict) or "class" not in spec or "config" not in spec:
        raise SymnnValueError(
            "the architecture is malformed: expected {'class': ..., 'config': ...} for each layer."
        )
    cls = LAYER_CLASSES.get(spec["class"])
    if cls is None:
        raise SymnnValueError(
            f"unknown layer class {spec['class']!r} in the architecture; "
            f"expected one of {', '.join(LAYER_CLASSES)}."
        )
    try:
        return cls.from_config(dict(spec["config"]))
    except (TypeError, KeyError) as exc:
        raise SymnnValueError(f"bad configuration for {spec['class']}: {exc}") from None
