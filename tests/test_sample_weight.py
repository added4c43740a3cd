"""Row weights (``sample_weight``) in the trainers and the estimators, and the Poisson loss:
each against an independent reference (repeated rows, dropped rows, numpy)."""

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy.special import xlogy
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
)

from symnn import MLPClassifier, MLPRegressor, NetClassifier, NetRegressor, costs
from symnn.errors import SymnnValueError
from symnn.estimator import dense_network
from symnn.layers import mlp
from symnn.train import ScipyTrainer, Trainer


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((60, 4)).astype("float32")
    y = (X[:, 0] + X[:, 1] > 1).astype("int32")
    w = rng.integers(0, 4, 60).astype("float32")
    return X, y, w


def _sgd(X, y, w, **fit):
    t = Trainer(mlp([4, 5, 2], rng=0), optimizer="sgd", learning_rate=0.1, l2=0.3,
                penalty_per_row=True, mode="FAST_COMPILE")  # fmt: skip
    t.fit(X, y, epochs=5, batch_size=len(X), shuffle=False, progress=False, sample_weight=w, **fit)
    return t


def test_integer_weights_train_as_repeated_rows(data):
    """Full-batch steps: weight k == the row k times (the penalty per row divides by the
    weights' sum, as by the repeated rows' count)."""
    X, y, w = data
    rep = np.repeat(np.arange(len(X)), w.astype(int))
    a = _sgd(X, y, w).network.get_values()
    b = _sgd(X[rep], y[rep], None).network.get_values()
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=1e-6)


def test_scipy_weights_equal_repeated_rows_in_float64(data):
    X, y, w = data
    rep = np.repeat(np.arange(len(X)), w.astype(int))
    fits = []
    for Xd, yd, wd in ((X, y, w), (X[rep], y[rep], None)):
        t = ScipyTrainer(mlp([4, 5, 2], rng=0, dtype="float64"), l2=0.3, penalty_per_row=True,
                         mode="FAST_COMPILE")  # fmt: skip
        t.fit(Xd.astype("float64"), yd, maxiter=30, sample_weight=wd)
        fits.append(t.network.get_values())
    for u, v in zip(*fits):
        np.testing.assert_allclose(u, v, atol=1e-9)


def test_a_weighted_step_keeps_the_optimiser_state(data):
    """Weights on a trainer compiled without them: the weighted step takes over the
    optimiser's moments (unit weights then continue exactly as no weights)."""
    X, y, _ = data
    a = Trainer(mlp([4, 5, 2], rng=0), mode="FAST_COMPILE", seed=1)
    b = Trainer(mlp([4, 5, 2], rng=0), mode="FAST_COMPILE", seed=1)
    for t in (a, b):
        t.fit(X, y, epochs=2, batch_size=20, progress=False)
    a.fit(X, y, epochs=2, batch_size=20, progress=False, sample_weight=np.ones(len(X)))
    b.fit(X, y, epochs=2, batch_size=20, progress=False)
    for u, v in zip(a.get_state(), b.get_state()):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "w, match",
    [
        (np.ones(3), "has 3 values; expected one per row"),
        (-np.ones(60), "negative values"),
        (np.zeros(60), "sums to 0"),
        (np.full(60, np.nan), "NaN"),
        (np.ones((60, 1)), "sample_weight"),
    ],
)
def test_bad_weights_are_named(data, w, match):
    X, y, _ = data
    with pytest.raises(SymnnValueError, match=match):
        Trainer(mlp([4, 5, 2], rng=0), mode="FAST_COMPILE").fit(X, y, sample_weight=w)


def test_estimator_zero_weights_drop_rows_and_unit_weights_change_nothing(data):
    X, y, w = data
    kw = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=50, random_state=0,
              dtype="float64")  # fmt: skip
    keep = w > 0
    weighted = MLPClassifier(**kw).fit(X, y, sample_weight=keep.astype(float))
    dropped = MLPClassifier(**kw).fit(X[keep], y[keep])
    for u, v in zip(weighted.coefs_, dropped.coefs_):
        np.testing.assert_allclose(u, v, atol=1e-8)
    plain = MLPClassifier(**{**kw, "solver": "adam"}).fit(X, y)
    ones = MLPClassifier(**{**kw, "solver": "adam"}).fit(X, y, sample_weight=np.ones(len(X)))
    np.testing.assert_allclose(plain.loss_curve_, ones.loss_curve_, rtol=1e-12)


def test_poisson_loss_is_half_the_deviance():
    t = np.array([[0.0, 2.0], [3.0, 1.0]])
    p = np.array([[0.5, 1.5], [2.0, 4.0]])
    ref = (xlogy(t, t / p) - t + p).sum(axis=1)
    P = pt.matrix("p", dtype="float64")
    got = costs.half_poisson_deviance(P, t).eval({P: p})
    np.testing.assert_allclose(got, ref)


def test_poisson_regressor_predicts_positive_rates_and_refuses_negative_targets():
    rng = np.random.default_rng(0)
    X = rng.random((200, 2))
    y = rng.poisson(np.exp(X @ [1.0, -0.5] + 0.5))
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=100,
                       learning_rate_init=0.01, random_state=0).fit(X, y)  # fmt: skip
    assert reg.out_activation_ == "exp" and np.all(reg.predict(X) > 0)
    with pytest.raises(SymnnValueError, match="non-negative targets"):
        MLPRegressor(loss="poisson").fit(X, -y - 1.0)
    with pytest.raises(SymnnValueError, match="loss='huber' is not known"):
        MLPRegressor(loss="huber").fit(X, y)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLPClassifier(solver="lbfgs", dtype="float64"),
        lambda: MLPRegressor(solver="lbfgs", dtype="float64"),
        lambda: NetClassifier(dense_network, solver="lbfgs", dtype="float64"),
        lambda: NetRegressor(dense_network, solver="lbfgs", dtype="float64"),
    ],
)
def test_scikit_learns_weight_equivalence_check_with_a_full_batch_solver(make):
    """scikit-learn's check (weights == removed or repeated rows, to 1e-7), run as it runs
    it on its own MLP: with lbfgs."""
    est = make()
    check_sample_weight_equivalence_on_dense_data(type(est).__name__, est)
    check_sample_weight_equivalence_on_sparse_data(type(est).__name__, est)
