"""ONNX's elementwise, arithmetic, softmax, shape and reduction ops read as symnn layers
on tensors of any shape (see :mod:`symnn.io.onnx_reader`); each reader honours the
attributes :data:`TENSOR_ATTRIBUTES` lists for its op and refuses what it cannot compute
(anything across the batch axis among it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..layers import (
    Add,
    Arithmetic,
    Concat,
    Divide,
    Elementwise,
    Flatten,
    Maximum,
    Minimum,
    Multiply,
    Normalize,
    Pad,
    Power,
    PReLU,
    Reduce,
    Reshape,
    Softmax,
    Take,
    Transpose,
)
from ..utils import INTEGER_DTYPES
from .onnx_reader import BATCH, Reader

__all__ = ["TENSOR_READERS", "TENSOR_ATTRIBUTES"]

#: the attributes each op's reader honours (any other is refused by name)
TENSOR_ATTRIBUTES: dict[str, set[str]] = {
    "Flatten": {"axis"},
    "Reshape": {"allowzero"},
    "Transpose": {"perm"},
    "Squeeze": {"axes"},
    "Unsqueeze": {"axes"},
    "Concat": {"axis"},
    "Pad": {"mode", "pads", "value"},
    "Softmax": {"axis"},
    "LogSoftmax": {"axis"},
    "LeakyRelu": {"alpha"},
    "Elu": {"alpha"},
    "Selu": {"alpha", "gamma"},
    "HardSigmoid": {"alpha", "beta"},
    "Clip": {"min", "max"},
    "If": {"then_branch", "else_branch"},
    "Gather": {"axis"},
    **{f"Reduce{op}": {"axes", "keepdims", "noop_with_empty_axes"}
       for op in ("Mean", "Max", "Min", "Sum", "Prod")},
}  # fmt: skip


# -- elementwise -----------------------------------------------------------------------------
def _activation(op: str, params: tuple[str, ...] = ()) -> Callable:
    def read(r: Reader, node) -> None:
        a = r.attrs(node)
        kwargs = {p: float(a[p]) for p in params if p in a}
        r.call(node, Elementwise(op, name=node.name or None, **kwargs))

    return read


def _clip(r: Reader, node) -> None:
    a = r.attrs(node)
    lo, hi = a.get("min"), a.get("max")
    if r.opset >= 11:
        bounds = [r.optional_const(node, i) for i in (1, 2)]
        lo, hi = (None if v is None else float(np.asarray(v).reshape(-1)[0]) for v in bounds)
    r.call(node, Elementwise("clip", min=lo, max=hi, name=node.name or None))


def _prelu(r: Reader, node) -> None:
    slope = r.const(node, node.input[1]).astype(np.float64)
    shape = r.shape(node)
    n, axis = shape[-1], -1
    per_channel = (shape[0], *[1] * (len(shape) - 1))  # (C, 1, ..., 1): nn.PReLU(C) on images
    if len(shape) > 1 and slope.shape in (per_channel, (1, *per_channel)) and shape[0] > 1:
        n, axis = shape[0], 1
    elif slope.size == 1:
        slope = np.full(n, float(slope.reshape(-1)[0]))
    elif slope.reshape(-1).shape != (n,) or slope.shape[-1] != n:
        raise r.error(node, f"slope of shape {slope.shape} is not one value, one per feature "
                            f"of the last axis ({n}) or one per channel {per_channel} of inputs "
                            f"{(None, *shape)}.")  # fmt: skip
    layer = PReLU(n, alpha=slope.reshape(-1), name=node.name or None, axis=axis, dtype=r.dtype)
    r.torch_names(layer, node, {1: "weight"})
    r.call(node, layer)


def _softmax(r: Reader, node) -> None:
    shape = r.shape(node)
    rank = len(shape) + 1
    axis = int(r.attrs(node).get("axis", -1 if r.opset >= 13 else 1))
    axis = axis + rank if axis < 0 else axis
    if axis == 0:
        raise r.error(node, "axis=0 (the batch axis) is not supported.")
    log = node.op_type == "LogSoftmax"
    if r.opset >= 13 or axis == rank - 1:
        r.call(node, Softmax(axis, log=log, name=node.name or None))
        return
    # opset < 13: the softmax of each sample's values from ``axis`` on, taken as one vector
    flat = (*shape[: axis - 1], int(np.prod(shape[axis - 1 :])))
    name = node.output[0]
    r.call(node, Reshape(flat), out=name + "/flat")
    r.call(node, Softmax(-1, log=log, name=node.name or None), [name + "/flat"], name + "/soft")
    r.call(node, Reshape(shape), [name + "/soft"])


_ARITHMETIC_OPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}


def _binary(r: Reader, node) -> None:
    names = [i for i in node.input if i]
    tensors = [n for n in names if n in r.vars]
    consts = [n for n in names if n not in r.vars]
    if len(tensors) == 1 and len(names) == 1:
        r.alias(node)
    elif len(tensors) == 1 and len(consts) == 1:
        _with_constant(r, node, tensors[0], consts[0])
    elif not consts:
        _merge(r, node, tensors)
    else:
        raise r.error(node, f"inputs {names} are not one tensor and one constant, or tensors.")


def _with_constant(r: Reader, node, tensor: str, const: str) -> None:
    value = _constant_for(r, node, tensor, const)
    op = node.op_type
    if op in ("Max", "Min"):
        if value.size != 1:
            raise r.error(node, f"{op} with a constant of shape {value.shape} is not supported "
                                "(a scalar is).")  # fmt: skip
        bound = {"min" if op == "Max" else "max": float(value.reshape(-1)[0])}
        r.call(node, Elementwise("clip", name=node.name or None, **bound), [tensor])
        return
    if op not in _ARITHMETIC_OPS:
        raise r.error(node, f"{op} with a constant is not supported.")
    first = node.input[0] == const
    normalize = _as_normalize(r, node, tensor, value, first)
    if normalize is not None:
        source = r.normalizers[tensor][1] if tensor in r.normalizers else tensor
        r.call(node, normalize, [source])
        r.preprocessing.add(node.output[0])
        r.normalizers[node.output[0]] = (normalize, source)
        return
    integer = r.vars[tensor].dtype in INTEGER_DTYPES  # constants held exactly, in float64
    layer = Arithmetic(_ARITHMETIC_OPS[op], value, constant_first=first,
                       dtype="float64" if integer else r.dtype, name=node.name or None)
    r.call(node, layer, [tensor])


def _constant_for(r: Reader, node, tensor: str, const: str) -> np.ndarray:
    """The constant operand, in float64; for integer data, one its type holds (a power's
    exponent: any number), below 2**53 (exact in float64)."""
    raw = r.const(node, const)
    value = raw.astype(np.float64)
    kind = r.vars[tensor].dtype
    if kind not in INTEGER_DTYPES or (node.op_type == "Pow" and node.input[0] == tensor):
        return value
    info = np.iinfo(kind) if kind != "bool" else np.iinfo(np.uint8)
    exact = np.all(value == np.round(value)) and np.all(np.abs(value) <= 2**53)
    if not exact or value.min(initial=0) < info.min or value.max(initial=0) > info.max:
        raise r.error(node, f"the constant {const!r} ({raw.dtype}) is not of the data's type "
                            f"{kind} (integers below 2**53 are read).")  # fmt: skip
    return value


def _as_normalize(r: Reader, node, tensor: str, value: np.ndarray, first: bool):
    """``Sub``/``Div`` by per-channel constants on the data input: a ``Normalize`` (input
    optimisation then keeps its box in raw units), merged with one just before it."""
    if first or node.op_type not in ("Sub", "Div") or tensor not in r.preprocessing:
        return None
    if r.vars[tensor].dtype in INTEGER_DTYPES:
        return None
    shape = r.shapes[tensor]
    per = shape[0] if len(shape) == 3 else shape[-1]
    flat = value.reshape(-1)
    want = (per, 1, 1) if len(shape) == 3 else (per,)
    fits = flat.size == 1 or value.shape[-len(want):] == want and flat.size == per
    if not fits or (node.op_type == "Div" and np.any(flat <= 0)):
        return None
    prev = r.normalizers.get(tensor, (None,))[0]
    mean = prev.mean if prev is not None else np.zeros(1)
    std = prev.std if prev is not None else np.ones(1)
    if node.op_type == "Sub":
        mean = mean + flat * std  # (x - m) / s - v == (x - (m + v s)) / s
    else:
        std = std * flat
    return Normalize(mean, std)


def _merge(r: Reader, node, tensors: list[str]) -> None:
    op = node.op_type
    layers = {"Add": Add, "Sum": Add, "Mul": Multiply, "Max": Maximum, "Min": Minimum,
              "Div": Divide, "Pow": Power}  # fmt: skip
    if op == "Sub" and len(tensors) == 2:
        layer = Add(coeffs=[1, -1], name=node.name or None)
    elif op in layers:
        layer = layers[op](name=node.name or None)
    else:
        raise r.error(node, f"{op} of {len(tensors)} tensors is not supported (of a tensor "
                            "and a constant it is).")  # fmt: skip
    r.call(node, layer, tensors)


# -- shapes ----------------------------------------------------------------------------------
def _reshape_to(r: Reader, node, target: tuple, flatten: bool = False) -> None:
    target = tuple(int(t) for t in target)
    if target == r.shape(node):
        r.alias(node)
    elif flatten or len(target) == 1:
        r.call(node, Flatten(name=node.name or None) if len(r.shape(node)) > 1
               else Reshape(target, name=node.name or None))  # fmt: skip
    else:
        r.call(node, Reshape(target, name=node.name or None))


def _flatten(r: Reader, node) -> None:
    shape = r.shape(node)
    axis = int(r.attrs(node).get("axis", 1))
    axis = axis + len(shape) + 1 if axis < 0 else axis
    if axis == 0 or int(np.prod(shape[: axis - 1])) != 1:
        raise r.error(node, f"axis={axis} would fold the batch axis into the features of "
                            f"inputs {(None, *shape)}.")  # fmt: skip
    _reshape_to(r, node, (int(np.prod(shape[axis - 1 :])),), flatten=True)


def _reshape(r: Reader, node) -> None:
    target = [int(v) for v in r.const(node, node.input[1])]
    if node.input[0] in r.perms:
        _reshape_view(r, node, target)
        return
    shape = r.shape(node)
    allow = r.attrs(node).get("allowzero", 0)  # a 0 is a size (an empty axis), not a copy
    if allow and target[:1] == [0]:
        raise r.error(node, f"allowzero=1 with the shape {target} makes an empty batch.")
    full = [(1, *shape)[i] if t == 0 and not allow else t for i, t in enumerate(target)]
    rest = full[1:]
    size = int(np.prod(shape))
    if rest.count(-1) == 1:
        known = int(np.prod([t for t in rest if t != -1]))
        rest[rest.index(-1)] = size // known if known and size % known == 0 else -1
    ok = full[0] in (-1, 1) or target[0] == 0
    if not ok or -1 in rest or int(np.prod(rest)) != size:
        raise r.error(node, f"shape {target} does not keep the batch axis first for inputs "
                            f"{(None, *shape)}.")  # fmt: skip
    _reshape_to(r, node, tuple(rest))


def _reshape_view(r: Reader, node, target: list[int]) -> None:
    """Reshape of a time-major view ``(time, batch, ...)`` that keeps its first two axes
    (PyTorch's dynamo export of an LSTM's output): the samples' other axes reshaped."""
    name = node.input[0]
    perm, shape = r.perms[name], r.shapes[name]
    if perm[:2] != (1, 0) or perm[2:] != tuple(range(2, len(perm))):
        raise r.error(node, f"Reshape of a view with axes {perm} is not supported.")
    dims = [shape[0], BATCH, *shape[1:]]
    full = [dims[i] if t == 0 else t for i, t in enumerate(target)]
    size = int(np.prod(shape[1:]))
    rest = full[2:]
    if rest.count(-1) == 1:
        known = int(np.prod([t for t in rest if t != -1]))
        rest[rest.index(-1)] = size // known if known and size % known == 0 else -1
    if len(full) < 2 or full[0] != shape[0] or full[1] not in (-1, BATCH) or (
            -1 in rest or int(np.prod(rest)) != size):  # fmt: skip
        raise r.error(node, f"shape {target} does not keep the time and batch axes of a "
                            f"(time, batch, ...) view of {(shape[0], None, *shape[1:])}.")
    var = r.call(node, Reshape((shape[0], *rest), name=node.name or None), view=True)
    r.perms[var.name] = (1, 0, *range(2, len(rest) + 2))


def _axes(r: Reader, node, rank: int) -> list[int] | None:
    """The axes of the node (attribute, or input 1 in newer opsets), non-negative."""
    a = r.attrs(node)
    axes = a.get("axes")
    if axes is None:
        value = r.optional_const(node, 1)
        axes = None if value is None else [int(v) for v in value.reshape(-1)]
    if axes is not None and 0 in [x % rank for x in axes]:
        raise r.error(node, f"axes={list(axes)} include the batch axis.")
    return None if axes is None else sorted(x % rank for x in axes)


def _squeeze(r: Reader, node) -> None:
    if node.input[0] in r.perms:
        _squeeze_view(r, node)
        return
    shape = r.shape(node)
    axes = _axes(r, node, len(shape) + 1)
    if axes is None:
        axes = [i + 1 for i, s in enumerate(shape) if s == 1]
    bad = [x for x in axes if shape[x - 1] != 1]
    if bad:
        raise r.error(node, f"axis {bad[0]} has size {shape[bad[0] - 1]}, not 1.")
    _reshape_to(r, node, tuple(s for i, s in enumerate(shape) if i + 1 not in axes))


def _squeeze_view(r: Reader, node) -> None:
    """Squeeze of a time-major view (PyTorch's ``Squeeze`` of an LSTM's ``Y``): the
    batch-first tensor reshaped, the view's axes renumbered."""
    name, perm = node.input[0], r.perms[node.input[0]]
    raw = r.attrs(node).get("axes")
    if raw is None:
        raw = [int(v) for v in r.const(node, node.input[1]).reshape(-1)]
    axes = {int(a) % len(perm) for a in raw}
    dropped = {perm[a] for a in axes}
    shape = r.shapes[name]
    if 0 in dropped or any(shape[a - 1] != 1 for a in dropped):
        raise r.error(node, f"axes={list(raw)} are not axes of size 1 of the samples.")
    kept = [perm[i] for i in range(len(perm)) if i not in axes]
    new_shape = tuple(s for i, s in enumerate(shape) if i + 1 not in dropped)
    var = r.call(node, Reshape(new_shape, name=node.name or None), out=node.output[0], view=True)
    order = sorted(kept)
    view = tuple(order.index(a) for a in kept)
    if view != tuple(range(len(view))):
        r.perms[var.name] = view


def _unsqueeze(r: Reader, node) -> None:
    shape = r.shape(node)
    a = r.attrs(node)
    raw = a.get("axes")
    if raw is None:
        raw = [int(v) for v in r.const(node, node.input[1]).reshape(-1)]
    rank = len(shape) + 1 + len(raw)
    axes = sorted(x % rank for x in raw)
    if 0 in axes:
        raise r.error(node, f"axes={list(raw)} include the batch axis.")
    out, it = [], iter(shape)
    for i in range(1, rank):
        out.append(1 if i in axes else next(it))
    _reshape_to(r, node, tuple(out))


def _transpose(r: Reader, node) -> None:
    """A transposition that keeps the batch axis first is a ``Transpose`` layer; one that
    moves it is a time-major view, read by the recurrent ops (``Transpose(1, 0, 2)`` before
    PyTorch's exported LSTMs) or undone by the next transposition."""
    name, shape = node.input[0], r.shape(node, view=True)
    rank = len(shape) + 1
    perm = [int(p) for p in r.attrs(node).get("perm", range(rank - 1, -1, -1))]
    before = r.perms.get(name, tuple(range(rank)))
    after = tuple(before[q] for q in perm)  # the axes of the batch-first tensor, in order
    out = node.output[0]
    if after == tuple(range(rank)) or after[0] != 0:
        r.vars[out], r.shapes[out] = r.vars[name], shape
        if after[0] != 0:
            r.perms[out] = after
        return
    if name in r.perms:
        raise r.error(node, f"perm={perm} of a time-major view is not supported.")
    r.call(node, Transpose(list(after), name=node.name or None))


def _gather(r: Reader, node) -> None:
    """``Gather`` of a tensor by constant indices along an axis of the samples (PyTorch's
    ``out[:, -1]``), also of a time-major view."""
    name = node.input[0]
    if node.input[1] not in r.consts:
        raise r.error(node, "Gather with indices computed from the data is not supported.")
    indices = np.asarray(r.consts[node.input[1]])
    perm = r.perms.get(name)
    rank = len(r.shape(node, view=True)) + 1
    axis = int(r.attrs(node).get("axis", 0)) % rank
    var_axis = perm[axis] if perm else axis
    if var_axis == 0 or (indices.ndim > 1 and perm):
        raise r.error(node, f"axis={axis} with indices of shape {indices.shape} gathers across "
                            "the batch; symnn takes entries along an axis of the samples.")
    if indices.ndim > 1:  # the entries in a row, then the indices' shape in the axis' place
        _gather_block(r, node, indices, var_axis)
        return
    picked = int(indices) if indices.ndim == 0 else [int(i) for i in indices]
    var = r.call(node, Take(picked, var_axis, name=node.name or None), view=True)
    if perm:
        kept = [p for i, p in enumerate(perm) if i != axis or indices.ndim == 1]
        order = sorted(kept)
        view = tuple(order.index(p) for p in kept)
        if view != tuple(range(len(view))):
            r.perms[var.name] = view


def _gather_block(r: Reader, node, indices: np.ndarray, axis: int) -> None:
    """``Gather`` by indices of several axes: ``Take`` of the flat indices, the taken axis
    then reshaped to the indices' shape."""
    shape, name = r.shape(node), node.output[0]
    flat = [int(i) for i in indices.reshape(-1)]
    r.call(node, Take(flat, axis, name=node.name or None), out=name + "/flat")
    out = (*shape[: axis - 1], *indices.shape, *shape[axis:])
    r.call(node, Reshape(out), [name + "/flat"])


def _concat(r: Reader, node) -> None:
    names = [i for i in node.input if i]
    if any(n not in r.vars for n in names):
        raise r.error(node, "Concat of tensors and constants is not supported.")
    rank = len(r.shapes[names[0]]) + 1
    axis = int(r.attrs(node)["axis"]) % rank
    if axis == 0:
        raise r.error(node, "axis=0 (the batch axis) is not supported.")
    if len(names) == 1:
        r.alias(node)
    else:
        r.call(node, Concat(axis, name=node.name or None), names)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


def _pad(r: Reader, node) -> None:
    a = r.attrs(node)
    mode = a.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise r.error(node, f"mode={mode!r} is not supported (constant, reflect, edge, wrap "
                            "are).")
    pads = a.get("pads")
    pads = [int(p) for p in (pads if pads is not None else r.const(node, node.input[1]))]
    value = a.get("value", 0.0)
    given = r.optional_const(node, 2)
    value = float(np.asarray(given).reshape(-1)[0]) if given is not None else float(value)
    shape = r.shape(node)
    rank = len(shape) + 1
    axes_given = r.optional_const(node, 3)
    if axes_given is not None:  # pads for these axes only (begins, then ends)
        listed = [int(k) % rank for k in np.asarray(axes_given).reshape(-1)]
        if len(pads) != 2 * len(listed):
            raise r.error(node, f"pads={pads} do not give a begin and an end for each of axes "
                                f"{listed}.")  # fmt: skip
        full = [0] * (2 * rank)
        for i, k in enumerate(listed):
            full[k], full[rank + k] = pads[i], pads[len(listed) + i]
        pads = full
    if len(pads) != 2 * rank or min(pads) < 0 or pads[0] or pads[rank]:
        raise r.error(node, f"pads={pads} pad the batch axis, crop, or do not fit inputs "
                            f"{(None, *shape)}; padding >= 0 of the sample axes is supported.")
    begin, end = pads[1:rank], pads[rank + 1 :]
    axes = [i for i in range(rank - 1) if begin[i] or end[i]]
    if not axes:
        r.alias(node)
        return
    if len(axes) > 1 and axes != [rank - 3, rank - 2]:
        raise r.error(node, f"pads {pads} pad axes {[i + 1 for i in axes]}; symnn pads one "
                            "axis or the last two.")  # fmt: skip
    last = axes[-1]  # the samples seen as images (C, H, W) whose H (and W) are padded
    image = (int(np.prod(shape[: axes[0]])), *shape[axes[0] : last + 1],
             int(np.prod(shape[last + 1 :])) if len(axes) == 1 else None)  # fmt: skip
    image = tuple(d for d in image if d is not None)
    lr = (begin[last], end[last]) if len(axes) == 2 else (0, 0)
    layer = Pad((*lr, begin[axes[0]], end[axes[0]]), _PAD_MODES[mode],
                value if mode == "constant" else 0.0, name=node.name or None)  # fmt: skip
    if image == shape:
        r.call(node, layer)
        return
    out = list(shape)
    for i in axes:
        out[i] += begin[i] + end[i]
    r.call(node, Reshape(image), out=node.output[0] + "/image")
    r.call(node, layer, [node.output[0] + "/image"], out=node.output[0] + "/padded")
    r.call(node, Reshape(tuple(out)), [node.output[0] + "/padded"])


def _reduce(r: Reader, node) -> None:
    a = r.attrs(node)
    shape = r.shape(node)
    axes = _axes(r, node, len(shape) + 1)
    if not axes:
        if a.get("noop_with_empty_axes", 0):
            r.alias(node)
            return
        raise r.error(node, "no axes: the reduction would include the batch axis.")
    op = node.op_type[len("Reduce") :].lower()
    r.call(node, Reduce(op, axes, keepdims=bool(a.get("keepdims", 1)), name=node.name or None))


def _if(r: Reader, node) -> None:
    """An ``If`` on a constant condition (PyTorch's exports test shapes this way): the
    branch it takes, read in place."""
    if node.input[0] not in r.consts:
        raise r.error(node, "an If whose condition depends on the data is not supported.")
    branch = "then_branch" if bool(np.asarray(r.consts[node.input[0]]).reshape(-1)[0]) else (
        "else_branch")  # fmt: skip
    graph = r.attrs(node)[branch]
    for inner in graph.node:
        r.read_node(inner)
    for outer, inner in zip(node.output, graph.output):
        if inner.name in r.consts:
            r.consts[outer] = r.consts[inner.name]
        else:
            r.vars[outer], r.shapes[outer] = r.vars[inner.name], r.shapes[inner.name]


TENSOR_READERS: dict[str, Callable] = {
    "If": _if,
    "Identity": lambda r, n: r.alias(n),
    "Relu": _activation("relu"), "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"), "Softplus": _activation("softplus"),
    "LeakyRelu": _activation("leaky_relu", ("alpha",)), "Elu": _activation("elu", ("alpha",)),
    "Selu": _activation("selu", ("alpha", "gamma")),
    "HardSigmoid": _activation("hard_sigmoid", ("alpha", "beta")),
    "Clip": _clip, "PRelu": _prelu, "Softmax": _softmax, "LogSoftmax": _softmax,
    **{op: _binary for op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum")},
    "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Transpose": _transpose, "Concat": _concat, "Pad": _pad, "Gather": _gather,
    **{f"Reduce{op}": _reduce for op in ("Mean", "Max", "Min", "Sum", "Prod")},
}  # fmt: skip
