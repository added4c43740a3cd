"""Layers that compute on tensors of any shape, element by element or along axes: the
activations, constant arithmetic, softmaxes and reductions that imported networks are made
of, with ONNX's operator semantics (which PyTorch's functions share). They keep no weights
but :class:`Arithmetic`'s constant, which is saved with the weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..utils import INTEGER_DTYPES, check_choice, describe
from .base import Layer, register

__all__ = ["Elementwise", "Softmax", "Arithmetic", "Reduce", "Take", "ELEMENTWISE"]

_SELU = (1.6732632423543772, 1.0507009873554805)


def _clip(x, min=None, max=None):  # noqa: A002 - ONNX's and torch.clamp's names
    """torch.clamp: NaN stays NaN; the gradient is 1 inside ``[min, max]`` (bounds included)
    and 0 outside and at NaN."""
    if min is None and max is None:
        return x
    fixed = disconnected_grad(x)
    inside, out = None, fixed
    if min is not None:
        inside = fixed >= min
        out = pt.switch(fixed < min, pt.cast(min, x.dtype), out)
    if max is not None:
        inside = fixed <= max if inside is None else inside & (fixed <= max)
        out = pt.switch(out > max, pt.cast(max, x.dtype), out)  # max wins over min, as there
    return pt.switch(inside, x, out)


def _relu(x):
    """symnn's relu (PyTorch's values and gradient, float gradients of the input's type) on
    floats; integers keep their type."""
    if x.type.dtype in INTEGER_DTYPES:
        return pt.switch(x > 0, x, 0 * x)
    return nonlinearities.relu(x)


#: op -> (function of x and the parameters, the parameters' defaults): ONNX's operators
ELEMENTWISE: dict[str, tuple[Callable, dict[str, Any]]] = {
    "relu": (_relu, {}),
    "sigmoid": (pt.sigmoid, {}),
    "tanh": (pt.tanh, {}),
    "softplus": (pt.softplus, {}),
    "leaky_relu": (nonlinearities.leaky_relu, {"alpha": 0.01}),
    "elu": (nonlinearities.elu, {"alpha": 1.0}),
    "selu": (lambda x, alpha, gamma: gamma * nonlinearities.elu(x, alpha),
             {"alpha": _SELU[0], "gamma": _SELU[1]}),  # fmt: skip
    "hard_sigmoid": (lambda x, alpha, beta: _clip(alpha * x + beta, 0.0, 1.0),
                     {"alpha": 0.2, "beta": 0.5}),  # fmt: skip
    "clip": (_clip, {"min": None, "max": None}),
    "identity": (lambda x: x, {}),
}


#: the functions that compute on integer tensors too
_INTEGER_ELEMENTWISE = ("relu", "clip", "identity")


@register
class Elementwise(Layer):
    """A function applied to every element, with ONNX's name and parameters: ``"relu"``,
    ``"sigmoid"``, ``"tanh"``, ``"softplus"``, ``"leaky_relu"`` (alpha 0.01), ``"elu"``
    (alpha 1), ``"selu"`` (alpha, gamma), ``"hard_sigmoid"`` (``max(0, min(1, alpha x +
    beta))``, alpha 0.2, beta 0.5; PyTorch's ``Hardsigmoid`` is alpha 1/6), ``"clip"`` (min,
    max; either may be None), ``"identity"``. NaN stays NaN, as in PyTorch.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor3("x", dtype="float32")
    >>> Elementwise("clip", min=0, max=6)(x).eval({x: np.full((1, 1, 2), 7, "float32")})
    array([[[6., 6.]]], dtype=float32)

    ``"relu"``, ``"clip"`` and ``"identity"`` compute on integer tensors too (ONNX's
    integer ``Relu`` and ``Clip``); the others take floats.
    """

    any_dtype = True
    integer_ok = True
    keeps_shape = True

    def __init__(self, op: str, name: str | None = None, **params: Any):
        super().__init__(name, None)
        self.op = check_choice(op, "op", ELEMENTWISE)
        fn, defaults = ELEMENTWISE[self.op]
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise SymnnTypeError(
                f"Elementwise({self.op!r}) has no parameter {unknown[0]!r}; its parameters are "
                f"{sorted(defaults) or 'none'}."
            )
        self.params_ = {**defaults, **params}
        for key, value in self.params_.items():
            if value is not None and not np.isfinite(_number(value, key)):
                raise SymnnValueError(f"{key}={value!r} must be a finite number.")
        self._fn = fn

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.type.dtype in INTEGER_DTYPES and self.op not in _INTEGER_ELEMENTWISE:
            raise SymnnTypeError(
                f"Elementwise({self.op!r}){self._label()} takes float tensors; got "
                f"{x.type.dtype} (on integers: {', '.join(_INTEGER_ELEMENTWISE)})."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        if x.type.dtype in INTEGER_DTYPES:
            return self._fn(x, **self.params_)
        # the parameters in the input's type: a float32 input gives float32 values
        params = {k: None if v is None else np.asarray(v, dtype=x.type.dtype)
                  for k, v in self.params_.items()}  # fmt: skip
        return self._fn(x, **params)

    def output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, **self.params_}


@register
class Softmax(Layer):
    """Softmax (``log=True``: its logarithm, computed stably) over ``axis`` (negative counts
    from the end; not the batch axis), PyTorch's ``Softmax(dim)`` and ONNX's opset-13
    ``Softmax(axis)``.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor3("x", dtype="float64")
    >>> Softmax(axis=1)(x).eval({x: np.zeros((1, 2, 3))})[0, :, 0]
    array([0.5, 0.5])
    """

    any_dtype = True
    keeps_shape = True

    def __init__(self, axis: int = -1, log: bool = False, name: str | None = None):
        super().__init__(name, None)
        self.axis, self.log = _int(axis, "axis"), bool(log)

    def _check_input(self, x):
        x = super()._check_input(x)
        _batch_free(self, [self.axis], x.type.ndim)
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        shifted = x - pt.max(x, axis=self.axis, keepdims=True)
        if self.log:
            return shifted - pt.log(pt.sum(pt.exp(shifted), axis=self.axis, keepdims=True))
        e = pt.exp(shifted)
        return e / pt.sum(e, axis=self.axis, keepdims=True)

    def output_shape(self, input_shape):
        if input_shape is not None:
            _batch_free(self, [self.axis], len(input_shape) + 1)
        return input_shape


def divide(a, b):
    """``a / b`` with ONNX's ``Div`` semantics: true division of floats; of integers,
    division truncated towards zero (C's, ``torch.div(a, b, rounding_mode="trunc")``); an
    integer divided by zero gives 0, numpy's result (ONNX leaves it undefined, PyTorch raises).

    >>> import numpy as np, pytensor.tensor as pt
    >>> divide(pt.as_tensor(np.int32([7, -7])), pt.as_tensor(np.int32([2, 2]))).eval()
    array([ 3, -3], dtype=int32)
    """
    if a.dtype not in INTEGER_DTYPES:
        return a / b
    q = pt.int_div(a, b)  # floor division: one more than truncation when inexact, signs differ
    inexact = pt.neq(q * b, a) & pt.neq(b, 0)
    opposite = pt.neq(pt.lt(a, 0), pt.lt(b, 0))
    return q + pt.cast(inexact & opposite, q.dtype)


def power(a, b):
    """``a ** b`` with ONNX's ``Pow`` semantics: the result has ``a``'s type; integer
    powers are computed in float64 and truncated to it (exact below 2**53).

    >>> import numpy as np, pytensor.tensor as pt
    >>> power(pt.as_tensor(np.int32([2, 4])), pt.as_tensor(np.float32([3, 0.5]))).eval()
    array([8, 2], dtype=int32)
    """
    if a.dtype not in INTEGER_DTYPES:
        return a ** pt.cast(b, a.dtype)
    return pt.cast(pt.cast(a, "float64") ** pt.cast(b, "float64"), a.dtype)


_ARITHMETIC = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": divide,
    "pow": power,
}


@register
class Arithmetic(Layer):
    """``x <op> constant`` (or ``constant <op> x`` with ``constant_first``) for ``op`` in
    add, sub, mul, div, pow, broadcast as numpy (and ONNX) broadcast, the constant aligned
    with the input's last axes (a leading axis of size 1 may stand for the batch). The
    constant is a fixed (not trainable) parameter, saved with the weights. The output has
    the input's type: on integer inputs the constant is cast to it (a power's exponent
    excepted, see :func:`power`) and division truncates (:func:`divide`).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> Arithmetic("sub", [1.0, 2.0])(x).eval({x: np.ones((1, 2), "float32")})
    array([[ 0., -1.]], dtype=float32)
    """

    any_dtype = True
    integer_ok = True

    def __init__(self, op: str, constant: Any, constant_first: bool = False,
                 name: str | None = None, *, dtype: Any = None):  # fmt: skip
        super().__init__(name, dtype)
        self.op = check_choice(op, "op", _ARITHMETIC)
        self.constant_first = bool(constant_first)
        value = np.asarray(constant, dtype=self.dtype)
        self.constant = self.add_param(value, value.shape, "constant", trainable=False,
                                       regularizable=False)  # fmt: skip

    @property
    def constant_shape(self) -> tuple[int, ...]:
        return self.constant.get_value(borrow=True).shape

    def _check_input(self, x):
        x = super()._check_input(x)
        self._broadcast(tuple(x.type.shape[1:]), x.type.ndim)
        return x

    def _broadcast(self, per_sample: tuple, ndim: int) -> tuple:
        shape = self.constant_shape
        if len(shape) > ndim or (len(shape) == ndim and shape[0] != 1):
            raise SymnnValueError(
                f"Arithmetic{self._label()} constant of shape {shape} does not broadcast over "
                f"a batch of {ndim}-axis inputs; expected at most {ndim - 1} axes (or a "
                "leading axis of size 1)."
            )
        own = shape[1:] if len(shape) == ndim else shape
        try:
            return np.broadcast_shapes(tuple(1 if s is None else s for s in per_sample), own)
        except ValueError:
            raise SymnnValueError(
                f"Arithmetic{self._label()} constant of shape {shape} does not broadcast with "
                f"inputs of per-sample shape {per_sample}."
            ) from None

    def get_output_for(self, x, *, deterministic: bool = False):
        exponent = self.op == "pow" and not self.constant_first  # of its own type (ONNX's T1)
        c = self.constant if exponent else pt.cast(self.constant, x.dtype)
        a, b = (c, x) if self.constant_first else (x, c)
        return _ARITHMETIC[self.op](a, b)

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        return tuple(self._broadcast(tuple(input_shape), len(input_shape) + 1))

    def get_config(self) -> dict[str, Any]:
        return {"op": self.op, "constant_shape": list(self.constant_shape),
                "constant_first": self.constant_first, "name": self.name,
                "dtype": self.dtype}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Arithmetic:
        """The layer with a zero constant of the saved shape (the loader sets its value)."""
        cfg = dict(config)
        shape = tuple(int(s) for s in cfg.pop("constant_shape"))
        return cls(constant=np.zeros(shape), **cfg)


_REDUCE = {"mean": pt.mean, "sum": pt.sum, "max": pt.max, "min": pt.min, "prod": pt.prod}


@register
class Reduce(Layer):
    """Reduce over ``axes`` (not the batch axis; negative counts from the end) by ``op``
    (mean, sum, max, min, prod), keeping them as size 1 with ``keepdims`` (ONNX's
    ``Reduce*``, PyTorch's ``amax(dim, keepdim)``; max and min give NaN where a NaN is, as
    PyTorch's do).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float32")
    >>> Reduce("mean", (2, 3), keepdims=False)(x).eval({x: np.ones((1, 2, 3, 3), "float32")})
    array([[1., 1.]], dtype=float32)

    On integer and boolean tensors: sum, max, min and prod, of the input's type.
    """

    any_dtype = True
    integer_ok = True

    def __init__(self, op: str, axes: Sequence[int], keepdims: bool = True,
                 name: str | None = None):  # fmt: skip
        super().__init__(name, None)
        self.op = check_choice(op, "op", _REDUCE)
        if not isinstance(axes, Sequence) or not axes:
            raise SymnnTypeError(f"axes must be a non-empty sequence of ints; got {axes!r}.")
        self.axes = [_int(a, "axes") for a in axes]
        self.keepdims = bool(keepdims)

    def _check_input(self, x):
        x = super()._check_input(x)
        _batch_free(self, self.axes, x.type.ndim)
        if x.type.dtype in INTEGER_DTYPES and self.op == "mean":
            raise SymnnTypeError(f"Reduce('mean'){self._label()} takes float tensors; got "
                                 f"{x.type.dtype}.")  # fmt: skip
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        axes = sorted(a % x.ndim for a in self.axes)
        if any(x.type.shape[a] == 0 for a in axes):
            return self._of_nothing(x, axes)
        if x.dtype in INTEGER_DTYPES and x.dtype != "bool" and self.op in ("sum", "prod"):
            # accumulated in the input's type, wrapping as numpy's and ONNX's (PyTensor's
            # default accumulates int8 in int64)
            return _REDUCE[self.op](x, axis=axes, keepdims=self.keepdims, dtype=x.dtype,
                                    acc_dtype=x.dtype)  # fmt: skip
        out = _REDUCE[self.op](x, axis=axes, keepdims=self.keepdims)
        if x.dtype in INTEGER_DTYPES:
            return pt.cast(out, x.dtype)
        if self.op in ("max", "min"):  # PyTensor's max/min skip NaN; PyTorch's give NaN
            nan = pt.any(pt.isnan(x), axis=axes, keepdims=self.keepdims)
            out = pt.switch(nan, np.asarray(np.nan, dtype=x.dtype), out)
        return out

    def _of_nothing(self, x, axes: list[int]):
        """The reduction over an empty axis: the op's identity (0 for a sum, 1 for a
        product, the lowest value for a max, the highest for a min, NaN for a mean), as
        numpy's and ONNX's, on every backend."""
        kind = np.dtype(x.dtype)
        low, high = ((np.iinfo(kind).min, np.iinfo(kind).max) if kind.kind in "iu" else
                     (False, True) if kind.kind == "b" else (-np.inf, np.inf))  # fmt: skip
        value = {"sum": 0, "prod": 1, "max": low, "min": high, "mean": np.nan}[self.op]
        dims = [1 if i in axes else x.shape[i] for i in range(x.ndim)
                if self.keepdims or i not in axes]  # fmt: skip
        return pt.full(dims, np.asarray(value, dtype=kind), dtype=kind)

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        _batch_free(self, self.axes, len(input_shape) + 1)
        axes = {a % (len(input_shape) + 1) - 1 for a in self.axes}
        if self.keepdims:
            return tuple(1 if i in axes else s for i, s in enumerate(input_shape))
        return tuple(s for i, s in enumerate(input_shape) if i not in axes)


@register
class Take(Layer):
    """The entries ``indices`` (an int, which drops the axis, or a list) along ``axis`` (not
    the batch axis; negative indices count from the end), as ``numpy.take`` and ONNX's
    ``Gather`` with constant indices: ``Take(-1, axis=1)`` is the last step of sequences.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor3("x", dtype="float32")
    >>> Take(-1, axis=1)(x).eval({x: np.arange(6, dtype="float32").reshape(1, 3, 2)})
    array([[4., 5.]], dtype=float32)
    """

    any_dtype = True
    integer_ok = True

    def __init__(self, indices: int | Sequence[int], axis: int, name: str | None = None):
        super().__init__(name, None)
        self.axis = _int(axis, "axis")
        scalar = not isinstance(indices, Sequence)
        self.indices = _int(indices, "indices") if scalar else [_int(i, "indices") for i in indices]

    def _check_input(self, x):
        x = super()._check_input(x)
        _batch_free(self, [self.axis], x.type.ndim)
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        return pt.take(x, np.asarray(self.indices, dtype="int64"), axis=self.axis)

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        _batch_free(self, [self.axis], len(input_shape) + 1)
        i = self.axis % (len(input_shape) + 1) - 1
        size = input_shape[i]
        bad = [k for k in np.atleast_1d(self.indices) if not -size <= k < size]
        if bad:
            raise SymnnValueError(f"index {bad[0]} is out of range for axis {self.axis} of size "
                                  f"{size}.")  # fmt: skip
        middle = () if isinstance(self.indices, int) else (len(self.indices),)
        return (*input_shape[:i], *middle, *input_shape[i + 1 :])


def _batch_free(layer: Layer, axes: list[int], ndim: int) -> None:
    for a in axes:
        if not -ndim <= a < ndim or a % ndim == 0:
            raise SymnnValueError(
                f"{type(layer).__name__}{layer._label()} axis {a} is "
                f"{'the batch axis' if -ndim <= a < ndim else 'out of range'} for {ndim}-axis "
                "inputs; expected an axis of the samples."
            )


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise SymnnTypeError(f"{name} must be an int; got {describe(value)}.")
    return int(value)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise SymnnTypeError(f"{name} must be a number; got {describe(value)}.")
    return float(value)
