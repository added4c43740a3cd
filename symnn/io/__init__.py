"""Persistence and exchange, in one package: symnn's own file (:mod:`~symnn.io.npz`: one
``.npz``, no pickle, exact resume), weights in PyTorch's layout
(:mod:`~symnn.io.state_dict`, from dicts, ``.npz`` or ``.safetensors`` read by
:mod:`~symnn.io.safetensors`), and ONNX graphs in and out (:mod:`~symnn.io.onnx`).

>>> from symnn.io import save, load, load_state_dict, from_onnx, to_onnx
"""

from .npz import FORMAT, VERSION, load, save
from .onnx import from_onnx, to_onnx
from .safetensors import read_safetensors, write_safetensors
from .state_dict import LoadReport, load_state_dict, read_weights

__all__ = [
    "save", "load", "load_state_dict", "LoadReport", "read_weights", "from_onnx", "to_onnx",
    "read_safetensors", "write_safetensors", "FORMAT", "VERSION",
]  # fmt: skip
