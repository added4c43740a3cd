"""Deprecated location of :mod:`symnn.io.onnx` (kept for one release: removed in symnn
0.3)."""

import warnings

from .io.onnx import *  # noqa: F403
from .io.onnx import __all__  # noqa: F401

warnings.warn(
    "symnn.onnx_io moved to symnn.io.onnx; import it from there "
    "(the old path goes in 0.3).",
    DeprecationWarning,
    stacklevel=2,
)
