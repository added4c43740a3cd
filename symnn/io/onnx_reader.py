"""Reading ONNX graphs: each node becomes a symnn layer called on the tensors of its inputs,
so the file's DAG comes back as a :class:`~symnn.layers.Graph` (a chain as a
:class:`~symnn.layers.Sequential`). Constant subgraphs (``Constant``, ``Shape``-``Gather``-
``Concat`` chains feeding ``Reshape``, ...) are folded with onnx's reference evaluator
first; every attribute a reader does not implement is refused by node, op and name.

The network takes flat rows ``(N, C*H*W)`` (a ``Reshape`` first for image inputs), like
every symnn network, and per-sample shapes are static, so the batch axis is never touched:
an op that would mix samples is refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Graph, Input, Layer, MergeLayer, Reshape, Sequential
from .onnx_samples import batched_nodes

__all__ = ["onnx_modules", "Reader", "read_graph", "data_inputs", "BATCH"]

#: the batch size the folding of ``Shape`` ops puts for the batch axis (a ``Reshape``
#: checks its target's per-sample size against the input, so a wrong use is refused)
BATCH = 1
#: ops never folded: random ones, and those with subgraphs reading the outer graph
_NOT_FOLDED = ("RandomNormal", "RandomUniform", "If", "Loop", "Scan")


def onnx_modules():
    """``(onnx, numpy_helper)``, or a clear error naming the extra to install."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise SymnnValueError(
            "ONNX support needs the onnx package: pip install 'symnn[onnx]' (or onnx)."
        ) from None
    return onnx, numpy_helper


class Reader:
    """One pass over a graph's nodes in order: constants folded, layers called."""

    def __init__(self, model: Any, path: Path, dtype: str, batch_axis: int | None = 0):
        onnx, numpy_helper = onnx_modules()
        self.model, self.path, self.dtype = model, path, dtype
        #: the axis of the file's inputs that is the batch; None: the file's tensors are
        #: samples, read as batches of them (:mod:`symnn.io.onnx_samples`)
        self.batch_axis = batch_axis
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)  # fmt: skip
        self.consts = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.vars: dict[str, Any] = {}  # tensor name -> symbolic tensor
        self.shapes: dict[str, tuple] = {}  # tensor name -> per-sample shape
        self.uses = Counter(i for n in _all_nodes(self.graph) for i in n.input if i)
        self.uses.update(o.name for o in self.graph.output)
        self.fused: set[int] = set()  # nodes folded into the layer before them
        #: tensors that are the data input, reshaped or normalised (where Sub/Div by
        #: constants become a Normalize), and each Normalize's layer and input
        self.preprocessing: set[str] = set()
        self.normalizers: dict[str, tuple[Any, str]] = {}
        #: time-major views: the ONNX tensor is our (batch-first) tensor with its axes in
        #: this order (``(1, 0, 2)``: a ``(time, batch, features)`` view); see
        #: :mod:`symnn.io.onnx_ops`'s recurrent reader
        self.perms: dict[str, tuple[int, ...]] = {}
        self.attr = onnx.helper.get_attribute_value
        self.readers: dict[str, Callable] = {}

    # -- helpers the op readers use ---------------------------------------------------
    def error(self, node, why: str) -> SymnnValueError:
        return SymnnValueError(f"{self.path}: node {node.name or '?'} ({node.op_type}): {why}")

    def attrs(self, node) -> dict[str, Any]:
        out = {}
        for a in node.attribute:
            value = self.attr(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
        return out

    def const(self, node, name: str) -> np.ndarray:
        if name not in self.consts:
            raise self.error(node, f"input {name!r} must be a constant (an initializer).")
        return np.asarray(self.consts[name])

    def optional_const(self, node, index: int) -> np.ndarray | None:
        """The constant at input ``index`` (None when the input is left out)."""
        if len(node.input) <= index or not node.input[index]:
            return None
        return self.const(node, node.input[index])

    def tensor(self, node, index: int = 0) -> Any:
        name = node.input[index]
        if name not in self.vars:
            raise self.error(node, f"input {name!r} is neither a tensor of the graph nor a "
                                   "constant it can fold.")  # fmt: skip
        return self.vars[name]

    def shape(self, node, index: int = 0, view: bool = False) -> tuple:
        """The per-sample shape of the node's input ``index`` (of the batch-first tensor
        behind a time-major view when ``view``; a view is refused otherwise)."""
        self.tensor(node, index)
        name = node.input[index]
        if name in self.perms and not view:
            raise self.error(node, f"input {name!r} has its batch axis moved (axes "
                                   f"{self.perms[name]}); only Transpose, Squeeze and the "
                                   "recurrent ops take it.")  # fmt: skip
        return self.shapes[name]

    def call(self, node, layer: Layer, names: list[str] | None = None, out: str | None = None,
             view: bool = False):  # fmt: skip
        """Call ``layer`` on the tensors ``names`` (default: the node's first input; a merge
        layer on the list) and bind the result to ``out`` (default: the node's output); with
        ``view``, on the batch-first tensors behind time-major views."""
        names = [node.input[0]] if names is None else names
        for n in names:
            if n in self.perms and not view:
                raise self.error(node, f"input {n!r} has its batch axis moved (axes "
                                       f"{self.perms[n]}); only Transpose, Squeeze and the "
                                       "recurrent ops take it.")  # fmt: skip
            if n not in self.vars:
                raise self.error(node, f"input {n!r} is neither a tensor of the graph nor a "
                                       "constant it can fold.")  # fmt: skip
        xs, shapes = [self.vars[n] for n in names], [self.shapes[n] for n in names]
        merge = isinstance(layer, MergeLayer)
        try:
            shape = None if merge else layer.output_shape(shapes[0])
            var = layer(xs if merge else xs[0])
        except (SymnnValueError, SymnnTypeError) as exc:
            raise self.error(node, str(exc)) from None
        if shape is None or None in shape:
            shape = tuple(var.type.shape[1:])
        if None in shape:
            raise self.error(node, f"the output's per-sample shape is not known ({shape}).")
        return self.bind(out or node.output[0], var, shape)

    def torch_names(self, layer: Any, node, suffixes: dict[int, str]) -> None:
        """Keep on ``layer`` the names its weights have in the file (``layer.onnx_weights``)
        and, when they are PyTorch ``state_dict`` keys of one module (input ``i`` named
        ``prefix.suffixes[i]``: ``features.0.weight``, ``features.0.bias``), that module's
        prefix (``layer.torch_prefix``, else None): :func:`symnn.io.load_state_dict` pairs
        by it."""
        names = {node.input[i]: s for i, s in suffixes.items()
                 if i < len(node.input) and node.input[i]}  # fmt: skip
        prefixes = {n[: -len(s) - 1] if n.endswith("." + s) else None for n, s in names.items()}
        layer.onnx_weights = tuple(names)
        layer.torch_prefix = prefixes.pop() if len(prefixes) == 1 else None

    def bind(self, name: str, var: Any, shape: tuple) -> Any:
        var.name = name
        self.vars[name], self.shapes[name] = var, tuple(shape)
        return var

    def alias(self, node, index: int = 0, output: int = 0) -> None:
        """The node's output is its input (Identity, Dropout in inference)."""
        x = self.tensor(node, index)
        self.vars[node.output[output]] = x
        self.shapes[node.output[output]] = self.shapes[node.input[index]]
        if node.input[index] in self.perms:
            self.perms[node.output[output]] = self.perms[node.input[index]]

    def sole_consumer(self, name: str):
        """``(index, node)`` of the one node that reads tensor ``name`` (None if it is read
        more than once or is an output of the graph)."""
        if self.uses[name] != 1 or name in {o.name for o in self.graph.output}:
            return None
        for k, node in enumerate(self.graph.node):
            if name in node.input:
                return k, node
        return None

    def read_node(self, node) -> None:
        """Fold the node if its inputs are constants, else call its reader (a graph of one
        sample: the nodes of its batch version, :func:`batched_nodes`)."""
        for part in [node] if self.batch_axis is not None else batched_nodes(self, node):
            if self.foldable(part):
                self.fold(part)
            elif part.op_type in self.readers:
                self.readers[part.op_type](self, part)
            else:
                raise self.error(part, "the op is not supported.")

    # -- constants --------------------------------------------------------------------
    def foldable(self, node) -> bool:
        inputs = [i for i in node.input if i]
        if node.op_type == "Shape":  # of a tensor too
            return bool(inputs) and inputs[0] in self.consts.keys() | self.vars.keys()
        if node.op_type == "CastLike":  # a constant cast like a tensor is a constant
            return bool(inputs) and inputs[0] in self.consts
        return all(i in self.consts for i in inputs) and node.op_type not in _NOT_FOLDED

    def fold(self, node) -> None:
        if node.op_type == "CastLike" and node.input[1] in self.vars:
            like = self.vars[node.input[1]].dtype
            self.consts[node.output[0]] = np.asarray(self.consts[node.input[0]], dtype=like)
            return
        if node.op_type == "Shape" and node.input[0] in self.vars:
            a = self.attrs(node)
            full = [BATCH, *self.shapes[node.input[0]]]
            perm = self.perms.get(node.input[0])  # a time-major view: its own axis order
            full = np.array([full[p] for p in perm] if perm else full, dtype=np.int64)
            self.consts[node.output[0]] = full[a.get("start", 0) : a.get("end", len(full))]
            return
        values = _evaluate(self.model, node, {i: self.consts[i] for i in node.input if i})
        for name, value in zip(node.output, values):
            if name:
                self.consts[name] = np.asarray(value)


def _all_nodes(graph) -> list:
    """The nodes of ``graph`` and of its subgraphs (the branches of ``If``, ...)."""
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                nodes.extend(_all_nodes(sub))
    return nodes


def _evaluate(model: Any, node: Any, feeds: dict[str, np.ndarray]) -> list:
    """``node`` run by onnx's reference evaluator on constant ``feeds``."""
    onnx, _ = onnx_modules()
    from onnx.reference import ReferenceEvaluator

    helper = onnx.helper
    inputs = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for k, v in feeds.items()
    ]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    single = helper.make_model(graph, opset_imports=list(model.opset_import))
    single.ir_version = model.ir_version or single.ir_version
    return ReferenceEvaluator(single).run(None, feeds)


# -- the whole graph -----------------------------------------------------------------------
def data_inputs(graph, path: Path) -> list:
    """The graph inputs that are data: those without an initializer (files of IR < 4 list
    every weight as a graph input too)."""
    weights = {t.name for t in graph.initializer}
    data = [i for i in graph.input if i.name not in weights]
    if not data:
        raise SymnnValueError(f"{path}: the graph has no data input (every input is a weight).")
    return data


#: ONNX element types of the data a symnn network takes: FLOAT, DOUBLE (read as the
#: ``dtype`` asked for), and the integer and boolean types (token ids, integer graphs)
_DATA_TYPES = {1: "float32", 11: "float64", 9: "bool", 2: "uint8", 3: "int8", 4: "uint16",
               5: "int16", 6: "int32", 7: "int64", 12: "uint32", 13: "uint64"}  # fmt: skip


def input_dtype(data, path: Path, dtype: str) -> str:
    """The dtype of the data input ``data``: ``dtype`` for float data, else its own."""
    kind = data.type.tensor_type.elem_type
    if not data.type.HasField("tensor_type"):
        raise SymnnValueError(
            f"{path}: the input {data.name!r} holds {data.type.WhichOneof('value')} values; "
            "symnn networks take tensors."
        )
    if kind not in _DATA_TYPES:
        onnx, _ = onnx_modules()
        name = onnx.TensorProto.DataType.Name(kind) if kind else "undefined"
        raise SymnnValueError(
            f"{path}: the input {data.name!r} holds {name} values; symnn networks take float32 "
            "or float64 data, or integer or boolean tensors."
        )
    return dtype if kind in (1, 11) else _DATA_TYPES[kind]


def _input_shape(data, path: Path, batch_axis: int | None) -> tuple[int, ...]:
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in data.type.tensor_type.shape.dim]  # fmt: skip
    if batch_axis is None:
        if None in dims:
            raise SymnnValueError(f"{path}: the input {data.name!r} must have a fixed shape (a "
                                  f"sample's, batch_axis=None); got {dims}.")  # fmt: skip
        return tuple(dims)
    shape = dims[:batch_axis] + dims[batch_axis + 1 :]
    if len(dims) <= batch_axis or None in shape:
        hint = " (time-major: from_onnx(batch_axis=1))" if dims[1:2] == [None] else ""
        raise SymnnValueError(
            f"{path}: the input {data.name!r} must have a batch axis (axis {batch_axis}) and a "
            f"fixed per-sample shape; got {dims}{hint}."
        )
    return tuple(shape)


def read_graph(model: Any, path: Path, dtype: str, readers: dict[str, Callable],
               attributes: dict[str, set[str]], batch_axis: int | None = 0):  # fmt: skip
    """The network of ``model``: a Sequential for a chain, else a Graph. Unsupported ops and
    attributes are refused (naming them) before any layer is built. ``batch_axis``: the
    axis of the file's inputs that is the batch (1: time-major sequences, read as views of
    batch-first ones); None: the file's tensors are samples
    (:mod:`symnn.io.onnx_samples`)."""
    r = Reader(model, path, dtype, batch_axis)
    data = data_inputs(r.graph, path)
    dtypes = [input_dtype(d, path, dtype) for d in data]
    shapes = [_input_shape(d, path, batch_axis) for d in data]
    _check_ops(r, readers, attributes)
    xs = []
    for d, shape, kind in zip(data, shapes, dtypes):
        size = int(np.prod(shape))
        xs.append(r.bind(d.name, Input((size,), name=d.name, dtype=kind), (size,)))
        if len(shape) != 1:  # images, sequences; a 1-D input is a batch of scalars
            r.bind(d.name, Reshape(shape)(xs[-1]), shape)
        if batch_axis == 1:  # the file's (time, batch, ...): a view of our (batch, time, ...)
            r.perms[d.name] = (1, 0, *range(2, len(shape) + 1))
        r.preprocessing.add(d.name)
    r.readers = readers
    for k, node in enumerate(r.graph.node):
        if k not in r.fused:
            r.read_node(node)
    outputs = [_output(r, o.name) for o in r.graph.output]
    try:
        net = Graph(xs[0] if len(xs) == 1 else xs, outputs[0] if len(outputs) == 1 else outputs,
                    name=r.graph.name or None)  # fmt: skip
    except SymnnValueError as exc:
        raise SymnnValueError(f"{path}: {exc}") from None
    return _as_sequential(net)


def _output(r: Reader, name: str) -> Any:
    """The tensor of the graph output ``name``, batch first: with ``batch_axis=1``, an
    output whose batch axis is elsewhere comes with it moved first (its other axes in their
    order: an RNN's ``(time, directions, batch, units)`` as ``(batch, time, directions,
    units)``)."""
    if name not in r.vars:
        raise SymnnValueError(f"{r.path}: the graph output {name!r} is a constant or missing.")
    perm = r.perms.get(name)
    moved_first = perm is not None and [p for p in perm if p] == list(range(1, len(perm)))
    if perm is not None and not (r.batch_axis == 1 and moved_first):
        raise SymnnValueError(
            f"{r.path}: the graph output {name!r} has its batch axis moved (axes {perm}); "
            "symnn networks give the batch axis first"
            + (" (read a time-major file with batch_axis=1)." if moved_first else ".")
        )
    return r.vars[name]


def _check_ops(r: Reader, readers: dict[str, Callable], attributes: dict[str, set]) -> None:
    """Refuse, naming them, the ops that are neither constants to fold nor readable, and
    the attributes their readers do not implement."""
    tensors = {d.name for d in data_inputs(r.graph, r.path)}
    known, bad = set(r.consts) | tensors, []
    for node in r.graph.node:
        inputs = [i for i in node.input if i]
        first = node.op_type in ("Shape", "CastLike") and inputs[:1]  # see Reader.foldable
        const = node.op_type == "Shape" or (
            inputs
            and all(i in known - tensors for i in (first or inputs))
            and node.op_type not in _NOT_FOLDED
        )
        if node.op_type == "Constant" or const:
            known.update(node.output)
            continue
        if node.op_type not in readers:
            bad.append(node)
        for a in node.attribute if node.op_type in readers else ():
            if a.name not in attributes.get(node.op_type, ()):
                value = r.attrs(node)[a.name]
                raise SymnnValueError(
                    f"{r.path}: node {node.name or '?'} ({node.op_type}): attribute "
                    f"{a.name}={value!r} is not supported."
                )
        known.update(node.output)
        tensors.update(node.output)
    if bad:
        names = ", ".join(f"{n.name or '?'} ({n.op_type})" for n in bad[:5])
        raise SymnnValueError(
            f"{r.path}: unsupported op(s): {names}; supported: {', '.join(sorted(readers))}."
        )


def _as_sequential(net: Graph) -> Graph | Sequential:
    """A graph whose nodes form one chain, each layer used once, as a Sequential (of float
    data: a Graph keeps its input's integer type)."""
    last = ("node", len(net.nodes) - 1)
    chain = len(net.input_specs) == 1 and len(net.output_refs) == 1
    chain = chain and net.input_specs[0].dtype.startswith("float")
    chain = chain and net.output_refs[0][:2] == last
    for j, node in enumerate(net.nodes):
        before = ("input", 0) if j == 0 else ("node", j - 1)
        chain = chain and len(node.inbound) == 1 and node.inbound[0][:2] == before
        chain = chain and node.layer == j and not node.as_list
    return Sequential(list(net.layers)) if chain else net
