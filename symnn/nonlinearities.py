"""Nonlinearities: pure symbolic functions of a tensor.

Each function takes a symbolic tensor and returns one. ``softmax`` and ``log_softmax`` work
over the last axis (rows of a matrix) and are numerically stable; ``grouped_softmax``
takes a softmax separately over consecutive column groups.

>>> import pytensor.tensor as pt, numpy as np
>>> x = pt.matrix("x", dtype="float32")
>>> softmax(x).eval({x: np.array([[1000.0, 1000.0]], dtype="float32")})
array([[0.5, 0.5]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedGrad, disconnected_grad, zero_grad
from pytensor.tensor import TensorLike, TensorVariable

from .errors import SymnnTypeError, SymnnValueError
from .ops.rewrites import _constant, _is_elemwise

__all__ = [
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "softplus",
    "linear",
    "exp",
    "softmax",
    "log_softmax",
    "grouped_softmax",
    "get",
    "name_of",
    "NAMES",
]


def sigmoid(x: TensorLike) -> TensorVariable:
    r"""Logistic sigmoid :math:`1 / (1 + e^{-x})`."""
    return pt.sigmoid(x)


def tanh(x: TensorLike) -> TensorVariable:
    """Hyperbolic tangent."""
    return pt.tanh(x)


def relu(x: TensorLike) -> TensorVariable:
    """Rectified linear unit ``max(x, 0)``; NaN stays NaN, and the gradient is PyTorch's:
    0 at and below 0, 1 above it and at NaN.

    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> x = pt.vector("x", dtype="float32")
    >>> v = np.array([-1, 0, 2, np.nan], dtype="float32")
    >>> relu(x).eval({x: v}), pytensor.grad(relu(x).sum(), x).eval({x: v})
    (array([ 0.,  0.,  2., nan], dtype=float32), array([0., 0., 1., 1.], dtype=float32))
    """
    x = pt.as_tensor_variable(x)
    # no gradient through the tests of this module's functions: PyTensor's zero gradient
    # of a comparison is of floatX (float64 by default) and would upcast a float32 gradient
    return pt.switch(disconnected_grad(x) <= 0, 0, x)


def relu_input(y: TensorVariable) -> TensorVariable | None:
    """``x`` when ``y`` is :func:`relu` ``(x)`` as built by that function, else None (for
    rewrites that move a rectifier, e.g. after a max pooling, with which it commutes)."""
    if not _is_elemwise(y, ps.Switch):
        return None
    cond, zero, x = y.owner.inputs
    if not _is_elemwise(cond, ps.LE):
        return None
    tested = cond.owner.inputs[0].owner
    if tested is None or not isinstance(tested.op, DisconnectedGrad) or tested.inputs[0] is not x:
        return None
    return x if _constant(zero) == 0 and _constant(cond.owner.inputs[1]) == 0 else None


def leaky_relu(x: TensorLike, alpha: float = 0.01) -> TensorVariable:
    """Leaky rectifier: ``x`` for ``x > 0``, ``alpha * x`` otherwise (the gradient is
    ``alpha`` at 0 and at NaN, as PyTorch's)."""
    alpha = pt.as_tensor_variable(np.asarray(alpha, dtype=x.dtype))
    return pt.switch(disconnected_grad(x) > 0, x, alpha * x)


def elu(x: TensorLike, alpha: float = 1.0) -> TensorVariable:
    """Exponential linear unit: ``alpha * (exp(x) - 1)`` for ``x <= 0``, ``x`` otherwise (the
    gradient is ``alpha`` at 0 and 1 at NaN, as PyTorch's)."""
    alpha = pt.as_tensor_variable(np.asarray(alpha, dtype=x.dtype))
    return pt.switch(disconnected_grad(x) <= 0, alpha * pt.expm1(pt.minimum(x, 0)), x)


def softplus(x: TensorLike) -> TensorVariable:
    """Softplus ``log(1 + exp(x))``, computed stably."""
    return pt.softplus(x)


def linear(x: TensorLike) -> TensorVariable:
    """The identity."""
    return x


def exp(x: TensorLike) -> TensorVariable:
    """The exponential (the output of a Poisson regression: a log link)."""
    return pt.exp(x)


#: tag naming the logits of a :func:`softmax` output (``symnn.costs`` uses it for stability)
SOFTMAX_TAG = "symnn_softmax_of"


def softmax(x: TensorLike) -> TensorVariable:
    """Softmax over the last axis (each row of a matrix sums to 1), stable for large inputs.

    PyTensor's ``Softmax`` op; symnn's compile mode runs it as C code
    (:mod:`symnn.ops.rewrites`), and ``symnn.costs`` reads the logits back from it.
    """
    x = pt.as_tensor_variable(x)
    out = pt.special.softmax(x, axis=-1)
    setattr(out.tag, SOFTMAX_TAG, x)
    return out


def log_softmax(x: TensorLike) -> TensorVariable:
    """Logarithm of :func:`softmax` (``x - max - log(sum(exp(x - max)))``), stable.

    PyTensor's ``LogSoftmax`` op, so that ``-log_softmax(z)[arange(n), y]`` compiles to
    symnn's fused softmax cross-entropy (:mod:`symnn.ops.rewrites`).
    """
    return pt.special.log_softmax(pt.as_tensor_variable(x), axis=-1)


def _group_tables(sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column -> group map, padded gather indices and the column/group membership matrix."""
    sizes = [int(s) for s in sizes]
    n_cols, width = sum(sizes), max(sizes)
    col_group = np.repeat(np.arange(len(sizes)), sizes)
    gather = np.full((len(sizes), width), n_cols, dtype=np.int64)  # n_cols = the -inf column
    start = 0
    for g, s in enumerate(sizes):
        gather[g, :s] = np.arange(start, start + s)
        start += s
    member = np.zeros((n_cols, len(sizes)))
    member[np.arange(n_cols), col_group] = 1.0
    return col_group, gather, member


def grouped_softmax(x: TensorLike, sizes: Sequence[int]) -> TensorVariable:
    """Softmax taken separately over consecutive column groups of the given sizes.

    With ``sizes=(3, 2)`` columns 0-2 form one distribution and columns 3-4 another (seed
    004's "different number of classes per group"). The graph is vectorised: each group's
    maximum comes from one padded gather, the sums from one matrix product; there is no
    Python loop at run time. Stable for large inputs in every group.

    >>> import pytensor.tensor as pt, numpy as np
    >>> x = pt.matrix("x", dtype="float64")
    >>> p = grouped_softmax(x, (3, 2)).eval({x: np.zeros((1, 5))})
    >>> np.round(p, 3)
    array([[0.333, 0.333, 0.333, 0.5  , 0.5  ]])
    """
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise SymnnTypeError(f"sizes must be a sequence of positive ints; got {sizes!r}.") from None
    if not sizes or min(sizes) < 1:
        raise SymnnValueError(f"sizes={sizes} is not valid; expected one or more group sizes >= 1.")
    width = x.type.shape[-1] if x.type.ndim else None
    if width is not None and width != sum(sizes):
        raise SymnnValueError(
            f"sizes={sizes} add up to {sum(sizes)} columns but x has {width}; expected equal."
        )
    col_group, gather, member = _group_tables(sizes)
    neg_inf = pt.full((*x.shape[:-1], 1), -np.inf, dtype=x.dtype)
    padded = pt.concatenate([x, neg_inf], axis=-1)
    group_max = zero_grad(pt.max(padded[..., gather], axis=-1))  # (..., n_groups)
    e = pt.exp(x - group_max[..., col_group])
    sums = pt.dot(e, pt.constant(member.astype(x.dtype)))  # (..., n_groups)
    return e / sums[..., col_group]


NAMES: dict[str, Callable] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softplus": softplus,
    "linear": linear,
    "identity": linear,
    "exp": exp,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def get(activation: str | Callable | None, *, name: str = "activation") -> Callable:
    """Resolve an activation given by name (``"relu"``) or as a callable; ``None`` is linear.

    >>> get("relu") is relu
    True
    """
    if activation is None:
        return linear
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation.lower() in NAMES:
        return NAMES[activation.lower()]
    raise SymnnValueError(
        f"{name}={activation!r} is not known; expected a callable or one of {', '.join(NAMES)}."
    )


def name_of(fn: Callable) -> str | None:
    """The name :func:`get` resolves to ``fn`` (the first, for aliases), or None for a
    callable of the user's own.

    >>> name_of(relu), name_of(get(None)), name_of(lambda x: x)
    ('relu', 'linear', None)
    """
    return next((key for key, value in NAMES.items() if value is fn), None)
