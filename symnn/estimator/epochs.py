"""scikit-learn's epoch rules as a :class:`~symnn.train.Callback`: the bookkeeping and
stopping of its ``_fit_stochastic`` (``loss_curve_``, ``t_``, ``n_iter_``, the
no-improvement count on the training loss or the validation score, the best weights, the
``invscaling`` and ``adaptive`` learning rates), so that ``tol``, ``n_iter_no_change`` and
``early_stopping`` mean what they mean in scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..train import Callback
from .settings import Settings

__all__ = ["SklearnEpochs"]

_MIN_ADAPTIVE_RATE = 1e-6  # scikit-learn's adaptive schedule stops below this rate


class SklearnEpochs(Callback):
    """Updates the estimator's fitted attributes after every epoch and stops training as
    scikit-learn would. ``validation`` is ``(X_val, y_val, w_val)`` (original labels or values,
    sample weights or None) when early stopping, else None."""

    def __init__(self, est: Any, settings: Settings, n_train: int, validation: tuple | None):
        self.est, self.settings, self.n_train = est, settings, n_train
        self.validation = validation
        self.best_values: list[np.ndarray] | None = None
        self.stopped = False

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> str | None:
        est = self.est
        est.n_iter_ += 1
        est.loss_ = float(logs["loss"])
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:  # scikit-learn's verbose output, asked for by the user
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")  # noqa: T201
        self._count_no_improvement(trainer)
        self._end_of_epoch_rate(trainer)
        if est._no_improvement_count <= est.n_iter_no_change:
            return None
        if self._lower_adaptive_rate(trainer):
            est._no_improvement_count = 0
            return None
        self.stopped = True
        watched = "Validation score" if self.validation else "Training loss"
        return (
            f"{watched} did not improve more than tol={est.tol:f} for "
            f"{est.n_iter_no_change} consecutive epochs."
        )

    def _count_no_improvement(self, trainer) -> None:
        est = self.est
        if self.validation is not None:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")  # noqa: T201
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_values = trainer.network.get_values()
            return
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])

    def _end_of_epoch_rate(self, trainer) -> None:
        """``invscaling``: ``learning_rate_init / (t_ + 1) ** power_t`` (samples seen)."""
        if self.settings.solver == "sgd" and self.settings.schedule == "invscaling":
            rate = self.settings.learning_rate_init / (self.est.t_ + 1) ** self.est.power_t
            trainer.set_learning_rate(rate)

    def _lower_adaptive_rate(self, trainer) -> bool:
        """``adaptive``: divide the rate by 5 instead of stopping, down to 1e-6."""
        if self.settings.solver != "sgd" or self.settings.schedule != "adaptive":
            return False
        rate = trainer.current_learning_rate()
        if rate <= _MIN_ADAPTIVE_RATE:
            return False
        trainer.set_learning_rate(rate / 5.0)
        return True
