import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.builders import OpFromGraph

from symnn import check_grad
from symnn.errors import SymnnValueError


def _square_with_wrong_gradient():
    x = pt.vector("x", dtype="float64")
    # the gradient of x**2 is 2x; this op claims 3x
    return OpFromGraph([x], [x**2], pullback=lambda inps, outs, gouts: [gouts[0] * 3 * inps[0]])


def test_check_grad_is_small_for_a_right_gradient(rng):
    w = pytensor.shared(rng.standard_normal(3), name="w")
    x = pt.vector("x", dtype="float64")
    cost = pt.sum(pt.sigmoid(w * x) ** 2) + pt.sum(w**3)
    assert check_grad(cost, [w, x], [rng.standard_normal(3)]) < 1e-7


def test_check_grad_catches_a_wrong_gradient(rng):
    op = _square_with_wrong_gradient()
    x = pt.vector("x", dtype="float64")
    err = check_grad(pt.sum(op(x)), [x], [np.array([1.0, 2.0])])
    assert abs(err - 1 / 3) < 1e-6  # |3x - 2x| / 3x


def test_check_grad_restores_shared_values(rng):
    w = pytensor.shared(np.array([1.0, 2.0]))
    check_grad(pt.sum(w**2), [w])
    np.testing.assert_array_equal(w.get_value(), [1.0, 2.0])


def test_check_grad_float32_graph(rng):
    w = pytensor.shared(rng.standard_normal((4, 3)).astype("float32"))
    x = pt.matrix("x", dtype="float32")
    cost = pt.mean(pt.tanh(pt.dot(x, w)))
    err = check_grad(cost, [w], givens={x: rng.standard_normal((5, 4)).astype("float32")})
    assert err < 1e-2


def test_check_grad_names_missing_inputs():
    x = pt.vector("x", dtype="float64")
    y = pt.vector("y", dtype="float64")
    with pytest.raises(SymnnValueError, match="depends on y"):
        check_grad(pt.sum(x * y), [x], [np.ones(2)])
    with pytest.raises(SymnnValueError, match="values has 0 arrays for 1 symbolic"):
        check_grad(pt.sum(x), [x])
    with pytest.raises(SymnnValueError, match="must be a scalar"):
        check_grad(x, [x], [np.ones(2)])
