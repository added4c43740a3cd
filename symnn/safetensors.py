"""Deprecated location of :mod:`symnn.io.safetensors` (kept for one release: removed in symnn
0.3)."""

import warnings

from .io.safetensors import *  # noqa: F403
from .io.safetensors import __all__  # noqa: F401

warnings.warn(
    "symnn.safetensors moved to symnn.io.safetensors; import it from there "
    "(the old path goes in 0.3).",
    DeprecationWarning,
    stacklevel=2,
)
