"""``Resize`` (ONNX's Resize on any axes of the samples): values against onnx's reference
evaluator and PyTorch's ``F.interpolate``, gradients against finite differences, the C
backend, NaN as PyTorch spreads it, save and load, ONNX out and back, bad arguments."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

import symnn
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.gradcheck import check_grad
from symnn.layers import Interpolation, Reshape, Resize, Sequential

X = np.random.default_rng(0).normal(size=(2, 3, 5, 7))
SHAPE = X.shape[1:]


def _i(*args, **kwargs):
    return Interpolation(*args, **kwargs)


#: (layer, PyTorch's F.interpolate arguments that compute the same, or None)
CASES = [
    (Resize([9, 4], interpolation=_i("nearest", "asymmetric", "floor")),
     dict(size=(9, 4), mode="nearest")),
    (Resize([3, 11], interpolation=_i("nearest", "half_pixel", "round_prefer_ceil")),
     dict(size=(3, 11), mode="nearest-exact")),
    (Resize([8, 4], interpolation=_i("linear", "pytorch_half_pixel")),
     dict(size=(8, 4), mode="bilinear", align_corners=False)),
    (Resize([8, 13], interpolation=_i("linear", "align_corners")),
     dict(size=(8, 13), mode="bilinear", align_corners=True)),
    (Resize([9, 5], interpolation=_i("cubic", "half_pixel")),
     dict(size=(9, 5), mode="bicubic", align_corners=False)),
    (Resize([4, 6], interpolation=_i("cubic", "align_corners")),
     dict(size=(4, 6), mode="bicubic", align_corners=True)),
    # PyTorch's antialias leaves out the taps outside the image; its bicubic one takes a=-0.5
    (Resize([2, 3], interpolation=_i("linear", "half_pixel", antialias=True,
                                     exclude_outside=True)),
     dict(size=(2, 3), mode="bilinear", antialias=True, align_corners=False)),
    (Resize([3, 4], interpolation=_i("cubic", "half_pixel", cubic_coeff_a=-0.5, antialias=True,
                                     exclude_outside=True)),
     dict(size=(3, 4), mode="bicubic", antialias=True, align_corners=False)),
    (Resize([4, 6], interpolation=_i("cubic", "half_pixel", antialias=True)), None),
    # ONNX-only modes
    (Resize([4], axes=[1], interpolation=_i("linear", "half_pixel_symmetric"), scales=[1.5]), None),
    (Resize([7, 3], interpolation=_i("cubic", "asymmetric", cubic_coeff_a=-0.5,
                                     exclude_outside=True)), None),
    (Resize([6, 6], interpolation=_i("linear", "tf_crop_and_resize", extrapolation_value=2.5),
            roi=[0.1, -0.2, 0.9, 1.3]), None),
    (Resize([11], axes=[3], interpolation=_i("nearest", "align_corners", "ceil")), None),
]  # fmt: skip
IDS = [f"{c[0].interpolation.mode}-{c[0].interpolation.coordinate_transformation_mode}-{k}"
       for k, c in enumerate(CASES)]  # fmt: skip


def _apply(layer, x, mode="FAST_COMPILE"):
    v = pt.tensor4("x", dtype=str(x.dtype), shape=(None, *x.shape[1:]))
    return pytensor.function([v], layer(v), mode=mode)(x)


def _onnx_reference(layer, x):
    """onnx's reference evaluator running the Resize node the layer describes (it computes
    cubic weights in float32: the cubic_coeff_a attribute is a float32)."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rank, interp = x.ndim, layer.interpolation
    scales = [1.0] * rank
    sizes = list(x.shape)
    for k, (axis, size) in enumerate(zip(layer.axes, layer.sizes)):
        sizes[axis] = size
        scales[axis] = layer.scales[k] if layer.scales else size / x.shape[axis]
    roi = [0.0] * rank + [1.0] * rank
    for k, axis in enumerate(layer.axes if layer.roi else ()):
        roi[axis], roi[rank + axis] = layer.roi[k], layer.roi[len(layer.axes) + k]
    inits = [numpy_helper.from_array(np.array(roi, np.float64), "roi")]
    if layer.scales:
        inits.append(numpy_helper.from_array(np.array(scales, np.float32), "scales"))
        inputs = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
        inputs = ["x", "roi", "", "sizes"]
    node = helper.make_node(
        "Resize", inputs, ["y"], mode=interp.mode, antialias=int(interp.antialias),
        coordinate_transformation_mode=interp.coordinate_transformation_mode,
        nearest_mode=interp.nearest_mode, cubic_coeff_a=interp.cubic_coeff_a,
        exclude_outside=int(interp.exclude_outside),
        extrapolation_value=interp.extrapolation_value,
    )  # fmt: skip
    t = onnx.TensorProto.DOUBLE
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", t, x.shape)],
                              [helper.make_tensor_value_info("y", t, None)], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_values_match_onnx_reference_and_gradients_finite_differences(case):
    layer, _ = CASES[case]
    tol = 1e-5 if layer.interpolation.mode == "cubic" else 1e-12
    np.testing.assert_allclose(_apply(layer, X), _onnx_reference(layer, X), rtol=tol, atol=tol)
    v = pt.tensor4("x", dtype="float64", shape=(None, *SHAPE))
    w = np.random.default_rng(1).normal(size=_apply(layer, X).shape)
    err = check_grad(pt.sum(layer(v) * w), [v], [X], mode="FAST_COMPILE")
    assert err < 1e-6, err


@pytest.mark.parametrize("case", [k for k, c in enumerate(CASES) if c[1]],
                         ids=[i for i, c in zip(IDS, CASES) if c[1]])  # fmt: skip
def test_values_and_nan_match_pytorch(case):
    """Values, and where a NaN goes (one inside, one on the edge); antialiasing's NaN is
    left out: PyTorch's window reads the taps its weights leave at 0 differently."""
    torch = import_torch()
    layer, kwargs = CASES[case]
    x = X.copy()
    if not layer.interpolation.antialias:
        x[0, 1, 2, 3], x[1, 2, 0, 6] = np.nan, np.nan
    want = torch.nn.functional.interpolate(torch.from_numpy(x), **kwargs).numpy()
    got = _apply(layer, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_the_c_backend_gives_the_same_values_and_gradients_in_float32():
    x32 = X.astype("float32")
    for layer, _ in CASES[2:5] + CASES[10:12]:
        v = pt.tensor4("x", dtype="float32", shape=(None, *SHAPE))
        out = layer(v)
        grad = pytensor.grad(pt.sum(out**2), v)
        c = pytensor.function([v], [out, grad])(x32)  # the default (C) backend
        ref = pytensor.function([v], [out, grad], mode="FAST_COMPILE")(x32)
        assert c[0].dtype == np.float32
        for a, b in zip(c, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(c[0], _onnx_reference(layer, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [0, 1, 12], ids=[IDS[0], IDS[1], IDS[12]])
def test_a_nan_reaches_the_outputs_that_read_its_pixel(case):
    layer = CASES[case][0]
    x, one = np.ones((1, 3, 5, 7)), np.zeros((1, 3, 5, 7))
    x[0, 0, 2, 3], one[0, 0, 2, 3] = np.nan, 1.0
    reads = _apply(layer, one) != 0
    np.testing.assert_array_equal(np.isnan(_apply(layer, x)), reads)
    assert reads.any()


@pytest.mark.parametrize("case", [0, 4, 11], ids=[IDS[0], IDS[4], IDS[11]])
def test_saved_and_loaded_and_written_to_onnx_and_back(case, tmp_path):
    layer, _ = CASES[case]
    net = Sequential([Reshape(SHAPE), layer])
    rows = X.reshape(len(X), -1).astype("float32")
    again = symnn.load(symnn.save(net, tmp_path / "r.npz"))
    assert again.layers[1].get_config() == layer.get_config()
    v = pt.matrix("x", dtype="float32")
    want = pytensor.function([v], net(v), mode="FAST_COMPILE")(rows)
    np.testing.assert_array_equal(pytensor.function([v], again(v), mode="FAST_COMPILE")(rows),
                                  want)  # fmt: skip
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from symnn.io import from_onnx, to_onnx

    path = to_onnx(net, tmp_path / "r.onnx")
    ref = ReferenceEvaluator(str(path)).run(None, {"input": rows})[0]
    np.testing.assert_allclose(ref, want, rtol=1e-5, atol=1e-6)
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": rows})[0], want, rtol=1e-5, atol=1e-6)
    back = from_onnx(path)
    np.testing.assert_allclose(pytensor.function([v], back(v), mode="FAST_COMPILE")(rows), want,
                               rtol=1e-5, atol=1e-6)  # fmt: skip (roi in float32, as ORT reads it)


def test_antialias_is_refused_by_the_onnx_writer(tmp_path):
    pytest.importorskip("onnx")
    from symnn.io import to_onnx

    net = Sequential([Reshape(SHAPE), CASES[6][0]])
    with pytest.raises(SymnnValueError, match="antialias=True needs ONNX opset 18"):
        to_onnx(net, tmp_path / "a.onnx")
    assert not (tmp_path / "a.onnx").exists()


def test_bad_arguments_are_named():
    with pytest.raises(SymnnValueError, match="mode='bicubic' is not known"):
        Interpolation("bicubic")
    with pytest.raises(SymnnValueError, match="antialias=True needs mode='linear'"):
        Interpolation("nearest", antialias=True)
    with pytest.raises(SymnnValueError, match="one size per axis"):
        Resize([4, 4], axes=[2])
    with pytest.raises(SymnnValueError, match="of the samples"):
        Resize([4], axes=[0])
    with pytest.raises(SymnnValueError, match=r"sizes=\[0\] must be ints >= 1"):
        Resize([0], axes=[2])
    with pytest.raises(SymnnValueError, match="scales=.* must be 1 numbers > 0"):
        Resize([4], axes=[2], scales=[-1.0])
    with pytest.raises(SymnnTypeError, match="interpolation must be an Interpolation"):
        Resize([4], axes=[2], interpolation="linear")
    with pytest.raises(SymnnValueError, match="needs the input's size on axis 3"):
        Resize([4], axes=[3])(pt.tensor4("x"))
