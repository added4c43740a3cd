"""What an estimator's hyperparameters mean: scikit-learn's names, checked and resolved into
the settings of symnn's trainers (an update rule, a scipy method, a learning-rate schedule).

symnn's former spellings (``optimizer=``, ``learning_rate=<float>``, ``max_epochs=``) still
work for one release with a ``FutureWarning`` naming the new one. Hyperparameters that have
no effect with the chosen solver are accepted, as scikit-learn accepts them, with a warning
naming them (when set to something other than their default).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend.threads import check_blas_threads
from ..errors import SymnnValueError
from ..train.scipy import METHODS as SCIPY_METHODS
from ..updates import RULES
from ..utils import as_float_dtype

__all__ = ["Settings", "resolve", "ACTIVATIONS", "STOCHASTIC", "FULL_BATCH"]

#: scikit-learn's activation names (and symnn's) -> symnn nonlinearity
ACTIVATIONS = {
    "identity": "linear",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "linear": "linear",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "softplus": "softplus",
}
#: minibatch solvers: scikit-learn's two and symnn's other update rules
STOCHASTIC = ("sgd", "adam", "momentum", "nesterov_momentum", "adagrad", "rmsprop", "adadelta",
              "adamax")  # fmt: skip
#: full-batch solvers: scikit-learn's ``lbfgs`` and symnn's other scipy methods
FULL_BATCH = ("lbfgs", *sorted(m for m in SCIPY_METHODS if m != "lbfgs"))
SCHEDULES = ("constant", "invscaling", "adaptive")


@dataclass(frozen=True)
class Settings:
    """The resolved meaning of an estimator's hyperparameters."""

    solver: str
    learning_rate_init: float
    schedule: str
    max_iter: int
    rule: str | None = None  #: symnn update rule of a minibatch solver
    rule_kwargs: dict[str, Any] = field(default_factory=dict)
    scipy_method: str | None = None  #: scipy method of a full-batch solver

    @property
    def stochastic(self) -> bool:
        return self.rule is not None


def _deprecated(est, old: str, new: str, value: Any) -> None:
    warnings.warn(
        f"{old}= is deprecated and will be removed in the next release; use {new}={value!r} "
        "(scikit-learn's name).",
        FutureWarning,
        stacklevel=5,
    )


def _spellings(est) -> tuple[str, float, str, int]:
    """(solver, learning_rate_init, schedule, max_iter), with the former spellings."""
    solver, lr_init, schedule, max_iter = (
        est.solver, est.learning_rate_init, est.learning_rate, est.max_iter)  # fmt: skip
    if getattr(est, "optimizer", None) is not None:  # MLPClassifier's former spellings
        _deprecated(est, "optimizer", "solver", est.optimizer)
        solver = est.optimizer
    if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
        _deprecated(est, "learning_rate=<number>", "learning_rate_init", schedule)
        lr_init, schedule = schedule, "constant"
    if getattr(est, "max_epochs", None) is not None:
        _deprecated(est, "max_epochs", "max_iter", est.max_epochs)
        max_iter = est.max_epochs
    return solver, lr_init, schedule, max_iter


def _check_number(value: Any, name: str, *, low: float, strict: bool, integer: bool = False):
    ok = isinstance(value, numbers.Integral if integer else numbers.Real)
    ok = ok and not isinstance(value, bool) and (value > low if strict else value >= low)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise SymnnValueError(
            f"{name}={value!r} is not valid; expected {kind} {'>' if strict else '>='} {low}."
        )


def _check_ranges(est, lr_init: float, max_iter: int) -> None:
    _check_number(lr_init, "learning_rate_init", low=0, strict=True)
    _check_number(max_iter, "max_iter", low=1, strict=False, integer=True)
    _check_number(est.alpha, "alpha", low=0, strict=False)
    _check_number(est.tol, "tol", low=0, strict=False)
    _check_number(est.power_t, "power_t", low=0, strict=False)
    _check_number(est.max_fun, "max_fun", low=1, strict=False, integer=True)
    _check_number(est.epsilon, "epsilon", low=0, strict=True)
    if not est.n_iter_no_change == np.inf:
        _check_number(est.n_iter_no_change, "n_iter_no_change", low=1, strict=False, integer=True)
    if not 0 <= est.momentum <= 1:
        raise SymnnValueError(f"momentum={est.momentum!r} must be in [0, 1].")
    for name in ("beta_1", "beta_2"):
        if not 0 <= getattr(est, name) < 1:
            raise SymnnValueError(f"{name}={getattr(est, name)!r} must be in [0, 1).")
    if not 0 < est.validation_fraction < 1:
        raise SymnnValueError(f"validation_fraction={est.validation_fraction!r} must be in (0, 1).")
    batch = est.batch_size
    if not (isinstance(batch, str) and batch == "auto"):
        _check_number(batch, "batch_size", low=1, strict=False, integer=True)


def _check_names(est, solver: str, schedule: str) -> None:
    choices = {"solver": (solver, STOCHASTIC + FULL_BATCH),
               "learning_rate": (schedule, SCHEDULES)}  # fmt: skip
    for name, (value, allowed) in choices.items():
        if not isinstance(value, str) or value not in allowed:
            raise SymnnValueError(
                f"{name}={value!r} is not known; expected one of {', '.join(allowed)}."
            )
    as_float_dtype(est.dtype, name="dtype")
    check_blas_threads(est.blas_threads)


def _rule(est, solver: str) -> tuple[str, dict[str, Any]]:
    if solver == "sgd":
        if est.momentum == 0:
            return "sgd", {}
        name = "nesterov_momentum" if est.nesterovs_momentum else "momentum"
        return name, {"momentum": float(est.momentum)}
    if solver == "adam":
        return "adam", {"beta1": float(est.beta_1), "beta2": float(est.beta_2),
                        "epsilon": float(est.epsilon)}  # fmt: skip
    return solver, {}


#: hyperparameter -> the solvers (or schedules) it acts on
_USED_BY = {
    "learning_rate_init": STOCHASTIC,
    "batch_size": STOCHASTIC,
    "shuffle": STOCHASTIC,
    "early_stopping": STOCHASTIC,
    "learning_rate": ("sgd",),
    "momentum": ("sgd",),
    "nesterovs_momentum": ("sgd",),
    "beta_1": ("adam",),
    "beta_2": ("adam",),
    "epsilon": ("adam",),
    "max_fun": FULL_BATCH,
}


def _warn_unused(est, solver: str, schedule: str) -> None:
    """scikit-learn accepts every hyperparameter; say which ones this solver does not use."""
    defaults = type(est)().get_params()
    numeric_rate = not isinstance(est.learning_rate, str)  # the deprecated spelling: used
    unused = [n for n, used in _USED_BY.items()
              if solver not in used and getattr(est, n) != defaults[n]
              and not (n == "learning_rate" and numeric_rate)]  # fmt: skip
    if schedule != "invscaling" and est.power_t != defaults["power_t"] and solver == "sgd":
        unused.append("power_t")
    if unused:
        given = ", ".join(f"{n}={getattr(est, n)!r}" for n in unused)
        warnings.warn(
            f"{given} {'has' if len(unused) == 1 else 'have'} no effect with solver={solver!r}"
            + (f" and learning_rate={schedule!r}" if "power_t" in unused else "")
            + "; ignored.",
            UserWarning,
            stacklevel=5,
        )


def resolve(est) -> Settings:
    """Check ``est``'s hyperparameters (naming any bad one) and resolve their meaning."""
    solver, lr_init, schedule, max_iter = _spellings(est)
    _check_names(est, solver, schedule)
    _check_ranges(est, lr_init, max_iter)
    _warn_unused(est, solver, schedule)
    if solver in FULL_BATCH:
        method = "l-bfgs-b" if solver == "lbfgs" else solver
        return Settings(solver, float(lr_init), schedule, int(max_iter), scipy_method=method)
    rule, kwargs = _rule(est, solver)
    if rule not in RULES:  # pragma: no cover - STOCHASTIC names are rules
        raise SymnnValueError(f"solver={solver!r} has no update rule.")
    return Settings(solver, float(lr_init), schedule, int(max_iter), rule, kwargs)
