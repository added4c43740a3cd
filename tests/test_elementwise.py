"""Layers on tensors of any shape (symnn.layers.elementwise, Minimum): values against numpy
and PyTorch, gradients against finite differences, NaN as PyTorch propagates it, save/load,
ONNX export checked with onnx's reference evaluator, and the default C backend."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

import symnn
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.gradcheck import check_grad
from symnn.layers import Arithmetic, Elementwise, Graph, Input, Minimum, Reduce, Reshape, Softmax

FAST = "FAST_COMPILE"
RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 2, 4, 5)) * 2


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


#: (layer, numpy reference) on X
CASES = [
    (Elementwise("relu"), lambda x: np.maximum(x, 0)),
    (Elementwise("leaky_relu", alpha=0.2), lambda x: np.where(x >= 0, x, 0.2 * x)),
    (Elementwise("elu", alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    (Elementwise("selu"), lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(x))),
    (Elementwise("hard_sigmoid", alpha=1 / 6, beta=0.5), lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    (Elementwise("clip", min=-1.0, max=0.5), lambda x: np.clip(x, -1.0, 0.5)),
    (Elementwise("clip", max=0.5), lambda x: np.minimum(x, 0.5)),
    (Elementwise("softplus"), lambda x: np.log1p(np.exp(x))),
    (Softmax(axis=1), lambda x: _softmax(x, 1)),
    (Softmax(axis=-1, log=True), lambda x: np.log(_softmax(x, -1))),
    (Arithmetic("sub", RNG.normal(size=(2, 1, 1))), None),
    (Arithmetic("div", RNG.uniform(1, 2, size=(5,)), constant_first=True), None),
    (Arithmetic("mul", RNG.normal(size=(1, 2, 4, 1))), None),
    (Reduce("mean", (2, 3)), lambda x: x.mean(axis=(2, 3), keepdims=True)),
    (Reduce("max", (-1,), keepdims=False), lambda x: x.max(axis=-1)),
    (Reduce("sum", (1, 3), keepdims=False), lambda x: x.sum(axis=(1, 3))),
    (Reduce("prod", (1,)), lambda x: x.prod(axis=1, keepdims=True)),
]  # fmt: skip
_OPS = {"sub": np.subtract, "div": np.divide, "mul": np.multiply, "add": np.add}


def _reference(layer, ref, x):
    if isinstance(layer, Arithmetic):
        c = layer.constant.get_value()
        op = _OPS[layer.op]
        return op(c, x) if layer.constant_first else op(x, c)
    return ref(x)


def _f64(layer):
    return type(layer).from_config({**layer.get_config(), **(
        {"dtype": "float64"} if "dtype" in layer.get_config() else {})})  # fmt: skip


@pytest.mark.parametrize("layer, ref", CASES, ids=lambda c: getattr(c, "op", type(c).__name__))
def test_values_match_numpy_and_gradients_finite_differences(layer, ref):
    x = pt.tensor4("x", dtype="float64")
    if isinstance(layer, Arithmetic):
        wide = Arithmetic(layer.op, layer.constant.get_value(), layer.constant_first,
                          dtype="float64")  # fmt: skip
    else:
        wide = _f64(layer)
    out = wide(x)
    got = pytensor.function([x], out, mode=FAST)(X)
    np.testing.assert_allclose(got, _reference(wide, ref, X), rtol=1e-10, atol=1e-12)
    assert got.shape[1:] == wide.output_shape(X.shape[1:])
    smooth = X + 0.05  # away from the kinks of relu and clip at 0
    if isinstance(wide, Arithmetic) and wide.constant_first:
        smooth = np.abs(X) + 0.5  # c / x away from its pole
    err = check_grad(pt.sum(pt.sin(out)), [x], [smooth], mode=FAST)
    assert err < 1e-5, (layer, err)


def test_values_match_pytorch_and_nan_propagates_as_there():
    torch = import_torch()
    F = torch.nn.functional
    t = torch.from_numpy(X.copy())
    t[0, 0, 0, 0] = float("nan")
    theirs = {
        "relu": F.relu(t), "leaky_relu": F.leaky_relu(t, 0.2), "elu": F.elu(t, 0.7),
        "selu": F.selu(t), "hard_sigmoid": F.hardsigmoid(t), "clip": torch.clamp(t, -1.0, 0.5),
        "softmax": F.softmax(t, dim=1), "amax": torch.amax(t, dim=-1),
        "amin": torch.amin(t, dim=(1, 2)), "minimum": torch.minimum(t, t.flip(3)),
    }  # fmt: skip
    ours = {
        "relu": Elementwise("relu"), "leaky_relu": Elementwise("leaky_relu", alpha=0.2),
        "elu": Elementwise("elu", alpha=0.7), "selu": Elementwise("selu"),
        "hard_sigmoid": Elementwise("hard_sigmoid", alpha=1 / 6, beta=0.5),
        "clip": Elementwise("clip", min=-1.0, max=0.5), "softmax": Softmax(axis=1),
        "amax": Reduce("max", (-1,), keepdims=False), "amin": Reduce("min", (1, 2), False),
    }  # fmt: skip
    x = pt.tensor4("x", dtype="float64")
    data = t.numpy()
    for name, layer in ours.items():
        got = pytensor.function([x], layer(x), mode=FAST)(data)
        np.testing.assert_allclose(got, theirs[name].numpy(), rtol=1e-12, equal_nan=True,
                                   err_msg=name)  # fmt: skip
    got = pytensor.function([x], Minimum()([x, x[:, :, :, ::-1]]), mode=FAST)(data)
    np.testing.assert_allclose(got, theirs["minimum"].numpy(), equal_nan=True)


@pytest.fixture(scope="module")
def small_graph():
    x = Input((2 * 4 * 5,), name="x")
    img = Reshape((2, 4, 5))(x)
    a = Elementwise("clip", min=0.0, max=6.0, name="relu6")(img)
    b = Arithmetic("mul", RNG.normal(size=(2, 1, 1)), name="scale")(img)
    m = Minimum(name="min")([a, b])
    s = Softmax(axis=1, name="soft")(m)
    return Graph(x, Reduce("mean", (2, 3), keepdims=False, name="gap")(s))


def test_a_graph_of_them_saves_loads_and_exports_to_onnx(small_graph, tmp_path):
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from symnn.io import to_onnx

    data = X.reshape(3, -1).astype("float32")
    x = pt.matrix("x", dtype="float32")
    mine = pytensor.function([x], small_graph(x), mode=FAST)(data)
    back = symnn.load(symnn.save(small_graph, tmp_path / "g"))
    np.testing.assert_array_equal(pytensor.function([x], back(x), mode=FAST)(data), mine)
    path = to_onnx(small_graph, tmp_path / "g.onnx")
    (got,) = ReferenceEvaluator(str(path)).run(None, {"x": data})
    np.testing.assert_allclose(got, mine, rtol=1e-5, atol=1e-6)


def test_on_the_default_c_backend(small_graph):
    data = X.reshape(3, -1).astype("float32")
    data[0, 0] = np.nan
    x = pt.matrix("x", dtype="float32")
    c_out = pytensor.function([x], small_graph(x))(data)
    fast = pytensor.function([x], small_graph(x), mode=FAST)(data)
    np.testing.assert_allclose(c_out, fast, rtol=1e-6, equal_nan=True)
    assert np.isnan(c_out[0]).all() and np.isfinite(c_out[1:]).all()


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(SymnnTypeError, match=r"Elementwise\('relu'\) has no parameter 'alpha'"):
        Elementwise("relu", alpha=0.1)
    with pytest.raises(SymnnValueError, match="op='gelu' is not known"):
        Elementwise("gelu")
    with pytest.raises(SymnnValueError, match="axis 0 is the batch axis"):
        Softmax(axis=0)(pt.matrix("x"))
    with pytest.raises(SymnnValueError, match="axis 0 is the batch axis"):
        Reduce("sum", (0,))(pt.matrix("x"))
    with pytest.raises(SymnnValueError, match=r"constant of shape \(3, 5\) does not broadcast"):
        Arithmetic("add", np.ones((3, 5)))(pt.matrix("x"))


def test_power_of_two_tensors_matches_pytorch_gradients_and_onnx(tmp_path):
    """``Power`` (ONNX's Pow of two tensors): values and NaN against ``torch.pow``, both
    gradients against finite differences, written to ONNX and read back equal."""
    from symnn.layers import Power

    a, b = pt.matrix("a", dtype="float64"), pt.matrix("b", dtype="float64")
    base, expo = RNG.uniform(0.5, 2.0, (3, 4)), RNG.normal(size=(3, 4))
    base[0, 0], expo[0, 0] = -2.0, 0.5  # NaN, as torch.pow gives it
    got = pytensor.function([a, b], Power()([a, b]), mode=FAST)(base, expo)
    torch = import_torch()
    want = torch.pow(torch.from_numpy(base), torch.from_numpy(expo)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[0, 0])
    cost = pt.sum(Power()([a, b]) * RNG.normal(size=(3, 4)))
    assert check_grad(cost, [a, b], [np.abs(base), expo], mode=FAST) < 1e-6
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from symnn.io import from_onnx, to_onnx

    xa, xb = Input((4,), name="a"), Input((4,), name="b")
    net = Graph([xa, xb], Power(name="pow")([xa, xb]))
    path = to_onnx(net, tmp_path / "pow.onnx")
    feeds = {"a": np.abs(base).astype("float32"), "b": expo.astype("float32")}
    ref = ReferenceEvaluator(str(path)).run(None, feeds)[0]
    np.testing.assert_allclose(ref, np.abs(base) ** expo, rtol=1e-5)
    back = from_onnx(path)
    fa, fb = pt.matrix("fa", dtype="float32"), pt.matrix("fb", dtype="float32")
    again = pytensor.function([fa, fb], back([fa, fb]), mode=FAST)(feeds["a"], feeds["b"])
    np.testing.assert_allclose(again, ref, rtol=1e-6)


def test_matmul_of_two_tensors_matches_pytorch_gradients_and_onnx(tmp_path):
    """``MatMul`` (ONNX's MatMul of two tensors, attention's ``q @ k``): sample by sample
    against ``torch.matmul``, gradients against finite differences, ONNX out and back."""
    from symnn.layers import MatMul

    a, b = pt.tensor4("a", dtype="float64"), pt.tensor3("b", dtype="float64")
    va, vb = RNG.normal(size=(2, 3, 4, 5)), RNG.normal(size=(2, 5, 2))  # b broadcasts
    got = pytensor.function([a, b], MatMul()([a, b]), mode=FAST)(va, vb)
    torch = import_torch()
    want = torch.matmul(torch.from_numpy(va), torch.from_numpy(vb)[:, None]).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    cost = pt.sum(MatMul()([a, b]) * RNG.normal(size=(2, 3, 4, 2)))
    assert check_grad(cost, [a, b], [va, vb], mode=FAST) < 1e-6
    with pytest.raises(SymnnValueError, match="inner sizes differ"):
        MatMul()([pt.tensor3("c", shape=(None, 2, 3)), pt.tensor3("d", shape=(None, 4, 2))])
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from symnn.io import from_onnx, to_onnx

    xa, xb = Input((12,), name="a"), Input((8,), name="b")
    out = MatMul(name="mm")([Reshape((3, 4))(xa), Reshape((4, 2))(xb)])
    net = Graph([xa, xb], Reshape((6,))(out))
    path = to_onnx(net, tmp_path / "mm.onnx")
    feeds = {"a": RNG.normal(size=(2, 12)).astype("float32"),
             "b": RNG.normal(size=(2, 8)).astype("float32")}  # fmt: skip
    want = np.matmul(feeds["a"].reshape(2, 3, 4), feeds["b"].reshape(2, 4, 2)).reshape(2, 6)
    np.testing.assert_allclose(ReferenceEvaluator(str(path)).run(None, feeds)[0], want, rtol=1e-5)
    back = from_onnx(path)
    fa, fb = pt.matrix("fa", dtype="float32"), pt.matrix("fb", dtype="float32")
    again = pytensor.function([fa, fb], back([fa, fb]), mode=FAST)(feeds["a"], feeds["b"])
    np.testing.assert_allclose(again, want, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_keeps_the_input_type_in_values_and_gradients(dtype):
    """A float32 network stays float32: no parameter or comparison upcasts the values or the
    gradient (PyTensor's zero gradient of a comparison is float64)."""
    from symnn import nonlinearities as nl
    from symnn.layers.elementwise import ELEMENTWISE

    x = pt.matrix("x", dtype=dtype)
    fns = {**{f"nl.{k}": v for k, v in nl.NAMES.items()},
           **{f"Elementwise({k!r})": Elementwise(k) for k in ELEMENTWISE}}  # fmt: skip
    for name, fn in fns.items():
        y = fn(x)
        assert (y.dtype, pytensor.grad(y.sum(), x).dtype) == (dtype, dtype), name


def test_rectifier_and_clip_gradients_match_pytorch_at_bounds_nan_and_infinities():
    torch = import_torch()
    F = torch.nn.functional
    from symnn import nonlinearities as nl

    v = np.array([-np.inf, -2.0, -0.0, 0.0, 0.5, 2.5, np.inf, np.nan])
    theirs = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
              "elu": lambda t: F.elu(t, 0.7), "selu": F.selu,
              "clip": lambda t: torch.clamp(t, -2.0, 0.5), "min": lambda t: torch.clamp(t, 0.0),
              "hard_sigmoid": F.hardsigmoid}  # fmt: skip
    ours = {
        "relu": [nl.relu, Elementwise("relu")],
        "leaky_relu": [lambda h: nl.leaky_relu(h, 0.2), Elementwise("leaky_relu", alpha=0.2)],
        "elu": [lambda h: nl.elu(h, 0.7), Elementwise("elu", alpha=0.7)],
        "selu": [Elementwise("selu")],
        "clip": [Elementwise("clip", min=-2.0, max=0.5)],  # both bounds are values of v
        "min": [Elementwise("clip", min=0.0)],
        # its kinks at +-3 (torch's gradient 0 there, ours alpha) are not among v
        "hard_sigmoid": [Elementwise("hard_sigmoid", alpha=1 / 6, beta=0.5)],
    }
    x = pt.vector("x", dtype="float64")
    for name, fns in ours.items():
        t = torch.tensor(v, requires_grad=True)
        theirs[name](t).sum().backward()
        want = t.grad.numpy()
        for fn in fns:
            got = pytensor.function([x], pytensor.grad(fn(x).sum(), x), mode=FAST)(v)
            # rtol: torch's hardsigmoid gradient is a float32 1/6 even in float64
            np.testing.assert_allclose(got, want, rtol=1e-7, equal_nan=True, err_msg=name)
