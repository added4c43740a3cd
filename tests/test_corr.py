"""The convolution's input gradient by chunks of images (``symnn.ops.corr.Col2ImGemm``, put in
place of ``Col2Im(Dot22(..))`` by symnn's C mode) against numpy's ``col2im(w.T @ gz)``, and
the max-pooling gradient's memory layout."""

import threading

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.fg import FunctionGraph

from symnn.backend import python_nodes, resolve_mode
from symnn.layers import Conv2D
from symnn.ops.conv import Col2Im, Im2Col, pool_2d
from symnn.ops.corr import CHUNK_BYTES, Col2ImGemm

C_MODE = resolve_mode("C")

CASES = [  # (N, C, H, W), kernel, stride, pad, dilation, ones_row
    ((10, 16, 16, 16), (3, 3), (1, 1), (1, 1), (1, 1), True),  # 4 chunks (3 + 3 + 3 + 1)
    ((3, 8, 20, 20), (5, 5), (1, 1), (2, 2), (1, 1), False),  # 3 chunks of 1 image
    ((1, 3, 9, 8), (7, 7), (2, 3), (8, 9), (1, 1), True),  # padding larger than the kernel
    ((4, 5, 7, 6), (1, 1), (1, 1), (0, 0), (1, 1), False),
    ((5, 2, 11, 10), (3, 2), (3, 2), (1, 0), (2, 3), True),
]


def _numpy_reference(w, gz, like, geometry, ones_row):
    cols = (w.T @ gz).astype(like.dtype)
    storage = [[None]]
    Col2Im(*geometry, ones_row=ones_row).perform(None, [cols, like], storage)
    return storage[0][0]


def _inputs(shape, geometry, ones_row, dtype, seed=0):
    rng = np.random.default_rng(seed)
    cols = np.empty(Im2Col(*geometry, ones_row=ones_row).infer_shape(None, [shape])[0])
    x = rng.normal(size=shape).astype(dtype)
    w = rng.normal(size=(6, cols.shape[0])).astype(dtype)
    gz = rng.normal(size=(6, cols.shape[1])).astype(dtype)
    return w, gz, x


def _compiled(geometry, ones_row, dtype):
    w, gz, x = pt.matrix("w", dtype=dtype), pt.matrix("gz", dtype=dtype), pt.tensor4(dtype=dtype)
    out = Col2ImGemm(*geometry, ones_row=ones_row)(w, gz, x)
    return pytensor.function([w, gz, x], out, mode=C_MODE)


def test_the_first_cases_span_several_chunks():
    for shape, kernel, *_, ones_row in CASES[:2]:
        k = shape[1] * kernel[0] * kernel[1] + ones_row
        per_image = 4 * k * shape[2] * shape[3]  # float32, stride 1, same size
        chunk = max(1, CHUNK_BYTES // per_image)  # images per chunk, as the C code
        assert chunk < shape[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,kernel,stride,pad,dilation,ones_row", CASES)
def test_chunked_input_gradient_equals_col2im_of_the_product(
    shape, kernel, stride, pad, dilation, ones_row, dtype
):
    geometry = (kernel, stride, pad, dilation)
    w, gz, x = _inputs(shape, geometry, ones_row, dtype)
    fn = _compiled(geometry, ones_row, dtype)
    assert python_nodes(fn) == []
    want = _numpy_reference(w.astype("float64"), gz.astype("float64"), x, geometry, ones_row)
    tol = 1e-5 if dtype == "float32" else 1e-12
    got = fn(w, gz, x)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    # transposed and strided operands are read through copies, not misread
    got = fn(np.asfortranarray(w), np.ascontiguousarray(gz[:, ::-1])[:, ::-1], x)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_nan_and_infinity_propagate_as_the_product_does():
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1))
    w, gz, x = _inputs((10, 16, 16, 16), geometry, True, "float32", seed=1)
    gz[0, 5] = np.nan
    gz[2, 1000] = np.inf
    w[1, 3] = 0.0  # inf * 0
    got = _compiled(geometry, True, "float32")(w, gz, x)
    want = _numpy_reference(w, gz, x, geometry, True)
    assert np.isnan(want).any() and np.isinf(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-3)


def test_two_threads_at_once_give_the_serial_results():
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1))
    fns = [_compiled(geometry, True, "float32") for _ in range(2)]
    inputs = [_inputs((10, 16, 16, 16), geometry, True, "float32", seed=s) for s in (2, 3)]
    want = [fn(*args).copy() for fn, args in zip(fns, inputs)]
    wrong = []

    def run(i):
        for _ in range(20):
            if not np.array_equal(fns[i](*inputs[i]), want[i]):
                wrong.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_its_gradient_matches_finite_differences():
    geometry = ((3, 2), (2, 1), (1, 1), (1, 2))
    w, gz, x = _inputs((2, 3, 6, 5), geometry, True, "float64", seed=4)
    op = Col2ImGemm(*geometry, ones_row=True)
    like = pt.constant(x)
    pytensor.gradient.verify_grad(
        lambda a, b: op(a, b, like), [w, gz], rng=np.random.default_rng(0), mode=C_MODE
    )


def _graph_ops(mode, outputs):
    fgraph = FunctionGraph(outputs=outputs, clone=True)
    mode.excluding("inplace").optimizer.rewrite(fgraph)  # no supervisor: no in-place
    return {type(node.op).__name__ for node in fgraph.apply_nodes}


def test_the_c_mode_puts_it_in_a_convolution_s_gradient_and_numba_does_not():
    layer = Conv2D(3, 4, 5, pad=2, rng=0)
    x = pt.tensor4("x", dtype="float32")
    gx = pytensor.grad(layer(x).sum(), x)
    c_ops = _graph_ops(C_MODE, [gx])
    assert "Col2ImGemm" in c_ops and "Col2Im" not in c_ops
    numba_ops = _graph_ops(resolve_mode("NUMBA"), [gx])
    assert "Col2Im" in numba_ops and "Col2ImGemm" not in numba_ops
    X = np.random.default_rng(5).random((3, 3, 9, 9), dtype=np.float32)
    got = pytensor.function([x], gx, mode=C_MODE)(X)
    want = pytensor.function([x], gx, mode="FAST_COMPILE")(X)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_max_pooling_gradient_keeps_a_channels_first_input_s_memory_order():
    # a convolution writes (C, N, H, W) and the network pools its (N, C, H, W) view; the C
    # gradient comes back in the same order, so the weight gradient reads it without a copy
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 3, 8, 6)).astype("float32")  # (C, N, H, W) in memory
    x = pt.tensor4("x", dtype="float32")
    view = x.dimshuffle(1, 0, 2, 3)
    g = pytensor.grad(pt.sum(pool_2d(view, 2) ** 2), view)
    got = pytensor.function([x], g, mode=C_MODE)(X)
    want = pytensor.function([x], g, mode="FAST_COMPILE")(X)
    np.testing.assert_array_equal(got, want)
    assert got.transpose(1, 0, 2, 3).flags.c_contiguous


def test_operands_of_the_wrong_shape_are_named():
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1))
    w, gz, x = _inputs((2, 3, 6, 6), geometry, False, "float64")
    fn = _compiled(geometry, False, "float64")
    with pytest.raises(ValueError, match=r"gradient: weights of shape \(6, 26\); expected 27"):
        fn(w[:, :-1], gz, x)
    with pytest.raises(ValueError, match=r"gradient of shape \(6, 71\); expected \(6, 72\)"):
        fn(w, gz[:, :-1], x)
