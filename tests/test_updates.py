import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn import updates
from symnn.errors import SymnnTypeError, SymnnValueError

# Ten steps on f(X) = sum([0.1, 0.2, 0.3] * X**2) from X = [1, 1, 1], values calculated by
# the torch.optim package (as stored in Lasagne's lasagne/tests/test_updates.py).
TORCH_VALUES = {
    "sgd": [0.81707280688755, 0.6648326359915, 0.5386151140949],
    "momentum": [0.6848486952183, 0.44803321781003, 0.27431190123502],
    "nesterov_momentum": [0.67466543592725, 0.44108468114241, 0.2769002108997],
    "adagrad": [0.55373120047759, 0.55373120041518, 0.55373120039438],
    "rmsprop": [0.83205403985348, 0.83205322744821, 0.83205295664444],
    "adadelta": [0.95453237704725, 0.9545237471374, 0.95452214847397],
    "adam": [0.90034972009036, 0.90034967993061, 0.90034966654402],
}
KWARGS = {
    "sgd": {"learning_rate": 0.1},
    "momentum": {"learning_rate": 0.1, "momentum": 0.5},
    "nesterov_momentum": {"learning_rate": 0.1, "momentum": 0.5},
    "adagrad": {"learning_rate": 0.1},
    "rmsprop": {"learning_rate": 0.01},
    "adadelta": {},
    "adam": {"learning_rate": 0.01},
    "adamax": {"learning_rate": 0.01},
}
COEF = np.array([0.1, 0.2, 0.3])


def adamax_reference(steps, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """Algorithm 2 of Kingma & Ba (2015), written from the paper in plain numpy."""
    x = np.ones(3)
    m = np.zeros(3)
    u = np.zeros(3)
    for t in range(1, steps + 1):
        g = 2 * COEF * x
        m = beta1 * m + (1 - beta1) * g
        u = np.maximum(beta2 * u, np.abs(g))
        x = x - (lr / (1 - beta1**t)) * m / (u + eps)
    return x


REFERENCE = dict(TORCH_VALUES, adamax=adamax_reference(10).tolist())


def _run(method, dtype, steps=10, **extra):
    a = pytensor.shared(np.ones(3, dtype=dtype), name="A")
    b = pytensor.shared(np.ones(3, dtype=dtype), name="B")

    def f(x):
        return pt.sum(COEF.astype(dtype) * x**2)

    ups = getattr(updates, method)(f(a) + f(b), [a, b], **{**KWARGS[method], **extra})
    step = pytensor.function([], [], updates=ups)
    for _ in range(steps):
        step()
    return a, b, ups


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_rule_trajectory_matches_independent_reference(method):
    a, b, _ = _run(method, "float64")
    np.testing.assert_allclose(a.get_value(), b.get_value())
    np.testing.assert_allclose(a.get_value(), REFERENCE[method], rtol=1e-5)


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_rule_keeps_float32(method):
    a, _, ups = _run(method, "float32")
    assert a.get_value().dtype == np.float32
    for shared, expr in ups.items():
        assert expr.dtype == shared.dtype, (shared, expr.dtype)
    np.testing.assert_allclose(a.get_value(), REFERENCE[method], rtol=2e-4)


def test_rule_state_lives_in_the_returned_dict():
    a = pytensor.shared(np.ones(3), name="A")
    ups = updates.adam(pt.sum(a**2), [a])
    names = sorted(str(k.name) for k in ups)
    assert names == ["A", "A.m", "A.v", "t"]


def test_learning_rate_may_be_a_shared_variable():
    lr = updates.shared_learning_rate(0.1, dtype="float64")
    a = pytensor.shared(np.array([1.0]))
    step = pytensor.function([], [], updates=updates.sgd(pt.sum(a**2), [a], lr))
    step()
    lr.set_value(np.float64(0.0))
    step()
    np.testing.assert_allclose(a.get_value(), [0.8])


def test_get_or_compute_grads_checks_params():
    a = pytensor.shared(1.0)
    x = pt.scalar("x")
    with pytest.raises(SymnnTypeError, match="shared variables only"):
        updates.get_or_compute_grads(a + x, [a, x])
    grads = updates.get_or_compute_grads(a * 2, [a])
    with pytest.raises(SymnnValueError, match="got 1 gradients for 2 parameters"):
        updates.get_or_compute_grads(grads, [a, pytensor.shared(2.0)])
    with pytest.raises(SymnnValueError, match="must be a scalar"):
        updates.get_or_compute_grads(pt.stack([a, a]), [a])


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), "fast"])
def test_bad_learning_rate_is_named(bad):
    a = pytensor.shared(np.ones(2))
    with pytest.raises((SymnnValueError, SymnnTypeError), match="learning_rate"):
        updates.sgd(pt.sum(a**2), [a], bad)


def test_bad_hyperparameters_are_named():
    a = pytensor.shared(np.ones(2))
    with pytest.raises(SymnnValueError, match="momentum=1.5"):
        updates.momentum(pt.sum(a), [a], 0.1, momentum=1.5)
    with pytest.raises(SymnnValueError, match="rho"):
        updates.rmsprop(pt.sum(a), [a], rho=1.0)


def test_apply_momentum_composes_with_any_rule():
    a = pytensor.shared(np.array([1.0]))
    ups = updates.apply_momentum(updates.sgd(pt.sum(a**2), [a], 0.1), momentum=0.5)
    step = pytensor.function([], [], updates=ups)
    step()  # v = -0.2, a = 0.8
    step()  # v = 0.5 * -0.2 - 0.16 = -0.26, a = 0.54
    np.testing.assert_allclose(a.get_value(), [0.54])


def test_total_norm_constraint_rescales_jointly():
    x1 = pt.scalar("x1", dtype="float32")
    x2 = pt.matrix("x2", dtype="float32")
    scaled, norm = updates.total_norm_constraint([x1, x2], 5.0, return_norm=True)
    f = pytensor.function([x1, x2], [*scaled, norm])
    xs = np.arange(1, 11, dtype="float32")
    o1, o2, n = f(xs[-1], xs[:9].reshape(3, 3))
    np.testing.assert_allclose(n, np.linalg.norm(xs), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.r_[o1, o2.ravel()]), 5.0, rtol=1e-5)
    assert o2.dtype == np.float32


def test_norm_constraint_caps_each_column(rng):
    w = pytensor.shared(rng.standard_normal((20, 5)))
    pytensor.function([], [], updates={w: updates.norm_constraint(w, 0.1)})()
    assert np.linalg.norm(w.get_value(), axis=0).max() <= 0.1 * (1 + 1e-5)


def test_schedules():
    assert updates.ExponentialDecay(0.3, 0.9)(0) == 0.3
    np.testing.assert_allclose(updates.ExponentialDecay(0.3, 0.9)(3), 0.3 * 0.9**3)
    assert updates.StepDecay(1.0, drop=0.1, every=2)(3) == pytest.approx(0.1)
    assert updates.InverseTimeDecay(0.5, decay=0.5)(2) == 0.25
    assert updates.Constant(0.2)(100) == 0.2
    with pytest.raises(SymnnValueError, match="decay"):
        updates.ExponentialDecay(0.1, 1.5)
    with pytest.raises(SymnnValueError, match="learning_rate"):
        updates.StepDecay(-1.0)
