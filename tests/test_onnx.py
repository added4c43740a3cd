"""ONNX graphs in and out, against onnx's reference evaluator (float32, 1e-5)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
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
    GlobalAvgPool2D,
    MaxPool2D,
    Normalize,
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
    assert isinstance(net.layers[1], GlobalAvgPool2D) and isinstance(net.layers[-1], Dense)
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
    nodes = chain(("Relu", [], {}), ("Concat", ["x"], dict(axis=1)))
    with pytest.raises(SymnnValueError, match=r"unsupported op\(s\): n1 \(Concat\)"):
        from_onnx(model_file(tmp_path, nodes, {}, [4]))
    branch = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
              helper.make_node("Tanh", ["x"], ["b"], name="t1")]  # fmt: skip
    with pytest.raises(SymnnValueError, match="t1 .* only chain graphs"):
        from_onnx(model_file(tmp_path, branch, {}, [4], "branch.onnx"))
    nodes = chain(("Relu", [], {}))
    with pytest.raises(SymnnValueError, match="an activation must follow a layer"):
        from_onnx(model_file(tmp_path, nodes, {}, [4], "relu.onnx"))
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
    same = chain(("MaxPool", [], dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER")))
    with pytest.raises(SymnnValueError, match="auto_pad=SAME_UPPER is not supported"):
        from_onnx(model_file(tmp_path, same, {}, [1, 5, 5], "same.onnx"))
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
    assert kinds[:2] == ["Reshape", "ConvTranspose2D"] and "GlobalMaxPool2D" in kinds, kinds
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
