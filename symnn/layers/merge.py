"""Layers that take several tensors: concatenation, sums, products and maxima (Lasagne's
``ConcatLayer`` and ``ElemwiseMergeLayer``; Keras' ``Concatenate``, ``Add``, ``Multiply``,
``Maximum``). A merge layer is called on a list: ``Add()([h, x])``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import INTEGER_DTYPES, describe
from .base import Layer, register, tag_call
from .elementwise import divide, power

__all__ = ["MergeLayer", "Concat", "Add", "Multiply", "Maximum", "Minimum", "Divide",
           "Power", "MatMul"]


class MergeLayer(Layer):
    """Base class of layers called on a list of tensors of one type (float; integer and
    boolean ones too for the layers with ``integer_ok``)."""

    any_dtype = True
    #: the second input may have another type than the first (Power's exponent)
    mixed_types = False

    def __call__(self, xs, *, deterministic: bool = False):
        xs = self._check_inputs(xs)
        out = self.get_output_for(xs, deterministic=deterministic)
        return tag_call(self, xs, out, as_list=True)

    def _check_inputs(self, xs) -> list:
        if not isinstance(xs, list | tuple) or len(xs) < 2:
            raise SymnnTypeError(
                f"{type(self).__name__}{self._label()} is called on a list of at least two "
                f"tensors (e.g. {type(self).__name__}()([h, x])); got {describe(xs)}."
            )
        xs = [Layer._check_input(self, x) for x in xs]
        dtypes = {x.type.dtype for x in xs}
        if len(dtypes) > 1 and not (self.mixed_types and len(xs) == 2):
            raise SymnnTypeError(
                f"{type(self).__name__}{self._label()} inputs mix {sorted(dtypes)}; expected one "
                "type."
            )
        self._check_shapes([x.type.shape for x in xs])
        return xs

    def _check_shapes(self, shapes: list[tuple]) -> None:
        """Elementwise merges: every input of one shape (static sizes compared)."""
        _same_shapes(self, shapes, skip_axis=None)

    def output_shape(self, input_shape):
        return input_shape  # the per-sample shape of each input (elementwise merges)


def _same_shapes(layer: Layer, shapes: list[tuple], skip_axis: int | None) -> None:
    ndims = {len(s) for s in shapes}
    if len(ndims) > 1:
        raise SymnnValueError(
            f"{type(layer).__name__}{layer._label()} inputs have {sorted(ndims)} axes; expected "
            f"one number of axes (input shapes {_shapes_text(shapes)})."
        )
    for axis in range(1, len(shapes[0])):
        if axis == skip_axis:
            continue
        sizes = {s[axis] for s in shapes if s[axis] is not None}
        if len(sizes) > 1:
            raise SymnnValueError(
                f"{type(layer).__name__}{layer._label()} inputs differ on axis {axis} "
                f"(per-sample shapes {_shapes_text(shapes)}); expected equal sizes"
                + (f" except on axis {skip_axis}." if skip_axis is not None else ".")
            )


def _shapes_text(shapes: list[tuple]) -> str:
    return ", ".join(str(tuple("?" if d is None else d for d in s[1:])) for s in shapes)


@register
class Concat(MergeLayer):
    """Join tensors along ``axis`` (1: features of matrices, channels of images), as
    ``torch.cat(xs, dim=axis)``.

    >>> import pytensor.tensor as pt
    >>> a, b = pt.matrix("a", shape=(None, 2)), pt.matrix("b", shape=(None, 3))
    >>> Concat()([a, b]).type.shape
    (None, 5)
    """

    integer_ok = True

    def __init__(self, axis: int = 1, name: str | None = None):
        super().__init__(name)
        if not isinstance(axis, int | np.integer) or axis == 0:
            raise SymnnValueError(
                f"axis={axis!r} is not valid; expected a non-batch axis (1 or more, or negative)."
            )
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        ndim = len(shapes[0])
        axis = self.axis % ndim if -ndim <= self.axis < ndim else None
        if axis is None or axis == 0:
            raise SymnnValueError(
                f"Concat{self._label()} axis={self.axis} is not an axis of its {ndim}-axis "
                f"inputs (per-sample shapes {_shapes_text(shapes)})."
            )
        _same_shapes(self, shapes, skip_axis=axis)

    def get_output_for(self, xs, *, deterministic: bool = False):
        return pt.concatenate(xs, axis=self.axis)

    def output_shape(self, input_shape):
        return None


@register
class Add(MergeLayer):
    """The sum of tensors of one shape, each times its coefficient (Lasagne's
    ``ElemwiseSumLayer``: ``coeffs`` a number for all, or one per input).

    >>> import pytensor.tensor as pt
    >>> a, b = pt.matrix("a"), pt.matrix("b")
    >>> Add(coeffs=[1, -1])([a, b]).eval({a: [[3.0]], b: [[1.0]]})
    array([[2.]])
    """

    integer_ok = True

    def __init__(self, coeffs: float | Sequence[float] = 1, name: str | None = None):
        super().__init__(name)
        values = [coeffs] if np.isscalar(coeffs) else list(coeffs)
        try:
            values = [float(c) for c in values]
        except (TypeError, ValueError):
            raise SymnnTypeError(f"coeffs must be numbers; got {coeffs!r}.") from None
        if not all(np.isfinite(values)):
            raise SymnnValueError(f"coeffs={coeffs!r} must be finite numbers.")
        self.coeffs = coeffs if np.isscalar(coeffs) else values

    def get_output_for(self, xs, *, deterministic: bool = False):
        coeffs = self.coeffs if isinstance(self.coeffs, list) else [self.coeffs] * len(xs)
        if len(coeffs) != len(xs):
            raise SymnnValueError(
                f"Add{self._label()} has {len(coeffs)} coeffs for {len(xs)} inputs; expected one "
                "per input."
            )
        total = None
        for c, x in zip(coeffs, xs):
            if total is not None and c == -1:  # exact for unsigned integers too
                total = total - x
                continue
            if x.dtype in INTEGER_DTYPES and c != int(c):
                raise SymnnValueError(f"Add{self._label()} coefficient {c} of an integer "
                                      f"tensor ({x.dtype}) must be an integer.")  # fmt: skip
            term = x if c == 1 else x * np.asarray(c, dtype=x.dtype)
            total = term if total is None else total + term
        return total


@register
class Multiply(MergeLayer):
    """The elementwise product of tensors of one shape."""

    integer_ok = True

    def __init__(self, name: str | None = None):
        super().__init__(name)

    def get_output_for(self, xs, *, deterministic: bool = False):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


@register
class Maximum(MergeLayer):
    """The elementwise maximum of tensors of one shape (NaN propagates, as ``torch.maximum``)."""

    integer_ok = True

    def __init__(self, name: str | None = None):
        super().__init__(name)

    def get_output_for(self, xs, *, deterministic: bool = False):
        out = xs[0]
        for x in xs[1:]:
            out = pt.maximum(out, x)
        return out


@register
class Minimum(MergeLayer):
    """The elementwise minimum of tensors of one shape (NaN propagates, as ``torch.minimum``)."""

    integer_ok = True

    def __init__(self, name: str | None = None):
        super().__init__(name)

    def get_output_for(self, xs, *, deterministic: bool = False):
        out = xs[0]
        for x in xs[1:]:
            out = pt.minimum(out, x)
        return out


@register
class Divide(MergeLayer):
    """The elementwise quotient ``a / b`` of two tensors of one shape (ONNX's ``Div`` of two
    tensors; division by 0 gives infinity or NaN, as ``torch.div``; integers: truncated, see
    :func:`~symnn.layers.elementwise.divide`)."""

    integer_ok = True

    def __init__(self, name: str | None = None):
        super().__init__(name)

    def _check_shapes(self, shapes: list[tuple]) -> None:
        if len(shapes) != 2:
            raise SymnnValueError(
                f"Divide{self._label()} takes two tensors (a / b); got {len(shapes)}."
            )
        super()._check_shapes(shapes)

    def get_output_for(self, xs, *, deterministic: bool = False):
        return divide(xs[0], xs[1])


@register
class Power(MergeLayer):
    """The elementwise power ``a ** b`` of two tensors of one shape, of ``a``'s type
    (ONNX's ``Pow`` of two tensors, ``b`` of any type, see
    :func:`~symnn.layers.elementwise.power`; a negative base with a fractional exponent gives
    NaN, as ``torch.pow``).

    >>> import numpy as np, pytensor.tensor as pt
    >>> a, b = pt.matrix("a", dtype="float64"), pt.matrix("b", dtype="float64")
    >>> Power()([a, b]).eval({a: np.array([[2.0, -1.0]]), b: np.array([[3.0, 0.5]])})
    array([[ 8., nan]])
    """

    integer_ok = True
    mixed_types = True

    def __init__(self, name: str | None = None):
        super().__init__(name)

    def _check_shapes(self, shapes: list[tuple]) -> None:
        if len(shapes) != 2:
            raise SymnnValueError(
                f"Power{self._label()} takes two tensors (a ** b); got {len(shapes)}."
            )
        super()._check_shapes(shapes)

    def get_output_for(self, xs, *, deterministic: bool = False):
        return power(xs[0], xs[1])


@register
class MatMul(MergeLayer):
    """The matrix product ``a @ b`` of two tensors, sample by sample (ONNX's ``MatMul`` of two
    tensors, ``torch.matmul`` of batch-first tensors): per-sample shapes ``(..., n, k)`` and
    ``(..., k, m)`` give ``(..., n, m)``, leading axes broadcast as in numpy.

    >>> import numpy as np, pytensor.tensor as pt
    >>> a, b = pt.tensor3("a", dtype="float64"), pt.tensor3("b", dtype="float64")
    >>> MatMul()([a, b]).eval({a: np.ones((2, 1, 3)), b: np.ones((2, 3, 2))}).tolist()
    [[[3.0, 3.0]], [[3.0, 3.0]]]
    """

    def __init__(self, name: str | None = None):
        super().__init__(name)

    def _check_shapes(self, shapes: list[tuple]) -> None:
        if len(shapes) != 2 or min(len(s) for s in shapes) < 3:
            raise SymnnValueError(
                f"MatMul{self._label()} takes two tensors of matrices per sample (a @ b); got "
                f"per-sample shapes {_shapes_text(shapes)}."
            )
        (*_, k), (*_, k2, _m) = shapes
        if None not in (k, k2) and k != k2:
            raise SymnnValueError(
                f"MatMul{self._label()}: the inner sizes differ ({k} and {k2}; per-sample "
                f"shapes {_shapes_text(shapes)})."
            )

    def get_output_for(self, xs, *, deterministic: bool = False):
        a, b = xs
        while a.ndim < b.ndim:  # the batch axis stays first
            a = pt.shape_padaxis(a, 1)
        while b.ndim < a.ndim:
            b = pt.shape_padaxis(b, 1)
        return pt.matmul(a, b)

    def output_shape(self, input_shape):
        return None

