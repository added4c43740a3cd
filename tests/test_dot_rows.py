"""One-row products by gemv (symnn.ops.dot_rows): the same values as numpy for every layout
the C branch takes and for the layouts it leaves to Dot22, NaN and infinity as numpy's,
gradients, and two threads."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytensor.tensor as pt
import pytest

from symnn.backend import function
from symnn.ops.dot_rows import RowAwareDot22

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _ops(f):
    return [n.op for n in f.maker.fgraph.toposort()]


@pytest.fixture(scope="module", params=["float32", "float64"])
def product(request):
    """``(f, dtype)``: ``f(x, y) = x @ y`` compiled once in symnn's C mode."""
    dtype = request.param
    x, y = pt.matrix("x", dtype=dtype), pt.matrix("y", dtype=dtype)
    f = function([x, y], x @ y, mode="C")
    assert any(isinstance(op, RowAwareDot22) for op in _ops(f))
    return f, dtype


def _layouts(rng, dtype, k, n):
    """Right-hand matrices of shape (k, n): C-ordered, F-ordered (a transpose), every other
    row of a larger one (lda > n), every other column (no unit stride: Dot22's own code)."""
    base = rng.standard_normal((2 * k, 2 * n)).astype(dtype)
    return {
        "C": np.ascontiguousarray(base[:k, :n]),
        "F": np.asfortranarray(base[:k, :n]),
        "rows": base[::2, :n],
        "columns": base[:k, ::2],
    }


@pytest.mark.parametrize("k, n", [(37, 23), (1, 5), (5, 1), (1, 1), (300, 200)])
def test_one_row_equals_numpy_for_every_layout(product, k, n):
    f, dtype = product
    rng = np.random.default_rng(k * 1000 + n)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for name, y in _layouts(rng, dtype, k, n).items():
        for x in (rng.standard_normal((1, k)).astype(dtype),
                  rng.standard_normal((1, 2 * k)).astype(dtype)[:, ::2]):  # fmt: skip
            got = f(x, y)
            want = x.astype(np.float64) @ y.astype(np.float64)
            assert got.shape == (1, n) and got.dtype == dtype, name
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max(),
                                       err_msg=name)  # fmt: skip


def test_other_row_counts_and_alternating_shapes(product):
    """The output buffer is reallocated between one row and several, and empty shapes give
    numpy's answers (zeros for an empty inner dimension)."""
    f, dtype = product
    rng = np.random.default_rng(1)
    y = rng.standard_normal((40, 30)).astype(dtype)
    for rows in (1, 3, 1, 1, 0, 2, 1):
        x = rng.standard_normal((rows, 40)).astype(dtype)
        np.testing.assert_allclose(f(x, y), x @ y, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(f(np.ones((1, 0), dtype), np.ones((0, 4), dtype)),
                                  np.zeros((1, 4), dtype))  # fmt: skip
    assert f(np.ones((1, 4), dtype), np.ones((4, 0), dtype)).shape == (1, 0)


def test_few_rows_by_a_large_matrix(product):
    """A right matrix of ``LARGE`` elements takes up to ``GEMV_ROWS_LARGE`` rows one ``gemv``
    each (C- and F-ordered, a strided left matrix), more rows ``gemm``: the same values."""
    from symnn.ops.dot_rows import GEMV_ROWS_LARGE, LARGE

    f, dtype = product
    rng = np.random.default_rng(4)
    side = int(np.sqrt(LARGE))
    y = rng.standard_normal((side, side)).astype(dtype)
    tol = 1e-4 if dtype == "float32" else 1e-10
    for rows in range(1, GEMV_ROWS_LARGE + 2):
        x = rng.standard_normal((rows, 2 * side)).astype(dtype)[:, ::2]
        for right in (y, y.T):
            want = x.astype(np.float64) @ right.astype(np.float64)
            np.testing.assert_allclose(f(x, right), want, rtol=tol, atol=tol * np.abs(want).max())


def test_nan_and_infinity_as_numpy(product):
    """0 * inf is NaN and NaN spreads along its row and column, as in numpy and PyTorch: gemv
    with a zeroed output (beta 0) does not skip zero coefficients."""
    f, dtype = product
    x = np.array([[0.0, 1.0, 2.0]], dtype)
    y = np.array([[np.inf, 1.0], [1.0, 1.0], [1.0, -np.inf]], dtype)
    with np.errstate(invalid="ignore"):
        want = x @ y
    np.testing.assert_array_equal(f(x, y), want)  # [[nan, -inf]]
    x_nan = np.array([[np.nan, 1.0, 0.0]], dtype)
    assert np.isnan(f(x_nan, np.ones((3, 2), dtype))).all()
    for order in ("C", "F"):
        y_nan = np.array(np.ones((3, 2)), dtype, order=order)
        y_nan[1, 0] = np.nan
        np.testing.assert_array_equal(np.isnan(f(np.ones((1, 3), dtype), y_nan)),
                                      [[True, False]])  # fmt: skip


def test_gradient_of_a_one_row_layer_against_numpy():
    """The backward pass has a one-row product by a transposed (F-ordered) weight matrix."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((50, 20)).astype("float32")
    x = pt.matrix("x", dtype="float32")
    W = pt.matrix("W", dtype="float32")
    out = pt.tanh(x @ W)
    gx, gw = pt.grad(out.sum() + (out**2).sum(), [x, W])
    f = function([x, W], [gx, gw], mode="C")
    assert any(isinstance(op, RowAwareDot22) for op in _ops(f))
    a = rng.standard_normal((1, 50)).astype("float32")
    t = np.tanh(a.astype(np.float64) @ w)
    g = (1 + 2 * t) * (1 - t**2)
    got_x, got_w = f(a, w)
    np.testing.assert_allclose(got_x, g @ w.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_w, a.T @ g, rtol=1e-4, atol=1e-4)


def test_two_threads_run_one_row_products_at_once():
    rng = np.random.default_rng(3)
    y = rng.standard_normal((500, 300)).astype("float32")
    x = pt.matrix("x", dtype="float32")
    fs = [function([x], x @ pt.constant(y), mode="C") for _ in range(2)]
    rows = [rng.standard_normal((1, 500)).astype("float32") for _ in range(40)]

    def run(i):
        return fs[i % 2](rows[i]).copy()

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, range(40)))
    for r, g in zip(rows, got):
        np.testing.assert_allclose(g, r @ y, rtol=1e-4, atol=1e-3)


def test_only_symnns_c_mode_uses_it():
    x, y = pt.matrix("x"), pt.matrix("y")
    f = function([x, y], x @ y, mode="NUMBA")
    assert not any(isinstance(op, RowAwareDot22) for op in _ops(f))
    np.testing.assert_allclose(f(np.ones((1, 3), "float32"), np.ones((3, 2), "float32")),
                               [[3.0, 3.0]])  # fmt: skip
