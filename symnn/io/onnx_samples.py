"""Reading a graph of one sample as a network of batches (``from_onnx(batch_axis=None)``).

Some ONNX graphs compute one sample: their tensors have no batch axis (a vector in, a vector
out; the per-op conformance cases of ONNX, whose first axis is often not a batch). symnn
networks take batches, so such a graph is read as its batch version, as ``jax.vmap`` would
map it: the reader gives every tensor computed from the data a leading batch axis, and
:func:`batched_nodes` rewrites each node that reads one, when the reader reaches it (the
samples' shapes and the folded constants known), into the node of the batch version: each
axis of a sample moved by one, ``Flatten`` the ``Reshape`` that keeps the batch, ``Shape``
the sample's shape. The reader then reads it as any node of a batched graph. Only the ops
whose batch version is such a rewrite are read this way (:data:`SAMPLE_OPS`); an op whose
first axis is a batch of its own (``Conv``, pooling, ``BatchNormalization``, ...) is refused
by node."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layers import Reshape

__all__ = ["batched_nodes", "SAMPLE_OPS"]

#: ops computed entry by entry (with numpy's broadcasting): unchanged with a batch axis
_ELEMENTWISE = {
    "Relu", "Sigmoid", "Tanh", "Softplus", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "Clip",
    "Identity", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "PRelu", "Dropout",
}  # fmt: skip
#: ops with an ``axis`` attribute naming an axis of their (first) input, and its default
_AXIS_DEFAULTS = {"Concat": None, "Gather": 0, "Softmax": -1, "LogSoftmax": -1}
_REDUCE = {f"Reduce{op}" for op in ("Mean", "Max", "Min", "Sum", "Prod")}
#: the ops read with ``batch_axis=None`` (``If`` on a constant: its branch's nodes are)
SAMPLE_OPS = frozenset(
    _ELEMENTWISE | set(_AXIS_DEFAULTS) | _REDUCE
    | {"Flatten", "Reshape", "Shape", "Transpose", "Squeeze", "Unsqueeze", "Pad", "MatMul", "Gemm",
       "If"}
)  # fmt: skip


class _Batcher:
    """The rewriting of one node, with what the reader knows when it reaches it: the
    tensors computed from the data (``r.vars``, batched) with their samples' shapes, and
    the constants (``r.consts``, folded)."""

    def __init__(self, r: Any):
        import onnx  # the reader has it (no import of the reader's module: no cycle)

        self.r, self.helper = r, onnx.helper
        self.batched, self.consts, self.opset = r.vars, r.consts, r.opset

    def error(self, node, why: str):
        return self.r.error(node, why + ".")  # from_onnx says how the graph was read

    def rank(self, name: str) -> int:
        """The rank of a sample of tensor ``name``, of constant ``name`` (0 for a name the
        reader does not know yet: it refuses it by name)."""
        if name in self.batched:
            return len(self.r.shapes[name])
        return np.ndim(self.consts.get(name, 0))

    def value(self, node, index: int) -> np.ndarray | None:
        """The constant at input ``index`` (None when left out)."""
        if len(node.input) <= index or not node.input[index]:
            return None
        return self.r.const(node, node.input[index])

    def set_input(self, node, index: int, value: np.ndarray) -> None:
        """Input ``index`` of ``node`` replaced by a new constant holding ``value``."""
        name = f"{node.output[0]}/batched{index}"
        self.consts[name] = value
        while len(node.input) <= index:
            node.input.append("")
        node.input[index] = name

    def set_attr(self, node, key: str, value) -> None:
        for k, a in enumerate(node.attribute):
            if a.name == key:
                del node.attribute[k]
                break
        node.attribute.append(self.helper.make_attribute(key, value))


def batched_nodes(r: Any, node: Any) -> list:
    """The nodes computing ``node``'s batch version, for a reader ``r`` of a graph of one
    sample whose tensors from the data have a leading batch axis (see the module
    docstring); ``[node]`` when it reads no such tensor."""
    if not any(i in r.vars for i in [*node.input, *_inner_inputs(node)] if i):
        return [node]
    b = _Batcher(r)
    op = node.op_type
    if op not in SAMPLE_OPS:
        raise b.error(node, f"{op} is not read this way (it is not supported, or its first "
                            "axis is a batch of its own: read the file with its batch axis); "
                            f"the ops that are: {', '.join(sorted(SAMPLE_OPS))}")  # fmt: skip
    if op == "Gemm":
        return _gemm(b, node)
    new = type(node)()
    new.CopyFrom(node)
    if op in _ELEMENTWISE:
        _broadcast(b, new)
    elif op in _AXIS_DEFAULTS:
        _axis(b, new)
    elif op != "If":  # an If's branch: its nodes are read (and rewritten) in place
        {"Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose, "Shape": _shape,
         "Squeeze": _axes, "Unsqueeze": _axes, "Pad": _pad, "MatMul": _matmul,
         **dict.fromkeys(_REDUCE, _reduce)}[op](b, new)  # fmt: skip
    return [new]


def _gemm(b: _Batcher, node) -> list:
    """``alpha * A' @ B' + beta * C`` of a sample's matrix ``A``: a Transpose for
    ``transA``, a MatMul by the constant ``alpha * B'`` and an Add of ``beta * C`` (any
    shape that broadcasts to the sample's output)."""
    a = b.r.attrs(node)
    if node.input[1] in b.batched or (len(node.input) > 2 and node.input[2] in b.batched):
        raise b.error(node, "B and C computed from the data are not supported")
    out, name, make = node.output[0], node.name, b.helper.make_node
    current, parts = node.input[0], []
    if a.get("transA", 0):
        parts.append(make("Transpose", [current], [f"{out}/A"], name=name, perm=[0, 2, 1]))
        current = f"{out}/A"
    weights = b.value(node, 1).astype(np.float64)
    weights = float(a.get("alpha", 1.0)) * (weights.T if a.get("transB", 0) else weights)
    b.consts[f"{out}/B"] = weights
    bias = b.value(node, 2)
    product = out if bias is None else f"{out}/AB"
    parts.append(make("MatMul", [current, f"{out}/B"], [product], name=name))
    if bias is not None:
        b.consts[f"{out}/C"] = float(a.get("beta", 1.0)) * bias.astype(np.float64)
        parts.append(make("Add", [product, f"{out}/C"], [out], name=name))
    return parts


def _broadcast(b: _Batcher, node) -> None:
    """numpy's broadcasting aligns the last axes: a tensor from the data of a lower rank
    than another input gets axes of size 1 after its batch axis (a value per sample added
    to an image: ``(N,) -> (N, 1, 1, 1)``), so that the batch axis stays first."""
    names = list(node.input[:1] if node.op_type in ("Clip", "Dropout") else node.input)
    rank = max(b.rank(n) for n in names if n)
    for i, name in enumerate(names):
        if name in b.batched and b.rank(name) < rank:
            shape = b.r.shapes[name]
            lifted = (1,) * (rank - len(shape)) + tuple(shape)
            out = f"{name}/rank{rank}"
            b.r.call(node, Reshape(lifted), [name], out=out)
            node.input[i] = out


def _shift(axis: int) -> int:
    return axis + 1 if axis >= 0 else axis


def _axis(b: _Batcher, node) -> None:
    a = b.r.attrs(node)
    default = 1 if node.op_type.endswith("Softmax") and b.opset < 13 else (
        _AXIS_DEFAULTS[node.op_type])  # fmt: skip
    if node.op_type == "Gather" and node.input[1] in b.batched:
        raise b.error(node, "indices computed from the data are not supported")
    if node.op_type == "Concat" and not all(i in b.batched for i in node.input if i):
        raise b.error(node, "a Concat of tensors and constants is not supported")
    b.set_attr(node, "axis", _shift(int(a.get("axis", default))))


def _flatten(b: _Batcher, node) -> None:
    """``Flatten`` of a sample: the ``Reshape`` to ``(N, before, after)``."""
    shape = b.r.shapes[node.input[0]]
    axis = int(b.r.attrs(node).get("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    target = [0, int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))]
    node.op_type = "Reshape"
    del node.attribute[:]
    b.set_input(node, 1, np.array(target, dtype=np.int64))


def _reshape(b: _Batcher, node) -> None:
    batch = -1 if b.r.attrs(node).get("allowzero", 0) else 0  # allowzero: a 0 is a size
    b.set_input(node, 1, np.concatenate([[batch], b.value(node, 1)]).astype(np.int64))


def _shape(b: _Batcher, node) -> None:
    a = b.r.attrs(node)
    rank = b.rank(node.input[0])
    start = int(a.get("start", 0))
    start = max(start + rank, 0) if start < 0 else min(start, rank)
    b.set_attr(node, "start", start + 1)
    if "end" in a:
        end = int(a["end"])
        end = max(end + rank, 0) if end < 0 else min(end, rank)
        b.set_attr(node, "end", end + 1)


def _transpose(b: _Batcher, node) -> None:
    rank = b.rank(node.input[0])
    perm = [int(p) for p in b.r.attrs(node).get("perm", range(rank - 1, -1, -1))]
    b.set_attr(node, "perm", [0, *(p % rank + 1 for p in perm)])


def _axes(b: _Batcher, node) -> None:
    """Squeeze/Unsqueeze: the listed axes moved by one (negative ones count from the end;
    a Squeeze without axes squeezes the sample's axes of size 1 only)."""
    a = b.r.attrs(node)
    if "axes" in a:
        b.set_attr(node, "axes", [_shift(int(x)) for x in a["axes"]])
        return
    value = b.value(node, 1)
    if value is not None:
        b.set_input(node, 1, np.array([_shift(int(x)) for x in value.reshape(-1)], np.int64))


def _reduce(b: _Batcher, node) -> None:
    a = b.r.attrs(node)
    as_input = len(node.input) > 1 or (
        b.opset >= 18 or (node.op_type == "ReduceSum" and b.opset >= 13))  # fmt: skip
    axes = a.get("axes")
    if axes is None:
        given = b.value(node, 1)
        axes = None if given is None or given.size == 0 else given.reshape(-1)
    if axes is None:
        if a.get("noop_with_empty_axes", 0):
            return
        axes = range(b.rank(node.input[0]))
    axes = [_shift(int(x)) for x in axes]
    if as_input and "axes" not in a:
        b.set_input(node, 1, np.array(axes, np.int64))
    else:
        b.set_attr(node, "axes", axes)


def _pad(b: _Batcher, node) -> None:
    a = b.r.attrs(node)
    if b.value(node, 3) is not None:  # pads for the listed axes: move the axes
        b.set_input(node, 3, np.array([_shift(int(x)) for x in b.value(node, 3)], np.int64))
        return
    pads = a.get("pads")
    pads = [int(p) for p in (pads if pads is not None else b.value(node, 1))]
    half = len(pads) // 2
    new = [0, *pads[:half], 0, *pads[half:]]
    if "pads" in a:
        b.set_attr(node, "pads", new)
    else:
        b.set_input(node, 1, np.array(new, np.int64))


def _matmul(b: _Batcher, node) -> None:
    ranks = [b.rank(n) for n in node.input[:2]]
    if node.input[0] in b.batched and ranks[0] == 1 and ranks[1] > 2:
        raise b.error(node, f"a vector times a stack of matrices (ranks {ranks}) broadcasts "
                            "differently with a batch axis")  # fmt: skip


def _inner_inputs(node) -> list[str]:
    """The inputs of the nodes of ``node``'s subgraphs (the branches of ``If``, ...)."""
    names = []
    for a in node.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for inner in sub.node:
                names.extend([*inner.input, *_inner_inputs(inner)])
    return names
