"""Deprecated location of :mod:`symnn.io.state_dict` (kept for one release: removed in symnn
0.3)."""

import warnings

from .io.state_dict import *  # noqa: F403
from .io.state_dict import __all__  # noqa: F401

warnings.warn(
    "symnn.state_dict moved to symnn.io.state_dict; import it from there "
    "(the old path goes in 0.3).",
    DeprecationWarning,
    stacklevel=2,
)
