"""Empty axes (a size 0 in a sample's shape): reductions over them give the op's identity
(numpy's and ONNX's: 0, 1, the lowest or highest value, NaN for a mean) on every backend,
and ONNX's ``Reshape`` with ``allowzero=1`` reads a 0 as a size."""

from contextlib import nullcontext

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.io import from_onnx
from symnn.layers import Graph, Input, Reduce, Reshape

MODES = ["FAST_COMPILE", None, "NUMBA"]  # Python, the default C backend, Numba


def _identity(op, x, axes, keepdims):
    """numpy's reduction of the empty ``x``, with ONNX's identity where numpy has none."""
    if op in ("max", "min"):
        info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
        bounds = ((info.min, info.max) if info else (False, True) if x.dtype == bool
                  else (-np.inf, np.inf))  # fmt: skip
        fn = np.max if op == "max" else np.min
        return fn(x, axis=axes, keepdims=keepdims, initial=bounds[op == "min"])
    with pytest.warns(RuntimeWarning) if op == "mean" else nullcontext():  # mean of nothing
        return getattr(np, op)(x, axis=axes, keepdims=keepdims).astype(x.dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "int16", "bool"])
def test_reductions_over_an_empty_axis_give_the_identity(dtype, mode):
    if mode == "NUMBA":
        pytest.importorskip("numba")
    x = np.zeros((3, 0, 4), dtype=dtype)
    X = pt.tensor3(dtype=dtype, shape=(None, 0, 4))
    ops = ["sum", "prod", "max", "min", "mean"] if dtype == "float32" else ["max", "min"]
    ops += ["sum", "prod"] if dtype == "int16" else []
    outs, wants = [], []
    for op in ops:
        for keepdims in (True, False):
            outs.append(Reduce(op, [1], keepdims=keepdims)(X))
            wants.append(_identity(op, x, 1, keepdims))
    for got, want in zip(pytensor.function([X], outs, mode=mode)(x), wants):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_a_reduction_over_a_full_axis_of_an_empty_tensor_is_empty():
    X = pt.tensor3(dtype="float32", shape=(None, 0, 4))
    got = Reduce("max", [2], keepdims=True)(X).eval({X: np.zeros((2, 0, 4), "float32")})
    assert got.shape == (2, 0, 1)


def test_inputs_and_reshapes_of_empty_samples():
    x = Input((0, 4), name="x")
    net = Graph(x, Reshape((4, 0))(x))
    X = pt.tensor3(dtype="float32")
    assert net(X).eval({X: np.zeros((3, 0, 4), "float32")}).shape == (3, 4, 0)
    with pytest.raises(SymnnValueError, match=r"shape=\(-1, 4\) is not a per-sample shape"):
        Input((-1, 4))
    with pytest.raises(SymnnValueError, match=r"expected sizes >= 0"):
        Reshape((4, -2))
    with pytest.raises(SymnnTypeError, match=r"Reduce\('mean'\) takes float tensors"):
        Reduce("mean", [1])(pt.tensor3(dtype="int16", shape=(None, 0, 4)))


def _reshape_file(tmp_path, in_shape, target):
    node = helper.make_node("Reshape", ["x", "s"], ["y"], allowzero=1, name="r")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.array(target, np.int64), "s")])  # fmt: skip
    path = tmp_path / "reshape.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path


@pytest.mark.parametrize("batch_axis, in_shape, target", [
    (0, ["N", 0, 3], [1, 3, 0]),  # a batch of one (as exporters write it), then sizes
    (None, [0, 3, 4], [3, 4, 0]),  # a sample: ONNX's conformance case
])  # fmt: skip
def test_reshape_with_allowzero_reads_a_zero_as_a_size(batch_axis, in_shape, target, tmp_path):
    path = _reshape_file(tmp_path, in_shape, target)
    net = from_onnx(path, batch_axis=batch_axis)
    sample = [s for s in in_shape if s != "N"]
    X = np.zeros((2, *sample), "float32")
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x), mode="FAST_COMPILE")(X.reshape(2, 0))
    per = ReferenceEvaluator(str(path)).run(None, {"x": X[:1] if batch_axis == 0 else X[0]})[0]
    assert got.shape == ((2, *per.shape[1:]) if batch_axis == 0 else (2, *per.shape))


def test_reshape_with_allowzero_to_an_empty_batch_is_refused(tmp_path):
    path = _reshape_file(tmp_path, ["N", 0, 3], [0, 3, 0])
    with pytest.raises(SymnnValueError, match=r"node r \(Reshape\): allowzero=1 with the shape "
                                              r"\[0, 3, 0\] makes an empty batch"):
        from_onnx(path)
