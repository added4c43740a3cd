"""Graphs of one sample read as networks of batches (``from_onnx(batch_axis=None)``):
each row of a batch gives what onnx's reference evaluator gives for that sample alone.
(ONNX's conformance cases whose first axis is not a batch run this way too, see
``tests/test_onnx_conformance.py``.)"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from symnn.errors import SymnnValueError  # noqa: E402
from symnn.io import from_onnx, to_onnx  # noqa: E402

RNG = np.random.default_rng(7)


def sample_file(tmp_path, nodes, shape, inits=(), opset=17, outputs=None):
    """A graph taking one sample ``x`` of ``shape`` (no batch axis)."""
    outs = outputs or [nodes[-1].output[0]]
    graph = helper.make_graph(
        nodes, "sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in dict(inits).items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / "sample.onnx"
    path.write_bytes(model.SerializeToString())
    return path, model


def rows_match_the_reference(net, model, shape, batch=3, mode="FAST_COMPILE", ref=None):
    """Each row of a batch against the sample computed alone by onnx's reference
    evaluator (or ``ref``, e.g. onnxruntime)."""
    X = RNG.normal(size=(batch, *shape)).astype("float32")
    x = pt.matrix("x", dtype="float32")
    out = net(x, deterministic=True)
    got = pytensor.function([x], out, mode=mode)(X.reshape(batch, -1))
    ref = ref or ReferenceEvaluator(model)
    want = [ref.run(None, {"x": X[i]})[0] for i in range(batch)]
    np.testing.assert_allclose(got.reshape(batch, -1), np.stack([w.reshape(-1) for w in want]),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    return got


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory):
    """Transpose, a softmax over the sample's first axis, a Shape-Concat-Reshape chain
    (folded), a Pad of the first axis, a Flatten, a Gather and an Unsqueeze, a product
    with a constant, a reduction over every axis of the sample (no axes given) and a
    Squeeze without axes (one value per sample)."""
    tmp = tmp_path_factory.mktemp("samples")
    n = helper.make_node
    nodes = [
        n("Transpose", ["x"], ["t"]),  # (4, 3, 2): the default perm reverses the axes
        n("Softmax", ["t"], ["s"], axis=0),
        n("Shape", ["s"], ["shape"], start=0, end=1),  # [4]
        n("Concat", ["shape", "minus_one"], ["target"], axis=0),  # [4, -1]
        n("Reshape", ["s", "target"], ["r"]),  # (4, 6)
        n("Pad", ["r", "pads"], ["p"], mode="constant"),  # (5, 6): a row before
        n("Flatten", ["p"], ["f"], axis=1),  # (5, 6)
        n("Gather", ["f", "rows"], ["g"], axis=0),  # (2, 6)
        n("Unsqueeze", ["g", "axis0"], ["u"]),  # (1, 2, 6)
        n("Mul", ["u", "scale"], ["m"]),  # a constant per column (6,)
        n("ReduceSum", ["m"], ["sum"], keepdims=1),  # (1, 1, 1)
        n("Squeeze", ["sum"], ["y"]),  # ()
    ]
    inits = {"minus_one": np.array([-1], np.int64), "pads": np.array([1, 0, 0, 0], np.int64),
             "scale": RNG.normal(size=6).astype("float32"), "rows": np.array([0, -1], np.int64),
             "axis0": np.array([0], np.int64)}  # fmt: skip
    return sample_file(tmp, nodes, (2, 3, 4), inits.items(), opset=18)


def test_a_chain_of_sample_ops_reads_as_a_batch_of_samples(chain_file):
    path, model = chain_file
    net = from_onnx(path, batch_axis=None)
    rows_match_the_reference(net, model, (2, 3, 4))


def test_the_same_chain_on_the_default_c_backend(chain_file):
    path, model = chain_file
    net = from_onnx(path, batch_axis=None)
    rows_match_the_reference(net, model, (2, 3, 4), batch=2, mode=None)


def test_a_batch_of_one_keeps_its_batch_axis_and_the_graph_writes_back(chain_file, tmp_path):
    path, model = chain_file
    net = from_onnx(path, batch_axis=None)
    got = rows_match_the_reference(net, model, (2, 3, 4), batch=1)
    assert got.shape[0] == 1
    to_onnx(net, tmp_path / "back.onnx")  # the batch version, read back with its batch axis
    again = from_onnx(tmp_path / "back.onnx")
    rows_match_the_reference(again, model, (2, 3, 4), batch=2)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_defaults_and_reduce_attributes_of_older_opsets(opset, tmp_path):
    nodes = [helper.make_node("Softmax", ["x"], ["s"]),  # opset 11: flattens from axis 1
             helper.make_node("ReduceMax", ["s"], ["y"], axes=[0], keepdims=0)]  # fmt: skip
    path, model = sample_file(tmp_path, nodes, (3, 2, 2), opset=opset)
    ort = pytest.importorskip("onnxruntime")  # onnx's evaluator gives opset 13's softmax
    ref = ort.InferenceSession(str(path))
    rows_match_the_reference(from_onnx(path, batch_axis=None), model, (3, 2, 2), ref=ref)


def test_a_sample_graph_with_two_outputs_and_a_tensor_sum(tmp_path):
    n = helper.make_node
    nodes = [n("Relu", ["x"], ["r"]), n("Sigmoid", ["x"], ["s"]), n("Sum", ["r", "s"], ["y"]),
             n("ReduceMean", ["y"], ["z"], axes=[-1], keepdims=0)]  # fmt: skip
    path, model = sample_file(tmp_path, nodes, (4, 5), outputs=["y", "z"])
    net = from_onnx(path, batch_axis=None)
    X = RNG.normal(size=(2, 4, 5)).astype("float32")
    x = pt.matrix("x", dtype="float32")
    y, z = pytensor.function([x], net(x), mode="FAST_COMPILE")(X.reshape(2, -1))
    for i in range(2):
        want_y, want_z = ReferenceEvaluator(model).run(None, {"x": X[i]})
        np.testing.assert_allclose(y[i].reshape(4, 5), want_y, rtol=1e-6)
        np.testing.assert_allclose(z[i], want_z, rtol=1e-6)


@pytest.mark.parametrize("c_shape", [(2, 5), (5,), ()])
def test_gemm_of_a_sample_matrix_with_every_attribute(c_shape, tmp_path):
    """``alpha * A^T @ B^T + beta * C`` of each sample's ``(3, 2)`` matrix ``A``."""
    node = helper.make_node("Gemm", ["x", "B", "C"], ["y"], alpha=0.5, beta=2.0, transA=1,
                            transB=1)  # fmt: skip
    inits = {"B": RNG.normal(size=(5, 3)).astype("float32"),
             "C": RNG.normal(size=c_shape).astype("float32")}  # fmt: skip
    path, model = sample_file(tmp_path, [node], (3, 2), inits.items())
    rows_match_the_reference(from_onnx(path, batch_axis=None), model, (3, 2))


@pytest.mark.parametrize("nodes, inits, match", [
    ([("Conv", ["x", "w"], {})], {"w": np.ones((1, 2, 1, 1), "float32")},
     r"n0 \(Conv\).*its first axis is a batch.*batch_axis=None"),
    ([("Concat", ["x", "c"], {"axis": 0})], {"c": np.ones((2, 3, 4), "float32")},
     "a Concat of tensors and constants"),
    ([("Cos", ["x"], {})], {}, r"unsupported op\(s\): n0 \(Cos\)"),
    ([("Gemm", ["c", "x"], {})], {"c": np.ones((3, 2), "float32")},
     "B and C computed from the data"),
])  # fmt: skip
def test_ops_without_a_batch_version_are_refused_by_node(nodes, inits, match, tmp_path):
    made = [helper.make_node(op, ins, [f"t{i}"], name=f"n{i}", **a)
            for i, (op, ins, a) in enumerate(nodes)]  # fmt: skip
    path, _ = sample_file(tmp_path, made, (2, 3, 4), inits.items())
    with pytest.raises(SymnnValueError, match=match):
        from_onnx(path, batch_axis=None)


def test_a_reader_refusal_says_how_the_graph_was_read(tmp_path):
    nodes = [helper.make_node("Pad", ["x", "p"], ["y"], mode="mirror")]
    path, _ = sample_file(tmp_path, nodes, (2, 3, 4), {"p": np.ones(6, np.int64)}.items())
    with pytest.raises(SymnnValueError, match=r"mode='mirror' .*batch_axis=None.*numbered from"):
        from_onnx(path, batch_axis=None)


def test_an_if_branch_and_broadcasts_of_tensors_of_several_ranks(tmp_path):
    """The branch an If on a constant takes reads the data; a value per sample broadcast
    against the sample's matrix, the sample's vector against a constant matrix."""
    n = helper.make_node
    branch = helper.make_graph([n("Relu", ["x"], ["b"])], "then", [],
                               [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    nodes = [n("If", ["cond"], ["r"], then_branch=branch, else_branch=branch),  # (3,)
             n("Add", ["r", "m"], ["rm"]),  # (3,) + (2, 3): (2, 3)
             n("ReduceMax", ["rm"], ["top"], keepdims=0),  # ()
             n("Mul", ["top", "m"], ["y"])]  # () * (2, 3): (2, 3)  # fmt: skip
    inits = {"cond": np.array(True), "m": RNG.normal(size=(2, 3)).astype("float32")}
    path, model = sample_file(tmp_path, nodes, (3,), inits.items(), opset=17)
    rows_match_the_reference(from_onnx(path, batch_axis=None), model, (3,), batch=4)


@pytest.mark.parametrize("given", [False, True, 2, "no"])
def test_batch_axis_takes_0_1_or_none(given, tmp_path):
    path, _ = sample_file(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], (3,))
    with pytest.raises(SymnnValueError, match=rf"batch_axis must be 0, 1 or None; got {given!r}"):
        from_onnx(path, batch_axis=given)
