"""Layers: objects that own shared parameters and map a symbolic tensor to another.

A layer or network is called on a symbolic tensor and returns a symbolic tensor
(``deterministic=True`` for inference); ``.params`` lists its trainable shared variables.
"""

from .arch import from_arch
from .base import (
    LAYER_CLASSES,
    Layer,
    attach_updates,
    get_updates,
    layer_from_spec,
    layer_to_spec,
    register,
)
from .containers import Sequential, mlp
from .conv import AvgPool2D, Conv2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from .dense import Activation, Dense, PReLU
from .elementwise import Arithmetic, Elementwise, Reduce, Softmax, Take
from .embedding import Embedding, TimeDistributed
from .graph import Graph, Input
from .merge import (
    Add,
    Concat,
    Divide,
    MatMul,
    Maximum,
    MergeLayer,
    Minimum,
    Multiply,
    Power,
)
from .noise import Dropout, KeepMask
from .normalization import BatchNorm, LocalResponseNorm
from .recurrent import GRU, LSTM, RNN, Bidirectional
from .resize import Interpolation, Resize
from .shape import Flatten, Normalize, Reshape
from .spatial import ChannelShuffle, Pad, Transpose, Upsample2D
from .transposed import ConvTranspose2D
from .window_pool import WindowPool
from .zoo import inception_block, residual_block, resnet

__all__ = [
    "Layer",
    "Dense",
    "PReLU",
    "Activation",
    "Elementwise",
    "Softmax",
    "Arithmetic",
    "Reduce",
    "Take",
    "RNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "Embedding",
    "TimeDistributed",
    "LAYER_CLASSES",
    "layer_from_spec",
    "layer_to_spec",
    "register",
    "Dropout",
    "KeepMask",
    "BatchNorm",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "WindowPool",
    "ConvTranspose2D",
    "LocalResponseNorm",
    "Transpose",
    "ChannelShuffle",
    "Pad",
    "Upsample2D",
    "Resize",
    "Interpolation",
    "Flatten",
    "Reshape",
    "Normalize",
    "Sequential",
    "Graph",
    "Input",
    "MergeLayer",
    "Concat",
    "Add",
    "Multiply",
    "Maximum",
    "Minimum",
    "Divide",
    "Power",
    "MatMul",
    "mlp",
    "resnet",
    "residual_block",
    "inception_block",
    "from_arch",
    "get_updates",
    "attach_updates",
]
