"""scipy's optimisers on the flattened parameter vector: see :mod:`symnn.train.scipy` (this
module keeps the old import path)."""

from .train.scipy import METHODS, FlatObjective, ScipyTrainer, minimize_flat, pack, unpack

__all__ = ["ScipyTrainer", "METHODS", "pack", "unpack", "minimize_flat", "FlatObjective"]
