"""ONNX in and out for chain networks (needs the optional ``onnx`` package: ``pip install
symnn[onnx]``).

:func:`from_onnx` reads a graph whose nodes form one chain: ``Conv``, ``Gemm`` or ``MatMul``
(+ ``Add``), ``Relu``, ``Sigmoid``, ``Tanh``, ``LeakyRelu`` (alpha 0.01), ``Softmax``,
``MaxPool``, ``AveragePool``, ``GlobalAveragePool``, ``Flatten``/``Reshape``,
``BatchNormalization``, ``Dropout``/``Identity``, and ``Sub``/``Div`` of the input by constants
(as :class:`~symnn.layers.Normalize`, so input optimisation keeps its box in raw units). The
network takes flat rows ``(N, C*H*W)`` (a ``Reshape`` first for image inputs), like every symnn
network. Anything else is refused by op and node name before any layer is built.
:func:`to_onnx` writes the same layers back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import nonlinearities
from ..errors import SymnnValueError
from ..layers import (
    Activation,
    Add,
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Graph,
    Layer,
    LocalResponseNorm,
    Maximum,
    MaxPool2D,
    Multiply,
    Normalize,
    Reshape,
    Sequential,
)
from ..utils import describe

__all__ = ["from_onnx", "to_onnx", "SUPPORTED_OPS", "OPSET"]

OPSET = 17
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
                "LeakyRelu": "leaky_relu"}  # fmt: skip
SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
    "Reshape", "BatchNormalization", "Dropout", "Identity", "Sub", "Div", "ConvTranspose",
    "GlobalMaxPool", "LRN", *_ACTIVATIONS,
)  # fmt: skip


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise SymnnValueError(
            "ONNX support needs the onnx package: pip install 'symnn[onnx]' (or onnx)."
        ) from None
    return onnx, numpy_helper


# -- reading ---------------------------------------------------------------------------------
class _Reader:
    """One pass over a chain graph, building layers as it goes."""

    def __init__(self, model: Any, path: Path, dtype: str):
        onnx, numpy_helper = _onnx()
        self.path, self.dtype = path, dtype
        self.graph = model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.attr = onnx.helper.get_attribute_value
        self.layers: list[Layer] = []
        self.shape: tuple[int, ...] | None = None  # per-sample shape of the current tensor

    def error(self, node, why: str) -> SymnnValueError:
        return SymnnValueError(f"{self.path}: node {node.name or '?'} ({node.op_type}): {why}")

    def attrs(self, node) -> dict[str, Any]:
        return {a.name: self.attr(a) for a in node.attribute}

    def const(self, node, name: str) -> np.ndarray:
        if name not in self.consts:
            raise self.error(node, f"input {name!r} must be a constant (an initializer).")
        return np.asarray(self.consts[name], dtype=np.float64)

    def add(self, layer: Layer) -> None:
        self.shape = layer.output_shape(self.shape)
        self.layers.append(layer)

    def activation(self, node, name: str) -> None:
        if name == "leaky_relu" and abs(self.attrs(node).get("alpha", 0.01) - 0.01) > 1e-9:
            raise self.error(node, "LeakyRelu with alpha other than 0.01 is not supported.")
        if name == "softmax" and self.attrs(node).get("axis", -1) not in (-1, 1):
            raise self.error(node, "Softmax over an axis other than the features.")
        last = self.layers[-1] if self.layers else None
        if isinstance(last, Dense | Conv2D) and nonlinearities.name_of(last.activation) == "linear":
            last.activation = nonlinearities.get(name)  # folded into the layer
        elif self.shape is not None and len(self.shape) in (1, 3) and self.layers:
            units = self.shape[0]
            self.add(Activation(units, name, dtype=self.dtype, name=node.name or None))
        else:
            raise self.error(node, "an activation must follow a layer (Conv, Gemm, ...).")


def _conv(r: _Reader, node) -> None:
    a = r.attrs(node)
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise r.error(node, "auto_pad is not supported.")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise r.error(node, f"asymmetric pads {pads} are not supported.")
    w = r.const(node, node.input[1])
    b = r.const(node, node.input[2]) if len(node.input) > 2 else None
    group = int(a.get("group", 1))
    layer = Conv2D(w.shape[1] * group, w.shape[0], tuple(w.shape[2:]),
                   tuple(a.get("strides", [1, 1])), tuple(pads[:2]), W=w, b=b,
                   dilation=tuple(a.get("dilations", [1, 1])), groups=group, dtype=r.dtype,
                   name=node.name or None)  # fmt: skip
    r.add(layer)


def _dense(r: _Reader, node, w: np.ndarray, b: np.ndarray | None) -> None:
    if r.shape is not None and len(r.shape) != 1:
        r.add(Flatten())
    r.add(Dense(w.shape[0], w.shape[1], W=w, b=b, dtype=r.dtype, name=node.name or None))


def _gemm(r: _Reader, node) -> None:
    a = r.attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise r.error(node, "only Gemm with transA=0, alpha=1, beta=1 is supported.")
    w = r.const(node, node.input[1])
    w = w.T if a.get("transB", 0) else w
    b = r.const(node, node.input[2]).reshape(-1) if len(node.input) > 2 else None
    _dense(r, node, w, b)


def _pool(r: _Reader, node) -> None:
    a = r.attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise r.error(node, f"auto_pad={auto_pad} is not supported (give explicit pads).")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    dilated = any(d != 1 for d in a.get("dilations", [1, 1]))
    if pads[:2] != pads[2:] or a.get("storage_order", 0) or dilated:
        raise r.error(node, "asymmetric pads, dilations or storage_order are not supported.")
    ceil = bool(a.get("ceil_mode", 0))
    # ONNX's strides default to 1 (not to the kernel, as Lasagne's and symnn's pool_size do)
    args = (tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])), tuple(pads[:2]))
    if node.op_type == "MaxPool":
        r.add(MaxPool2D(*args, ceil_mode=ceil))
    else:
        include = bool(a.get("count_include_pad", 0))
        r.add(AvgPool2D(*args, ceil_mode=ceil, include_pad=include))


def _conv_transpose(r: _Reader, node) -> None:
    a = r.attrs(node)
    pads = list(a.get("pads", [0, 0, 0, 0]))
    unsupported = a.get("group", 1) != 1 or "output_shape" in a or pads[:2] != pads[2:] or (
        a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"))  # fmt: skip
    if unsupported:
        raise r.error(node, "group, output_shape, auto_pad or asymmetric pads are not supported.")
    w = r.const(node, node.input[1])
    b = r.const(node, node.input[2]) if len(node.input) > 2 else None
    r.add(ConvTranspose2D(w.shape[0], w.shape[1], tuple(w.shape[2:]),
                          tuple(a.get("strides", [1, 1])), tuple(pads[:2]), W=w, b=b,
                          output_padding=tuple(a.get("output_padding", [0, 0])),
                          dilation=tuple(a.get("dilations", [1, 1])), dtype=r.dtype,
                          name=node.name or None))  # fmt: skip


def _lrn(r: _Reader, node) -> None:
    a = r.attrs(node)
    size = int(a["size"])
    if size % 2 == 0:  # ONNX centres an even window one channel later than PyTorch does
        raise r.error(node, f"LRN with an even size ({size}) is not supported.")
    r.add(LocalResponseNorm(size, a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0),
                            name=node.name or None))  # fmt: skip


def _batchnorm(r: _Reader, node) -> None:
    if r.attrs(node).get("training_mode", 0):
        raise r.error(node, "training_mode=1 is not supported (batch statistics); symnn "
                            "reads BatchNormalization for inference, with its running statistics.")
    scale, bias, mean, var = (r.const(node, n) for n in node.input[1:5])
    eps = float(r.attrs(node).get("epsilon", 1e-5))
    layer = BatchNorm(len(scale), epsilon=eps, dtype=r.dtype, name=node.name or None)
    layer.set_values([bias, scale, mean, 1.0 / np.sqrt(var + eps)])
    r.add(layer)


def _flatten(r: _Reader, node) -> None:
    if r.attrs(node).get("axis", 1) != 1:
        raise r.error(node, "Flatten with axis other than 1 is not supported.")
    r.add(Flatten())


def _reshape(r: _Reader, node) -> None:
    target = [int(v) for v in r.const(node, node.input[1])]
    if len(target) == 2:
        r.add(Flatten())
    else:
        r.add(Reshape(target[1:]))


def _normalize(r: _Reader, node) -> None:
    """``Sub``/``Div`` by constants on the input: folded into one ``Normalize``."""
    if any(not isinstance(la, Normalize | Reshape) for la in r.layers):
        raise r.error(node, "Sub/Div by constants are supported on the input only.")
    value = r.const(node, node.input[1]).reshape(-1)
    previous = r.layers.pop() if r.layers and isinstance(r.layers[-1], Normalize) else None
    mean = previous.mean if previous is not None else np.zeros(1)
    std = previous.std if previous is not None else np.ones(1)
    if node.op_type == "Sub":
        mean = mean + value * std  # (x - m) / s - v == (x - (m + v s)) / s
    else:
        std = std * value
    r.add(Normalize(mean, std))


_READERS: dict[str, Callable] = {
    "Conv": _conv, "Gemm": _gemm, "MaxPool": _pool, "AveragePool": _pool,
    "GlobalAveragePool": lambda r, n: r.add(GlobalAvgPool2D()),
    "GlobalMaxPool": lambda r, n: r.add(GlobalMaxPool2D()), "ConvTranspose": _conv_transpose,
    "LRN": _lrn,
    "Flatten": _flatten,
    "Reshape": _reshape, "BatchNormalization": _batchnorm,
    "Sub": _normalize, "Div": _normalize,
    "Dropout": lambda r, n: None, "Identity": lambda r, n: None,
}  # fmt: skip


def _data_input(graph, path: Path):
    """The graph input that is data: the one without an initializer (files of IR < 4 list
    every weight as a graph input too)."""
    weights = {t.name for t in graph.initializer}
    data = [i for i in graph.input if i.name not in weights]
    if len(data) != 1:
        names = ", ".join(i.name for i in data) or "none"
        raise SymnnValueError(
            f"{path}: the graph has {len(data)} data inputs ({names}); from_onnx reads graphs "
            "of one input."
        )
    return data[0]


def _input_shape(graph, path: Path) -> tuple[int, ...]:
    dims = _data_input(graph, path).type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims][1:]
    if not shape or None in shape:
        raise SymnnValueError(f"{path}: the input's per-sample shape must be fixed; got {shape}.")
    return tuple(shape)


def _chain(graph, path: Path) -> list:
    """The nodes in order, checked to form one chain from the input; unsupported ops named."""
    nodes = [n for n in graph.node if n.op_type != "Constant"]
    bad = [n for n in nodes if n.op_type not in SUPPORTED_OPS]
    if bad:
        names = ", ".join(f"{n.name or '?'} ({n.op_type})" for n in bad[:5])
        raise SymnnValueError(f"{path}: unsupported op(s): {names}; supported: {SUPPORTED_OPS}.")
    current = _data_input(graph, path).name
    for node in nodes:
        if not node.input or node.input[0] != current:
            raise SymnnValueError(
                f"{path}: node {node.name or '?'} ({node.op_type}) does not take the previous "
                "node's output: only chain graphs are supported."
            )
        current = node.output[0]
    return nodes


def from_onnx(path: str | os.PathLike, *, dtype: Any = "float32") -> Sequential:
    """A :class:`~symnn.layers.Sequential` from an ONNX chain graph (see the module
    docstring); refuses unsupported ops by name before building anything."""
    onnx, _ = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a file of another kind
        raise SymnnValueError(f"{path}: not a readable ONNX model ({exc}).") from None
    nodes = _chain(model.graph, path)
    r = _Reader(model, path, dtype)
    shape = _input_shape(model.graph, path)
    if len(shape) > 1:
        r.add(Reshape(shape))
    else:
        r.shape = shape
    for i, node in enumerate(nodes):
        if node.op_type == "Add":
            if i == 0 or nodes[i - 1].op_type != "MatMul":
                raise r.error(node, "Add is supported only as the bias after MatMul.")
            continue
        if node.op_type == "MatMul":
            w = r.const(node, node.input[1])
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            b = r.const(nxt, nxt.input[1]).reshape(-1) if nxt and nxt.op_type == "Add" else None
            _dense(r, node, w, b)
        elif node.op_type in _ACTIVATIONS:
            r.activation(node, _ACTIVATIONS[node.op_type])
        else:
            try:
                _READERS[node.op_type](r, node)
            except SymnnValueError as exc:
                raise SymnnValueError(f"{path}: node {node.name or '?'}: {exc}") from None
    return Sequential(r.layers)


# -- writing ---------------------------------------------------------------------------------
class _Writer:
    def __init__(self, dtype: str):
        self.onnx, self.numpy_helper = _onnx()
        self.nodes, self.inits, self.dtype = [], [], np.dtype(dtype)
        self.current, self.count = "input", 0

    def const(self, value, name: str) -> str:
        array = np.asarray(value)
        array = array.astype(self.dtype) if array.dtype.kind == "f" else array
        self.inits.append(self.numpy_helper.from_array(array, name=name))
        return name

    def node(self, op: str, extra: list[str] = (), **attrs) -> None:
        self.count += 1
        out = f"t{self.count}"
        name = f"{op.lower()}{self.count}"
        inputs = [self.current, *extra]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=name, **attrs))
        self.current = out

    def activation(self, fn) -> None:
        name = nonlinearities.name_of(fn)
        ops = {v: k for k, v in _ACTIVATIONS.items()}
        if name == "linear":
            return
        if name not in ops:
            raise SymnnValueError(f"activation {name!r} has no ONNX op here.")
        attrs = {"softmax": {"axis": 1}, "leaky_relu": {"alpha": 0.01}}.get(name, {})
        self.node(ops[name], **attrs)


def _weights(w: _Writer, layer: Layer, W: np.ndarray, k: int) -> list[str]:
    """The initializers of a layer's weights and bias (if it has one)."""
    extra = [w.const(W, f"W{k}")]
    if layer.b is not None:
        extra.append(w.const(layer.b.get_value(), f"b{k}"))
    return extra


def _write_weighted(w: _Writer, layer: Layer, k: int) -> None:
    """Conv, ConvTranspose and Gemm, each followed by its activation."""
    if isinstance(layer, Conv2D):
        W = layer.W.get_value()
        W = W[:, :, ::-1, ::-1] if layer.flip_filters else W
        w.node("Conv", _weights(w, layer, W, k), kernel_shape=list(layer.kernel_size),
               strides=list(layer.stride), pads=[*layer._pad, *layer._pad],
               dilations=list(layer.dilation), group=layer.groups)  # fmt: skip
    elif isinstance(layer, ConvTranspose2D):
        w.node("ConvTranspose", _weights(w, layer, layer.W.get_value(), k),
               kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
               pads=[*layer.pad, *layer.pad], output_padding=list(layer.output_padding),
               dilations=list(layer.dilation))  # fmt: skip
    else:
        w.node("Gemm", _weights(w, layer, layer.W.get_value(), k))
    w.activation(layer.activation)


def _write_pooling(w: _Writer, layer: Layer) -> None:
    """MaxPool/AveragePool, the global poolings (then Flatten) and LRN."""
    if isinstance(layer, MaxPool2D | AvgPool2D):
        attrs = dict(
            kernel_shape=list(layer.pool_size), strides=list(layer.stride),
            pads=[*layer.pad, *layer.pad],
            ceil_mode=int(layer.ceil_mode or not layer.ignore_border),
        )  # fmt: skip
        if isinstance(layer, AvgPool2D):
            attrs["count_include_pad"] = int(layer.include_pad)
        w.node("MaxPool" if isinstance(layer, MaxPool2D) else "AveragePool", **attrs)
    elif isinstance(layer, LocalResponseNorm):
        if layer.size % 2 == 0:
            raise SymnnValueError("LocalResponseNorm of an even size has no ONNX LRN here.")
        w.node("LRN", size=layer.size, alpha=layer.alpha, beta=layer.beta, bias=layer.k)
    else:  # GlobalMaxPool2D is a GlobalAvgPool2D: tested first
        w.node("GlobalMaxPool" if isinstance(layer, GlobalMaxPool2D) else "GlobalAveragePool")
        w.node("Flatten", axis=1)


def _write_layer(w: _Writer, layer: Layer, in_shape) -> None:
    k = w.count
    if isinstance(layer, Reshape):
        w.node("Reshape", [w.const(np.array([-1, *layer.shape], np.int64), f"shape{k}")])
    elif isinstance(layer, Normalize):
        per = (1, -1, 1, 1) if in_shape is not None and len(in_shape) == 3 else (1, -1)
        wide = len(layer.mean) > 1 or len(layer.std) > 1

        def shaped(v):
            return np.broadcast_to(v, (layer.n_values,)).reshape(per) if wide else v.reshape(())

        w.node("Sub", [w.const(shaped(layer.mean), f"mean{k}")])
        w.node("Div", [w.const(shaped(layer.std), f"std{k}")])
    elif isinstance(layer, Conv2D | ConvTranspose2D | Dense):
        _write_weighted(w, layer, k)
    elif isinstance(layer, MaxPool2D | AvgPool2D | GlobalAvgPool2D | LocalResponseNorm):
        _write_pooling(w, layer)
    elif isinstance(layer, Flatten):
        w.node("Flatten", axis=1)
    elif isinstance(layer, BatchNorm):
        inv = layer.inv_std.get_value().astype(np.float64)
        var = 1.0 / inv**2 - layer.epsilon
        values = (layer.gamma.get_value(), layer.beta.get_value(), layer.mean.get_value(), var)
        names = [w.const(v, f"{n}{k}") for n, v in zip(("scale", "B", "mean", "var"), values)]
        w.node("BatchNormalization", names, epsilon=layer.epsilon)
    elif isinstance(layer, Activation):
        w.activation(layer.activation)
    elif not isinstance(layer, Dropout):
        raise SymnnValueError(f"{type(layer).__name__} has no ONNX export here.")


def _write_sequential(w: _Writer, network: Sequential, in_shape) -> None:
    shapes = [in_shape, *(network.output_shapes[:-1] if in_shape else [None] * len(network))]
    for layer, shape in zip(network.layers, shapes):
        _write_any(w, layer, shape)


def _write_any(w: _Writer, layer: Layer, in_shape) -> None:
    if isinstance(layer, Graph):
        (w.current,) = _write_graph(w, layer, [w.current])
    elif isinstance(layer, Sequential):
        _write_sequential(w, layer, in_shape)
    else:
        _write_layer(w, layer, in_shape)


_MERGES = {Concat: "Concat", Add: "Add", Multiply: "Mul", Maximum: "Max"}


def _write_merge(w: _Writer, layer: Layer, names: list[str]) -> str:
    if isinstance(layer, Add):
        coeffs = layer.coeffs if isinstance(layer.coeffs, list) else [layer.coeffs] * len(names)
        scaled = []
        for name, c in zip(names, coeffs):
            w.current = name
            if c != 1:
                w.node("Mul", [w.const(np.asarray(c), f"coeff{w.count + 1}")])
            scaled.append(w.current)
        names = scaled
    attrs = {"axis": layer.axis} if isinstance(layer, Concat) else {}
    if isinstance(layer, Add | Multiply) and len(names) > 2:  # binary ops in ONNX
        out = names[0]
        for other in names[1:]:
            w.current = out
            w.node(_MERGES[type(layer)], [other])
            out = w.current
        return out
    w.current = names[0]
    w.node(_MERGES[type(layer)], names[1:], **attrs)
    return w.current


def _write_graph(w: _Writer, graph: Graph, inputs: list[str]) -> list[str]:
    """The graph's nodes written from tensors ``inputs`` (one name per Input); the names of
    its outputs."""
    results: list = []

    def name(ref):
        if ref[0] == "input":
            return inputs[ref[1]]
        out = results[ref[1]]
        return out if ref[2] is None else out[ref[2]]

    for node in graph.nodes:
        layer, names = graph.layers[node.layer], [name(r) for r in node.inbound]
        if isinstance(layer, tuple(_MERGES)):
            results.append(_write_merge(w, layer, names))
        elif isinstance(layer, Graph):
            outs = _write_graph(w, layer, names)
            results.append(outs[0] if layer._single_output else outs)
        else:
            w.current = names[0]
            ref = node.inbound[0]
            shape = graph.input_specs[ref[1]].shape if ref[0] == "input" else (
                graph.nodes[ref[1]].shapes[0 if ref[2] is None else ref[2]])  # fmt: skip
            _write_any(w, layer, None if None in shape else shape)
            results.append(w.current)
    return [name(r) for r in graph.output_refs]


def to_onnx(network: Sequential | Graph, path: str | os.PathLike) -> Path:
    """Write ``network`` (inference mode: dropout left out, batch normalisation with its
    running statistics) as an ONNX model: a Sequential takes ``(N, network.n_in)`` rows as
    ``input``; a Graph takes one input per :func:`~symnn.layers.Input`, named as it, and
    gives one output per output (``Concat``, ``Add``, ``Multiply`` and ``Maximum`` as ONNX's
    ``Concat``, ``Add``, ``Mul`` and ``Max``)."""
    if isinstance(network, Graph):
        w = _Writer(network.dtype)
        specs = network.input_specs
        outs = _write_graph(w, network, [s.name for s in specs])
        ins = [(s.name, s.dtype, ["N", *s.shape]) for s in specs]
        shapes = network.output_shapes_per_sample()
        return _save(w, path, ins, [(o, network.dtype, ["N", *s]) for o, s in zip(outs, shapes)])
    if not isinstance(network, Sequential) or network.n_in is None:
        raise SymnnValueError(
            f"to_onnx writes a Sequential with a known input width or a Graph; got "
            f"{describe(network)}; nothing was written."
        )
    w = _Writer(network.dtype)
    _write_sequential(w, network, (network.n_in,))
    out_shape = network.output_shapes[-1] or ("?",)
    ins = [("input", network.dtype, ["N", network.n_in])]
    return _save(w, path, ins, [(w.current, network.dtype, ["N", *out_shape])])


def _save(w: _Writer, path, inputs: list, outputs: list) -> Path:
    """Check the model and write it whole (a temporary file renamed: never half-written)."""
    onnx = w.onnx

    def info(name, dtype, shape):
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return onnx.helper.make_tensor_value_info(name, elem, ["?" if d is None else d
                                                               for d in shape])  # fmt: skip

    graph = onnx.helper.make_graph(
        w.nodes, "symnn", [info(*i) for i in inputs], [info(*o) for o in outputs], w.inits
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, path)
    return path
