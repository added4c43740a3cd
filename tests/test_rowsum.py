"""RowSum: row sums with float64 accumulation, in place of PyTensor's Sum{axis=1}."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.backend import resolve_mode
from symnn.ops.rowsum import RowSum, row_sum


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["FAST_COMPILE", "C"])
def test_row_sums_match_numpy_in_double_precision(dtype, mode):
    mode = resolve_mode("C") if mode == "C" else mode
    rng = np.random.default_rng(0)
    x = pt.matrix("x", dtype=dtype)
    fn = pytensor.function([x], [row_sum(x), row_sum(x.T)], mode=mode)
    for shape in [(5, 784), (3, 7), (4, 0), (1, 1001)]:
        X = (rng.normal(size=shape) * 1e3 + 1e4).astype(dtype)
        got, got_t = fn(X)
        np.testing.assert_allclose(got, X.astype(np.float64).sum(axis=1), rtol=1e-7)
        np.testing.assert_allclose(got_t, X.T.astype(np.float64).sum(axis=1), rtol=1e-7)
        assert got.dtype == dtype


def test_symnn_mode_puts_it_in_place_of_sum_and_its_gradient_is_right():
    x = pt.matrix("x", dtype="float32")
    cost = pt.sum(pt.square(x), axis=1)
    fn = pytensor.function([x], [cost, pytensor.grad(cost.sum(), x)], mode=resolve_mode("C"))
    ops = [type(n.op).__name__ for n in fn.maker.fgraph.toposort()]
    assert "RowSum" in ops
    X = np.random.default_rng(1).normal(size=(6, 50)).astype("float32")
    got, grad = fn(X)
    np.testing.assert_allclose(got, (X.astype(np.float64) ** 2).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(grad, 2 * X, rtol=1e-6)
    g = pt.vector("g", dtype="float64")
    xd = pt.matrix("xd", dtype="float64")
    back = pytensor.grad(pt.sum(RowSum()(xd) * g), xd)
    out = pytensor.function([xd, g], back, mode="FAST_COMPILE")(np.ones((2, 3)), np.array([1.0, 2]))
    np.testing.assert_array_equal(out, [[1, 1, 1], [2, 2, 2]])
