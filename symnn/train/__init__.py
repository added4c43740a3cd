"""Training: one compiled step, the fit loop, callbacks and stopping rules."""

from .callbacks import (
    Callback,
    EarlyStopping,
    LambdaCallback,
    PatienceRule,
    ProgressBar,
    StopTraining,
)
from .history import History
from .step import TrainStep, compile_train_step, guard_updates
from .trainer import LOSSES, Trainer

__all__ = [
    "Trainer",
    "LOSSES",
    "TrainStep",
    "compile_train_step",
    "guard_updates",
    "History",
    "Callback",
    "LambdaCallback",
    "EarlyStopping",
    "PatienceRule",
    "ProgressBar",
    "StopTraining",
]
