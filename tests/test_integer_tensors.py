"""Integer and boolean tensors: ONNX graphs of integer data read by ``from_onnx`` and the
layers that compute on them (``integer_ok``), against numpy, onnx's reference evaluator
and onnxruntime, on the default C backend too; the layers that take floats only say so."""

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.io import from_onnx, load, save, to_onnx
from symnn.layers import (
    Add,
    Dense,
    Elementwise,
    Embedding,
    Flatten,
    Graph,
    Input,
    MaxPool2D,
    Pad,
    Power,
    Reduce,
    Sequential,
)
from symnn.layers.elementwise import divide, power

RNG = np.random.default_rng(3)
INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


def _file(tmp_path, nodes, inputs, out, kind, inits=()):
    """An opset-19 model of ``inputs`` (name, per-sample shape) of integer type ``kind``."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(kind))
    graph = helper.make_graph(
        nodes, "ints", [helper.make_tensor_value_info(n, elem, ["N", *s]) for n, s in inputs],
        [helper.make_tensor_value_info(out, elem, None)],
        [numpy_helper.from_array(v, k) for k, v in inits],
    )  # fmt: skip
    path = tmp_path / "ints.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), path)
    return path


def _chain_file(tmp_path):
    """int32 images (N, 1, 4, 5) and y (N, 1, 4, 5): every integer op the reader reads."""
    n = helper.make_node
    nodes = [
        n("Add", ["x", "c"], ["a"]),  # a constant
        n("Sub", ["a", "y"], ["s"]),  # two tensors
        n("Div", ["s", "d"], ["q"]),  # truncated, negative values too
        n("Mul", ["q", "y"], ["m"]),
        n("Max", ["m", "lo"], ["mx"]),
        n("Clip", ["mx", "clo", "chi"], ["cl"]),
        n("Relu", ["cl"], ["r"]),
        n("Pow", ["r", "half"], ["p"]),  # a float exponent: float64, truncated
        n("Pad", ["p", "pads"], ["pd"], mode="wrap"),
        n("ReduceSum", ["pd", "axes"], ["out"], keepdims=1),  # (MaxPool: the conformance case)
    ]
    inits = [("c", np.int32([3])), ("d", np.int32([-3])), ("lo", np.int32([-40])),
             ("clo", np.int32(-30)), ("chi", np.int32(1000)), ("half", np.float32([2.5])),
             ("pads", np.int64([0, 0, 1, 2, 0, 0, 1, 1])), ("axes", np.int64([1]))]  # fmt: skip
    return _file(tmp_path, nodes, [("x", (1, 4, 5)), ("y", (1, 4, 5))], "out", "int32", inits)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The chain file, its network and the network compiled on the C backend."""
    path = _chain_file(tmp_path_factory.mktemp("ints"))
    net = from_onnx(path)
    xs = [pt.matrix("x", dtype="int32"), pt.matrix("y", dtype="int32")]
    fn = pytensor.function(xs, net(xs))  # symnn's default: the C backend
    return path, net, fn


def test_an_integer_onnx_chain_as_the_reference_evaluator_on_the_c_backend(chain):
    path, net, fn = chain
    x = RNG.integers(-20, 20, size=(6, 1, 4, 5), dtype=np.int32)
    y = RNG.integers(1, 5, size=(6, 1, 4, 5), dtype=np.int32)
    (want,) = ReferenceEvaluator(str(path)).run(None, {"x": x, "y": y})
    got = fn(x.reshape(6, -1), y.reshape(6, -1))
    assert isinstance(net, Graph) and got.dtype == np.int32  # an integer Graph, not Sequential
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_the_integer_chain_as_onnxruntime(chain):
    ort = pytest.importorskip("onnxruntime")
    path, _, fn = chain
    x = RNG.integers(-20, 20, size=(4, 1, 4, 5), dtype=np.int32)
    y = RNG.integers(1, 5, size=(4, 1, 4, 5), dtype=np.int32)
    (want,) = ort.InferenceSession(str(path)).run(None, {"x": x, "y": y})
    np.testing.assert_array_equal(fn(x.reshape(4, -1), y.reshape(4, -1)).reshape(want.shape), want)


def test_an_integer_graph_saves_and_loads_and_is_not_written_as_float(chain, tmp_path):
    _, net, _ = chain
    save(net, tmp_path / "ints.npz")
    again = load(tmp_path / "ints.npz")
    assert [s.dtype for s in again.input_specs] == ["int32", "int32"]
    with pytest.raises(SymnnValueError, match=r"input 'x' is int32 .*nothing was written"):
        to_onnx(again, tmp_path / "back.onnx")
    assert not (tmp_path / "back.onnx").exists()


@pytest.mark.parametrize("kind", INTS)
def test_division_truncates_towards_zero_as_onnx_and_c(kind):
    info = np.iinfo(kind)
    a = np.arange(max(info.min, -50), min(info.max, 50) + 1).astype(kind)
    b = np.array([1, 2, 3, 7] + ([-1, -2, -7] if info.min < 0 else []), dtype=kind)
    a, b = np.meshgrid(a, b)
    A, B = pt.matrix(dtype=kind), pt.matrix(dtype=kind)
    got = pytensor.function([A, B], divide(A, B))(a, b)  # the default (C) backend
    want = (np.trunc(a.astype(np.float64) / b.astype(np.float64))).astype(kind)
    assert got.dtype == np.dtype(kind)
    np.testing.assert_array_equal(got, want)


def test_integer_division_by_zero_gives_numpys_zero():
    A, B = pt.vector(dtype="int32"), pt.vector(dtype="int32")
    fn = pytensor.function([A, B], divide(A, B))
    with np.errstate(divide="ignore"):
        want = np.floor_divide(np.int32([7, -7, 6]), np.int32([0, 0, 3]))
    np.testing.assert_array_equal(fn(np.int32([7, -7, 6]), np.int32([0, 0, 3])), want)


def test_integer_arithmetic_wraps_as_numpy_on_the_c_backend():
    a = np.array([[127, -128, 100]], np.int8)
    b = np.array([[1, -1, 100]], np.int8)
    A, B = pt.matrix(dtype="int8"), pt.matrix(dtype="int8")
    add, sub = Add()([A, B]), Add(coeffs=[1, -1])([A, B])
    got = pytensor.function([A, B], [add, sub])(a, b)
    np.testing.assert_array_equal(got[0], a + b)
    np.testing.assert_array_equal(got[1], a - b)
    U, V = pt.matrix(dtype="uint64"), pt.matrix(dtype="uint64")
    u, v = np.array([[0, 5]], np.uint64), np.array([[1, 2]], np.uint64)
    np.testing.assert_array_equal(Add(coeffs=[1, -1])([U, V]).eval({U: u, V: v}), u - v)


def test_powers_of_integers_have_the_bases_type():
    a = np.array([[2, 3, 4, -2]], np.int32)
    b = np.array([[3, 2, 0.5, 3]], np.float32)
    A, B = pt.matrix(dtype="int32"), pt.matrix(dtype="float32")
    got = Power()([A, B]).eval({A: a, B: b})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.power(a, b).astype(np.int32))
    np.testing.assert_array_equal(power(A, A).eval({A: a}), np.int32([[4, 27, 256, 0]]))


def test_integer_max_pooling_reductions_and_circular_padding():
    x = RNG.integers(0, 256, size=(2, 1, 4, 6), dtype=np.uint8)
    X = pt.tensor4(dtype="uint8")
    pooled = MaxPool2D(2)(X).eval({X: x})
    want = x.reshape(2, 1, 2, 2, 3, 2).max(axis=(3, 5))
    assert pooled.dtype == np.uint8
    np.testing.assert_array_equal(pooled, want)
    total = Reduce("sum", [2, 3], keepdims=False)(X).eval({X: x})
    np.testing.assert_array_equal(total, x.sum(axis=(2, 3), dtype=np.uint8))
    wrapped = Pad((2, 1, 1, 3), "circular")(X).eval({X: x})
    np.testing.assert_array_equal(wrapped, np.pad(x, ((0, 0), (0, 0), (1, 3), (2, 1)), "wrap"))
    B = pt.matrix(dtype="bool")
    b = np.array([[True, False], [False, False]])
    np.testing.assert_array_equal(Reduce("max", [1])(B).eval({B: b}), [[True], [False]])


def test_layers_that_take_floats_say_so_for_integers():
    X = pt.matrix(dtype="int32")
    with pytest.raises(SymnnTypeError, match=r"Elementwise\('sigmoid'\) takes float tensors"):
        Elementwise("sigmoid")(X)
    with pytest.raises(SymnnTypeError, match=r"Reduce\('mean'\) takes float tensors; got int32"):
        Reduce("mean", [1])(X)
    with pytest.raises(SymnnTypeError, match="Dense input has dtype int32"):
        Sequential([Dense(3, 2)])(X)
    with pytest.raises(SymnnTypeError, match="at most 32 bits.*int64"):
        MaxPool2D(2)(pt.tensor4(dtype="int64"))
    with pytest.raises(SymnnValueError, match="coefficient 0.5 of an integer tensor"):
        Add(coeffs=[1, 0.5])([X, X])
    with pytest.raises(SymnnTypeError, match=r"inputs mix \['float32', 'int32'\]"):
        Add()([X, pt.matrix(dtype="float32")])
    x = Input((1, 3, 3), name="x")
    with pytest.raises(SymnnValueError, match="'circular' is ONNX's wrap, of opset 19"):
        to_onnx(Graph(x, Pad(1, "circular")(x)), "never.onnx")


def test_a_sequential_starting_with_an_embedding_takes_token_ids():
    net = Sequential([Embedding(10, 4), Flatten()])
    ids = pt.imatrix("ids")
    got = net(ids).eval({ids: np.int32([[1, 2, 3]])})
    np.testing.assert_allclose(got, net[0].W.get_value()[[1, 2, 3]].reshape(1, -1))


def test_graph_inputs_of_every_integer_type():
    for kind in [*INTS, "bool"]:
        x = Input((3,), name="x", dtype=np.dtype(kind))
        assert x.dtype == kind
    with pytest.raises(SymnnValueError, match="dtype='complex64' is not supported"):
        Input((3,), dtype="complex64")


def test_integer_constants_the_data_type_cannot_hold_are_refused_by_node(tmp_path):
    nodes = [helper.make_node("Add", ["x", "c"], ["out"], name="plus")]
    for c in (np.float32([0.5]), np.int64([40000]), np.int64([2**60])):
        path = _file(tmp_path, nodes, [("x", (3,))], "out", "int16" if c[0] != 2**60 else "int64",
                     [("c", c)])  # fmt: skip
        with pytest.raises(SymnnValueError, match=r"node plus \(Add\): the constant 'c'"):
            from_onnx(path)


def test_an_integer_file_computes_on_numba_as_on_c(chain):
    pytest.importorskip("numba")
    _, net, fn = chain
    xs = [pt.matrix("x", dtype="int32"), pt.matrix("y", dtype="int32")]
    numba = pytensor.function(xs, net(xs), mode="NUMBA")
    x = RNG.integers(-20, 20, size=(3, 20), dtype=np.int32)
    y = RNG.integers(1, 5, size=(3, 20), dtype=np.int32)
    np.testing.assert_array_equal(numba(x, y), fn(x, y))
