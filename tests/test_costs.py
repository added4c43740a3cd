import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.special import log_softmax as scipy_log_softmax
from scipy.special import softmax as scipy_softmax

from symnn import check_grad, costs, regularization
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.nonlinearities import softmax


@pytest.fixture
def data(rng):
    logits = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6).astype("int32")
    return logits, labels


def test_crossentropy_from_probabilities_integer_and_onehot(data):
    logits, labels = data
    p = pt.matrix("p", dtype="float64")
    probs = scipy_softmax(logits, axis=1)
    want = -np.log(probs[np.arange(6), labels])
    t = pt.ivector("t")
    np.testing.assert_allclose(
        costs.categorical_crossentropy(p, t).eval({p: probs, t: labels}), want
    )
    onehot = np.eye(4)[labels]
    tm = pt.matrix("tm", dtype="float64")
    np.testing.assert_allclose(
        costs.categorical_crossentropy(p, tm).eval({p: probs, tm: onehot}), want
    )
    np.testing.assert_allclose(costs.nll(p, t).eval({p: probs, t: labels}), want)


def test_crossentropy_from_logits_is_stable(data):
    logits, labels = data
    z = pt.matrix("z", dtype="float32")
    t = pt.ivector("t")
    big = (logits * 1e4).astype("float32")
    out = costs.categorical_crossentropy_from_logits(z, t).eval({z: big, t: labels})
    want = -scipy_log_softmax(big.astype(np.float64), axis=1)[np.arange(6), labels]
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, want, rtol=1e-5)


def test_crossentropy_after_softmax_is_rewritten_to_be_stable(data):
    """log(softmax(z)) must not give inf or NaN for large logits (seed 004's overflow)."""
    logits, labels = data
    z = pt.matrix("z", dtype="float64")
    t = pt.ivector("t")
    loss = costs.aggregate(costs.categorical_crossentropy(softmax(z), t))
    f = pytensor.function([z, t], [loss, pytensor.grad(loss, z)])
    big = logits * 1000
    value, grad = f(big, labels)
    n = len(labels)
    want = -scipy_log_softmax(big, axis=1)[np.arange(n), labels].mean()
    np.testing.assert_allclose(value, want, rtol=1e-10)
    want_grad = (scipy_softmax(big, axis=1) - np.eye(big.shape[1])[labels]) / n
    np.testing.assert_allclose(grad, want_grad, atol=1e-12)


@pytest.mark.parametrize("which", ["probs", "logits"])
def test_crossentropy_gradients(which, data):
    logits, labels = data
    z = pt.matrix("z", dtype="float64")
    if which == "probs":
        cost = pt.sum(costs.categorical_crossentropy(softmax(z), labels))
    else:
        cost = pt.sum(costs.categorical_crossentropy_from_logits(z, labels))
    assert check_grad(cost, [z], [logits]) < 1e-6


def test_binary_crossentropy_after_sigmoid_is_stable():
    z = pt.vector("z", dtype="float32")
    loss = pt.sum(costs.binary_crossentropy(pt.sigmoid(z), np.array([1.0, 0.0], "float32")))
    value, grad = pytensor.function([z], [loss, pytensor.grad(loss, z)])(
        np.array([-200.0, 200.0], dtype="float32")
    )
    np.testing.assert_allclose(value, 400.0, rtol=1e-6)
    np.testing.assert_allclose(grad, [-1.0, 1.0])


def test_binary_crossentropy_and_gradient(rng):
    p = pt.vector("p", dtype="float64")
    pv = rng.uniform(0.05, 0.95, 5)
    tv = rng.integers(0, 2, 5).astype("float64")
    want = -(tv * np.log(pv) + (1 - tv) * np.log(1 - pv))
    np.testing.assert_allclose(costs.binary_crossentropy(p, tv).eval({p: pv}), want)
    assert check_grad(pt.sum(costs.binary_crossentropy(p, tv)), [p], [pv]) < 1e-6


def test_squared_error_and_gradient(rng):
    a = pt.matrix("a", dtype="float64")
    av, bv = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    np.testing.assert_allclose(costs.squared_error(a, bv).eval({a: av}), (av - bv) ** 2)
    assert check_grad(pt.sum(costs.squared_error(a, bv)), [a], [av]) < 1e-6


def test_accuracy_for_classes_onehot_and_binary():
    p = pt.matrix("p", dtype="float32")
    pv = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype="float32")
    assert float(costs.accuracy(p, np.array([0, 1, 1])).eval({p: pv})) == pytest.approx(2 / 3)
    assert float(costs.accuracy(p, np.eye(2)[[0, 1, 1]]).eval({p: pv})) == pytest.approx(2 / 3)
    q = pt.vector("q", dtype="float32")
    qv = np.array([0.9, 0.2, 0.7], dtype="float32")
    assert float(costs.accuracy(q, np.array([1.0, 0.0, 0.0])).eval({q: qv})) == pytest.approx(2 / 3)


def test_aggregate_modes_and_weights():
    v = pt.vector("v", dtype="float64")
    vv = np.array([1.0, 2.0, 3.0])
    assert float(costs.aggregate(v).eval({v: vv})) == 2.0
    assert float(costs.aggregate(v, "sum").eval({v: vv})) == 6.0
    assert float(costs.aggregate(v, "sum", weights=np.array([1.0, 0, 0])).eval({v: vv})) == 1.0
    with pytest.raises(SymnnValueError, match="mode='median' is not known"):
        costs.aggregate(v, "median")


def test_costs_reject_wrong_targets():
    p = pt.matrix("p", dtype="float32")
    with pytest.raises(SymnnValueError, match="predictions must be a matrix"):
        costs.categorical_crossentropy(pt.vector("v"), pt.ivector("t"))
    with pytest.raises(SymnnTypeError, match="labels must be integer"):
        costs.nll(p, pt.vector("t", dtype="float32"))


def test_regularization(rng):
    w1 = pytensor.shared(rng.standard_normal((3, 2)))
    w2 = pytensor.shared(rng.standard_normal(4))
    np.testing.assert_allclose(
        regularization.l2([w1, w2]).eval(),
        (w1.get_value() ** 2).sum() + (w2.get_value() ** 2).sum(),
    )
    np.testing.assert_allclose(regularization.l1([w1]).eval(), np.abs(w1.get_value()).sum())
    np.testing.assert_allclose(
        regularization.apply_penalty([w2], regularization.l2, 0.5).eval(),
        0.5 * (w2.get_value() ** 2).sum(),
    )
    assert check_grad(regularization.l2([w1, w2]), [w1, w2]) < 1e-6
    with pytest.raises(SymnnValueError, match="params is empty"):
        regularization.l2([])
