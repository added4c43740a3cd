"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's multilayer perceptrons, trained by
symnn's compiled steps.

The estimators hold hyperparameters only; ``fit`` validates the data, builds the network
(:func:`symnn.layers.mlp`, scikit-learn's initialisation) and hands training to the machinery
every symnn estimator shares (:mod:`symnn.estimator.base`). Compiled functions are never
pickled: a pickled estimator stores its architecture and arrays, and compiles again on first
use after unpickling.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..errors import SymnnValueError
from ..layers import Layer, mlp
from .base import BaseNetEstimator, ClassifierPart, RegressorPart
from .settings import ACTIVATIONS

__all__ = ["MLPClassifier", "MLPRegressor"]


class _BaseMLP(BaseNetEstimator):
    """scikit-learn's dense architecture: ``hidden_layer_sizes``, ``activation`` and its
    initialisation."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state=None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        dtype: str = "float32",
        blas_threads: int | str = "auto",
        optimizer: str | None = None,
        max_epochs: int | None = None,
    ):
        """Store the hyperparameters (scikit-learn's convention: no validation here); the
        parameters are scikit-learn's, with its names, defaults and meanings."""
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.blas_threads = blas_threads
        self.optimizer = optimizer
        self.max_epochs = max_epochs

    # -- fitted attributes, as scikit-learn names them -----------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weight matrices, layer by layer (copies)."""
        check_is_fitted(self, "network_")
        return [np.asarray(p.get_value()) for p in self.network_.params[0::2]]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The bias vectors, layer by layer (copies)."""
        check_is_fitted(self, "network_")
        return [np.asarray(p.get_value()) for p in self.network_.params[1::2]]

    # -- the architecture ---------------------------------------------------------------
    def _hidden(self) -> list[int]:
        h = self.hidden_layer_sizes
        return [int(h)] if isinstance(h, numbers.Integral) else [int(v) for v in np.ravel(h)]

    def _check_architecture(self) -> None:
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(np.ravel(hidden))
        if any(not isinstance(h, numbers.Integral) or h < 1 for h in hidden):
            raise SymnnValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} must be positive integers."
            )
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise SymnnValueError(
                f"activation={self.activation!r} is not known; expected one of "
                f"{', '.join(ACTIVATIONS)}."
            )

    def _build_network(self, n_outputs: int, rng: np.random.RandomState) -> Layer:
        out_activation = self._output()[0]
        network = mlp(
            [self.n_features_in_, *self._hidden(), n_outputs],
            hidden=ACTIVATIONS[self.activation],
            output=ACTIVATIONS.get(out_activation, out_activation),
            dtype=self.dtype,
        )
        network.set_values(self._initial_values(rng, n_outputs))
        return network

    def _initial_values(self, rng, n_outputs: int) -> list[np.ndarray]:
        """scikit-learn's initialisation, drawn in its order from the same generator:
        weights and biases uniform in ``+-sqrt(6 / (fan_in + fan_out))`` (2 instead of 6
        for the logistic activation); the same ``random_state`` starts from the same
        weights as scikit-learn's estimator."""
        sizes = [self.n_features_in_, *self._hidden(), n_outputs]
        factor = 2.0 if self.activation == "logistic" else 6.0
        values = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            values.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            values.append(rng.uniform(-bound, bound, fan_out))
        return values

    def _reset_fitted(self, n_outputs: int) -> None:
        super()._reset_fitted(n_outputs)
        self.n_layers_ = len(self._hidden()) + 2


class MLPClassifier(ClassifierPart, ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by
    symnn's compiled steps (a drop-in: same parameters, defaults, meanings and fitted
    attributes).

    Multiclass targets train a softmax output on the cross-entropy; binary and multilabel
    targets one logistic output per label on the binary cross-entropy summed over labels, as
    in scikit-learn. ``alpha`` is scikit-learn's L2 term, ``alpha / (2 n) * sum W**2`` on
    each batch of ``n`` rows; ``tol``, ``n_iter_no_change`` and ``early_stopping`` follow
    its epoch rules (a stratified validation split; ``validation_scores_`` are accuracies).

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon, \
n_iter_no_change, max_fun
        As in scikit-learn. ``solver`` also takes symnn's other update rules
        (``"momentum"``, ``"nesterov_momentum"``, ``"rmsprop"``, ``"adagrad"``,
        ``"adadelta"``, ``"adamax"``) and scipy methods (``"cg"``, ``"bfgs"``, ``"tnc"``,
        ``"l-bfgs-b"``); ``activation`` also symnn's names (``"sigmoid"``, ``"elu"``, ...).
        ``verbose`` shows a progress bar.
    dtype
        ``"float32"`` (default; scikit-learn computes in the float type of ``X``, so results
        differ in the last digits) or ``"float64"``.
    blas_threads
        ``"auto"`` (BLAS threads chosen by timing) or a fixed count, for fits that are
        bit-identical from one run to the next (see :class:`symnn.train.Trainer`).
    optimizer, max_epochs
        Deprecated spellings of ``solver`` and ``max_iter`` (a ``FutureWarning``); so is a
        number given as ``learning_rate`` (now ``learning_rate_init``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300,
    ...                     random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> [w.shape for w in clf.coefs_], clf.n_outputs_, clf.out_activation_
    ([(4, 16), (16, 3)], 3, 'softmax')
    """


class MLPRegressor(RegressorPart, RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor: scikit-learn's ``MLPRegressor`` (identity output,
    its loss ``sum((y - p) ** 2) / 2`` per row, averaged; with ``loss="poisson"`` an
    exponential output on half the Poisson deviance), trained by symnn's compiled steps;
    other parameters as for :class:`MLPClassifier`. ``validation_scores_`` are R^2 scores,
    as in scikit-learn.

    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", learning_rate_init=0.01,
    ...                    batch_size=16, max_iter=200, random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.score(X, X[:, 0] ** 2) > 0.9
    True
    """

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes=(100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state=None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        dtype: str = "float32",
        blas_threads: int | str = "auto",
        optimizer: str | None = None,
        max_epochs: int | None = None,
    ):
        """scikit-learn's ``MLPRegressor`` parameters (``loss`` first, as there)."""
        args = {k: v for k, v in locals().items() if k not in ("self", "loss", "__class__")}
        super().__init__(**args)
        self.loss = loss

    def _check_architecture(self) -> None:
        super()._check_architecture()
        if self.loss not in ("squared_error", "poisson"):
            raise SymnnValueError(
                f"loss={self.loss!r} is not known; expected 'squared_error' or 'poisson'."
            )
