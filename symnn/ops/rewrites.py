"""Graph rewrites that turn the idioms users write into symnn's C ops.

Theano recognised ``-log(softmax(z))[arange(n), y]`` and its gradient and replaced them by a
fused op; PyTensor 3 runs the pick, its gradient and its ``Softmax`` ops in Python. These
rewrites run in symnn's C mode only (tag ``"symnn"``; other PyTensor users are unaffected),
after PyTensor's stabilisation (which already turns ``log(softmax(z))`` into
``log_softmax(z)``), as local identities, each valid on its own:

1. ``m[arange(n), y]`` -> :class:`~symnn.ops.indexing.PickRows`; its gradient
   ``set/inc_subtensor(x[arange(n), y], g)`` -> :class:`~symnn.ops.indexing.IncPick`;
   ``inc_subtensor(x[idx], v)`` on a matrix (the gradient of ``x[idx]``) ->
   :class:`~symnn.ops.indexing.IncRows`.
2. ``pick(log_softmax(z), y)`` -> ``-softmax_cross_entropy(z, y)`` (one fused op).
3. In the gradient: ``sum(inc_pick(0, a, y), axis=1)`` -> ``a``;
   ``inc_pick(0, a, y) * b`` -> ``inc_pick(0, a * pick(b, y), y)``, cancelling
   ``a = g / pick(b, y)`` (the gradient of ``log(softmax(z)[arange(n), y])``, which is
   ``inf * 0`` once a probability underflows, becomes finite); and
   ``inc_pick(0, a, y) - a[:, None] * softmax(z)`` -> ``-softmax_cross_entropy_grad(a, z, y)``.
4. Every remaining ``Softmax``/``LogSoftmax`` over the last axis of a float matrix ->
   :class:`~symnn.ops.softmax.SoftmaxRows`/:class:`~symnn.ops.softmax.LogSoftmaxRows`; any
   other ``Softmax``/``LogSoftmax`` is inlined into elementwise C loops.

Sigmoid with binary cross-entropy needs nothing here: PyTensor's stabilisation already
rewrites ``log(sigmoid(x))`` and ``log(1 - sigmoid(x))`` into softplus forms with C code
(tested in ``tests/test_rewrites.py``).
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.basic import (
    EquilibriumGraphRewriter,
    WalkingGraphRewriter,
    node_rewriter,
)
from pytensor.scalar import basic as ps
from pytensor.tensor.basic import Alloc, ARange
from pytensor.tensor.blas import Dot22, Dot22Scalar, _dot22
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.math import Dot, Sum
from pytensor.tensor.rewriting.ofg import inline_ofg_node
from pytensor.tensor.shape import Shape, Shape_i, SpecifyShape, specify_shape
from pytensor.tensor.special import LogSoftmax, Softmax
from pytensor.tensor.subtensor import AdvancedIncSubtensor, AdvancedSubtensor, Subtensor

try:  # PyTensor < 3.3: ``x[idx]`` with one integer vector had an op of its own
    from pytensor.tensor.subtensor import AdvancedIncSubtensor1
except ImportError:  # PyTensor >= 3.3: an ``AdvancedIncSubtensor`` with ``idx_list == (0,)``
    AdvancedIncSubtensor1 = None

from ..backend import REWRITE_TAG as TAG
from .conv import Col2Im
from .corr import Col2ImGemm
from .flat_elemwise import flat_elemwise_for, wants_flat_loop
from .indexing import IncPick, IncRows, PickRows
from .rowsum import RowSum
from .softmax import LogSoftmaxRows, SoftmaxRows
from .softmax_xent import softmax_cross_entropy_grad, softmax_cross_entropy_op

__all__ = ["TAG"]

_FLOATS = ("float32", "float64")


# -- matching helpers ----------------------------------------------------------------------
def _constant(var) -> float | None:
    """The value of a scalar-like constant (through casts and broadcasts), else None."""
    try:
        return float(pt.get_underlying_scalar_constant_value(var))
    except Exception:
        return None


def _first_dim_of(var):
    """``v`` when ``var`` is ``v.shape[0]`` (as ``Shape_i{0}`` or ``Shape(v)[0]``), else None."""
    node = var.owner
    while node is not None and isinstance(node.op, Elemwise) and len(node.inputs) == 1:
        if not isinstance(node.op.scalar_op, (ps.Cast, ps.Identity)):
            return None
        node = node.inputs[0].owner  # a cast of the length
    if node is None:
        return None
    if isinstance(node.op, Shape_i) and node.op.i == 0:
        return node.inputs[0]
    if isinstance(node.op, Subtensor) and node.op.idx_list == (0,):
        shape = node.inputs[0].owner
        if shape is not None and isinstance(shape.op, Shape) and _constant(node.inputs[1]) == 0:
            return shape.inputs[0]
    from pytensor.tensor.basic import ScalarFromTensor

    if isinstance(node.op, ScalarFromTensor):
        return _first_dim_of(node.inputs[0])
    return None


def _same_rows(fgraph, a, b) -> bool:
    if a is b:
        return True
    feature = getattr(fgraph, "shape_feature", None)
    return feature is not None and feature.same_shape(a, b, 0, 0)


def _is_row_arange(fgraph, var, matrix) -> bool:
    """``var`` is ``arange(matrix.shape[0])`` (start 0, step 1)."""
    node = var.owner
    if node is None or not isinstance(node.op, ARange):
        return False
    start, stop, step = node.inputs
    if _constant(start) != 0 or _constant(step) != 1:
        return False
    rows_of = _first_dim_of(stop)
    return rows_of is not None and _same_rows(fgraph, rows_of, matrix)


def _pick_args(fgraph, var):
    """``(m, y)`` when ``var`` picks ``m[arange(n), y]`` (either form), else None."""
    node = var.owner
    if node is None:
        return None
    if isinstance(node.op, PickRows):
        return tuple(node.inputs)
    if isinstance(node.op, AdvancedSubtensor) and node.op.idx_list == (0, 1):
        m, rows, y = node.inputs
        if m.type.ndim == 2 and y.type.ndim == 1 and _is_row_arange(fgraph, rows, m):
            return m, y
    return None


def _is_zeros(var) -> bool:
    node = var.owner
    if node is not None and isinstance(node.op, Alloc):
        return _constant(node.inputs[0]) == 0
    return _constant(var) == 0 if var.type.ndim == 0 else False


def _zero_inc_pick(var):
    """``(a, y)`` when ``var`` is ``inc_pick(zeros, a, y)``, else None."""
    node = var.owner
    if node is not None and isinstance(node.op, IncPick) and _is_zeros(node.inputs[0]):
        return node.inputs[1], node.inputs[2]
    return None


def _is_elemwise(var, scalar_op) -> bool:
    node = var.owner
    return (
        node is not None
        and isinstance(node.op, Elemwise)
        and isinstance(node.op.scalar_op, scalar_op)
    )


def _row_softmax_input(var):
    """``z`` when ``var`` is a softmax over the rows of the matrix ``z``, else None."""
    node = var.owner
    if node is None or var.type.ndim != 2:
        return None
    if isinstance(node.op, SoftmaxRows):
        return node.inputs[0]
    if isinstance(node.op, Softmax) and node.op.axis in ((1,), (-1,)):
        return node.inputs[0]
    return None


def _unbroadcast(var):
    """The vector ``var`` was broadcast from (``alloc``/``broadcast_to``), or ``var``."""
    node = var.owner
    if node is not None and type(node.op).__name__ in ("Alloc", "BroadcastTo"):
        src = node.inputs[0]
        if src.type.ndim == 1:
            return src
    return var


def _cast(var, dtype):
    return var if var.type.dtype == dtype else pt.cast(var, dtype)


# -- 1. indexing -------------------------------------------------------------------------
@node_rewriter([AdvancedSubtensor])
def pick_rows_rewrite(fgraph, node):
    args = _pick_args(fgraph, node.outputs[0])
    if args is None or node.outputs[0].type.ndim != 1:
        return None
    return [PickRows()(*args)]


@node_rewriter([AdvancedIncSubtensor])
def inc_pick_rewrite(fgraph, node):
    if node.op.idx_list != (0, 1) or len(node.inputs) != 4:
        return None
    x, g, rows, y = node.inputs
    if x.type.ndim != 2 or y.type.ndim != 1 or g.type.ndim > 1:
        return None
    if g.type.dtype != x.type.dtype or not _is_row_arange(fgraph, rows, x):
        return None
    return [IncPick(node.op.set_instead_of_inc)(x, g, y)]


def _is_inc_rows(node) -> bool:
    """``inc_subtensor(x[idx], v)`` with one integer vector ``idx`` on the first axis."""
    if AdvancedIncSubtensor1 is not None and isinstance(node.op, AdvancedIncSubtensor1):
        return True
    return (
        isinstance(node.op, AdvancedIncSubtensor)
        and getattr(node.op, "idx_list", None) == (0,)
        and len(node.inputs) == 3
        and node.inputs[2].type.ndim == 1
        and node.inputs[2].type.dtype.startswith(("int", "uint"))
    )


@node_rewriter([AdvancedIncSubtensor1 or AdvancedIncSubtensor])
def inc_rows_rewrite(fgraph, node):
    if not _is_inc_rows(node):
        return None
    x, v, idx = node.inputs
    if x.type.ndim < 2 or v.type.ndim != x.type.ndim or v.type.dtype != x.type.dtype:
        return None
    if any(vb and not xb for vb, xb in zip(v.type.broadcastable[1:], x.type.broadcastable[1:])):
        return None  # v broadcast along a row dimension: leave it to PyTensor
    return [IncRows(node.op.set_instead_of_inc)(x, v, idx)]


# -- 2. the fused forward ------------------------------------------------------------------
@node_rewriter([PickRows])
def log_softmax_pick_rewrite(fgraph, node):
    m, y = node.inputs
    owner = m.owner
    if owner is None or m.type.dtype not in _FLOATS:
        return None
    is_log_softmax = isinstance(owner.op, LogSoftmaxRows) or (
        isinstance(owner.op, LogSoftmax) and owner.op.axis in ((1,), (-1,))
    )
    if not is_log_softmax:
        return None
    return [-softmax_cross_entropy_op(owner.inputs[0], y)]


# -- 3. the gradient ----------------------------------------------------------------------
@node_rewriter([Sum])
def sum_inc_pick_rewrite(fgraph, node):
    match = _zero_inc_pick(node.inputs[0])
    if match is None or node.op.axis not in ((1,), (-1,)):
        return None
    a, _ = match
    x = node.inputs[0]
    if a.type.shape[0] == 1:  # one value for every row
        a = pt.alloc(a, x.shape[0])
    elif not _same_rows(fgraph, a, x):
        return None
    return [_cast(a, node.outputs[0].type.dtype)]


@node_rewriter([Elemwise])
def mul_inc_pick_rewrite(fgraph, node):
    if not isinstance(node.op.scalar_op, ps.Mul) or node.outputs[0].type.ndim != 2:
        return None
    hits = [i for i, v in enumerate(node.inputs) if _zero_inc_pick(v) is not None]
    if len(hits) != 1:
        return None
    a, y = _zero_inc_pick(node.inputs[hits[0]])
    others = [v for i, v in enumerate(node.inputs) if i != hits[0]]
    if any(v.type.broadcastable != (False, False) for v in others):
        return None  # broadcast factors: leave the product alone
    a = _cancel(fgraph, a, others, y)
    for b in others:
        a = a * PickRows()(b, y)
    zeros = node.inputs[hits[0]].owner.inputs[0]  # of the product's shape
    if zeros.type != node.outputs[0].type:
        return None
    return [IncPick()(zeros, _cast(a, zeros.type.dtype), y)]


def _factors(var, depth: int = 4) -> tuple[list, list]:
    """``var`` as numerator and denominator factors (through products, quotients and
    negations, ``depth`` levels deep)."""
    node = var.owner
    if depth == 0 or node is None or not isinstance(node.op, Elemwise):
        return [var], []
    scalar = node.op.scalar_op
    if isinstance(scalar, ps.Mul):
        parts = [_factors(v, depth - 1) for v in node.inputs]
        return [f for p in parts for f in p[0]], [f for p in parts for f in p[1]]
    if isinstance(scalar, ps.TrueDiv):
        (num_a, den_a), (num_b, den_b) = (_factors(v, depth - 1) for v in node.inputs)
        return num_a + den_b, den_a + num_b
    if isinstance(scalar, ps.Neg):
        num, den = _factors(node.inputs[0], depth - 1)
        return [pt.constant(-1, dtype=var.type.dtype), *num], den
    return [var], []


def _cancel(fgraph, a, others, y):
    """``a`` with each denominator factor ``pick(b, y)``, ``b`` in ``others``, cancelled
    against that ``b`` (removed from ``others``); ``a`` itself when nothing cancels."""
    num, den = _factors(a)
    kept = []
    for d in den:
        picked = _pick_args(fgraph, d)
        match = None
        if picked is not None and picked[1] is y:
            match = next((i for i, b in enumerate(others) if b is picked[0]), None)
        if match is None:
            kept.append(d)
        else:
            del others[match]
    if len(kept) == len(den):
        return a
    out = num[0]
    for f in num[1:]:
        out = out * f
    for d in kept:
        out = out / d
    return out


@node_rewriter([Elemwise])
def softmax_xent_grad_rewrite(fgraph, node):
    if not isinstance(node.op.scalar_op, ps.Sub) or node.outputs[0].type.ndim != 2:
        return None
    left, right = node.inputs
    match = _zero_inc_pick(left)
    if match is None or not _is_elemwise(right, ps.Mul) or len(right.owner.inputs) != 2:
        return None
    a, y = match
    for s, col in (right.owner.inputs, reversed(right.owner.inputs)):
        z = _row_softmax_input(s)
        if z is None or z.type.dtype not in _FLOATS:
            continue
        col_node = col.owner
        if col_node is None or not isinstance(col_node.op, DimShuffle):
            continue
        if col_node.op.new_order != (0, "x"):
            continue
        if _unbroadcast(col_node.inputs[0]) is _unbroadcast(a):
            # the gradient is linear in its per-row weights: negate those, not the matrix
            grad = softmax_cross_entropy_grad(-_unbroadcast(a), z, y)
            return [_cast(grad, node.outputs[0].type.dtype)]
    return None


# -- 4. the shape of a weight gradient ------------------------------------------------------
@node_rewriter([SpecifyShape])
def specify_shape_of_product_rewrite(fgraph, node):
    """``specify_shape(dot(a, b), (r, c))`` -> ``dot(specify_shape(a, (r, None)),
    specify_shape(b, (None, c)))``: the gradient of a first layer whose input has no static
    width carries the weight's shape this way, and the ``SpecifyShape`` between the product
    and the update ``W - lr * grad`` keeps PyTensor from making them one in-place GEMM."""
    product, *dims = node.inputs
    owner = product.owner
    if owner is None or not isinstance(owner.op, (Dot, Dot22)) or product.type.ndim != 2:
        return None
    a, b = owner.inputs
    if a.type.ndim != 2 or b.type.ndim != 2:
        return None
    rows, cols = (None if _is_none(d) else d for d in dims)
    a = a if rows is None else specify_shape(a, (rows, None))
    b = b if cols is None else specify_shape(b, (None, cols))
    out = owner.op(a, b)
    return [out] if out.type == node.outputs[0].type else [specify_shape(out, dims)]


def _is_none(dim) -> bool:
    from pytensor.tensor.type_other import NoneConst

    return dim is NoneConst or (dim.owner is None and str(dim.type) == "NoneTypeT")


# -- 5. the remaining softmax ops -----------------------------------------------------------
@node_rewriter([Softmax, LogSoftmax])
def softmax_to_c_rewrite(fgraph, node):
    (z,) = node.inputs
    if z.type.ndim == 2 and z.type.dtype in _FLOATS and node.op.axis in ((1,), (-1,)):
        op = SoftmaxRows() if isinstance(node.op, Softmax) else LogSoftmaxRows()
        return [op(z)]
    return inline_ofg_node(node)


_FUSION = [
    pick_rows_rewrite,
    inc_pick_rewrite,
    inc_rows_rewrite,
    log_softmax_pick_rewrite,
    sum_inc_pick_rewrite,
    mul_inc_pick_rewrite,
    softmax_xent_grad_rewrite,
    specify_shape_of_product_rewrite,
]

# after PyTensor's stabilisation (1.5) and before its specialisation (2): shapes are known
# (the shape feature is attached at 0.1) and log(softmax) is already log_softmax
optdb.register(
    "symnn_fusion",
    EquilibriumGraphRewriter(_FUSION, ignore_newtrees=False, max_use_ratio=10),
    TAG,
    position=1.6,
)
# late, once every recognition has had its chance (PyTensor's specialisation creates some of
# the indexing nodes, e.g. the gradient of x[idx] * w)
optdb.register(
    "symnn_softmax_c",
    EquilibriumGraphRewriter(
        [*_FUSION, softmax_to_c_rewrite], ignore_newtrees=False, max_use_ratio=10
    ),
    TAG,
    position=48.9,
)


@node_rewriter([Elemwise])
def flat_elemwise_rewrite(fgraph, node):
    """An elementwise node of many operands (a fused optimiser update) -> the same node with
    a flat loop for contiguous operands (:mod:`symnn.ops.flat_elemwise`)."""
    if not wants_flat_loop(node):
        return None
    return flat_elemwise_for(node).make_node(*node.inputs).outputs


# last, after PyTensor's fusion (49) and in-place rewrites: the nodes keep their destroy map
optdb.register(
    "symnn_flat_elemwise",
    WalkingGraphRewriter(flat_elemwise_rewrite),
    TAG,
    position=99,
)


@node_rewriter([Col2Im])
def col2im_gemm_rewrite(fgraph, node):
    """C mode: ``Col2Im(Dot22(a, gz))`` -> :class:`~symnn.ops.corr.Col2ImGemm` ``(a.T, gz)`` (when
    nothing else reads the product: the gradient of the whole batch's patch matrix)."""
    cols, like = node.inputs
    if cols.owner is None or cols.owner.op != _dot22 or len(fgraph.clients[cols]) != 1:
        return None
    a, gz = cols.owner.inputs
    if like.type.dtype not in ("float32", "float64") or a.type.dtype != like.type.dtype:
        return None
    op = node.op
    fused = Col2ImGemm(*op._geometry(), ones_row=op.ones_row)(a.T, gz, like)
    return [pt.specify_shape(fused, node.outputs[0].type.shape)]


optdb.register(
    "symnn_col2im_gemm",
    WalkingGraphRewriter(col2im_gemm_rewrite),
    TAG,
    position=48.8,
)


@node_rewriter([Sum])
def row_sum_rewrite(fgraph, node):
    """``x.sum(axis=1)`` of a float matrix -> :class:`~symnn.ops.rowsum.RowSum` (the same
    float64 accumulation, eight accumulators per row)."""
    x = node.inputs[0]
    if x.type.ndim != 2 or node.op.axis not in ((1,), (-1,)):
        return None
    if x.type.dtype not in ("float32", "float64") or node.outputs[0].type.dtype != x.type.dtype:
        return None
    if getattr(node.op, "acc_dtype", "float64") not in ("float64", None):
        return None
    return [RowSum()(x)]


optdb.register(
    "symnn_row_sum",
    WalkingGraphRewriter(row_sum_rewrite),
    TAG,
    position=99.1,
)


@node_rewriter([Dot22Scalar, Dot22])
def shared_product_rewrite(fgraph, node):
    """One GEMM per product: ``Dot22Scalar(a, b, s)`` beside ``Dot22(a, b)`` becomes ``s *
    Dot22(a, b)``, and ``Dot22`` of shape-asserted inputs beside the same ``Dot22`` of the plain
    inputs becomes that one. PyTensor's scalar folding and symnn's shape assertions otherwise
    compute a product two or three times (the density prior's projection ``z @ C.T``, used by
    the penalty and by its gradient); a scaling is one elementwise product, fused later."""
    a, b = node.inputs[:2]
    wrapped = _unwrapped(a) is not a or _unwrapped(b) is not b
    if node.op == _dot22 and not wrapped:
        return None  # a plain product is the one others are replaced by
    for other in fgraph.apply_nodes:
        if other is node or other.op != _dot22:
            continue
        plain = _unwrapped(other.inputs[0]) is other.inputs[0]
        plain = plain and _unwrapped(other.inputs[1]) is other.inputs[1]
        if plain and _same_value(other.inputs[0], a) and _same_value(other.inputs[1], b):
            out = other.outputs[0]
            out = out if node.op == _dot22 else out * node.inputs[2]
            return [pt.specify_shape(out, node.outputs[0].type.shape)]
    return None


def _unwrapped(v):
    while v.owner is not None and isinstance(v.owner.op, SpecifyShape):
        v = v.owner.inputs[0]
    return v


def _same_value(u, v, depth: int = 3) -> bool:
    """Whether ``u`` and ``v`` compute the same value: the same variable, or the same op on
    inputs of the same value (a shape assertion left out), a few levels deep."""
    u, v = _unwrapped(u), _unwrapped(v)
    if u is v or (isinstance(u, Constant) and isinstance(v, Constant) and u.equals(v)):
        return True
    if depth == 0 or u.owner is None or v.owner is None or u.owner.op != v.owner.op:
        return False
    if u.owner.outputs.index(u) != v.owner.outputs.index(v):
        return False
    pairs = zip(u.owner.inputs, v.owner.inputs)
    return len(u.owner.inputs) == len(v.owner.inputs) and all(
        _same_value(a, b, depth - 1) for a, b in pairs
    )


# right after PyTensor's BLAS rewrites (1.7), and again after symnn's late rewrites (48.9,
# which assert the shapes of products), both before the elementwise fusion (49)
for _name, _position in (("symnn_shared_product", 1.75), ("symnn_shared_product_late", 48.95)):
    optdb.register(_name, WalkingGraphRewriter(shared_product_rewrite), TAG, position=_position)


# -- JAX: reductions return the dtype their type says ------------------------------------------
#: the tag of rewrites only symnn's JAX mode runs
JAX_TAG = "symnn_jax"


@node_rewriter([Sum])
def jax_sum_dtype_rewrite(fgraph, node):
    """``Sum`` of float32 accumulates in float64 (``acc_dtype``); PyTensor's JAX
    implementation returns the accumulator (float64) instead of the node's float32, and the
    float64 spreads into every value computed from it (weights updated with a mean loss
    become float64 arrays). In JAX mode the sum accumulates in its own dtype (XLA sums
    pairwise)."""
    op, out = node.op, node.outputs[0]
    if getattr(op, "acc_dtype", None) in (None, out.type.dtype):
        return None
    return [Sum(axis=op.axis, dtype=out.type.dtype, acc_dtype=out.type.dtype)(node.inputs[0])]


optdb.register(
    "symnn_jax_sum_dtype",
    WalkingGraphRewriter(jax_sum_dtype_rewrite),
    JAX_TAG,
    position=99.2,
)
