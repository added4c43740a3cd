"""Deprecated location of :mod:`symnn.train.compare` (kept for one release: removed in symnn
0.3)."""

import warnings

from .train.compare import *  # noqa: F403
from .train.compare import __all__  # noqa: F401

warnings.warn(
    "symnn.compare moved to symnn.train.compare; import it from there (the old path goes in "
    "0.3).",
    DeprecationWarning,
    stacklevel=2,
)
