"""Deprecated location of :mod:`symnn.train.scipy` (kept for one release: removed in symnn
0.3)."""

import warnings

from .train.scipy import METHODS, FlatObjective, ScipyTrainer, minimize_flat, pack, unpack

__all__ = ["ScipyTrainer", "METHODS", "pack", "unpack", "minimize_flat", "FlatObjective"]

warnings.warn(
    "symnn.fullbatch moved to symnn.train.scipy (ScipyTrainer is also symnn.train.ScipyTrainer); "
    "import it from there (the old path goes in 0.3).",
    DeprecationWarning,
    stacklevel=2,
)
