"""Rebuilding layers from their JSON description: the registry lives in
:mod:`symnn.layers.base` (where every layer class registers itself); this module keeps the
old import path."""

from .base import LAYER_CLASSES, layer_from_spec, layer_to_spec, register

__all__ = ["LAYER_CLASSES", "layer_to_spec", "layer_from_spec", "register"]
