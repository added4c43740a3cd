"""NetClassifier / NetRegressor: any symnn network as a scikit-learn estimator."""

import pickle

import numpy as np
import pytest
from _sklearn_checks import parametrize_checks, with_check_params
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from symnn import MLPClassifier, NetClassifier, NetRegressor
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.estimator import dense_network
from symnn.layers import Dense, mlp

FAST = dict(learning_rate_init=0.02, batch_size=32, max_iter=60, random_state=0)


@pytest.mark.slow  # every scikit-learn check
@parametrize_checks(
    [
        NetClassifier(dense_network, network__hidden=(16,), **FAST),
        NetRegressor(dense_network, network__hidden=(16,), **FAST),
    ],
)
def test_sklearn_compatible_estimator(estimator, check):
    check(with_check_params(estimator, check))


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_a_dense_layer_is_scikit_learns_logistic_regression(iris):
    """One Dense layer with softmax, L2 ``alpha`` per row and L-BFGS: the minimiser of
    scikit-learn's multinomial ``LogisticRegression(C=1/alpha)`` (same objective up to the
    factor n), an independent reference."""
    X, y = iris
    X = (X - X.mean(0)) / X.std(0)
    net = NetClassifier(Dense, solver="lbfgs", alpha=1.0, tol=1e-12, max_iter=2000,
                        dtype="float64", random_state=0).fit(X, y)  # fmt: skip
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=2000).fit(X, y)
    np.testing.assert_allclose(net.predict_proba(X), ref.predict_proba(X), atol=2e-4)
    W, b = net.network_.get_values()
    np.testing.assert_allclose(W.T, ref.coef_, atol=2e-3)
    twice = LogisticRegression(C=2.0, tol=1e-12, max_iter=2000).fit(X, y)  # alpha at half scale
    assert np.abs(W.T - twice.coef_).max() > 0.05


@pytest.mark.slow  # a grid search
def test_grid_search_over_the_builders_arguments(iris):
    X, y = iris
    est = NetClassifier(dense_network, **{**FAST, "max_iter": 100})
    search = GridSearchCV(est, {"network__hidden": [(1,), (32,)]}, cv=3).fit(X, y)
    assert list(search.cv_results_["param_network__hidden"]) == [(1,), (32,)]
    widths = search.best_params_["network__hidden"]
    assert search.best_estimator_.network_.layers[0].n_out == widths[0]
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > 0.85 and scores[0] != scores[1]  # the widths were really trained


def test_clone_set_params_and_pickle_keep_the_builder_arguments(iris):
    X, y = iris
    est = NetClassifier(dense_network, network__hidden=(8,), network__activation="tanh", **FAST)
    copy = clone(est)
    assert copy.get_params()["network__hidden"] == (8,)
    assert copy.set_params(network__hidden=(5,)) is copy
    assert copy.get_params()["network__hidden"] == (5,)
    assert est.get_params()["network__hidden"] == (8,)
    assert "network__hidden=(8,)" in repr(est)
    est.fit(X, y)
    assert est.network_.layers[0].n_out == 8
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_output_activation_follows_the_targets(iris):
    X, y = iris
    binary = NetClassifier(dense_network, **FAST).fit(X, y == 2)
    assert binary.n_outputs_ == 1 and binary.out_activation_ == "logistic"
    assert binary.predict_proba(X).shape == (150, 2)
    reg = NetRegressor(dense_network, **FAST).fit(X, np.c_[X[:, 0], X[:, 1]])
    assert reg.predict(X).shape == (150, 2) and reg.out_activation_ == "identity"


def test_same_random_state_same_fit(iris):
    X, y = iris
    fits = [NetClassifier(dense_network, **FAST).fit(X, y) for _ in range(2)]
    for a, b in zip(fits[0].network_.get_values(), fits[1].network_.get_values()):
        np.testing.assert_array_equal(a, b)


def _softmax_builder(n_in, n_out, *, rng, dtype):
    return mlp([n_in, 4, n_out], rng=rng, dtype=dtype)  # ends in softmax


def _wrong_width(n_in, n_out, *, rng, dtype):
    return dense_network(n_in, n_out + 1, rng=rng, dtype=dtype)


def _float64_only(n_in, n_out, *, rng, dtype):
    return dense_network(n_in, n_out, rng=rng, dtype="float64")


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: NetClassifier(), SymnnTypeError, "network=None is not a network builder"),
        (lambda: NetClassifier(Dense(4, 3)), SymnnTypeError, "is not a network builder"),
        (lambda: NetClassifier(lambda a, b: a), SymnnTypeError, "cannot be called as network"),
        (lambda: NetClassifier(dense_network, network__width=3), SymnnTypeError, "'width'"),
        (lambda: NetClassifier(_softmax_builder), SymnnValueError, "ends in a softmax"),
        (lambda: NetClassifier(_wrong_width), SymnnValueError, "asked for n_out=3"),
        (lambda: NetClassifier(_float64_only), SymnnValueError, "float64 network"),
        (lambda: NetClassifier(lambda n_in, n_out, rng, dtype: 3), SymnnTypeError, "returned 3"),
    ],
)
def test_bad_builders_are_named(iris, make, error, match):
    X, y = iris
    with pytest.raises(error, match=match):
        make().fit(X, y)


def test_keyword_without_the_prefix_is_refused(iris):
    with pytest.raises(SymnnTypeError, match="spelled 'network__<name>'"):
        NetClassifier(dense_network, hidden=(3,)).fit(*iris)


def test_mlp_and_net_share_the_training_machinery(iris):
    """The same data, solver and epochs: both estimators reach the same fitted attributes
    (scikit-learn's), whatever network they train."""
    X, y = iris
    for est in (MLPClassifier(hidden_layer_sizes=(8,), **FAST),
                NetClassifier(dense_network, network__hidden=(8,), **FAST)):  # fmt: skip
        est.set_params(early_stopping=True, n_iter_no_change=3).fit(X, y)
        assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
        assert est.best_validation_score_ == max(est.validation_scores_)
