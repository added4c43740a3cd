"""symnn.ops.flat_elemwise: elementwise nodes of many operands get a flat C loop for
contiguous operands; the values are those of PyTensor's own loop (and of numpy), on the
flat path and on every fallback (strided, broadcast rows, in place or not)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn import updates
from symnn.backend import python_nodes, resolve_mode
from symnn.ops.flat_elemwise import FlatElemwise, FlatElemwise32

pytestmark = pytest.mark.slow  # compiles C code

NO_FLAT = "symnn_flat_elemwise"


def _both(inputs, outputs, updates=None):
    """The same graph compiled with and without the flat loop."""
    mode = resolve_mode("C")
    return [
        pytensor.function(inputs, outputs, updates=updates, mode=m)
        for m in (mode, mode.excluding(NO_FLAT))
    ]


def _flat_ops(fn):
    return [n.op for n in fn.maker.fgraph.toposort() if isinstance(n.op, FlatElemwise)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_equal_pytensors_loop_and_numpy_on_every_path(dtype):
    a, b, c = (pt.matrix(n, dtype=dtype) for n in "abc")
    r = pt.row("r", dtype=dtype)
    s = pt.scalar("s", dtype=dtype)
    outs = [pt.sqrt(a * a + b) / (c + s) - r, a * s + b * c]
    flat, plain = _both([a, b, c, r, s], outs)
    assert _flat_ops(flat) and not _flat_ops(plain) and python_nodes(flat) == []
    rng = np.random.default_rng(0)
    A, B, C = (rng.random((37, 29)).astype(dtype) + 0.5 for _ in range(3))
    R, S = rng.random((1, 29)).astype(dtype), np.asarray(0.3, dtype=dtype)
    for args in (
        (A, B, C, R, S),  # contiguous: the flat loop
        (A.T.copy().T, B, C, R, S),  # Fortran order: PyTensor's loop
        (A[:, ::2], B[:, ::2], C[:, ::2], R[:, ::2], S),  # strided
    ):
        got, ref = flat(*args), plain(*args)
        a_, b_, c_, r_, s_ = args
        expect = [np.sqrt(a_ * a_ + b_) / (c_ + s_) - r_, a_ * s_ + b_ * c_]
        for g, r0, e in zip(got, ref, expect):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, r0)
            tol = {"rtol": 2e-6, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-14}
            np.testing.assert_allclose(g, e, **tol)


def test_float32_nodes_use_single_precision_constants_and_float64_ones_do_not():
    for dtype, cls in (("float32", FlatElemwise32), ("float64", FlatElemwise)):
        x, y, z = (pt.vector(n, dtype=dtype) for n in "xyz")
        flat, _ = _both([x, y, z], [np.asarray(0.1, dtype=dtype) * x + y * z])
        assert {type(op) for op in _flat_ops(flat)} == {cls}
    x = pt.vector("x", dtype="float64")
    fn, _ = _both([x], [x * 0.1 + x * x + 1e-300])  # a double constant keeps its value
    np.testing.assert_array_equal(fn(np.zeros(3))[0], np.full(3, 1e-300))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adams_fused_update_runs_the_flat_loop_in_place_with_the_same_values(dtype):
    rng = np.random.default_rng(1)
    W0 = rng.standard_normal((64, 33)).astype(dtype)
    G = rng.standard_normal((64, 33)).astype(dtype)
    results = []
    for mode in (resolve_mode("C"), resolve_mode("C").excluding(NO_FLAT)):
        W = pytensor.shared(W0.copy(), name="W")
        g = pt.matrix("g", dtype=dtype)
        fn = pytensor.function([g], [], updates=updates.adam([g], [W], 0.01), mode=mode)
        for _ in range(5):
            fn(G)
        results.append((W.get_value(), fn))
    (flat_w, flat_fn), (plain_w, _) = results
    ops = _flat_ops(flat_fn)
    assert ops and all(op.destroy_map for op in ops)  # in place, as PyTensor's node was
    # float32: the flat loop's constants are float32 as in the graph, PyTensor's loop
    # writes them as double literals; the last bit may differ
    np.testing.assert_allclose(flat_w, plain_w, rtol=1e-5 if dtype == "float32" else 1e-15)
