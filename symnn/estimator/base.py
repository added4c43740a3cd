"""The machinery every symnn estimator shares: scikit-learn's training hyperparameters, data
validation, delegation to :class:`symnn.train.Trainer` / :class:`symnn.train.ScipyTrainer`
with scikit-learn's epoch rules, pickling without compiled functions; and the classifier and
regressor halves (targets, output activation and loss, predictions).

An estimator family defines only its architecture: :meth:`BaseNetEstimator._build_network`
(``MLPClassifier``: scikit-learn's dense network and initialisation; ``NetClassifier``: any
symnn network from a builder).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ..errors import SymnnValueError
from ..layers import Layer, layer_from_spec, layer_to_spec
from ..train import ScipyTrainer, StopReason, Trainer
from ..utils import as_float_dtype
from .epochs import SklearnEpochs
from .settings import Settings, resolve

__all__ = ["BaseNetEstimator", "ClassifierPart", "RegressorPart", "TRAINING_DEFAULTS"]

_REBUILD_LOCK = threading.Lock()

#: scikit-learn's training hyperparameters (and symnn's ``dtype``, ``blas_threads``) with
#: their defaults, shared by every estimator family
TRAINING_DEFAULTS: dict[str, Any] = dict(
    solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
    learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True, random_state=None,
    tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
    early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
    n_iter_no_change=10, max_fun=15000, dtype="float32", blas_threads="auto",
)  # fmt: skip


class _OptimizerView:
    def __init__(self, trainer):
        self._trainer = trainer

    @property
    def learning_rate(self) -> float:
        return float(self._trainer.current_learning_rate())


def resolve_quietly(est) -> Settings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resolve(est)


@dataclass(frozen=True)
class _Data:
    """The rows of one fit: inputs, original targets, the network's targets, weights."""

    X: np.ndarray
    y: Any
    targets: np.ndarray
    w: np.ndarray | None = None


class BaseNetEstimator(BaseEstimator):
    """Validation, training and pickling of a network estimator; subclasses store the
    hyperparameters and build the network."""

    # -- what subclasses define ---------------------------------------------------------
    def _build_network(self, n_outputs: int, rng: np.random.RandomState) -> Layer:
        """A new network for ``n_features_in_`` inputs and ``n_outputs`` outputs, ending in
        the output activation of :meth:`_output`, its weights drawn from ``rng``."""
        raise NotImplementedError

    def _check_architecture(self) -> None:
        """Raise ``SymnnValueError`` naming a bad architecture hyperparameter."""

    def _targets(self, y, incremental: bool) -> np.ndarray:
        """``y`` as the network's training targets (labels or float columns)."""
        raise NotImplementedError

    def _output(self) -> tuple[str, str]:
        """(output activation, loss name) for the fitted targets."""
        raise NotImplementedError

    def _validation_score(self, X, y, sample_weight=None) -> float:
        raise NotImplementedError

    def _check_solver(self) -> bool:
        """``partial_fit`` exists only for minibatch solvers (as in scikit-learn)."""
        if resolve_quietly(self).scipy_method is not None:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is "
                "not stochastic."
            )
        return True

    @property
    def _optimizer(self) -> _OptimizerView:
        """scikit-learn's optimizer attribute, as far as its tests read it: the current
        ``learning_rate``."""
        check_is_fitted(self, "network_")
        return _OptimizerView(self._trainer)

    # -- validation ---------------------------------------------------------------------
    def _check_X(self, X, y: Any = "no_validation", reset: bool = True):
        """``X`` (and ``y``) validated as scikit-learn does; sparse ``X`` made dense, then
        cast to ``dtype`` with a clear error where a float64 value overflows it."""
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, reset=reset, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32))  # fmt: skip
        else:
            X, y = validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"],
                                 multi_output=True, dtype=(np.float64, np.float32),
                                 y_numeric=not isinstance(self, ClassifierMixin))  # fmt: skip
        X = X.toarray() if sp.issparse(X) else X
        if isinstance(self, ClassifierMixin) and getattr(y, "ndim", 0) == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        dtype = np.dtype(as_float_dtype(self.dtype))
        if X.dtype != dtype and X.size:
            big = float(np.max(np.abs(X)))
            if big > np.finfo(dtype).max:
                raise SymnnValueError(
                    f"X has a value of magnitude {big:.3g}, beyond the range of dtype="
                    f"{dtype.name!r} (max {np.finfo(dtype).max:.3g}); scale the data or "
                    "use dtype='float64'."
                )
        X = np.ascontiguousarray(X, dtype=dtype)
        return X if isinstance(y, str) and y == "no_validation" else (X, y)

    # -- training -----------------------------------------------------------------------
    def _new_trainer(self, settings: Settings, n_outputs: int, rng) -> Trainer | ScipyTrainer:
        loss = self._output()[1]
        network = getattr(self, "network_", None)
        if network is None or not self._continues:
            network = self._build_network(n_outputs, rng)
        seed = int(rng.randint(2**31 - 1))
        common = dict(loss=loss, l2=self.alpha, penalty_per_row=True, seed=seed,
                      blas_threads=self.blas_threads)  # fmt: skip
        if not settings.stochastic:
            options = {"maxfun": int(self.max_fun), "gtol": float(self.tol)}
            return ScipyTrainer(network, method=settings.scipy_method, options=options, **common)
        return Trainer(network, optimizer=settings.rule, **common,
                       learning_rate=settings.learning_rate_init,
                       **settings.rule_kwargs)  # fmt: skip

    def _reset_fitted(self, n_outputs: int) -> None:
        """scikit-learn's ``_initialize``: the attributes of a first fit."""
        self.n_iter_, self.t_ = 0, 0
        self.n_outputs_ = n_outputs
        self.out_activation_ = self._output()[0]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_, self.best_validation_score_ = None, None
            self.best_loss_ = np.inf

    def _fit(self, X, y, sample_weight=None, *, incremental: bool) -> BaseNetEstimator:
        self._check_architecture()
        settings = resolve(self)
        first = not hasattr(self, "network_") or not (self.warm_start or incremental)
        X, y = self._check_X(X, y, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        targets = self._targets(y, incremental)
        n_outputs = targets.shape[1] if targets.ndim == 2 else len(self.classes_)
        rng = check_random_state(self.random_state)
        self._continues = not first
        if first:
            self._reset_fitted(n_outputs)
        keep_trainer = incremental and getattr(self, "_trainer", None) is not None
        if not keep_trainer:  # scikit-learn: a new optimizer unless partial_fit continues
            self._trainer = self._new_trainer(settings, n_outputs, rng)
        self.network_ = self._trainer.network
        data = _Data(X, y, targets, sample_weight)
        if settings.stochastic:
            self._fit_stochastic(settings, data, rng, incremental)
        else:
            self._fit_full_batch(settings, data)
        if not all(np.isfinite(v).all() for v in self.network_.get_values()):
            raise SymnnValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        return self

    def _fit_stochastic(self, settings, data: _Data, rng, incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise SymnnValueError("partial_fit does not support early_stopping=True")
        validation, train = None, data
        if self.early_stopping:
            train, validation = self._split(data, rng)
        n_train = len(train.X)
        batch = min(200, n_train) if self.batch_size == "auto" else self.batch_size
        if batch > n_train:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped", UserWarning, stacklevel=4)  # fmt: skip
        rule = SklearnEpochs(self, settings, n_train, validation)
        self.n_iter_ = 0
        history = self._trainer.fit(
            train.X, train.targets, epochs=1 if incremental else settings.max_iter,
            batch_size=int(np.clip(batch, 1, n_train)), shuffle=bool(self.shuffle),
            callbacks=[rule], progress=False, sample_weight=train.w)  # fmt: skip
        if history.stopped_by is StopReason.INTERRUPTED:
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=4)
        if history.stopped_by is StopReason.NON_FINITE:
            if self.early_stopping:
                self.validation_scores_.append(np.nan)
            warnings.warn(
                f"Training stopped in epoch {self.n_iter_ + 1}: {history.stop_reason}. The "
                "weights are those of the last finite update; lower learning_rate_init or "
                "scale the data.", ConvergenceWarning, stacklevel=4)  # fmt: skip
        if self.early_stopping and rule.best_values is not None:
            self.network_.set_values(rule.best_values)
        if not incremental and not rule.stopped and self.n_iter_ == settings.max_iter:
            message = (f"Stochastic Optimizer: Maximum iterations ({settings.max_iter}) reached "
                       "and the optimization hasn't converged yet.")  # fmt: skip
            warnings.warn(message, ConvergenceWarning, stacklevel=4)

    def _split(self, data: _Data, rng) -> tuple[_Data, tuple]:
        """scikit-learn's early-stopping split (stratified for single-output classifiers):
        the training part, and ``(X_val, y_val, w_val)`` with the original targets."""
        single = isinstance(self, ClassifierMixin) and self.n_outputs_ == 1
        stratify = data.targets.astype(bool) if single else None
        arrays = [data.X, data.targets, data.y] + ([] if data.w is None else [data.w])
        parts = train_test_split(*arrays, random_state=rng, test_size=self.validation_fraction,
                                 stratify=stratify)  # fmt: skip
        train, val = parts[0::2], parts[1::2]
        if len(val[0]) < 2:
            raise SymnnValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        w_train, w_val = (train[3], val[3]) if data.w is not None else (None, None)
        return _Data(train[0], train[2], train[1], w_train), (val[0], val[2], w_val)

    def _fit_full_batch(self, settings: Settings, data: _Data) -> None:
        history = self._trainer.fit(data.X, data.targets, maxiter=settings.max_iter, tol=None,
                                    progress=bool(self.verbose), sample_weight=data.w)  # fmt: skip
        self.n_iter_ = len(history)
        self.loss_ = self._final_loss(data, history)
        self.loss_curve_ = list(history["loss"]) if len(history) else []
        if history.stopped_by is StopReason.SCIPY_LIMIT:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"({history.stop_reason}). Increase the number of iterations (max_iter) or "
                "scale the data.", ConvergenceWarning, stacklevel=4)  # fmt: skip

    def _final_loss(self, data: _Data, history) -> float:
        """The objective at the fitted weights (weighted as the fit was)."""
        if data.w is None or not len(history):
            return float(self._trainer.evaluate(data.X, data.targets)["loss"])
        return float(history["loss"][-1])

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """Fit the model to data ``X`` and targets ``y`` (rows weighted by
        ``sample_weight``, as in scikit-learn); returns the estimator."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _forward(self, X) -> np.ndarray:
        """The network's outputs, in the float type of ``X`` (float64 for other inputs)."""
        check_is_fitted(self, "network_")
        kind = getattr(X, "dtype", None)
        out_dtype = kind if kind in (np.float32, np.float64) else np.float64
        X = self._check_X(X, reset=False)
        with _REBUILD_LOCK:  # several threads may predict with one unpickled estimator
            if self._trainer is None:  # after unpickling: compile again, lazily
                self._trainer = Trainer(self.network_, loss=self._output()[1], seed=0)
        out = self._trainer.predict_proba(X)  # the trainer runs one call at a time
        return out.astype(out_dtype, copy=False)

    # -- pickling: arrays and architecture, never compiled functions ----------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_trainer", None)
        network = state.pop("network_", None)
        if network is not None:
            state["_network_spec"] = layer_to_spec(network)
            state["_network_values"] = network.get_values()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        spec = state.pop("_network_spec", None)
        values = state.pop("_network_values", None)
        self.__dict__.update(state)
        self._trainer = None
        if spec is not None:
            network = layer_from_spec(spec)
            network.set_values(values)
            self.network_ = network

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = True
        return tags


class ClassifierPart:
    """Classification targets (scikit-learn's: a softmax output on the cross-entropy for
    multiclass targets, one logistic output per label for binary and multilabel ones) and
    predictions. Mixed into a :class:`BaseNetEstimator`."""

    def _targets(self, y, incremental: bool) -> np.ndarray:
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._binarizer.classes_
        else:
            self._check_known_classes(y)
        encoded = self._binarizer.transform(y)
        if self._binarizer.y_type_ == "multiclass":
            return encoded.argmax(axis=1).astype(np.int32)
        return encoded.astype(as_float_dtype(self.dtype))

    def _check_known_classes(self, y) -> None:
        classes = unique_labels(y)
        if self.warm_start:
            if set(classes) != set(self.classes_):
                raise SymnnValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                )
        elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise SymnnValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has "
                f"{self.classes_}. 'y' has {classes}."
            )

    def _output(self) -> tuple[str, str]:
        if self._binarizer.y_type_ == "multiclass":
            return "softmax", "categorical_crossentropy"
        return "logistic", "binary_crossentropy_sum"

    @available_if(BaseNetEstimator._check_solver)
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
    ):
        """One epoch over ``(X, y)`` (rows weighted by ``sample_weight``); ``classes``
        (every label) is required on the first call. Only for minibatch solvers."""
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise SymnnValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None and not first:
            if not np.array_equal(np.unique(classes), self.classes_):
                raise SymnnValueError(
                    f"`classes={np.unique(classes)!r}` is not the same as on last call to "
                    f"partial_fit, was: {self.classes_!r}"
                )
        if first:
            y_arr = np.asarray(y) if not sp.issparse(y) else y
            target = y_arr if type_of_target(y_arr).startswith("multilabel") else classes
            self._binarizer = LabelBinarizer().fit(target)
            self.classes_ = self._binarizer.classes_
        return self._fit(X, y, sample_weight, incremental=True)

    def _probabilities(self, X) -> np.ndarray:
        out = self._forward(X)
        return out[:, 0] if self.n_outputs_ == 1 else out

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_`` (for multilabel
        targets, the probability of each label)."""
        p = self._probabilities(X)
        return np.vstack([1 - p, p]).T if p.ndim == 1 else p

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """``log(predict_proba(X))``."""
        return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each row (for multilabel targets, every label whose
        probability exceeds 0.5)."""
        p = self._probabilities(X)  # checks that the estimator is fitted
        return self._binarizer.inverse_transform(p)

    def _validation_score(self, X, y, sample_weight=None) -> float:
        p = self._probabilities(X)
        if not np.isfinite(p).all():
            return np.nan
        predicted = self._binarizer.inverse_transform(p)
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class RegressorPart:
    """Regression targets (an identity output, scikit-learn's loss ``sum((y - p) ** 2) / 2``
    per row, averaged) and predictions; ``validation_scores_`` are R^2 scores. Mixed into a
    :class:`BaseNetEstimator`."""

    def _targets(self, y, incremental: bool) -> np.ndarray:
        y = np.asarray(y, dtype=as_float_dtype(self.dtype))
        if self._output()[1] == "poisson" and np.any(y < 0):
            raise SymnnValueError("loss='poisson' needs non-negative targets; y has negatives.")
        return y[:, None] if y.ndim == 1 else y

    def _output(self) -> tuple[str, str]:
        if getattr(self, "loss", "squared_error") == "poisson":
            return "exp", "poisson"
        return "identity", "half_squared_error"

    @available_if(BaseNetEstimator._check_solver)
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """One epoch over ``(X, y)`` (rows weighted by ``sample_weight``). Only for
        minibatch solvers."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted targets in the float type of ``X`` (1-D for a single output, as in
        scikit-learn)."""
        out = self._forward(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def _validation_score(self, X, y, sample_weight=None) -> float:
        p = self.predict(X)
        if not np.isfinite(p).all():
            return np.nan
        return float(r2_score(y, p, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
