"""Training: one compiled step, the fit loop, scipy's optimisers, callbacks and stopping
rules."""

from .base import BaseTrainer
from .callbacks import (
    Callback,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    MaxUpdates,
    PatienceRule,
    ProgressBar,
    StopTraining,
    Tolerance,
)
from .history import History, Stop, StopReason
from .objective import Evaluator, Objective
from .scipy import ScipyTrainer
from .state import RunState
from .step import TrainStep, compile_train_step, guard_updates
from .trainer import DEFAULTS, LOSSES, Trainer

__all__ = [
    "Stop",
    "BaseTrainer",
    "Trainer",
    "ScipyTrainer",
    "DEFAULTS",
    "LOSSES",
    "Objective",
    "Evaluator",
    "RunState",
    "StopReason",
    "TrainStep",
    "compile_train_step",
    "guard_updates",
    "History",
    "Callback",
    "LambdaCallback",
    "EarlyStopping",
    "PatienceRule",
    "MaxUpdates",
    "Tolerance",
    "LearningRateScheduler",
    "ProgressBar",
    "StopTraining",
]
