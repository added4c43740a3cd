"""``NetClassifier`` and ``NetRegressor``: any symnn network as a scikit-learn estimator, as
skorch does for PyTorch modules.

The network comes from a *builder*, a callable ``network(n_in, n_out, *, rng, dtype,
**params)`` that returns a :class:`~symnn.layers.Layer` computing ``n_out`` scores (no output
activation). The estimator calls it on every first fit with the data's widths, adds the output
activation its targets need (softmax, logistic or identity, as scikit-learn's MLP chooses it)
and trains it with the same machinery as :class:`~symnn.MLPClassifier`. The builder's own
arguments are estimator parameters spelled ``network__<name>``, so ``clone``, ``set_params``
and ``GridSearchCV`` reach them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Activation, Layer, Sequential, mlp
from ..layers.graph import last_layer
from ..utils import as_float_dtype, describe
from .base import TRAINING_DEFAULTS, BaseNetEstimator, ClassifierPart, RegressorPart
from .settings import ACTIVATIONS

__all__ = ["NetClassifier", "NetRegressor", "dense_network"]

_PREFIX = "network__"
_HEADS = ("softmax", "sigmoid")


def dense_network(
    n_in: int,
    n_out: int,
    *,
    hidden: tuple[int, ...] = (100,),
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    rng: Any = None,
    dtype: Any = None,
) -> Sequential:
    """A network builder for :class:`NetClassifier`: dense layers of ``hidden`` widths and
    ``n_out`` linear scores (:func:`symnn.layers.mlp` with a linear output).

    >>> dense_network(4, 3, hidden=(8,), rng=0).n_out
    3
    """
    sizes = [int(n_in), *(int(h) for h in np.ravel(hidden)), int(n_out)]
    return mlp(sizes, hidden=activation, output="linear", rng=rng, dropout=dropout,
               batch_norm=batch_norm, dtype=dtype)  # fmt: skip


class _BaseNet(BaseNetEstimator):
    """A builder and its ``network__`` parameters, with scikit-learn's training
    hyperparameters (names, defaults and meanings as in :class:`~symnn.MLPClassifier`)."""

    def __init__(
        self,
        network: Callable[..., Layer] | None = None,
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
        **network_params: Any,
    ):
        """Store the hyperparameters (scikit-learn's convention: no validation here); the
        training parameters mirror scikit-learn's ``MLPClassifier``."""
        given = {k: v for k, v in locals().items() if k in TRAINING_DEFAULTS}
        for name, value in given.items():
            setattr(self, name, value)
        self.network = network
        self._network_params = dict(network_params)  # checked by fit, as scikit-learn does

    # -- network__ parameters, as skorch's module__ ---------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator's parameters, the builder's ``network__`` ones included."""
        return {**super().get_params(deep=deep), **self._network_params}

    def set_params(self, **params: Any):
        """Set parameters; ``network__<name>`` ones are passed to the builder."""
        for key in [k for k in params if k.startswith(_PREFIX)]:
            self._network_params[key] = params.pop(key)
        return super().set_params(**params) if params else self

    def _builder_arguments(self) -> dict[str, Any]:
        return {k[len(_PREFIX) :]: v for k, v in self._network_params.items()}

    # -- the architecture ---------------------------------------------------------------
    def _check_architecture(self) -> None:
        wrong = sorted(k for k in self._network_params if not k.startswith(_PREFIX))
        if wrong:
            raise SymnnTypeError(
                f"{type(self).__name__} got unexpected keyword arguments {wrong}; the "
                f"network builder's arguments are spelled '{_PREFIX}<name>'."
            )
        builder = self.network
        if builder is None or isinstance(builder, Layer) or not callable(builder):
            raise SymnnTypeError(
                f"network={describe(builder)} is not a network builder; expected a callable "
                "network(n_in, n_out, *, rng, dtype, **params) returning a symnn Layer, e.g. "
                "symnn.estimator.dense_network."
            )
        try:
            inspect.signature(builder).bind(1, 1, rng=0, dtype="float32",
                                            **self._builder_arguments())  # fmt: skip
        except TypeError as exc:
            raise SymnnTypeError(
                f"network={describe(builder)} cannot be called as network(n_in, n_out, *, rng, "
                f"dtype, **{sorted(self._builder_arguments())}): {exc}."
            ) from None
        except ValueError:  # no signature to inspect (a builtin): found out when called
            pass

    def _build_network(self, n_outputs: int, rng: np.random.RandomState) -> Layer:
        seed = int(rng.randint(2**31 - 1))
        net = self.network(self.n_features_in_, n_outputs, rng=seed, dtype=self.dtype,
                           **self._builder_arguments())  # fmt: skip
        self._check_built(net, n_outputs)
        head = ACTIVATIONS.get(self._output()[0], self._output()[0])
        if head == "linear":
            return net
        layers = list(net.layers) if type(net) is Sequential else [net]
        return Sequential([*layers, Activation(n_outputs, head, dtype=net.dtype)])

    def _check_built(self, net: Any, n_outputs: int) -> None:
        if not isinstance(net, Layer):
            raise SymnnTypeError(f"the network builder returned {describe(net)}; expected a Layer.")
        n_graph_outputs = len(getattr(net, "output_refs", [None]))
        if n_graph_outputs != 1:
            raise SymnnValueError(
                f"the network builder returned a Graph of {n_graph_outputs} outputs; an "
                "estimator predicts one output (train several with symnn.train.Trainer and "
                "one loss per output)."
            )
        expected = {"n_in": self.n_features_in_, "n_out": n_outputs}
        for attr, value in expected.items():
            if getattr(net, attr, None) not in (None, value):
                raise SymnnValueError(
                    f"the network builder was asked for {attr}={value} and returned a network "
                    f"with {attr}={getattr(net, attr)}."
                )
        if net.dtype != np.dtype(as_float_dtype(self.dtype)).name:
            raise SymnnValueError(
                f"the network builder returned a {net.dtype} network for dtype={self.dtype!r}; "
                "pass its dtype argument on to the layers."
            )
        last = last_layer(net)
        name = getattr(getattr(last, "activation", None), "__name__", "")
        if name in _HEADS:
            raise SymnnValueError(
                f"the network ends in a {name} activation; a builder returns scores (a linear "
                f"last layer) and {type(self).__name__} adds the output activation."
            )


class NetClassifier(ClassifierPart, ClassifierMixin, _BaseNet):
    """Any symnn network as a scikit-learn classifier.

    Parameters
    ----------
    network
        A builder ``network(n_in, n_out, *, rng, dtype, **params) -> Layer`` whose network
        computes ``n_out`` scores; the classifier adds a softmax output (multiclass) or
        logistic outputs (binary, multilabel) and trains on the cross-entropy, as scikit-learn's
        MLP does. ``rng`` is a seed drawn from ``random_state``.
    network__<name>
        Arguments passed to the builder (``GridSearchCV`` can search them).
    solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter, \
shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, \
early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, \
dtype, blas_threads
        As in :class:`~symnn.MLPClassifier` (scikit-learn's names and meanings); ``alpha``
        is the L2 term on every regularizable weight of the network.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from symnn.estimator import dense_network
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NetClassifier(dense_network, network__hidden=(16,), learning_rate_init=0.01,
    ...                     max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9, clf.get_params()["network__hidden"]
    (True, (16,))
    """


class NetRegressor(RegressorPart, RegressorMixin, _BaseNet):
    """Any symnn network as a scikit-learn regressor: an identity output on scikit-learn's
    half squared error; parameters as for :class:`NetClassifier`.

    >>> from symnn.estimator import dense_network
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> reg = NetRegressor(dense_network, network__hidden=(32,), network__activation="tanh",
    ...                    learning_rate_init=0.01, batch_size=16, random_state=0)
    >>> reg.fit(X, X[:, 0] ** 2).score(X, X[:, 0] ** 2) > 0.9
    True
    """
