"""Deprecated location of the layer registry, which lives in :mod:`symnn.layers.base` and is
exported by :mod:`symnn.layers` (kept for one release: removed in symnn 0.3)."""

import warnings

from .base import LAYER_CLASSES, layer_from_spec, layer_to_spec, register

__all__ = ["LAYER_CLASSES", "layer_to_spec", "layer_from_spec", "register"]

warnings.warn(
    "symnn.layers.registry is deprecated; import register, layer_to_spec and layer_from_spec "
    "from symnn.layers (the old path goes in 0.3).",
    DeprecationWarning,
    stacklevel=2,
)
