"""Update rules, constraints and learning-rate schedules.

Each rule returns a dict ``shared -> new expression`` for ``pytensor.function(updates=...)``;
optimiser state lives in new shared variables in the same dict.
"""

from .constraints import norm_constraint, total_norm_constraint
from .rules import (
    RULES,
    adadelta,
    adagrad,
    adam,
    adamax,
    apply_momentum,
    apply_nesterov_momentum,
    get_or_compute_grads,
    momentum,
    nesterov_momentum,
    rmsprop,
    sgd,
)
from .schedules import (
    Constant,
    ExponentialDecay,
    InverseTimeDecay,
    StepDecay,
    shared_learning_rate,
)

__all__ = [
    "sgd",
    "momentum",
    "nesterov_momentum",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamax",
    "apply_momentum",
    "apply_nesterov_momentum",
    "total_norm_constraint",
    "norm_constraint",
    "get_or_compute_grads",
    "RULES",
    "Constant",
    "ExponentialDecay",
    "StepDecay",
    "InverseTimeDecay",
    "shared_learning_rate",
]
