"""Deprecated location of :mod:`symnn.backend.threads` (kept for one release)."""

import warnings

from .backend.threads import *  # noqa: F403
from .backend.threads import __all__  # noqa: F401

warnings.warn(
    "symnn.threads moved to symnn.backend.threads; import it from there (the old path goes in "
    "0.3).",
    DeprecationWarning,
    stacklevel=2,
)
