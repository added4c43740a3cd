"""scikit-learn estimators: a thin shell over :func:`symnn.layers.mlp` and
:class:`symnn.train.Trainer` (or :class:`symnn.train.ScipyTrainer`).

The estimators hold hyperparameters only; ``fit`` validates the data, builds the network,
and delegates training. Compiled PyTensor functions are never pickled: a pickled estimator
stores its architecture and arrays, and compiles again on first use after unpickling.
"""

from __future__ import annotations

import numbers
import threading
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .backend.threads import check_blas_threads
from .errors import SymnnValueError
from .layers import layer_from_spec, layer_to_spec, mlp
from .nonlinearities import NAMES as ACTIVATIONS
from .train import EarlyStopping, ScipyTrainer, Trainer
from .train.scipy import METHODS as SCIPY_METHODS
from .updates import RULES
from .utils import as_float_dtype

__all__ = ["MLPClassifier", "MLPRegressor"]

_REBUILD_LOCK = threading.Lock()


class _BaseMLP(BaseEstimator):
    """Hyperparameters, validation and delegation shared by both estimators."""

    _output: str = "softmax"
    _loss: str = "categorical_crossentropy"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 0.001,
        batch_size: int | str = "auto",
        max_epochs: int = 200,
        alpha: float = 0.0001,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state=None,
        verbose: bool = False,
        warm_start: bool = False,
        dtype: str = "float32",
        blas_threads: int | str = "auto",
    ):
        """Store the hyperparameters (scikit-learn's convention: no validation here). The
        parameter list mirrors scikit-learn's ``MLPClassifier``/``MLPRegressor``."""
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.dtype = dtype
        self.blas_threads = blas_threads

    # -- validation ---------------------------------------------------------------------
    def _check_params(self) -> None:
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
        if any(not isinstance(h, numbers.Integral) or h < 1 for h in hidden):
            raise SymnnValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} must be positive integers."
            )
        if self.activation not in ACTIVATIONS:
            raise SymnnValueError(
                f"activation={self.activation!r} is not known; expected one "
                f"of {', '.join(ACTIVATIONS)}."
            )
        if self.optimizer not in RULES and self.optimizer not in SCIPY_METHODS:
            raise SymnnValueError(
                f"optimizer={self.optimizer!r} is not known; expected one of "
                f"{', '.join([*RULES, *SCIPY_METHODS])}."
            )
        for name in ("learning_rate", "validation_fraction"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not value > 0:
                raise SymnnValueError(f"{name}={value!r} is not valid; expected a number > 0.")
        if not self.validation_fraction < 1:
            raise SymnnValueError(f"validation_fraction={self.validation_fraction!r} must be < 1.")
        for name in ("max_epochs", "n_iter_no_change"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise SymnnValueError(f"{name}={value!r} is not valid; expected an integer >= 1.")
        for name in ("alpha", "tol"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or value < 0:
                raise SymnnValueError(f"{name}={value!r} is not valid; expected a number >= 0.")
        if self.batch_size != "auto" and (
            not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1
        ):
            raise SymnnValueError(
                f"batch_size={self.batch_size!r} is not valid; expected 'auto' or an integer >= 1."
            )
        as_float_dtype(self.dtype, name="dtype")
        check_blas_threads(self.blas_threads)

    def _hidden(self) -> list[int]:
        h = self.hidden_layer_sizes
        return [int(h)] if isinstance(h, numbers.Integral) else [int(v) for v in h]

    def _validate(self, X, y: Any = "no_validation", reset: bool = True):
        dtype = as_float_dtype(self.dtype)
        if isinstance(y, str) and y == "no_validation":
            return validate_data(self, X, reset=reset, dtype=[dtype, np.float64, np.float32])
        return validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=[dtype, np.float64, np.float32],
            multi_output=self._multi_output,
            y_numeric=not self._is_classifier,
        )

    # -- delegation ---------------------------------------------------------------------
    def _make_trainer(self, n_outputs: int, rng: np.random.RandomState) -> Trainer:
        sizes = [self.n_features_in_, *self._hidden(), n_outputs]
        net = mlp(
            sizes,
            hidden=self.activation,
            output=self._output,
            rng=int(rng.randint(2**31 - 1)),
            dtype=self.dtype,
        )
        seed = int(rng.randint(2**31 - 1))
        if self.optimizer in SCIPY_METHODS:
            self._warn_scipy_ignores()
            return ScipyTrainer(
                net,
                method=self.optimizer,
                loss=self._loss,
                l2=self.alpha,
                seed=seed,
                blas_threads=self.blas_threads,
            )
        return Trainer(
            net,
            loss=self._loss,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            l2=self.alpha,
            seed=seed,
            blas_threads=self.blas_threads,
        )

    def _warn_scipy_ignores(self) -> None:
        """scikit-learn's convention: accept every hyperparameter, but say which ones a scipy
        optimizer does not use (it picks its own steps on the full batch)."""
        defaults = type(self)().get_params()
        unused = [
            name
            for name in ("learning_rate", "batch_size", "early_stopping")
            if getattr(self, name) != defaults[name]
        ]
        if unused:
            warnings.warn(
                f"{', '.join(f'{n}={getattr(self, n)!r}' for n in unused)} "
                f"{'has' if len(unused) == 1 else 'have'} no effect with "
                f"optimizer={self.optimizer!r} (scipy runs full-batch and picks its own "
                "steps); they are ignored.",
                UserWarning,
                stacklevel=4,
            )

    def _fit(self, X, targets, n_outputs: int, *, epochs: int, incremental: bool):
        rng = check_random_state(self.random_state)
        reuse = (incremental or self.warm_start) and getattr(self, "_trainer", None) is not None
        if reuse and self._trainer.network.n_in != self.n_features_in_:
            raise SymnnValueError(
                f"X has {self.n_features_in_} features; the fitted network "
                f"expects {self._trainer.network.n_in}."
            )
        if not reuse:
            self._trainer = self._make_trainer(n_outputs, rng)
            self.loss_curve_, self.validation_scores_ = [], []
            self.n_iter_ = 0
            self.best_loss_ = np.inf
        trainer = self._trainer
        if isinstance(trainer, ScipyTrainer):
            history = trainer.fit(
                X,
                targets,
                maxiter=epochs if not incremental else 1,
                tol=self.tol,
                progress=bool(self.verbose),
            )
        else:
            history = self._fit_minibatches(trainer, X, targets, epochs, incremental)
        self.loss_curve_ += [float(v) for v in history["loss"]] if len(history) else []
        if len(history) and "val_loss" in history.metrics:
            key = "val_accuracy" if "val_accuracy" in history.metrics else "val_loss"
            self.validation_scores_ += [float(v) for v in history[key]]
        self.n_iter_ += len(history)
        if self.loss_curve_:
            self.best_loss_ = float(min(self.loss_curve_))
        self.network_ = trainer.network
        return self

    def _fit_minibatches(self, trainer, X, targets, epochs: int, incremental: bool):
        split = self._validation_fraction(len(X), incremental)
        n_train = len(X) - (max(1, int(round(len(X) * split))) if split else 0)
        # "auto" is min(200, training samples), counted after the validation rows are held out
        batch = min(200 if self.batch_size == "auto" else self.batch_size, n_train)
        if incremental:
            callbacks = []
        elif split:
            callbacks = [
                EarlyStopping("val_loss", patience=self.n_iter_no_change, min_delta=self.tol)
            ]
        else:
            callbacks = [
                EarlyStopping(
                    "loss", patience=self.n_iter_no_change, min_delta=self.tol, restore_best=False
                )
            ]
        return trainer.fit(
            X,
            targets,
            epochs=epochs,
            batch_size=batch,
            validation_split=split,
            callbacks=callbacks,
            progress=bool(self.verbose),
        )

    def _validation_fraction(self, n: int, incremental: bool) -> float:
        """The fraction held out for early stopping (0 when off)."""
        if not self.early_stopping or incremental:
            return 0.0
        if n < 10:
            warnings.warn(
                f"early_stopping=True needs at least 10 samples to hold out a validation set; "
                f"got {n}, so this fit runs without early stopping.",
                UserWarning,
                stacklevel=5,
            )
            return 0.0
        return float(self.validation_fraction)

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = self._validate(X, reset=False)
        with _REBUILD_LOCK:  # several threads may predict with one unpickled estimator
            if self._trainer is None:  # after unpickling: compile again, lazily
                self._trainer = Trainer(self.network_, loss=self._loss, seed=0)
        return self._trainer.predict_proba(X)  # the trainer runs one call at a time

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
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier: symnn's compiled training behind scikit-learn's API.

    Parameters
    ----------
    hidden_layer_sizes
        Widths of the hidden layers.
    activation
        Hidden activation (a name from :data:`symnn.nonlinearities.NAMES`).
    optimizer
        An update rule (``"sgd"``, ``"momentum"``, ``"adam"``, ...) or a scipy method
        (``"cg"``, ``"l-bfgs-b"``, ``"tnc"``, ``"bfgs"``).
    learning_rate
        Step size of the update rule.
    batch_size
        Minibatch size; ``"auto"`` is ``min(200, n_samples)``.
    max_epochs
        Maximum passes over the data (iterations for scipy methods).
    alpha
        L2 penalty on the weights.
    early_stopping, validation_fraction, n_iter_no_change, tol
        Hold out ``validation_fraction`` and stop when the validation loss has not improved
        by ``tol`` for ``n_iter_no_change`` epochs (restoring the best weights); without early
        stopping the same rule watches the training loss.
    random_state
        Seed of the initial weights and the shuffling.
    verbose
        Show a progress bar.
    warm_start
        Continue from the previous fit's weights.
    dtype
        ``"float32"`` (default) or ``"float64"``.
    blas_threads
        ``"auto"`` (BLAS threads chosen by timing) or a fixed count, for fits that are
        bit-identical from one run to the next (see :class:`symnn.train.Trainer`).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, max_epochs=150,
    ...                     random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _is_classifier = True
    _multi_output = False

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPClassifier:
        """Train on ``X`` and class labels ``y``; returns the estimator."""
        self._check_params()
        X, y = self._validate(X, y)
        check_classification_targets(y)
        if not (self.warm_start and hasattr(self, "classes_")):
            self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
        return self._fit(
            X,
            self._encode(y),
            max(len(self.classes_), 2),
            epochs=self.max_epochs,
            incremental=False,
        )

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None
    ) -> MLPClassifier:
        """One epoch over ``(X, y)``; ``classes`` is required on the first call."""
        self._check_params()
        first = not hasattr(self, "classes_")
        X, y = self._validate(X, y, reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise SymnnValueError("classes must be given on the first call to partial_fit.")
            self._encoder = LabelEncoder().fit(classes)
            self.classes_ = self._encoder.classes_
        return self._fit(
            X, self._encode(y), max(len(self.classes_), 2), epochs=1, incremental=not first
        )

    def _encode(self, y) -> np.ndarray:
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise SymnnValueError(
                f"y has labels {unknown.tolist()} not in classes {self.classes_.tolist()}."
            )
        return self._encoder.transform(y).astype(np.int32)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        proba = self._forward(X)
        return (
            proba[:, : len(self.classes_)] if len(self.classes_) > 1 else np.ones((len(proba), 1))
        )

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor (squared error, linear output); parameters as for
    :class:`MLPClassifier`.

    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", learning_rate=0.01,
    ...                    batch_size=16, max_epochs=200, random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.score(X, X[:, 0] ** 2) > 0.9
    True
    """

    _is_classifier = False
    _multi_output = True
    _output = "linear"
    _loss = "squared_error"

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """Train on ``X`` and real targets ``y`` (one or several columns)."""
        self._check_params()
        X, y = self._validate(X, y)
        y2 = self._targets(y)
        return self._fit(X, y2, y2.shape[1], epochs=self.max_epochs, incremental=False)

    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """One epoch over ``(X, y)``."""
        self._check_params()
        first = not hasattr(self, "network_")
        X, y = self._validate(X, y, reset=first)
        y2 = self._targets(y)
        return self._fit(X, y2, y2.shape[1], epochs=1, incremental=not first)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _targets(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=as_float_dtype(self.dtype))
        self._y_1d = y.ndim == 1
        return y[:, None] if y.ndim == 1 else y

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted targets as float64 (scikit-learn's convention), 1-D when fitted on 1-D
        ``y``."""
        out = self._forward(X).astype(np.float64)
        return out[:, 0] if getattr(self, "_y_1d", True) and out.shape[1] == 1 else out
