import numpy as np
import pytensor.tensor as pt
import pytest
from scipy.special import expit
from scipy.special import log_softmax as scipy_log_softmax
from scipy.special import softmax as scipy_softmax

from symnn import check_grad
from symnn import nonlinearities as nl
from symnn.errors import SymnnValueError

REFERENCE = {
    "sigmoid": expit,
    "tanh": np.tanh,
    "relu": lambda x: x * (x > 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softplus": lambda x: np.logaddexp(0, x),
    "linear": lambda x: x,
    "softmax": lambda x: scipy_softmax(x, axis=-1),
    "log_softmax": lambda x: scipy_log_softmax(x, axis=-1),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_nonlinearity_matches_numpy_and_keeps_dtype(name, dtype, rng):
    x = pt.matrix("x", dtype=dtype)
    xv = (rng.standard_normal((4, 5)) * 3).astype(dtype)
    out = getattr(nl, name)(x).eval({x: xv})
    assert out.dtype == dtype
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, REFERENCE[name](xv.astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_nonlinearity_gradient_matches_finite_differences(name, rng):
    x = pt.matrix("x", dtype="float64")
    # keep away from the kink of relu-like functions, where the derivative jumps
    xv = rng.uniform(0.2, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4))
    weights = rng.standard_normal((3, 4))
    cost = pt.sum(getattr(nl, name)(x) * weights)
    assert check_grad(cost, [x], [xv]) < 1e-6


def test_softmax_is_stable_for_huge_inputs():
    x = pt.matrix("x", dtype="float32")
    xv = np.array([[1e4, 1e4 - 1.0, -1e4]], dtype="float32")
    out = nl.softmax(x).eval({x: xv})
    np.testing.assert_allclose(out, scipy_softmax(xv.astype(np.float64), axis=1), atol=1e-6)
    log_out = nl.log_softmax(x).eval({x: xv})
    np.testing.assert_allclose(log_out, scipy_log_softmax(xv.astype(np.float64), axis=1), atol=1e-3)


def test_grouped_softmax_is_a_softmax_per_group(rng):
    sizes = (3, 1, 4)
    x = pt.matrix("x", dtype="float64")
    xv = rng.standard_normal((5, 8)) * 50  # large values: each group needs its own max
    out = nl.grouped_softmax(x, sizes).eval({x: xv})
    want = np.concatenate(
        [scipy_softmax(xv[:, 0:3], axis=1), np.ones((5, 1)), scipy_softmax(xv[:, 4:8], axis=1)],
        axis=1,
    )
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)


def test_grouped_softmax_gradient(rng):
    x = pt.matrix("x", dtype="float64")
    w = rng.standard_normal((2, 5))
    cost = pt.sum(nl.grouped_softmax(x, [2, 3]) * w)
    assert check_grad(cost, [x], [rng.standard_normal((2, 5))]) < 1e-6


def test_grouped_softmax_rejects_sizes_that_do_not_add_up():
    x = pt.matrix("x", dtype="float32", shape=(None, 5))
    with pytest.raises(SymnnValueError, match="add up to 4 columns but x has 5"):
        nl.grouped_softmax(x, [2, 2])
    with pytest.raises(SymnnValueError, match="group sizes >= 1"):
        nl.grouped_softmax(x, [5, 0])


def test_leaky_relu_alpha():
    x = pt.vector("x", dtype="float32")
    out = nl.leaky_relu(x, alpha=0.2).eval({x: np.array([-1.0, 2.0], dtype="float32")})
    np.testing.assert_allclose(out, [-0.2, 2.0], rtol=1e-6)


def test_get_resolves_names_and_rejects_unknown():
    assert nl.get("ReLU") is nl.relu
    assert nl.get(None) is nl.linear
    with pytest.raises(SymnnValueError, match="activation='swish' is not known"):
        nl.get("swish")


@pytest.mark.parametrize("layer", [False, True])
def test_relu_values_and_gradient_are_pytorchs_at_zero_nan_and_infinities(layer):
    """PyTorch's relu, as a function and as ONNX's ``Elementwise("relu")``: NaN stays NaN;
    the gradient is 0 at and below 0 (also at -0.0 and -inf) and passes the incoming
    gradient unchanged above 0 and at NaN (inf included); values and gradient float32."""
    import pytensor

    from symnn.layers import Elementwise

    relu = Elementwise("relu") if layer else nl.relu
    x = pt.vector("x", dtype="float32")
    v = np.array([-1.0, 0.0, -0.0, 2.0, np.nan, np.inf, -np.inf], dtype="float32")
    g = pt.vector("g", dtype="float32")
    incoming = np.array([5.0, 5.0, 5.0, np.inf, 3.0, np.nan, np.inf], dtype="float32")
    out, grad = pytensor.function(
        [x, g], [relu(x), pytensor.grad((relu(x) * g).sum(), x)], mode="FAST_COMPILE"
    )(v, incoming)
    assert out.dtype == grad.dtype == "float32"
    np.testing.assert_array_equal(out, [0, 0, 0, 2, np.nan, np.inf, 0])
    np.testing.assert_array_equal(grad, [0, 0, 0, np.inf, 3, np.nan, 0])


def test_relu_input_recognises_only_relus_own_graph():
    import pytensor

    x, y = pt.matrix("x"), pt.matrix("y")
    assert nl.relu_input(nl.relu(x)) is x
    for other in [pt.maximum(x, 0), pt.switch(x <= 0, 0, y), pt.switch(x <= 1, 0, x),
                  pt.switch(pytensor.gradient.disconnected_grad(y) <= 0, 0, x),
                  pt.switch(x <= 0, 1, x), pt.switch(x < 0, 0, x), x, nl.elu(x)]:  # fmt: skip
        assert nl.relu_input(other) is None
