"""Layers: objects that own shared parameters and map a symbolic tensor to another.

A layer or network is called on a symbolic tensor and returns a symbolic tensor
(``deterministic=True`` for inference); ``.params`` lists its trainable shared variables.
"""

from .base import Layer, attach_updates, get_updates
from .containers import Sequential, mlp
from .dense import Activation, Dense, PReLU
from .noise import Dropout
from .normalization import BatchNorm
from .registry import LAYER_CLASSES, layer_from_spec, layer_to_spec

__all__ = [
    "Layer",
    "Dense",
    "PReLU",
    "Activation",
    "LAYER_CLASSES",
    "layer_from_spec",
    "layer_to_spec",
    "Dropout",
    "BatchNorm",
    "Sequential",
    "mlp",
    "get_updates",
    "attach_updates",
]
