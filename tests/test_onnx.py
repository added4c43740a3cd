"""ONNX graphs in and out, against onnx's reference evaluator (float32, 1e-5)."""

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from symnn.errors import SymnnValueError  # noqa: E402
from symnn.io import from_onnx, to_onnx  # noqa: E402
from symnn.layers import (  # noqa: E402
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Normalize,
    Reduce,
    Reshape,
    Sequential,
)

RNG = np.random.default_rng(0)


def f32(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape).astype("float32")


def model_file(tmp_path, nodes, inits, in_shape, name="m.onnx"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def symnn_out(net, X):
    x = pt.matrix("x", dtype=net.dtype)
    return pytensor.function([x], net(x, deterministic=True), mode="FAST_COMPILE")(X)


def chain(*specs):
    """Nodes from (op, extra inputs, attrs), each taking the previous output."""
    nodes, current = [], "x"
    for i, (op, extra, attrs) in enumerate(specs):
        nodes.append(helper.make_node(op, [current, *extra], [f"t{i}"], name=f"n{i}", **attrs))
        current = f"t{i}"
    return nodes


def test_a_pytorch_style_cnn_graph_matches_the_reference_evaluator(tmp_path):
    inits = {
        "mean": np.array([0.5, 0.4], "float32").reshape(1, 2, 1, 1),
        "std": np.array([0.25, 0.5], "float32").reshape(1, 2, 1, 1),
        "W1": f32(4, 2, 3, 3), "b1": f32(4),
        "scale": f32(4, low=0.5, high=1.5), "B": f32(4), "m": f32(4), "v": f32(4, low=0.5, high=2),
        "W2": f32(6, 4, 2, 2), "b2": f32(6),
        "W3": f32(10, 6), "b3": f32(10),
    }  # fmt: skip
    nodes = chain(
        ("Sub", ["mean"], {}), ("Div", ["std"], {}),
        ("Conv", ["W1", "b1"], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
        ("BatchNormalization", ["scale", "B", "m", "v"], dict(epsilon=1e-5)),
        ("Relu", [], {}),
        ("MaxPool", [], dict(kernel_shape=[2, 2], strides=[2, 2])),
        ("Conv", ["W2", "b2"], dict(kernel_shape=[2, 2], strides=[2, 1])),
        ("LeakyRelu", [], dict(alpha=0.01)),
        ("AveragePool", [], dict(kernel_shape=[2, 2], ceil_mode=1)),
        ("Dropout", [], {}), ("Flatten", [], dict(axis=1)),
        ("Gemm", ["W3", "b3"], dict(transB=1)), ("Softmax", [], dict(axis=1)),
    )  # fmt: skip
    path = model_file(tmp_path, nodes, inits, [2, 8, 7])
    net = from_onnx(path)
    kinds = [type(la).__name__ for la in net.layers]
    assert kinds[:4] == ["Reshape", "Normalize", "Conv2D", "BatchNorm"]
    X = f32(5, 2 * 8 * 7, low=0, high=1)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(5, 2, 8, 7)})[0]
    np.testing.assert_allclose(symnn_out(net, X), want, atol=1e-5)


def test_matmul_add_tanh_sigmoid_identity_and_global_pooling(tmp_path):
    inits = {"W": f32(3, 5), "b": f32(5), "shape": np.array([-1, 3], "int64")}
    nodes = chain(
        ("Identity", [], {}), ("GlobalAveragePool", [], {}), ("Reshape", ["shape"], {}),
        ("MatMul", ["W"], {}), ("Add", ["b"], {}), ("Tanh", [], {}),
    )  # fmt: skip
    path = model_file(tmp_path, nodes, inits, [3, 4, 4])
    net = from_onnx(path)
    assert isinstance(net.layers[1], Reduce) and isinstance(net.layers[-1], Dense)
    X = f32(4, 48)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(4, 3, 4, 4)})[0]
    np.testing.assert_allclose(symnn_out(net, X), want, atol=1e-5)


def test_round_trip_symnn_onnx_symnn(tmp_path):
    net = Sequential([
        Reshape((1, 8, 8)), Normalize(0.5, 0.25),
        Conv2D(1, 4, 3, pad=1, activation="relu", rng=0), BatchNorm(4), MaxPool2D(2),
        Conv2D(4, 4, 3, activation="tanh", rng=1, flip_filters=True),
        AvgPool2D(2, ignore_border=False, include_pad=False), Dropout(0.5, rng=2), Flatten(),
        Dense(4, 10, "softmax", rng=3),
    ])  # fmt: skip
    net.layers[3].set_values([f32(4, low=0.5, high=1.5) for _ in range(4)])
    path = to_onnx(net, tmp_path / "net.onnx")
    X = f32(6, 64, low=0, high=1)
    mine = symnn_out(net, X)
    np.testing.assert_allclose(
        ReferenceEvaluator(str(path)).run(None, {"input": X})[0], mine, atol=1e-5
    )
    back = from_onnx(path)
    np.testing.assert_allclose(symnn_out(back, X), mine, atol=1e-6)


def test_grouped_convolutions_in_and_out(tmp_path):
    nodes = chain(("Conv", ["W", "b"], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2)))
    inits = {"W": f32(4, 1, 3, 3), "b": f32(4)}
    path = model_file(tmp_path, nodes, inits, [2, 5, 5], "g.onnx")
    net = from_onnx(path)
    assert net.layers[1].groups == 2
    X = f32(3, 50)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(3, 2, 5, 5)})[0]
    np.testing.assert_allclose(symnn_out(net, X), want, atol=1e-5)
    again = to_onnx(net, tmp_path / "again.onnx")
    got = ReferenceEvaluator(str(again)).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)


def test_unsupported_and_bad_files_are_refused_by_name(tmp_path):
    nodes = chain(("Relu", [], {}), ("Hardmax", [], dict(axis=1)))
    with pytest.raises(SymnnValueError, match=r"unsupported op\(s\): n1 \(Hardmax\)"):
        from_onnx(model_file(tmp_path, nodes, {}, [4]))
    odd = chain(("Softmax", [], dict(axis=1, bogus=3)))
    with pytest.raises(SymnnValueError, match=r"n0 \(Softmax\): attribute bogus=3 is not sup"):
        from_onnx(model_file(tmp_path, odd, {}, [4], "odd.onnx"))
    ints = model_file(tmp_path, chain(("Relu", [], {})), {}, [4], "ints.onnx")
    model = onnx.load(str(ints))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    ints.write_bytes(model.SerializeToString())
    with pytest.raises(SymnnValueError, match="input 'x' holds FLOAT16 values; symnn networks"):
        from_onnx(ints)
    other = tmp_path / "not.onnx"
    other.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(SymnnValueError, match="not a readable ONNX model"):
        from_onnx(other)
    good = model_file(tmp_path, chain(("Gemm", ["W"], {})), {"W": f32(4, 2)}, [4], "ok.onnx")
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(good.read_bytes()[:-7])
    with pytest.raises(SymnnValueError, match="cut.onnx"):
        from_onnx(truncated)


@pytest.mark.parametrize(
    "op, attrs",
    [
        ("MaxPool", dict(kernel_shape=[3, 3])),  # strides default to 1, not to the kernel
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
        ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
        ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                             ceil_mode=1, count_include_pad=1)),  # fmt: skip
        ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                             ceil_mode=1, count_include_pad=0)),  # fmt: skip
    ],
)
def test_pooling_attributes_as_onnx_means_them(op, attrs, tmp_path):
    """Each against onnx's reference evaluator, read and written back (these were read as
    strides = kernel and ceil_mode as Theano's ignore_border=False, silently)."""
    path = model_file(tmp_path, chain((op, [], attrs)), {}, [2, 7, 8])
    net = from_onnx(path)
    X = f32(3, 2 * 7 * 8)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(3, 2, 7, 8)})[0]
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, atol=1e-6)
    again = to_onnx(net, tmp_path / "again.onnx")
    got = ReferenceEvaluator(str(again)).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-6)


def test_weights_listed_as_graph_inputs_are_not_taken_for_the_data(tmp_path):
    """Files written with IR < 4 list every initializer as a graph input too, often before the
    data; the data input is the one without an initializer (it was graph.input[0])."""
    inits = {"W": f32(4, 3), "b": f32(3)}
    nodes = chain(("Gemm", ["W", "b"], {}), ("Relu", [], {}))
    weights = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape))
               for k, v in inits.items()]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [*weights, helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=3)
    path = tmp_path / "ir3.onnx"
    path.write_bytes(model.SerializeToString())
    net = from_onnx(path)
    X = f32(5, 4)
    np.testing.assert_allclose(symnn_out(net, X), np.maximum(X @ inits["W"] + inits["b"], 0),
                               rtol=1e-6)  # fmt: skip


def test_attributes_symnn_would_drop_are_refused_by_name(tmp_path):
    """auto_pad on pooling and BatchNormalization's training mode were accepted and ignored
    (a wrong output shape, statistics of the wrong batch)."""
    same = chain(("MaxPool", [], dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2])))
    path = model_file(tmp_path, same, {}, [1, 6, 6], "same.onnx")  # now honoured (a Pad first)
    X = f32(2, 36)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(2, 1, 6, 6)})[0]
    np.testing.assert_allclose(symnn_out(from_onnx(path), X).reshape(want.shape), want)
    inits = {n: f32(2, low=0.5, high=1.5) for n in ("s", "b", "m", "v")}
    bn = chain(("BatchNormalization", ["s", "b", "m", "v"], dict(training_mode=1)))
    with pytest.raises(SymnnValueError, match="training_mode=1 is not supported"):
        from_onnx(model_file(tmp_path, bn, inits, [2, 3, 3], "bn.onnx"))
    valid = chain(("MaxPool", [], dict(kernel_shape=[2, 2], auto_pad="VALID")))
    assert from_onnx(model_file(tmp_path, valid, {}, [1, 4, 4], "valid.onnx"))


def test_transposed_convolutions_lrn_and_global_max_pooling_in_and_out(tmp_path):
    """Against onnx's reference evaluator, and read back; LRN read back and its attributes
    checked (onnx 1.23's reference LRN loops over the batch axis instead of the channels, so
    it cannot be the reference; LocalResponseNorm is checked against PyTorch in
    test_image_layers)."""
    import onnx

    from symnn.layers import ConvTranspose2D, GlobalMaxPool2D, LocalResponseNorm

    net = Sequential([
        Reshape((2, 4, 4)),
        ConvTranspose2D(2, 3, 3, stride=2, pad=1, output_padding=1, activation="relu", rng=0),
        GlobalMaxPool2D(),
    ])  # fmt: skip
    path = to_onnx(net, tmp_path / "t.onnx")
    X = f32(4, 32)
    want = ReferenceEvaluator(str(path)).run(None, {"input": X})[0]
    np.testing.assert_allclose(symnn_out(net, X), want, rtol=1e-5, atol=1e-6)
    back = from_onnx(path)
    kinds = [type(la).__name__ for la in back.layers]
    assert kinds[:2] == ["Reshape", "ConvTranspose2D"] and "Reduce" in kinds, kinds
    np.testing.assert_allclose(symnn_out(back, X), want, rtol=1e-5, atol=1e-6)
    lrn = Sequential([Reshape((2, 4, 4)), LocalResponseNorm(3, alpha=1e-2, beta=0.7, k=2.0)])
    path = to_onnx(lrn, tmp_path / "lrn.onnx")
    (node,) = [n for n in onnx.load(str(path)).graph.node if n.op_type == "LRN"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["size"] == 3 and np.allclose([attrs["alpha"], attrs["beta"], attrs["bias"]],
                                              [1e-2, 0.7, 2.0])  # fmt: skip
    np.testing.assert_allclose(symnn_out(from_onnx(path), X), symnn_out(lrn, X), rtol=1e-6)
    even = Sequential([Reshape((2, 4, 4)), LocalResponseNorm(4)])
    with pytest.raises(SymnnValueError, match="an even size has no ONNX LRN"):
        to_onnx(even, tmp_path / "even.onnx")


def _dag_file(tmp_path):
    """A residual block, a branch concatenated on channels, and two outputs."""
    inits = {"W1": f32(3, 3, 3, 3), "b1": f32(3), "W2": f32(3, 3, 3, 3), "W3": f32(2, 3, 1, 1),
             "G": f32(5, 4), "c": f32(4), "shape": np.array([0, -1], np.int64)}  # fmt: skip
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "W1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("Conv", ["r1", "W2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        n("Add", ["c2", "x"], ["s"], name="skip"),
        n("Relu", ["s"], ["h"], name="relu2"),
        n("Conv", ["h", "W3"], ["side"], name="side"),
        n("Concat", ["h", "side"], ["cat"], name="cat", axis=1),
        n("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        n("Shape", ["gap"], ["shp"]), n("Gather", ["shp", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch", "zero1"], ["b1d"]),
        n("Concat", ["b1d", "minus1"], ["target"], axis=0),
        n("Reshape", ["gap", "target"], ["flat"], name="flat"),
        n("Gemm", ["flat", "G", "c"], ["logits"], name="fc", transB=0),
        n("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
        n("Sigmoid", ["logits"], ["gates"], name="gates"),
    ]  # fmt: skip
    inits.update(zero=np.array(0, np.int64), zero1=np.array([0], np.int64),
                 minus1=np.array([-1], np.int64))  # fmt: skip
    graph = helper.make_graph(
        nodes, "dag", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("probs", "gates")],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    path = tmp_path / "dag.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                     .SerializeToString())  # fmt: skip
    return path


def test_a_dag_with_a_skip_a_concatenation_and_two_outputs_reads_as_a_graph(tmp_path):
    from symnn.layers import Graph

    path = _dag_file(tmp_path)
    net = from_onnx(path)
    assert isinstance(net, Graph) and [s.name for s in net.input_specs] == ["x"]
    assert {"conv1", "skip", "cat", "fc"} <= {la.name for la in net.layers}
    assert net.get_layer("conv1").activation.__name__ == "relu"  # folded into the convolution
    X = f32(4, 3 * 6 * 6)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(4, 3, 6, 6)})
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x, deterministic=True), mode="FAST_COMPILE")(X)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    again = to_onnx(net, tmp_path / "again.onnx")  # and written back as a DAG
    for a, b in zip(ReferenceEvaluator(str(again)).run(None, {"x": X}), want, strict=True):
        np.testing.assert_allclose(a.reshape(b.shape), b, rtol=1e-5, atol=1e-6)


def test_graphs_from_onnx_save_and_load_exactly(tmp_path):
    import symnn

    net = from_onnx(_dag_file(tmp_path))
    back = symnn.load(symnn.save(net, tmp_path / "net"))
    X = f32(3, 108)
    x = pt.matrix("x", dtype="float32")
    ours = pytensor.function([x], net(x, deterministic=True), mode="FAST_COMPILE")(X)
    theirs = pytensor.function([x], back(x, deterministic=True), mode="FAST_COMPILE")(X)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def _schema_attributes():
    from onnx import defs

    from symnn.io.onnx import SUPPORTED_OPS
    from symnn.io.onnx_ops import ATTRIBUTES

    for op in SUPPORTED_OPS:
        for name in sorted(defs.get_schema(op).attributes):
            if name not in ATTRIBUTES.get(op, ()):
                yield op, name


@pytest.mark.parametrize("op, attribute", list(_schema_attributes()))
def test_every_attribute_the_reader_does_not_implement_is_refused_by_name(op, attribute, tmp_path):
    """For every supported op, each attribute of its ONNX schema that the reader does not
    honour (by its ATTRIBUTES table) is refused naming node, op and attribute; the honoured
    ones are checked by ONNX's conformance cases (test_onnx_conformance)."""
    node = helper.make_node(op, ["x"], ["y"], name="the_node", **{attribute: 2})
    with pytest.raises(SymnnValueError, match=rf"the_node \({op}\): attribute {attribute}=2 is"):
        from_onnx(model_file(tmp_path, [node], {}, [2, 4, 4]))


@pytest.mark.parametrize("which", ["resnet", "inception"])
def test_pytorch_exports_of_a_resnet_and_an_inception_net_read_back_equal(which, tmp_path):
    """torch.onnx.export (TorchScript exporter, opset 17) of the graph tests' PyTorch twins:
    Shape/Gather/Concat chains folded, BatchNormalization, skips and concatenations."""
    torch = import_torch()
    import test_graph

    torch.manual_seed(0)
    theirs = (test_graph._torch_resnet(torch) if which == "resnet"
              else test_graph._torch_inception(torch)).eval()  # fmt: skip
    width = 144 if which == "resnet" else 192
    path = tmp_path / f"{which}.onnx"
    torch.onnx.export(theirs, torch.zeros(2, width), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    net = from_onnx(path)
    X = np.random.default_rng(1).random((5, width)).astype("float32")
    with torch.no_grad():
        want = theirs(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(symnn_out(net, X), want, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_spatial_layers_written_and_read_back(mode, tmp_path):
    from symnn.layers import Pad, Transpose, Upsample2D

    net = Sequential([Reshape((2, 3, 4)), Upsample2D((2, 3), mode), Pad((1, 0, 2, 1), "reflect"),
                      Pad(1, "replicate"), Pad((0, 1, 1, 0), value=0.5),
                      Transpose((0, 2, 3, 1))])  # fmt: skip
    path = to_onnx(net, tmp_path / "s.onnx")
    X = f32(3, 24)
    want = ReferenceEvaluator(str(path)).run(None, {"input": X})[0]
    np.testing.assert_allclose(symnn_out(net, X), want, rtol=1e-5, atol=1e-6)
    back = from_onnx(path)
    np.testing.assert_allclose(symnn_out(back, X), want, rtol=1e-5, atol=1e-6)


def test_castlike_shape_of_a_weight_and_an_exporters_zero_bias(tmp_path):
    """What dynamo writes without its optimiser: a zero bias built from ``Shape`` of the
    weights, ``Expand`` and ``CastLike`` of a constant to the data's type (read as no bias),
    and clip bounds cast like the data: constants, folded. A tensor cast is not read."""
    inits = {"c.weight": f32(4, 2, 3, 3), "one": np.array([1], "int64"),
             "zero": np.zeros((), "float32"), "lo": np.array(0.0, "float64"),
             "hi": np.array(6.0, "float64")}  # fmt: skip
    nodes = [
        helper.make_node("Shape", ["c.weight"], ["n"], end=1),
        helper.make_node("Expand", ["n", "one"], ["size"]),
        helper.make_node("CastLike", ["zero", "x"], ["z"]),
        helper.make_node("Expand", ["z", "size"], ["bias0"]),
        helper.make_node("Conv", ["x", "c.weight", "bias0"], ["y"], name="conv", pads=[1] * 4),
        helper.make_node("CastLike", ["lo", "y"], ["lo32"]),
        helper.make_node("CastLike", ["hi", "y"], ["hi32"]),
        helper.make_node("Clip", ["y", "lo32", "hi32"], ["out"]),
    ]
    path = model_file(tmp_path, nodes, inits, [2, 5, 5])
    net = from_onnx(path)
    conv = next(la for la in net.layers if isinstance(la, Conv2D))
    assert conv.b is None and conv.torch_prefix == "c"
    X = f32(3, 50, low=-4, high=4)
    want = ReferenceEvaluator(str(path)).run(None, {"x": X.reshape(3, 2, 5, 5)})[0]
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, atol=1e-5)
    nodes.insert(4, helper.make_node("CastLike", ["x", "one"], ["x2"]))  # to int64
    nodes[5] = helper.make_node("Conv", ["x2", "c.weight", "bias0"], ["y"], pads=[1] * 4)
    with pytest.raises(SymnnValueError, match=r"unsupported op\(s\): \? \(CastLike\)"):
        from_onnx(model_file(tmp_path, nodes, inits, [2, 5, 5], "int.onnx"))


@pytest.mark.parametrize(
    "attrs",
    [dict(group=2, strides=[2, 1], pads=[1, 0, 2, 1]),  # asymmetric: cropped after
     dict(group=2, auto_pad="SAME_LOWER", strides=[2, 3]),
     dict(output_shape=[13, 10], strides=[3, 2], dilations=[1, 2]),  # extends the end
     dict(output_shape=[9, 6], strides=[3, 2], output_padding=[1, 0])],
)  # fmt: skip
def test_conv_transpose_groups_auto_pad_and_output_shape_as_onnxruntime(attrs, tmp_path):
    ort = pytest.importorskip("onnxruntime")  # onnx's reference evaluator fails on these
    group = attrs.get("group", 1)
    nodes = chain(("ConvTranspose", ["W", "b"], attrs), ("Relu", [], {}))
    path = model_file(tmp_path, nodes, {"W": f32(4, 6 // group, 3, 3), "b": f32(6)}, [4, 4, 3])
    X = f32(3, 4 * 4 * 3)
    want = ort.InferenceSession(str(path)).run(None, {"x": X.reshape(3, 4, 4, 3)})[0]
    net = from_onnx(path)
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, atol=1e-5)
    again = to_onnx(net, tmp_path / "again.onnx")  # a crop is written as Gather
    got = ort.InferenceSession(str(again)).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)


@pytest.mark.parametrize(
    "attrs, match",
    [(dict(output_shape=[12, 8], strides=[2, 2]),
      r"an output larger than the full transposed convolution at the start \(pads \[-1, 0\]\)"),
     (dict(output_shape=[11, 7], strides=[2, 2], output_padding=[1, 0]),
      r"output_padding=\(2, 0\) must be smaller than stride=\(2, 2\)")],
)  # fmt: skip
def test_conv_transpose_outputs_it_cannot_make_are_refused_by_node(attrs, match, tmp_path):
    nodes = chain(("ConvTranspose", ["W"], attrs))
    path = model_file(tmp_path, nodes, {"W": f32(2, 2, 3, 3)}, [2, 4, 3])
    with pytest.raises(SymnnValueError, match=r"n0 \(ConvTranspose\): " + match):
        from_onnx(path)


@pytest.mark.parametrize(
    "op, attrs, w_shape",
    [("Conv", dict(strides=[2], pads=[1, 2], dilations=[2], group=2), (6, 2, 3)),
     ("Conv", dict(auto_pad="SAME_UPPER", strides=[3]), (6, 4, 4)),
     ("ConvTranspose", dict(strides=[2], pads=[1, 0], output_padding=[1]), (4, 3, 3)),
     ("ConvTranspose", dict(output_shape=[17], strides=[2], group=2), (4, 2, 3))],
)  # fmt: skip
def test_one_d_convolutions_as_onnxruntime_and_written_back(op, attrs, w_shape, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out_channels = w_shape[1] * attrs.get("group", 1) if op == "ConvTranspose" else w_shape[0]
    nodes = chain((op, ["W", "b"], attrs), ("Relu", [], {}))
    path = model_file(tmp_path, nodes, {"W": f32(*w_shape), "b": f32(out_channels)}, [4, 9])
    X = f32(3, 4 * 9)
    want = ort.InferenceSession(str(path)).run(None, {"x": X.reshape(3, 4, 9)})[0]
    net = from_onnx(path)
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, atol=1e-5)
    again = to_onnx(net, tmp_path / "again.onnx")
    got = ort.InferenceSession(str(again)).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)


def test_a_pytorch_conv1d_reads_and_loads_its_state_dict_by_name(tmp_path):
    torch = import_torch()
    from symnn.io import load_state_dict

    def module(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv1d(3, 5, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.ConvTranspose1d(5, 2, 4, stride=2)).eval()  # fmt: skip

    path = tmp_path / "c1d.onnx"
    torch.onnx.export(module(0), torch.zeros(1, 3, 10), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    net = from_onnx(path)
    X = f32(4, 30)
    other = module(1)
    load_state_dict(net, other.state_dict())
    want = other(torch.from_numpy(X.reshape(4, 3, 10))).detach().numpy()
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, rtol=1e-4, atol=1e-6)


def test_per_channel_prelu_of_images_as_onnxruntime_and_written_back(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    nodes = chain(("Conv", ["W"], dict(pads=[1, 1, 1, 1])), ("PRelu", ["slope"], {}))
    inits = {"W": f32(3, 2, 3, 3), "slope": f32(3, 1, 1)}
    path = model_file(tmp_path, nodes, inits, [2, 5, 4])
    X = f32(4, 40)
    want = ort.InferenceSession(str(path)).run(None, {"x": X.reshape(4, 2, 5, 4)})[0]
    net = from_onnx(path)
    assert net.layers[-1].axis == 1
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, atol=1e-6)
    again = to_onnx(net, tmp_path / "again.onnx")
    got = ort.InferenceSession(str(again)).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-6)
    inits["slope"] = f32(2, 1, 1)  # neither per channel nor per feature: named
    with pytest.raises(SymnnValueError, match=r"n1 \(PRelu\): slope of shape \(2, 1, 1\) is not"):
        from_onnx(model_file(tmp_path, nodes, inits, [2, 5, 4], "bad.onnx"))


def test_a_pytorch_prelu_per_channel_reads_and_loads_by_name(tmp_path):
    torch = import_torch()
    from symnn.io import load_state_dict

    def module(seed):
        torch.manual_seed(seed)
        m = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.PReLU(4)).eval()
        with torch.no_grad():
            m[1].weight.uniform_(-1, 1)
        return m

    path = tmp_path / "prelu.onnx"
    torch.onnx.export(module(0), torch.zeros(1, 2, 6, 6), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    net = from_onnx(path)
    other = module(1)
    with pytest.raises(SymnnValueError, match=r"keys not used \['1.weight'\]; pass key_map"):
        load_state_dict(net, other.state_dict())  # the exporter renamed the reshaped slope
    prelu = net.layers[-1]
    load_state_dict(net, other.state_dict(), key_map={prelu.name: "1"})
    X = f32(3, 72)
    want = other(torch.from_numpy(X.reshape(3, 2, 6, 6))).detach().numpy()
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, w_shape, post", [
    ((4, 3), (3, 2), [("Relu", {})]),  # a dense layer on each step of a sequence
    ((2, 4, 3), (3, 5), [("Softmax", {})]),  # the softmax over the last axis, read apart
    ((4, 3), (3, 2), [("Softmax", {"axis": 1})]),  # over the steps: not fused into the layer
    ((2, 4, 3), (3,), []),  # by a vector: the last axis goes
    ((5, 3), (3,), [("Sigmoid", {})]),
    ((3,), (3,), []),  # one value per sample
])  # fmt: skip
def test_matmul_by_a_constant_on_the_last_axis_of_any_sample(shape, w_shape, post, tmp_path):
    """``MatMul`` + ``Add`` as ``nn.Linear`` exports it on samples of several axes,
    against onnx's reference evaluator and onnxruntime, written back and read again."""
    bias = f32(w_shape[1]) if len(w_shape) == 2 else f32(1).reshape(())
    nodes = chain(("MatMul", ["W"], {}), ("Add", ["b"], {}), *[(op, [], a) for op, a in post])
    model_path = model_file(tmp_path, nodes, {"W": f32(*w_shape), "b": bias}, list(shape))
    X = f32(4, int(np.prod(shape)))
    model = onnx.load(str(model_path))
    want = ReferenceEvaluator(model).run(None, {"x": X.reshape(4, *shape)})[0]
    net = from_onnx(model_path)
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, atol=1e-6)
    again = to_onnx(net, tmp_path / "again.onnx")
    ort = pytest.importorskip("onnxruntime")
    got = ort.InferenceSession(str(again)).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-6)
    np.testing.assert_allclose(symnn_out(from_onnx(again), X).reshape(want.shape), want,
                               atol=1e-6)  # fmt: skip


def test_a_pytorch_linear_on_every_step_of_a_sequence(tmp_path):
    torch = import_torch()
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3),
                                 torch.nn.LogSoftmax(-1)).eval()  # fmt: skip
    path = tmp_path / "steps.onnx"
    torch.onnx.export(module, torch.zeros(1, 5, 6), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    net = from_onnx(path)
    X = f32(3, 30)
    want = module(torch.from_numpy(X.reshape(3, 5, 6))).detach().numpy()
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want, rtol=1e-5, atol=1e-6)


def _rnn_file(tmp_path, op, gates, attrs, bias, shape=(5, 3, 4), hidden=6, out="Y_h"):
    """A time-major recurrent op on the graph's input ``(time, batch, features)``."""
    T, _, n_in = shape
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    w = {"W": f32(d, gates * hidden, n_in), "R": f32(d, gates * hidden, hidden), "B": bias}
    outs = {"both": ["Y", "Y_h"], "all": ["Y", "Y_h", "Y_c"]}.get(out, [out])
    names = {"Y": ["Y"], "Y_c": ["", "", "Y_c"], "all": ["Y", "Y_h", "Y_c"]}.get(out, ["Y", "Y_h"])
    node = helper.make_node(op, ["x", "W", "R", "B"], names, hidden_size=hidden, **attrs)
    graph = helper.make_graph(
        [node], "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, "N", n_in])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in w.items()],
    )  # fmt: skip
    path = tmp_path / f"{op}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("op, gates, out", [("LSTM", 4, "Y_h"), ("GRU", 3, "Y"), ("RNN", 1, "Y")])
def test_a_time_major_file_reads_with_batch_axis_1(op, gates, out, tmp_path):
    """Inputs ``(time, batch, features)`` (ONNX's default layout, PyTorch's ``nn.LSTM``
    without ``batch_first``): the network takes batch-first sequences and gives its outputs
    batch first; with the batch axis first, the refusal says how to read it."""
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}  # PyTorch's GRU
    path = _rnn_file(tmp_path, op, gates, attrs, f32(1, 2 * gates * 6), out=out)
    with pytest.raises(SymnnValueError, match=r"\[5, None, 4\] \(time-major: from_onnx\(batch"):
        from_onnx(path)
    net = from_onnx(path, batch_axis=1)
    X = f32(3, 5, 4)  # (batch, time, features)
    want = ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": X.transpose(1, 0, 2)})[0]
    want = np.moveaxis(want, 2 if out == "Y" else 1, 0)  # batch first
    np.testing.assert_allclose(symnn_out(net, X.reshape(3, -1)).reshape(want.shape), want,
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("op, gates, direction", [
    ("LSTM", 4, "reverse"), ("RNN", 1, "forward"), ("LSTM", 4, "bidirectional"),
    ("GRU", 3, "bidirectional"),
])  # fmt: skip
def test_y_and_y_h_both_used(op, gates, direction, tmp_path):
    """``out, h = lstm(x)`` with both used: Y_h is Y's last step (a reverse pass: its
    first; bidirectional: each direction's); Y_c is refused."""
    attrs = {"direction": direction, **({"linear_before_reset": 1} if op == "GRU" else {})}
    d = 2 if direction == "bidirectional" else 1
    path = _rnn_file(tmp_path, op, gates, attrs, f32(d, 2 * gates * 6), out="both")
    net = from_onnx(path, batch_axis=1)
    X = f32(3, 5, 4)
    want = ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": X.transpose(1, 0, 2)})
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x), mode="FAST_COMPILE")(X.reshape(3, -1))
    for g, w, batch in zip(got, want, (2, 1)):
        np.testing.assert_allclose(g.reshape(np.moveaxis(w, batch, 0).shape),
                                   np.moveaxis(w, batch, 0), rtol=1e-5, atol=1e-6)  # fmt: skip



@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("out", ["Y_c", "all"])
def test_an_lstms_cell_state_y_c(direction, out, tmp_path):
    """Y_c alone or with Y and Y_h: the LSTM read with ``with_cell`` (h and c side by side),
    as the reference evaluator computes it; such an LSTM is not written back."""
    d = 2 if direction == "bidirectional" else 1
    path = _rnn_file(tmp_path, "LSTM", 4, {"direction": direction}, f32(d, 48), out=out)
    net = from_onnx(path, batch_axis=1)
    X = f32(3, 5, 4)
    want = ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": X.transpose(1, 0, 2)})
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x), mode="FAST_COMPILE")(X.reshape(3, -1))
    got = got if isinstance(got, list) else [got]
    for g, w in zip(got, want):
        w = np.moveaxis(w, 2 if w.ndim == 4 else 1, 0)  # Y: batch on axis 2; Y_h, Y_c: 1
        np.testing.assert_allclose(g.reshape(w.shape), w, rtol=1e-5, atol=1e-6)
    with pytest.raises(SymnnValueError, match="with_cell=True .* is not written"):
        to_onnx(net, tmp_path / "back.onnx")


@pytest.mark.parametrize("training, ratio", [(None, None), (False, 0.4), (True, 0.0)])
def test_dropouts_that_keep_everything_and_their_masks(training, ratio, tmp_path):
    """Inference, or training at a rate of 0: the input, and a mask of True (a KeepMask
    layer, not written back); training at a rate is random and refused by node."""
    extra = {"ratio": np.float32(0.0 if ratio is None else ratio)}
    if training is not None:
        extra["training"] = np.bool_(training)
    node = helper.make_node("Dropout", ["x", *extra], ["y", "mask"], name="drop")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in extra.items()])  # fmt: skip
    path = tmp_path / "drop.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    X = f32(2, 3, 4)
    X[0, 0, 0] = np.nan
    want = ReferenceEvaluator(str(path)).run(None, {"x": X})
    net = from_onnx(path)
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x), mode="FAST_COMPILE")(X.reshape(2, -1))
    np.testing.assert_array_equal(got[0].reshape(X.shape), want[0])
    assert got[1].dtype == bool and got[1].all() and want[1].all()
    with pytest.raises(SymnnValueError, match="KeepMask has no ONNX export"):
        to_onnx(net, tmp_path / "back.onnx")
    random = onnx.load(str(path))
    del random.graph.initializer[:]
    random.graph.initializer.extend([numpy_helper.from_array(np.float32(0.3), "ratio"),
                                     numpy_helper.from_array(np.bool_(True), "training")])
    del random.graph.node[0].input[1:]
    random.graph.node[0].input.extend(["ratio", "training"])
    onnx.save(random, path)
    with pytest.raises(SymnnValueError, match=r"drop \(Dropout\): training_mode=True with "
                                              r"ratio=0.3\d* is not supported"):
        from_onnx(path)


def test_constant_sequence_lengths_of_full_sequences_and_zero_initial_states(tmp_path):
    """What exporters write for an LSTM without masks or states is read; anything else
    is refused by name."""
    path = _rnn_file(tmp_path, "LSTM", 4, {}, f32(1, 48))
    model = onnx.load(str(path))
    node = model.graph.node[0]
    node.input.extend(["lens", "h0", "c0"])
    extra = {"lens": np.full(3, 5, np.int32), "h0": np.zeros((1, 3, 6), np.float32),
             "c0": np.zeros((1, 3, 6), np.float32)}  # fmt: skip
    model.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in extra.items())
    onnx.save(model, path)
    X = f32(3, 5, 4)
    (want,) = ReferenceEvaluator(str(path)).run(None, {"x": X.transpose(1, 0, 2)})
    got = symnn_out(from_onnx(path, batch_axis=1), X.reshape(3, -1))
    np.testing.assert_allclose(got.reshape(3, 6), want[0], rtol=1e-5, atol=1e-6)
    for name, value, what in (("lens", np.int32([5, 4, 5]), "sequence_lens"),
                              ("h0", np.ones((1, 3, 6), np.float32), "initial_h")):  # fmt: skip
        bad = onnx.load(str(path))
        for init in bad.graph.initializer:
            if init.name == name:
                init.CopyFrom(numpy_helper.from_array(value, name))
        onnx.save(bad, tmp_path / "bad.onnx")
        with pytest.raises(SymnnValueError, match=f"the {what} input is not supported"):
            from_onnx(tmp_path / "bad.onnx", batch_axis=1)


@pytest.mark.parametrize("attrs", [{}, {"linear_before_reset": 0}])
def test_onnxs_own_gru_variant_reads_as_a_gru_resetting_before(attrs, tmp_path):
    """ONNX's default GRU resets the state before the product with R (PyTorch's, after):
    read as ``GRU(reset_after=False)``, as the reference evaluator computes it."""
    path = _rnn_file(tmp_path, "GRU", 3, attrs, f32(1, 36))
    net = from_onnx(path, batch_axis=1)
    assert [la.reset_after for la in net.layers if hasattr(la, "reset_after")] == [False]
    X = f32(3, 5, 4)
    (want,) = ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": X.transpose(1, 0, 2)})
    np.testing.assert_allclose(symnn_out(net, X.reshape(3, -1)).reshape(3, 6), want[0],
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    odd = _rnn_file(tmp_path, "GRU", 3, {"linear_before_reset": 2}, f32(1, 36))
    with pytest.raises(SymnnValueError, match=r"linear_before_reset=2 is not supported"):
        from_onnx(odd, batch_axis=1)


def test_a_pytorch_lstm_without_batch_first_reads_with_batch_axis_1(tmp_path):
    torch = import_torch()
    torch.manual_seed(0)

    class Tagger(torch.nn.Module):  # the last step's state classified
        def __init__(self):
            super().__init__()
            self.lstm, self.fc = torch.nn.LSTM(4, 8), torch.nn.Linear(8, 3)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[-1])

    module = Tagger().eval()
    path = tmp_path / "lstm.onnx"
    torch.onnx.export(module, torch.zeros(6, 1, 4), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {1: "N"}})  # fmt: skip
    net = from_onnx(path, batch_axis=1)
    X = f32(2, 6, 4)  # batch-first
    want = module(torch.from_numpy(X.transpose(1, 0, 2).copy())).detach().numpy()
    np.testing.assert_allclose(symnn_out(net, X.reshape(2, -1)), want, rtol=1e-5, atol=1e-6)


def test_gather_by_indices_of_several_axes(tmp_path):
    """Entries of a sample's axis 2 by (2, 3) indices, negative ones too: the axis becomes
    the indices' two axes; written back and read again."""
    idx = np.array([[0, -1, 2], [3, 1, -2]], np.int64)
    nodes = chain(("Gather", ["i"], {"axis": 2}), ("Relu", [], {}))
    path = model_file(tmp_path, nodes, {"i": idx}, [2, 4, 3])
    X = f32(3, 24)
    want = ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": X.reshape(3, 2, 4, 3)})[0]
    assert want.shape == (3, 2, 2, 3, 3)
    net = from_onnx(path)
    np.testing.assert_allclose(symnn_out(net, X).reshape(want.shape), want)
    again = from_onnx(to_onnx(net, tmp_path / "again.onnx"))
    np.testing.assert_allclose(symnn_out(again, X).reshape(want.shape), want)
