"""ONNX's own per-op conformance cases (``onnx.backend.test.case.node.collect_testcases()``,
shipped in the onnx package) read by ``from_onnx``: every case whose ops are all in
``SUPPORTED_OPS`` either gives the case's expected outputs (within the tolerances of ONNX's
backend tests) or is refused with a ``SymnnValueError`` for a reason listed in ``REFUSED``
below. No case may give a wrong answer, and a listed case that starts to pass must leave the
list. The case's first input is the data; its other inputs are constants (initializers),
except tensors of the data's batch size given to ops of several tensors (``Add``,
``Concat``, ...), which stay inputs of the graph. A case refused with its first axis as the
batch is read again as a graph of one sample (``from_onnx(batch_axis=None)``) on a batch
of two samples, the case's inputs and the same values reversed, each checked against onnx's
reference evaluator; a case refused both ways is listed with the first reason."""

import re

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402
from onnx.backend.test.case.node import collect_testcases  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from symnn.errors import SymnnValueError  # noqa: E402
from symnn.io import from_onnx  # noqa: E402
from symnn.io.onnx import SUPPORTED_OPS  # noqa: E402

#: ops whose extra float inputs of the data's batch size are tensors of the graph
TENSOR_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Concat", "MatMul"}

def _names(text: str) -> frozenset:
    return frozenset(f"test_{n}" for n in text.split())


#: (why symnn refuses, pattern of the refusal's message, the cases refused for it)
REFUSED = [
    ('optional and sequence values; float16 tensors',
     r"holds \w+ values|dtype='float16'", _names(
        'identity_opt identity_sequence max_float16 min_float16 '
    )),
    ('If on a condition given as data (one for the whole batch: no batch axis)',
     r"input 'cond' must have a batch axis", _names(
        'if if_opt if_seq '
    )),
    ('3-D convolutions are not implemented',
     r"3-D versions are not supported", _names(
        'convtranspose_3d '
    )),
    ('training-mode batch statistics, and dropout at a rate (random)',
     r"training_mode", _names(
        'batchnorm_epsilon_training_mode batchnorm_example_training_mode training_dropout '
        'training_dropout_default training_dropout_default_mask training_dropout_mask '
    )),
    ("MaxPool's Indices output",
     r"Indices output", _names(
        'maxpool_with_argmax_2d_precomputed_pads maxpool_with_argmax_2d_precomputed_strides '
    )),
    ('MatMul of a vector by a stack of matrices, or by a constant of several matrices',
     r"takes \(\.\.\., K\) @ \(K, M\) or \(K,\)|tensors of matrices per sample", _names(
        'matmul_1d_1d matmul_1d_3d matmul_bcast '
    )),
    ('PRelu slopes that differ along the batch axis',
     r"is not one value, one per feature", _names(
        'prelu_example '
    )),
]  # fmt: skip


def _cases():
    supported = set(SUPPORTED_OPS)
    return [c for c in collect_testcases()
            if c.model.graph.node and {n.op_type for n in c.model.graph.node} <= supported]


CASES = _cases()


def _refusal(name: str):
    return [r for r in REFUSED if name in r[2]]


def _model_and_feeds(case):
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, outputs = case.data_sets[0]
    first, op = np.asarray(inputs[0]), model.graph.node[-1].op_type
    feeds = []
    for k, (info, value) in enumerate(zip(list(model.graph.input), inputs)):
        value = np.asarray(value)
        batch = value.ndim == first.ndim >= 1 and value.shape[0] == first.shape[0]
        if k == 0 or (op in TENSOR_OPS and value.dtype.kind in "fiub" and batch):
            feeds.append(value)
        else:
            model.graph.initializer.append(numpy_helper.from_array(value, info.name))
    return model, feeds, [np.asarray(o) for o in outputs]


def _run(case, tmp_path, mode="FAST_COMPILE"):
    """The case read with its batch axis first; when that is refused, as a graph of one
    sample (``batch_axis=None``) on a batch of two: the case's inputs and the same values
    reversed, whose outputs onnx's reference evaluator gives; when that is refused too and
    the case is time-major, with ``batch_axis=1``. Refused every way: the first reason."""
    model, feeds, outputs = _model_and_feeds(case)
    path = tmp_path / f"{case.name}.onnx"
    path.write_bytes(model.SerializeToString())
    dtype = str(feeds[0].dtype) if feeds[0].dtype.kind == "f" else "float32"
    try:
        return _compute(from_onnx(path, dtype=dtype), feeds, dtype, mode), outputs
    except SymnnValueError as exc:
        first = exc
    try:
        net = from_onnx(path, dtype=dtype, batch_axis=None)
    except SymnnValueError:
        if "layout=0 takes (time, batch" not in str(first):
            raise first from None
        return _time_major(case, model, path, feeds, outputs, dtype, mode, first)
    other = [f.reshape(-1)[::-1].reshape(f.shape) for f in feeds]
    names = [i.name for i in model.graph.input if i.name not in _initializers(model)]
    expected = ReferenceEvaluator(model).run(None, dict(zip(names, other)))
    got = _compute(net, [np.stack(p) for p in zip(feeds, other)], dtype, mode)
    want = [np.stack([w.reshape(-1), np.asarray(e).reshape(-1)]) for w, e in zip(outputs, expected)]
    return [g.reshape(2, -1) for g in got], want


def _time_major(case, model, path, feeds, outputs, dtype, mode, first):
    """A recurrent case of ``(time, batch, features)`` inputs read with ``batch_axis=1``:
    fed batch-first, its outputs (``Y``: batch on axis 2, ``Y_h``/``Y_c``: axis 1)
    compared with the batch axis moved first."""
    try:
        net = from_onnx(path, dtype=dtype, batch_axis=1)
    except SymnnValueError:
        raise first from None
    got = _compute(net, [np.moveaxis(feeds[0], 1, 0), *feeds[1:]], dtype, mode)
    names = [o.name for o in model.graph.output]
    return got, [np.moveaxis(w, 2 if n == "Y" else 1, 0) for n, w in zip(names, outputs)]


def _initializers(model) -> set[str]:
    return {t.name for t in model.graph.initializer}


def _compute(net, feeds, dtype, mode):
    xs = [pt.matrix(f"x{i}", dtype=dtype if f.dtype.kind == "f" else f.dtype.name)
          for i, f in enumerate(feeds)]
    out = net(xs[0] if len(xs) == 1 else xs, deterministic=True)
    rows = [f.reshape(len(f), int(np.prod(f.shape[1:]))) for f in feeds]  # -1: not for 0
    got = pytensor.function(xs, out, mode=mode)(*rows)
    return got if isinstance(got, list) else [got]


def test_the_conformance_cases_are_many_and_most_pass():
    """The numbers the issue and the docs quote: cases of supported ops, and how many pass
    (every other one is refused for a listed reason, see the parametrised test)."""
    refused = sum(bool(_refusal(c.name)) for c in CASES)
    assert len(CASES) >= 406 and len(CASES) - refused >= 386, (len(CASES), refused)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_conformance_case_passes_or_is_refused_for_a_listed_reason(case, tmp_path):
    listed = _refusal(case.name)
    try:
        got, want = _run(case, tmp_path)
    except SymnnValueError as exc:
        reasons = [r[0] for r in listed if re.search(r[1], str(exc))]
        assert reasons, f"{case.name} refused for an unlisted reason: {exc}"
        return
    assert not listed, f"{case.name} now passes; take it out of REFUSED ({listed[0][0]})"
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.reshape(b.shape), b, rtol=1e-3, atol=1e-7)


C_CASES = [
    "test_lstm_defaults", "test_simple_rnn_with_initial_bias",  # time-major: batch_axis=1
    "test_matmul_4d_1d",  # a constant on the last axis of samples of several axes
    "test_transpose_all_permutations_3", "test_flatten_axis0",  # read as graphs of one sample
    "test_reduce_mean_default_axes_keepdims_random",
    "test_conv_with_strides_and_asymmetric_padding", "test_maxpool_2d_same_upper",
    "test_averagepool_2d_ceil", "test_reduce_max_do_not_keepdims_random",
    "test_softmax_default_axis", "test_resize_upsample_scales_linear", "test_selu",
    "test_clip_default_min", "test_concat_3d_axis_1", "test_globalmaxpool_precomputed",
    "test_resize_downsample_scales_cubic_antialias", "test_resize_upsample_sizes_nearest_axes_3_2",
    "test_resize_tf_crop_and_resize_extrapolation_value", "test_elu_example", "test_max_example",
]  # fmt: skip


@pytest.mark.parametrize("name", C_CASES)
def test_conformance_cases_on_the_default_c_backend(name, tmp_path):
    (case,) = [c for c in CASES if c.name == name]
    got, want = _run(case, tmp_path, mode=None)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.reshape(b.shape), b, rtol=1e-3, atol=1e-7)


def conformance_table() -> str:
    """Per op (the case's last node): cases, passing, refused (the table the docs quote)."""
    rows: dict[str, list[int]] = {}
    for case in CASES:
        row = rows.setdefault(case.model.graph.node[-1].op_type, [0, 0])
        row[0] += 1
        row[1] += not _refusal(case.name)
    lines = [f"{'op':<22}{'cases':>6}{'pass':>6}"]
    lines += [f"{op:<22}{n:>6}{ok:>6}" for op, (n, ok) in sorted(rows.items())]
    total, ok = sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())
    return "\n".join([*lines, f"{'all':<22}{total:>6}{ok:>6}  ({ok / total:.1%})"])


if __name__ == "__main__":  # python tests/test_onnx_conformance.py
    print(conformance_table())  # noqa: T201
