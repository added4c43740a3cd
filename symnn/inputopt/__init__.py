"""Input optimisation: the training machinery turned around, with the weights fixed.

:func:`maximize` runs projected gradient ascent (or scipy with box bounds) on the inputs of
any symbolic objective (:mod:`~symnn.inputopt.objectives` names them by layer and unit, Lucid's
objective algebra); :func:`visualize` renders such an objective under a Fourier, MaCo or
pixel parametrisation of the image (:mod:`~symnn.inputopt.param`);
:func:`activation_maximization` maximises units of a network, many units in one compiled call;
:func:`exhaustive_binary_maximum` checks binary problems exactly.
"""

from . import checks, objectives
from .activation import (
    ActivationReport,
    InputPenalties,
    Reference,
    UnitResult,
    activation_maximization,
    parse_units,
    unit_activations,
)
from .binary import (
    BinaryMaximum,
    evaluate_objective,
    exhaustive_binary_maximum,
    round_to_binary,
)
from .maximize import METHODS, MaximizeResult, maximize
from .priors import PRIORS, GaussianPrior, MixturePrior
from .render import Visualization, visualize

__all__ = [
    "maximize",
    "MaximizeResult",
    "objectives",
    "checks",
    "visualize",
    "Visualization",
    "METHODS",
    "activation_maximization",
    "ActivationReport",
    "InputPenalties",
    "Reference",
    "UnitResult",
    "unit_activations",
    "parse_units",
    "exhaustive_binary_maximum",
    "evaluate_objective",
    "BinaryMaximum",
    "round_to_binary",
    "GaussianPrior",
    "MixturePrior",
    "PRIORS",
]
