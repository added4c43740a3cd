"""WindowPool: pooling over any number of axes with dilation and asymmetric pads, against a
numpy transcription of ONNX's definition and PyTorch, its gradient by finite differences,
NaN, ties, saving, ONNX out and in, bad arguments."""

import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

from symnn.errors import SymnnValueError
from symnn.layers import Graph, Input, Reshape, WindowPool, layer_from_spec, layer_to_spec

RNG = np.random.default_rng(0)


def reference(x, mode, kernel, stride, pads, dilation, ceil):
    """Window by window, in float64: ONNX's MaxPool/AveragePool."""
    n = len(kernel)
    spatial = x.shape[2:]
    outs = []
    for i, size in enumerate(spatial):
        span = size + pads[i] + pads[n + i] - (kernel[i] - 1) * dilation[i] - 1
        o = (-(-span // stride[i]) if ceil else span // stride[i]) + 1
        if ceil and (o - 1) * stride[i] >= size + pads[i]:
            o -= 1
        outs.append(o)
    y = np.zeros((*x.shape[:2], *outs))
    for index in itertools.product(*(range(o) for o in outs)):
        vals, inside_padded = [], 0
        for taps in itertools.product(*(range(k) for k in kernel)):
            pos = [o * s + t * d - p for o, s, t, d, p in zip(index, stride, taps, dilation, pads)]
            if all(0 <= q < size for q, size in zip(pos, spatial)):
                vals.append(x[(slice(None), slice(None), *pos)])
            limits = zip(pos, pads, pads[n:], spatial)
            inside_padded += all(-p0 <= q < size + p1 for q, p0, p1, size in limits)
        stack = np.stack(vals)
        if mode == "max":
            y[(slice(None), slice(None), *index)] = stack.max(axis=0)
        else:
            count = inside_padded if mode == "average_inc_pad" else len(vals)
            y[(slice(None), slice(None), *index)] = stack.sum(axis=0) / count
    return y


CASES = [  # mode, kernel, stride, pads, dilation, ceil, input shape
    ("max", (3, 3), (2, 2), (1, 0, 2, 1), (2, 2), False, (2, 3, 11, 10)),
    ("max", (2, 3), (3, 1), (0, 1, 0, 1), (1, 2), True, (1, 2, 10, 9)),
    ("max", (2, 2, 2), (2, 1, 2), (0, 0, 0, 1, 1, 1), (1, 2, 2), True, (1, 2, 7, 8, 9)),
    ("average_inc_pad", (3, 3), (2, 2), (1, 1, 2, 0), (2, 1), True, (2, 3, 10, 11)),
    ("average_exc_pad", (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 0, 2), (1, 1, 2), False,
     (1, 2, 7, 8, 9)),
    ("average_exc_pad", (4,), (3,), (2, 1), (2,), True, (2, 2, 13)),
]  # fmt: skip


def pooled(layer, x, mode="FAST_COMPILE"):
    v = pt.tensor(dtype=str(x.dtype), shape=(None, *x.shape[1:]))
    return pytensor.function([v], layer(v), mode=mode)(x)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{len(c[1])}d-{c[5]}" for c in CASES])
def test_matches_onnx_definition_window_by_window(case):
    mode, kernel, stride, pads, dilation, ceil, shape = case
    x = RNG.normal(size=shape)
    layer = WindowPool(mode, kernel, stride, pads, dilation, ceil)
    want = reference(x, mode, kernel, stride, pads, dilation, ceil)
    np.testing.assert_allclose(pooled(layer, x), want, rtol=1e-12)
    assert layer.output_shape(shape[1:]) == want.shape[1:]


@pytest.mark.slow
def test_c_backend_gives_the_same_numbers_in_float32():
    cases = [CASES[0], CASES[2], CASES[3], CASES[4]]  # every mode, 2-D and 3-D: one compile
    xs = [RNG.normal(size=c[-1]).astype("float32") for c in cases]
    vs = [pt.tensor(dtype="float32", shape=(None, *x.shape[1:])) for x in xs]
    outs = [WindowPool(*c[:-1])(v) for c, v in zip(cases, vs)]
    got = pytensor.function(vs, outs, mode="FAST_RUN")(*xs)  # the default C backend
    for c, x, y in zip(cases, xs, got):
        want = reference(x.astype(float), *c[:-1])
        np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-6)


def test_matches_pytorch_dilated_max_and_ceil_mode_averages():
    torch = import_torch()
    F = torch.nn.functional
    x = RNG.normal(size=(2, 3, 9, 8, 10)).astype("float32")
    got = pooled(WindowPool("max", (3, 2, 3), (2, 2, 1), [1] * 6, (2, 3, 1), True), x)
    want = F.max_pool3d(torch.from_numpy(x), (3, 2, 3), (2, 2, 1), 1, (2, 3, 1), ceil_mode=True)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
    for include in (True, False):
        mode = "average_inc_pad" if include else "average_exc_pad"
        got = pooled(WindowPool(mode, (3, 3, 2), (2, 2, 2), [1, 1, 0] * 2, None, True), x)
        want = F.avg_pool3d(torch.from_numpy(x), (3, 3, 2), 2, (1, 1, 0), ceil_mode=True,
                            count_include_pad=include)  # fmt: skip
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "average_inc_pad", "average_exc_pad"])
def test_gradient_by_finite_differences(mode):
    layer = WindowPool(mode, (2, 3), (2, 1), (1, 0, 0, 2), (2, 1), True)
    x = RNG.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0  # no ties
    pytensor.gradient.verify_grad(lambda v: layer(v), [x], rng=np.random.default_rng(1),
                                  mode="FAST_COMPILE")  # fmt: skip


def test_max_gives_the_gradient_to_the_first_maximum_and_propagates_nan():
    layer = WindowPool("max", (2, 2), (2, 2))
    v = pt.tensor4("v", dtype="float64", shape=(None, 1, 2, 4))
    out = layer(v)
    f = pytensor.function([v], [out, pytensor.grad(out.sum(), v)], mode="FAST_COMPILE")
    x = np.array([[[[3.0, 3.0, 1.0, np.nan], [3.0, 0.0, 2.0, 5.0]]]])
    y, g = f(x)
    np.testing.assert_array_equal(y[0, 0, 0], [3.0, np.nan])
    np.testing.assert_array_equal(g[0, 0], [[1, 0, 0, 1], [0, 0, 0, 0]])  # row-major first


def test_saves_and_rebuilds_from_its_spec():
    layer = WindowPool("average_exc_pad", (2, 2, 2), (1, 2, 2), [0, 1, 0, 1, 0, 1], (2, 1, 1),
                       True, name="pool")  # fmt: skip
    again = layer_from_spec(layer_to_spec(layer))
    assert again.get_config() == layer.get_config()
    x = RNG.normal(size=(1, 2, 5, 6, 7))
    np.testing.assert_array_equal(pooled(again, x), pooled(layer, x))


def test_written_to_onnx_and_read_back(tmp_path):
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from symnn.io import from_onnx, to_onnx

    x_in = Input((2 * 6 * 7 * 8,))
    cube = Reshape((2, 6, 7, 8))(x_in)
    maxed = WindowPool("max", (2, 3, 2), (1, 2, 2), [1, 0, 1, 0, 1, 1], (2, 1, 2), True)(cube)
    out = WindowPool("average_exc_pad", (2, 2, 2), (1, 1, 1), [0, 1, 0, 1, 0, 1])(maxed)
    net = Graph(x_in, out)
    X = RNG.normal(size=(3, 2 * 6 * 7 * 8)).astype("float32")
    v = pt.matrix("v", dtype="float32")
    mine = pytensor.function([v], net(v, deterministic=True), mode="FAST_COMPILE")(X)
    path = to_onnx(net, tmp_path / "pools.onnx")
    want = ReferenceEvaluator(str(path)).run(None, {"input": X})[0]
    np.testing.assert_allclose(mine.reshape(want.shape), want, rtol=1e-5, atol=1e-6)
    back = from_onnx(path)
    got = pytensor.function([v], back(v, deterministic=True), mode="FAST_COMPILE")(X)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6)
    dilated = Graph(x_in, WindowPool("average_inc_pad", (2, 2, 2), dilation=(1, 2, 1))(cube))
    with pytest.raises(SymnnValueError, match=r"dilation=\(1, 2, 1\) needs ONNX opset 19"):
        to_onnx(dilated, tmp_path / "dilated.onnx")
    assert not (tmp_path / "dilated.onnx").exists()


@pytest.mark.parametrize(
    "args, match",
    [(("mean", (2, 2)), r"mode='mean' is not one of"),
     (("max", 2), r"kernel must be a sequence of window sizes, one per pooled axis; got 2"),
     (("max", (2, 0)), r"kernel=\(2, 0\): expected 2 integers >= 1"),
     (("max", (2, 2), (1,)), r"stride=\(1,\): expected 2 integers"),
     (("max", (2, 2), None, (1, 1)), r"pads=\(1, 1\): expected 4 integers"),
     (("max", (2, 2), None, None, (1, -1)), r"dilation=\(1, -1\): expected 2 integers >= 1")],
)  # fmt: skip
def test_bad_arguments_are_named(args, match):
    with pytest.raises(SymnnValueError, match=match):
        WindowPool(*args)


def test_inputs_it_cannot_pool_are_named():
    layer = WindowPool("max", (5, 5), dilation=(2, 2))
    with pytest.raises(SymnnValueError, match=r"dilated kernel \(5, 5\) does not fit"):
        layer(pt.tensor4("x", shape=(None, 1, 8, 8)))
    with pytest.raises(SymnnValueError, match=r"pools 2 axes of \(N, C, \.\.\.\) inputs of known"):
        layer(pt.tensor4("x", shape=(None, 1, None, 8)))
    with pytest.raises(SymnnValueError, match=r"pools 2 axes of \(C, \.\.\.\) samples"):
        layer.output_shape((3, 8))
