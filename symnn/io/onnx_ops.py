"""One reader per ONNX op: each checks the node's attributes (an attribute it does not
implement is refused by name and value, never ignored) and calls the symnn layer that
computes the op on the node's input tensors (see :mod:`symnn.io.onnx_reader`). The layers
with weights, pooling and normalisation are here; elementwise, shape and reduction ops in
:mod:`symnn.io.onnx_tensor_ops`, recurrent ones in :mod:`symnn.io.onnx_recurrent`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nonlinearities
from ..errors import SymnnValueError
from ..layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    KeepMask,
    LocalResponseNorm,
    MatMul,
    MaxPool2D,
    Pad,
    Reduce,
    Reshape,
    Take,
    TimeDistributed,
    WindowPool,
)
from .onnx_reader import Reader
from .onnx_recurrent import ATTRIBUTES as RECURRENT_ATTRIBUTES
from .onnx_recurrent import read_recurrent
from .onnx_resize import RESIZE_ATTRIBUTES, RESIZE_READERS
from .onnx_tensor_ops import TENSOR_ATTRIBUTES, TENSOR_READERS

__all__ = ["READERS", "ATTRIBUTES"]

#: the attributes each op's reader honours (any other is refused by name)
ATTRIBUTES: dict[str, set[str]] = {
    "Conv": {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
    "ConvTranspose": {"auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                      "output_shape", "pads", "strides"},  # fmt: skip
    "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order",
                "strides"},  # fmt: skip
    "AveragePool": {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                    "pads", "strides"},  # fmt: skip
    "Gemm": {"alpha", "beta", "transA", "transB", "broadcast"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial", "is_test"},
    "LRN": {"alpha", "beta", "bias", "size"},
    "Dropout": {"ratio", "seed", "is_test"},
    **RECURRENT_ATTRIBUTES,
    **TENSOR_ATTRIBUTES,
    **RESIZE_ATTRIBUTES,
}  # fmt: skip

_FUSABLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def _fuse(r: Reader, node, layer: Dense | Conv2D | ConvTranspose2D, softmax: bool = True) -> Any:
    """Fold into ``layer`` the activation that alone reads the node's output (as symnn's
    layers carry it; a softmax only if ``softmax``); returns the node whose output the
    layer's output is."""
    found = r.sole_consumer(node.output[0])
    if found is None:
        return node
    k, nxt = found
    a = r.attrs(nxt)
    name = _FUSABLE.get(nxt.op_type) if not a else None
    if nxt.op_type == "LeakyRelu" and set(a) <= {"alpha"} and a.get("alpha", 0.01) == 0.01:
        name = "leaky_relu"
    ends_dense = isinstance(layer, Dense) and set(a) <= {"axis"} and a.get("axis", -1) in (-1, 1)
    ends_dense = ends_dense and softmax
    if nxt.op_type in ("Softmax", "LogSoftmax") and ends_dense:
        name = "softmax" if nxt.op_type == "Softmax" else "log_softmax"
    if name is None:
        return node
    layer.activation = nonlinearities.get(name)
    r.fused.add(k)
    return nxt


def _call_fused(r: Reader, node, layer, names: list[str] | None = None) -> None:
    last = _fuse(r, node, layer)
    r.call(node, layer, names, out=last.output[0])


# -- convolutions and pooling ----------------------------------------------------------------
def _spatial_pads(r: Reader, node, sizes: tuple, kernel, strides, dilations) -> list[int]:
    """ONNX's pads (all begins, then all ends), from ``pads`` or ``auto_pad``."""
    a = r.attrs(node)
    n = len(sizes)
    auto = a.get("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = [int(p) for p in a.get("pads", [0] * 2 * n)]
        if len(pads) != 2 * n or min(pads) < 0:
            raise r.error(node, f"pads={pads} is not valid for a {n}-D op ({2 * n} values "
                                ">= 0).")  # fmt: skip
        return pads
    if auto == "VALID":
        return [0] * 2 * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise r.error(node, f"auto_pad={auto!r} is not known.")
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return [*begin, *end]


def _geometry(r: Reader, node, kernel, images_only: bool = True):
    """``(strides, dilations, pads)`` of a convolution or pooling node, checked."""
    a = r.attrs(node)
    shape = r.shape(node)
    n = len(shape) - 1
    if n < 1 or (images_only and n != 2):
        raise r.error(node, f"takes images (N, C, H, W) or sequences (N, C, L); the input is "
                            f"{(None, *shape)} (3-D versions are not supported).")  # fmt: skip
    if len(kernel) != n:
        raise r.error(node, f"a kernel of {len(kernel)} axes for inputs {(None, *shape)}.")
    strides = tuple(int(s) for s in a.get("strides", [1] * n))
    dilations = tuple(int(d) for d in a.get("dilations", [1] * n))
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != tuple(kernel):
        raise r.error(node, f"kernel_shape={a['kernel_shape']} differs from the weights' "
                            f"{tuple(kernel)}.")  # fmt: skip
    return strides, dilations, _spatial_pads(r, node, shape[1:], kernel, strides, dilations)


def _image_view(r: Reader, node, kernel, strides, pads) -> tuple | None:
    """A 1-D or 3-D pooling that acts on one axis (or on the last two) as a 2-D pooling of
    the samples seen as images: ``(image shape, kernel, strides, pads, axes)`` (None when
    it does not). PyTorch's LRN decomposition pools 5-D tensors over channels this way."""
    shape = r.shape(node)
    n = len(kernel)
    acting = [i for i in range(n) if kernel[i] != 1 or strides[i] != 1 or pads[i] or pads[n + i]]
    spatial = shape[1:]
    if len(acting) <= 1:
        i = acting[0] if acting else 0
        image = (shape[0] * int(np.prod(spatial[:i])), spatial[i], int(np.prod(spatial[i + 1 :])))
        return image, (kernel[i], 1), (strides[i], 1), [pads[i], 0, pads[n + i], 0], [i]
    if acting == [n - 2, n - 1]:
        image = (shape[0] * int(np.prod(spatial[:-2])), *spatial[-2:])
        return image, kernel[-2:], strides[-2:], [*pads[n - 2 : n], *pads[-2:]], acting
    return None


def _padded(r: Reader, node, pads: list[int], value: float = 0.0,
            source: str | None = None) -> tuple[tuple, str]:  # fmt: skip
    """``(symmetric pads, input tensor)``: asymmetric pads become a ``Pad`` layer first."""
    top, left, bottom, right = pads
    source = source or node.input[0]
    if (top, left) == (bottom, right):
        return (top, left), source
    padded = node.output[0] + "/padded"
    label = f"{node.name}.pad" if node.name else None
    r.call(node, Pad((left, right, top, bottom), value=value, name=label), [source], padded)
    return (0, 0), padded


def _conv(r: Reader, node) -> None:
    w = r.const(node, node.input[1]).astype(np.float64)
    b = r.optional_const(node, 2)
    strides, dilations, pads = _geometry(r, node, w.shape[2:])
    pad, source = _padded(r, node, pads)
    if b is not None and not np.any(b) and not node.input[2].endswith(".bias"):
        b = None  # a zero bias an exporter wrote for a convolution without one (bias=False)
    group = int(r.attrs(node).get("group", 1))
    layer = Conv2D(w.shape[1] * group, w.shape[0], tuple(w.shape[2:]), strides, pad, W=w, b=b,
                   dilation=dilations, groups=group, dtype=r.dtype,
                   name=node.name or None)  # fmt: skip
    r.torch_names(layer, node, {1: "weight", 2: "bias"} if b is not None else {1: "weight"})
    _call_fused(r, node, layer, [source])


def _transpose_pads(r: Reader, node, kernel, strides, dilations, extra) -> tuple[list, list]:
    """A ConvTranspose's ``(begin pads, end pads)`` per axis: from ``pads``, or from the
    output size that ``output_shape`` or ``auto_pad="SAME_*"`` (input times stride) asks
    for, split as ONNX's definition splits it (a negative pad extends the output)."""
    a, sizes = r.attrs(node), r.shape(node)[1:]
    auto = a.get("auto_pad", "NOTSET")
    if "output_shape" not in a and auto in ("NOTSET", "VALID"):
        pads = _spatial_pads(r, node, sizes, kernel, strides, dilations)
        return pads[:2], pads[2:]
    if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise r.error(node, f"auto_pad={auto!r} is not known.")
    out = [int(v) for v in a["output_shape"]][-2:] if "output_shape" in a else [
        n * s for n, s in zip(sizes, strides)]  # fmt: skip
    geometry = zip(strides, sizes, extra, kernel, dilations, out)
    total = [s * (n - 1) + e + (k - 1) * d + 1 - o for s, n, e, k, d, o in geometry]
    half = [t // 2 for t in total]
    if auto == "SAME_UPPER":
        return half, [t - h for t, h in zip(total, half)]
    return [t - h for t, h in zip(total, half)], half


def _conv_transpose(r: Reader, node) -> None:
    a = r.attrs(node)
    w = r.const(node, node.input[1]).astype(np.float64)
    group = int(a.get("group", 1))
    strides, dilations, _ = _geometry(r, node, w.shape[2:])  # pads: a transpose's own
    extra = [int(v) for v in a.get("output_padding", [0, 0])]
    begin, end = _transpose_pads(r, node, w.shape[2:], strides, dilations, extra)
    if min(begin) < 0:
        raise r.error(node, f"an output larger than the full transposed convolution at the "
                            f"start (pads {begin}) is not supported.")  # fmt: skip
    extra = [e + max(0, -p) for e, p in zip(extra, end)]  # a negative end pad: more output
    end = [max(0, p) for p in end]
    crop = begin != end
    try:
        layer = ConvTranspose2D(w.shape[0], w.shape[1] * group, tuple(w.shape[2:]), strides,
                                (0, 0) if crop else tuple(begin), W=w,
                                b=r.optional_const(node, 2), output_padding=tuple(extra),
                                dilation=dilations, groups=group, dtype=r.dtype,
                                name=node.name or None)  # fmt: skip
    except SymnnValueError as exc:
        raise r.error(node, str(exc)) from None
    r.torch_names(layer, node, {1: "weight", 2: "bias"})
    if not crop:
        _call_fused(r, node, layer)
        return
    last = _fuse(r, node, layer)  # the activation commutes with the crop
    var = r.call(node, layer, out=last.output[0] + "/full")
    for axis, (b, e) in enumerate(zip(begin, end)):
        size = r.shapes[var.name][axis + 1]
        out = last.output[0] if axis == 1 else f"{last.output[0]}/crop{axis}"
        var = r.call(node, Take(list(range(b, size - e)), axis=axis + 2), [var.name], out=out)


def _as_2d(read: Callable) -> Callable:
    """The reader of a 2-D op extended to its 1-D version: the input ``(C, L)`` seen as
    ``(C, 1, L)``, the weights and every geometry attribute given a leading axis of size 1,
    the output seen back as ``(C', L')``."""

    def read_1d_or_2d(r: Reader, node) -> None:
        w = r.const(node, node.input[1])
        if w.ndim != 3:
            return read(r, node)
        from onnx import helper

        a, out = r.attrs(node), node.output[0]
        lead = {"kernel_shape": 1, "strides": 1, "dilations": 1, "output_padding": 0,
                "output_shape": 1}  # fmt: skip
        attrs = {k: [lead[k], *v] if k in lead else v for k, v in a.items()}
        if "pads" in attrs:
            attrs["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
        view = r.call(node, Reshape((r.shape(node)[0], 1, r.shape(node)[1])), out=f"{out}/2d")
        node_2d = helper.make_node(node.op_type, [view.name, *node.input[1:]], [f"{out}/2d-out"],
                                   name=node.name, **attrs)  # fmt: skip
        r.consts[node.input[1]] = w[:, :, None]  # for this node only
        try:
            read(r, node_2d)
        finally:
            r.consts[node.input[1]] = w
        channels, _, length = r.shapes[f"{out}/2d-out"]
        r.call(node, Reshape((channels, length)), [f"{out}/2d-out"])

    return read_1d_or_2d


def _pool(r: Reader, node) -> None:
    a = r.attrs(node)
    kernel = tuple(int(k) for k in a["kernel_shape"])
    strides, dilations, pads = _geometry(r, node, kernel, images_only=False)
    if len(node.output) > 1 and node.output[1]:
        raise r.error(node, "the Indices output is not supported.")
    ceil = bool(a.get("ceil_mode", 0))
    include = bool(a.get("count_include_pad", 0))
    n, mode = len(kernel), "max" if node.op_type == "MaxPool" else "average_exc_pad"
    mode = "average_inc_pad" if mode != "max" and include else mode
    plain = all(d == 1 for d in dilations) and (mode != "average_exc_pad" or pads[:n] == pads[n:])
    view = _image_view(r, node, kernel, strides, pads) if plain and n != 2 else None
    if not plain or (n != 2 and view is None):  # slices: any axes, dilation, any pads
        r.call(node, WindowPool(mode, kernel, strides, pads, dilations, ceil,
                                name=node.name or None))  # fmt: skip
        return
    source = node.input[0]
    if view is not None:
        image, kernel, strides, pads, axes = view
        source = node.output[0] + "/image"
        r.call(node, Reshape(image), out=source)
    value = -np.inf if mode == "max" else 0.0
    pad, source = _padded(r, node, pads, value, source)
    if mode == "max":
        layer = MaxPool2D(kernel, strides, pad, ceil_mode=ceil, name=node.name or None)
    else:
        layer = AvgPool2D(kernel, strides, pad, ceil_mode=ceil, include_pad=include,
                          name=node.name or None)  # fmt: skip
    if view is None:
        r.call(node, layer, [source])
        return
    pooled = r.call(node, layer, [source], out=node.output[0] + "/pooled")
    spatial = list(r.shape(node)[1:])
    for axis, size in zip(axes, r.shapes[pooled.name][1:]):
        spatial[axis] = size
    r.call(node, Reshape((r.shape(node)[0], *spatial)), [pooled.name])


def _global_pool(r: Reader, node) -> None:
    rank = len(r.shape(node)) + 1
    op = "mean" if node.op_type == "GlobalAveragePool" else "max"
    r.call(node, Reduce(op, tuple(range(2, rank)), keepdims=True, name=node.name or None))


# -- dense layers ----------------------------------------------------------------------------
def _gemm(r: Reader, node) -> None:
    a = r.attrs(node)
    if a.get("transA", 0):
        raise r.error(node, "transA=1 is not supported (it would transpose the batch).")
    if len(r.shape(node)) != 1:
        raise r.error(node, f"takes matrices (N, K); the input is {(None, *r.shape(node))}.")
    w = r.const(node, node.input[1]).astype(np.float64)
    w = float(a.get("alpha", 1.0)) * (w.T if a.get("transB", 0) else w)
    c = r.optional_const(node, 2)
    b = None
    if c is not None:
        c = np.asarray(c, dtype=np.float64)
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            raise r.error(node, f"C of shape {c.shape} differs between rows; expected a "
                                "scalar, (N,) or (1, N).")  # fmt: skip
        b = float(a.get("beta", 1.0)) * np.broadcast_to(c.reshape(-1), (w.shape[1],))
    layer = Dense(w.shape[0], w.shape[1], W=w, b=b, dtype=r.dtype, name=node.name or None)
    as_torch = a.get("transB", 0) and a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
    r.torch_names(layer, node, {1: "weight", 2: "bias"} if as_torch else {1: "?"})
    _call_fused(r, node, layer)


def _matmul(r: Reader, node) -> None:
    """A tensor times a tensor (``MatMul`` layer), or times a constant ``(K, M)`` or
    ``(K,)`` on its last axis: a ``Dense`` layer (PyTorch's ``nn.Linear`` exports
    ``MatMul`` + ``Add``), over the rows of samples of several axes (``(T, K)``: an
    ``nn.Linear`` on each step of a sequence) as a ``TimeDistributed`` one."""
    if all(i in r.vars for i in node.input[:2]):
        r.call(node, MatMul(name=node.name or None), list(node.input[:2]))
        return
    if node.input[1] not in r.consts:
        raise r.error(node, "MatMul of a constant and a tensor is not supported (of a tensor "
                            "and a constant matrix it is).")  # fmt: skip
    w = r.const(node, node.input[1]).astype(np.float64)
    shape = r.shape(node)
    if not shape or w.ndim not in (1, 2) or shape[-1] != w.shape[0]:
        raise r.error(node, f"takes (..., K) @ (K, M) or (K,); got {(None, *shape)} @ "
                            f"{w.shape}.")  # fmt: skip
    vector = w.ndim == 1
    w = w.reshape(len(w), -1)
    b, bias_node = None, None
    found = r.sole_consumer(node.output[0])
    if found and found[1].op_type == "Add":
        other = [i for i in found[1].input if i != node.output[0]]
        if len(other) == 1 and other[0] in r.consts and r.consts[other[0]].size == w.shape[1]:
            b, bias_node = np.asarray(r.consts[other[0]], np.float64).reshape(-1), found
    layer = Dense(w.shape[0], w.shape[1], W=w, b=b, dtype=r.dtype, name=node.name or None)
    r.torch_names(layer, node, {1: "?"})  # (in, out): not nn.Linear's layout
    if bias_node is not None:
        r.fused.add(bias_node[0])
    last = bias_node[1] if bias_node is not None else node
    if len(shape) == 1 and not vector:
        r.call(node, layer, out=_fuse(r, last, layer).output[0])
        return
    last = _fuse(r, last, layer, softmax=False)
    _rows(r, node, layer, shape, vector, last.output[0])


def _rows(r: Reader, node, layer: Dense, shape: tuple, vector: bool, out: str) -> None:
    """``layer`` on the last axis of samples of ``shape``: samples of several axes seen as
    rows ``(T, K)`` under a ``TimeDistributed`` layer and seen back, without the last axis
    for a ``(K,)`` vector."""
    name, current = node.output[0], node.input[0]
    if len(shape) > 2:
        current = r.call(node, Reshape((int(np.prod(shape[:-1])), shape[-1])), [current],
                         out=f"{name}/rows").name  # fmt: skip
    wrapped = layer if len(shape) == 1 else TimeDistributed(layer)
    final = (*shape[:-1], layer.n_out) if not vector else shape[:-1]
    direct = len(shape) <= 2 and not vector
    y = r.call(node, wrapped, [current], out=out if direct else f"{name}/dense")
    if not direct:
        r.call(node, Reshape(final), [y.name], out=out)


def _batchnorm(r: Reader, node) -> None:
    a = r.attrs(node)
    for key, inference in (("training_mode", 0), ("is_test", 1), ("spatial", 1)):
        if key in a and a[key] != inference:
            raise r.error(node, f"{key}={a[key]} is not supported; symnn reads "
                                "BatchNormalization for inference, with its running "
                                "statistics.")  # fmt: skip
    if any(o for o in node.output[1:]):
        raise r.error(node, "the running-statistics outputs (training mode) are not supported.")
    scale, bias, mean, var = (r.const(node, n).astype(np.float64) for n in node.input[1:5])
    eps = float(a.get("epsilon", 1e-5))
    layer = BatchNorm(len(scale), epsilon=eps, dtype=r.dtype, name=node.name or None)
    layer.set_values([bias, scale, mean, 1.0 / np.sqrt(var + eps)])
    r.torch_names(layer, node, {1: "weight", 2: "bias", 3: "running_mean", 4: "running_var"})
    r.call(node, layer)


def _lrn(r: Reader, node) -> None:
    a = r.attrs(node)
    size = int(a["size"])
    if size % 2 == 0:  # ONNX centres an even window one channel later than PyTorch does
        raise r.error(node, f"LRN with an even size ({size}) is not supported.")
    r.call(node, LocalResponseNorm(size, a.get("alpha", 1e-4), a.get("beta", 0.75),
                                   a.get("bias", 1.0), name=node.name or None))  # fmt: skip


def _dropout(r: Reader, node) -> None:
    """Dropout that keeps every input: inference, or training with a rate of 0 (its mask
    output: :class:`~symnn.layers.KeepMask`); training with a rate is random, refused."""
    if r.attrs(node).get("is_test", 1) == 0:
        raise r.error(node, "is_test=0 (training) is not supported (inference only).")
    training = r.optional_const(node, 2)
    ratio = r.optional_const(node, 1)
    ratio = r.attrs(node).get("ratio", 0.5) if ratio is None else float(np.asarray(ratio))
    if training is not None and bool(np.asarray(training)) and ratio != 0:
        raise r.error(node, f"training_mode=True with ratio={ratio} is not supported "
                            "(random; inference, or a ratio of 0, is read).")  # fmt: skip
    r.alias(node)
    if len(node.output) > 1 and node.output[1]:
        r.call(node, KeepMask(name=node.name or None), out=node.output[1])


READERS: dict[str, Callable] = {
    "LSTM": read_recurrent, "GRU": read_recurrent, "RNN": read_recurrent,
    "Conv": _as_2d(_conv), "ConvTranspose": _as_2d(_conv_transpose), "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool,
    "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm, "LRN": _lrn,
    "Dropout": _dropout, **TENSOR_READERS, **RESIZE_READERS,
}  # fmt: skip
