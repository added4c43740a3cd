"""The fused softmax cross-entropy op against scipy's log_softmax, finite differences and the
elementwise formula, in every implementation (numpy perform, C, numba)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.special import log_softmax, softmax

import symnn
from symnn import check_grad
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.ops import softmax_cross_entropy
from symnn.ops.softmax_xent import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad


def reference(z, y):
    z = np.asarray(z, dtype=np.float64)
    loss = -log_softmax(z, axis=1)[np.arange(len(y)), y]
    grad = softmax(z, axis=1)
    grad[np.arange(len(y)), y] -= 1
    return loss, grad


def _graph(dtype):
    """Loss, gradient of the mean, and both through a transposed (non-contiguous) input."""
    z = pt.matrix(f"z_{dtype}", dtype=dtype)
    zt = pt.matrix(f"zt_{dtype}", dtype=dtype)  # fed as (k, n) and transposed in the graph
    y = pt.ivector(f"y_{dtype}")
    loss = softmax_cross_entropy(z, y)
    loss_t = softmax_cross_entropy(zt.T, y)
    grad = pytensor.grad(loss.mean(), z)
    grad_t = pytensor.grad(loss_t.mean(), zt)
    return [z, zt, y], [loss, grad, loss_t, grad_t]


@pytest.fixture(scope="module")
def compiled():
    """Both dtypes in one function per mode: the C mode compiles once for the module."""
    cache = {}

    def get(mode):
        if mode not in cache:
            ins32, outs32 = _graph("float32")
            ins64, outs64 = _graph("float64")
            cache[mode] = symnn.function(ins32 + ins64, outs32 + outs64, mode=mode)
        return cache[mode]

    return get


def _cases(rng):
    n, k = 7, 5
    z = rng.standard_normal((n, k)) * 3
    z[0] *= 1000  # far beyond exp's range: must stay finite
    y = rng.integers(0, k, n).astype("int32")
    y[1] = k - 1
    return z, y


MODES = ["FAST_COMPILE", pytest.param("C", marks=pytest.mark.slow)]


@pytest.mark.parametrize("mode", MODES)
def test_loss_and_gradient_match_log_softmax_in_both_float_types(mode, compiled, rng):
    z, y = _cases(rng)
    want_loss, want_grad = reference(z, y)
    args = []
    for dtype in ("float32", "float64"):
        zd = z.astype(dtype)
        args += [zd, np.ascontiguousarray(zd.T), y]
    out = compiled(mode)(*args)
    for dtype, (loss, grad, loss_t, grad_t) in zip(("float32", "float64"), (out[:4], out[4:])):
        tol = 1e-5 if dtype == "float32" else 1e-12
        assert loss.dtype == grad.dtype == dtype
        for got in (loss, loss_t):
            np.testing.assert_allclose(got, want_loss, rtol=tol, atol=tol)
        np.testing.assert_allclose(grad, want_grad / len(y), rtol=tol, atol=tol)
        np.testing.assert_allclose(grad_t, want_grad.T / len(y), rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", MODES)
def test_label_outside_the_classes_is_an_error_naming_label_and_row(mode, compiled, rng):
    z, y = _cases(rng)
    y[3] = 5
    args = []
    for dtype in ("float32", "float64"):
        args += [z.astype(dtype), np.ascontiguousarray(z.T.astype(dtype)), y]
    with pytest.raises(ValueError, match=r"label 5 of row 3 is outside \[0, 5\)"):
        compiled(mode)(*args)


def test_gradient_matches_finite_differences(rng):
    z = pytensor.shared(rng.standard_normal((6, 4)), name="z")
    y = pt.constant(rng.integers(0, 4, 6).astype("int32"))
    w = pt.constant(rng.random(6))  # unequal row weights: the per-row output gradient matters
    assert check_grad(pt.sum(w * softmax_cross_entropy(z, y)), z) < 1e-6


def test_second_derivative_matches_the_elementwise_formula(rng):
    z = pt.matrix("z", dtype="float64")
    y = pt.ivector("y")
    v = pt.constant(rng.standard_normal((3, 4)))
    zv, yv = rng.standard_normal((3, 4)), np.array([0, 3, 1], dtype="int32")

    def hessian_times_v(cost):
        return pytensor.grad(pt.sum(pytensor.grad(cost, z) * v), z).eval({z: zv, y: yv})

    fused = pt.sum(softmax_cross_entropy(z, y) ** 2)
    plain = pt.sum((-pt.special.log_softmax(z, axis=1)[pt.arange(3), y]) ** 2)
    np.testing.assert_allclose(hessian_times_v(fused), hessian_times_v(plain), rtol=1e-10)


def test_gradient_op_broadcasts_a_single_output_gradient(rng):
    z, y = _cases(rng)
    g = pt.vector("g", dtype="float64")
    zz = pt.matrix("zz", dtype="float64")
    yy = pt.ivector("yy")
    out = SoftmaxCrossEntropyGrad()(g, zz, yy).eval({g: np.array([0.5]), zz: z, yy: y})
    np.testing.assert_allclose(out, 0.5 * reference(z, y)[1], rtol=1e-12, atol=1e-12)


def test_costs_use_the_fused_op_for_integer_labels_only():
    z = pt.matrix("z", dtype="float32")
    fused = symnn.costs.categorical_crossentropy(symnn.nonlinearities.softmax(z), pt.ivector())
    assert isinstance(fused.owner.op, SoftmaxCrossEntropy)
    onehot = symnn.costs.categorical_crossentropy_from_logits(z, pt.matrix(dtype="float32"))
    assert not isinstance(onehot.owner.op, SoftmaxCrossEntropy)


@pytest.mark.parametrize(
    "logits, labels",
    [(pt.vector(dtype="float32"), pt.ivector()), (pt.matrix(dtype="float32"), pt.vector())],
)
def test_wrong_input_types_are_refused_when_the_graph_is_built(logits, labels):
    with pytest.raises(SymnnTypeError):
        softmax_cross_entropy(logits, labels)


def test_length_mismatch_is_an_error():
    z, y = pt.matrix(dtype="float64"), pt.ivector()
    with pytest.raises(SymnnValueError, match="3 labels for 2 rows"):
        softmax_cross_entropy(z, y).eval({z: np.zeros((2, 3)), y: np.zeros(3, "int32")})


@pytest.mark.slow
def test_numba_implementation_matches(rng):
    z, y = _cases(rng)
    zz, yy = pt.matrix("z", dtype="float64"), pt.ivector("y")
    loss = softmax_cross_entropy(zz, yy)
    f = pytensor.function([zz, yy], [loss, pytensor.grad(loss.sum(), zz)], mode="NUMBA")
    want_loss, want_grad = reference(z, y)
    got_loss, got_grad = f(z, y)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-12, atol=1e-12)
    y[2] = -1
    with pytest.raises(ValueError, match="outside"):
        f(z, y)


@pytest.mark.slow  # a subprocess compiling numba
def test_numba_is_imported_only_when_the_numba_backend_is_used():
    """``import symnn`` leaves numba alone (0.3 s); the NUMBA backend, imported later, still
    runs symnn's own numba loops (object mode would warn)."""
    import subprocess
    import sys

    code = (
        "import sys, warnings, numpy as np, pytensor, pytensor.tensor as pt, symnn\n"
        "assert 'numba' not in sys.modules, 'numba imported by symnn'\n"
        "from symnn.ops.softmax_xent import softmax_cross_entropy\n"
        "from symnn.ops.conv import im2col\n"
        "z, y, x = pt.matrix('z', dtype='float64'), pt.ivector('y'), pt.tensor4('x')\n"
        "loss = softmax_cross_entropy(z, y)\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('error')\n"
        "    f = pytensor.function([z, y, x], [loss, im2col(x, 2, 1, 0)], mode='NUMBA')\n"
        "out = f(np.zeros((2, 3)), np.array([0, 1], dtype='int32'), np.ones((1, 1, 3, 3)))\n"
        "print(np.round(out[0], 6).tolist(), out[1].shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[1.098612, 1.098612] (4, 4)", out.stdout
