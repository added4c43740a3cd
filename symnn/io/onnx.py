"""ONNX in and out (needs the optional ``onnx`` package: ``pip install symnn[onnx]``).

:func:`from_onnx` reads any DAG of the ops in :data:`SUPPORTED_OPS` (the op set of real
CNNs: convolutions, pooling, Gemm/MatMul, normalisation, activations, elementwise arithmetic
with constants or tensors, Concat, reshapes, transposes, Pad, Resize, reductions) into a
:class:`~symnn.layers.Graph`, or a :class:`~symnn.layers.Sequential` for a chain; constant
subgraphs are folded; every attribute is honoured or refused by name
(:mod:`symnn.io.onnx_ops`). ``Sub``/``Div`` of the input by constants become a
:class:`~symnn.layers.Normalize` (input optimisation keeps its box in raw units). The
network takes flat rows ``(N, C*H*W)`` (a ``Reshape`` first for image inputs), like every
symnn network. :func:`to_onnx` writes symnn's layers, chains and graphs.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import nonlinearities
from ..errors import SymnnValueError
from ..layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    Add,
    Arithmetic,
    AvgPool2D,
    BatchNorm,
    Bidirectional,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Divide,
    Dropout,
    Elementwise,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Graph,
    Layer,
    LocalResponseNorm,
    MatMul,
    Maximum,
    MaxPool2D,
    Minimum,
    Multiply,
    Normalize,
    Pad,
    Power,
    PReLU,
    Reduce,
    Reshape,
    Resize,
    Sequential,
    Softmax,
    Take,
    TimeDistributed,
    Transpose,
    Upsample2D,
    WindowPool,
)
from ..utils import as_float_dtype, describe
from .onnx_ops import ATTRIBUTES, READERS
from .onnx_reader import onnx_modules, read_graph

__all__ = ["from_onnx", "to_onnx", "SUPPORTED_OPS", "OPSET"]

OPSET = 17
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
                "LeakyRelu": "leaky_relu"}  # fmt: skip
#: the ops :func:`from_onnx` reads (constant subgraphs of any op are folded)
SUPPORTED_OPS = tuple(sorted(READERS))


# -- reading ---------------------------------------------------------------------------------
def from_onnx(path: str | os.PathLike, *, dtype: Any = "float32",
              batch_axis: int | None = 0) -> Sequential | Graph:  # fmt: skip
    """The network of an ONNX file: a :class:`~symnn.layers.Sequential` when its nodes form
    one chain, else a :class:`~symnn.layers.Graph` (skip connections, concatenations,
    several outputs); see the module docstring. Unsupported ops and attributes are refused
    by name before anything is built.

    ``batch_axis`` is the axis of the file's inputs that is the batch. ``1`` reads a
    time-major file (inputs ``(time, batch, ...)``, as PyTorch exports an ``nn.LSTM`` without
    ``batch_first``): the network takes batch-first sequences and gives batch-first outputs
    (an output's batch axis moved first, its other axes in their order). ``None`` reads a
    graph of one sample (its tensors have no batch axis) as the network of batches of such
    samples, each computed alone (``jax.vmap``'s meaning; the ops
    :data:`symnn.io.onnx_samples.SAMPLE_OPS`): an input of shape ``(3, 4)`` in the file is
    a network taking rows of 12 values.

    >>> import onnx, numpy as np
    >>> from onnx import helper, TensorProto
    >>> g = helper.make_graph(
    ...     [helper.make_node("Softmax", ["x"], ["y"], axis=0)], "one sample",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])])
    >>> import tempfile, os; path = os.path.join(tempfile.mkdtemp(), "s.onnx")
    >>> onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    >>> net = from_onnx(path, batch_axis=None)  # axis 0 of a sample, not the batch
    >>> import pytensor, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> f = pytensor.function([x], net(x), mode="FAST_COMPILE")
    >>> np.allclose(f(np.ones((2, 12), "float32")), 1 / 3)  # each sample alone
    True
    """
    onnx, _ = onnx_modules()
    path = Path(path)
    if isinstance(batch_axis, bool) or batch_axis not in (0, 1, None):
        raise SymnnValueError(f"batch_axis must be 0, 1 or None; got {batch_axis!r}.")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a file of another kind
        raise SymnnValueError(f"{path}: not a readable ONNX model ({exc}).") from None
    try:
        return read_graph(model, path, as_float_dtype(dtype), READERS, ATTRIBUTES, batch_axis)
    except SymnnValueError as exc:
        if batch_axis is not None:
            raise
        raise SymnnValueError(f"{exc} (Read with batch_axis=None: the graph's tensors from the "
                              "data have a leading batch axis, and its axes are numbered from "
                              "it.)") from None


# -- writing ---------------------------------------------------------------------------------
class _Writer:
    def __init__(self, dtype: str):
        self.onnx, self.numpy_helper = onnx_modules()
        self.nodes, self.inits, self.dtype = [], [], np.dtype(dtype)
        self.current, self.count = "input", 0

    def const(self, value, name: str, cast: bool = True) -> str:
        """An initializer (float values in the model's type unless ``cast`` is False)."""
        array = np.asarray(value)
        array = array.astype(self.dtype) if cast and array.dtype.kind == "f" else array
        self.inits.append(self.numpy_helper.from_array(array, name=name))
        return name

    def node(self, op: str, extra: list[str] = (), *, before: list[str] = (), **attrs) -> None:
        """A node of ``op`` on the current tensor (after ``before``, then ``extra``)."""
        self.count += 1
        out = f"t{self.count}"
        name = f"{op.lower()}{self.count}"
        inputs = [*before, self.current, *extra]
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
               dilations=list(layer.dilation), group=layer.groups)  # fmt: skip
    else:
        w.node("Gemm", _weights(w, layer, layer.W.get_value(), k))
    w.activation(layer.activation)


def _write_steps(w: _Writer, dense: Dense, k: int) -> None:
    """A dense layer on every step of ``(N, T, K)``: MatMul (+ Add), a softmax over the
    last axis."""
    w.node("MatMul", [w.const(dense.W.get_value(), f"W{k}")])
    if dense.b is not None:
        w.node("Add", [w.const(dense.b.get_value(), f"b{k}")])
    name = nonlinearities.name_of(dense.activation)
    if name == "softmax":
        w.node("Softmax", axis=-1)
    else:
        w.activation(dense.activation)


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
    elif isinstance(layer, WindowPool):
        attrs = dict(kernel_shape=list(layer.kernel), strides=list(layer.stride),
                     pads=list(layer.pads), ceil_mode=int(layer.ceil_mode))  # fmt: skip
        if layer.mode != "max":
            attrs["count_include_pad"] = int(layer.mode == "average_inc_pad")
        if any(d != 1 for d in layer.dilation) and layer.mode != "max":
            raise SymnnValueError(
                f"WindowPool{layer._label()}: an average with dilation={layer.dilation} needs "
                f"ONNX opset 19; symnn writes opset {OPSET}."
            )
        if layer.mode == "max":
            attrs["dilations"] = list(layer.dilation)
        w.node("MaxPool" if layer.mode == "max" else "AveragePool", **attrs)
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
    elif isinstance(layer, TimeDistributed) and isinstance(layer.layer, Dense):
        _write_steps(w, layer.layer, k)
    elif isinstance(layer, MaxPool2D | AvgPool2D | GlobalAvgPool2D | LocalResponseNorm
                    | WindowPool):  # fmt: skip
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
    elif isinstance(layer, PReLU):
        _write_prelu(w, layer, in_shape, k)
    elif isinstance(layer, RNN | LSTM | GRU | Bidirectional):
        _write_recurrent(w, layer, k)
    elif isinstance(layer, _SHAPE_LAYERS):
        _write_shape_layer(w, layer, k)
    elif isinstance(layer, Resize):
        _write_resize(w, layer, in_shape, k)
    elif not isinstance(layer, Dropout):
        raise SymnnValueError(f"{type(layer).__name__} has no ONNX export here.")


_ELEMENTWISE_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
                    "leaky_relu": "LeakyRelu", "elu": "Elu", "selu": "Selu",
                    "hard_sigmoid": "HardSigmoid", "identity": "Identity"}  # fmt: skip
def _write_prelu(w: _Writer, layer: PReLU, in_shape, k: int) -> None:
    """PRelu with a slope per feature of the last axis, or (C, 1, ..., 1) per channel."""
    alpha = layer.alpha.get_value()
    if layer.axis == 1:
        if in_shape is None:
            raise SymnnValueError(f"PReLU{layer._label()} per channel needs a known input "
                                  "shape to write its slopes' shape.")  # fmt: skip
        alpha = alpha.reshape(-1, *[1] * (len(in_shape) - 1))
    w.node("PRelu", [w.const(alpha, f"slope{k}")])


_SHAPE_LAYERS = (Elementwise, Softmax, Arithmetic, Reduce, Transpose, Pad, Upsample2D, Take)


def _write_shape_layer(w: _Writer, layer: Layer, k: int) -> None:
    """The layers of :mod:`symnn.layers.elementwise` and the spatial ones, one op each."""
    if isinstance(layer, Elementwise) and layer.op == "clip":
        bounds = [w.const(np.asarray(v, np.float64), f"{b}{k}") if v is not None else ""
                  for b, v in (("min", layer.params_["min"]), ("max", layer.params_["max"]))]
        w.node("Clip", bounds)
    elif isinstance(layer, Elementwise):
        w.node(_ELEMENTWISE_OPS[layer.op], **layer.params_)
    elif isinstance(layer, Softmax):
        w.node("LogSoftmax" if layer.log else "Softmax", axis=layer.axis)
    elif isinstance(layer, Arithmetic):
        c = w.const(layer.constant.get_value(), f"constant{k}")
        side = {"before": [c]} if layer.constant_first else {"extra": [c]}
        w.node(layer.op.capitalize(), **side)
    elif isinstance(layer, Reduce):
        op = "Reduce" + layer.op.capitalize()
        if layer.op == "sum":  # ReduceSum takes its axes as an input since opset 13
            w.node(op, [w.const(np.array(layer.axes, np.int64), f"axes{k}")],
                   keepdims=int(layer.keepdims))  # fmt: skip
        else:
            w.node(op, axes=list(layer.axes), keepdims=int(layer.keepdims))
    elif isinstance(layer, Transpose):
        w.node("Transpose", perm=list(layer.axes))
    elif isinstance(layer, Take):  # a scalar index drops the axis, as Gather's does
        w.node("Gather", [w.const(np.asarray(layer.indices, np.int64), f"indices{k}")],
               axis=layer.axis)  # fmt: skip
    elif isinstance(layer, Pad):
        left, right, top, bottom = layer.pad
        pads = w.const(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), f"pads{k}")
        if layer.mode == "circular":
            raise SymnnValueError(f"Pad{layer._label()} mode='circular' is ONNX's wrap, of "
                                  f"opset 19; symnn writes opset {OPSET}.")  # fmt: skip
        mode = {"replicate": "edge"}.get(layer.mode, layer.mode)
        w.node("Pad", [pads, w.const(np.asarray(layer.value), f"value{k}")], mode=mode)
    else:
        scales = w.const(np.array([1, 1, *layer.scale], np.float32), f"scales{k}", cast=False)
        nearest = layer.mode == "nearest"
        w.node("Resize", ["", scales], mode="nearest" if nearest else "linear",
               coordinate_transformation_mode="asymmetric" if nearest else "half_pixel",
               nearest_mode="floor")  # fmt: skip


def _write_resize(w: _Writer, layer: Resize, in_shape: tuple, k: int) -> None:
    """ONNX's Resize with the layer's sizes (or its scales, when they are not the sizes'
    ratios and float32 holds them exactly)."""
    interp = asdict(layer.interpolation)
    if interp.pop("antialias"):
        raise SymnnValueError(f"Resize{layer._label()} with antialias=True needs ONNX opset 18; "
                              f"the writer writes opset {OPSET}.")  # fmt: skip
    full = [1, *in_shape]
    sizes, scales = list(full), [1.0] * len(full)
    for i, (axis, size) in enumerate(zip(layer.axes, layer.sizes)):
        sizes[axis] = size
        scales[axis] = size / full[axis] if layer.scales is None else layer.scales[i]
    if all(s == z / n for s, z, n in zip(scales, sizes, full)):  # sizes, the batch's own
        batch, out = f"batch{k}", f"sizes{k}"
        make = w.onnx.helper.make_node
        w.nodes.append(make("Shape", [w.current], [batch], name=f"shape{k}", end=1))
        w.nodes.append(make("Concat", [batch, w.const(np.array(sizes[1:], np.int64),
                                                      f"sample_sizes{k}")], [out],
                            name=f"concat{k}", axis=0))  # fmt: skip
        extra = ["", out]
    elif np.array_equal(np.float32(scales), scales) and all(
            int(s * n) == z for s, z, n in zip(scales, sizes, full)):  # fmt: skip
        extra = [w.const(np.array(scales, np.float32), f"scales{k}", cast=False)]
    else:
        raise SymnnValueError(f"Resize{layer._label()}'s scales {layer.scales} are neither its "
                              "sizes' ratios nor float32 values; ONNX's Resize cannot hold them.")
    roi = ""
    if layer.roi is not None:
        n, starts, ends = len(layer.axes), [0.0] * len(full), [1.0] * len(full)
        for i, axis in enumerate(layer.axes):
            starts[axis], ends[axis] = layer.roi[i], layer.roi[n + i]
        roi = w.const(np.array(starts + ends, np.float32), f"roi{k}", cast=False)  # ORT: float
    interp["exclude_outside"] = int(interp["exclude_outside"])
    w.node("Resize", [roi, *extra], **interp)


#: each layer's gate blocks in ONNX's order (LSTM i, o, f, c; GRU z, r, h)
_ONNX_GATES = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def _write_recurrent(w: _Writer, layer: Layer, k: int) -> None:
    """ONNX's LSTM/GRU/RNN between transpositions to and from its time-major layout, then
    the output as symnn gives it."""
    cells = [layer.forward, layer.backward] if isinstance(layer, Bidirectional) else [layer]
    cell = cells[0]
    op, order = type(cell).__name__, _ONNX_GATES[type(cell).__name__]
    if getattr(cell, "with_cell", False):
        raise SymnnValueError(f"LSTM{cell._label()} with_cell=True (h and c side by side) is "
                              "not written: ONNX's LSTM gives c as a separate output (Y_c), "
                              "its final step only.")  # fmt: skip
    if any(np.any(c.hid_init.get_value()) for c in cells):
        raise SymnnValueError(f"{op}{cell._label()} has a nonzero initial state; ONNX's {op} "
                              "takes it per batch row, which a file cannot hold.")  # fmt: skip
    h = cell.n_units

    def gates(value, axis):
        blocks = np.split(value, len(order), axis=axis)
        return np.concatenate([blocks[i] for i in order], axis=axis)

    W = np.stack([gates(c.W_in.get_value().T, 0) for c in cells])
    R = np.stack([gates(c.W_hid.get_value().T, 0) for c in cells])
    B = np.stack([np.concatenate([gates(c.b_in.get_value(), 0), gates(c.b_hid.get_value(), 0)])
                  for c in cells])  # fmt: skip
    extra = [w.const(W, f"W{k}"), w.const(R, f"R{k}"), w.const(B, f"B{k}")]
    attrs = {"hidden_size": h,
             "direction": "bidirectional" if len(cells) == 2 else (
                 "reverse" if cell.backwards else "forward")}  # fmt: skip
    if op == "GRU":
        attrs["linear_before_reset"] = int(cell.reset_after)
    if op == "RNN":
        attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu"}[
            nonlinearities.name_of(cell.nonlinearity)]] * len(cells)  # fmt: skip
    if op == "LSTM" and cell.peepholes:
        peep = np.stack([c.W_cell.get_value()[[0, 2, 1]].reshape(-1) for c in cells])
        extra += ["", "", "", w.const(peep, f"P{k}")]
    w.node("Transpose", perm=[1, 0, 2])  # the time-major layout every runtime implements
    w.count += 1
    outs = [f"t{w.count}_y", f"t{w.count}_h"]
    w.nodes.append(w.onnx.helper.make_node(op, [w.current, *extra], outs,
                                           name=f"{op.lower()}{w.count}", **attrs))  # fmt: skip
    final = cell.only_return_final
    w.current = outs[1 if final else 0]  # Y_h (D, N, H) or Y (T, D, N, H)
    w.node("Transpose", perm=[1, 0, 2] if final else [2, 0, 1, 3])
    target = [0, len(cells) * h] if final else [0, 0, len(cells) * h]
    w.node("Reshape", [w.const(np.array(target, np.int64), f"shape{k}")])


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


_MERGES = {Concat: "Concat", Add: "Add", Multiply: "Mul", Maximum: "Max", Minimum: "Min",
           Divide: "Div", Power: "Pow", MatMul: "MatMul"}  # fmt: skip


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
    if isinstance(layer, Add | Multiply | Maximum | Minimum) and len(names) > 2:  # pairwise
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
        integer = [s for s in network.input_specs if not s.dtype.startswith("float")]
        if integer:
            raise SymnnValueError(
                f"to_onnx writes networks of float data; the input {integer[0].name!r} is "
                f"{integer[0].dtype} (integer graphs are read, not written); nothing was written."
            )
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
