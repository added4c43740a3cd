"""``Resize``: ONNX's ``Resize`` on any axes of the samples (nearest, linear and cubic
interpolation, every coordinate transformation, antialiasing, crop-and-resize), as one
few gathers per axis. The taps (which inputs, with which weights, each output reads) are
computed once in numpy when the layer is called; the graph gathers them along the axis and
sums them weighted, so gradients scatter back to the same taps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import describe
from .base import Layer, register

__all__ = ["Resize", "Interpolation", "interpolation_taps", "RESIZE_MODES",
           "COORDINATE_MODES", "NEAREST_MODES"]  # fmt: skip

RESIZE_MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                    "asymmetric", "tf_crop_and_resize")  # fmt: skip
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@dataclass(frozen=True)
class Interpolation:
    """How :class:`Resize` computes an output value, with the meaning and defaults of ONNX's
    ``Resize`` attributes of the same names.

    >>> Interpolation("linear", "align_corners").mode
    'linear'
    """

    mode: str = "nearest"
    coordinate_transformation_mode: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_coeff_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False
    extrapolation_value: float = 0.0

    def __post_init__(self):
        for field, choices in (("mode", RESIZE_MODES),
                               ("coordinate_transformation_mode", COORDINATE_MODES),
                               ("nearest_mode", NEAREST_MODES)):  # fmt: skip
            if getattr(self, field) not in choices:
                raise SymnnValueError(f"{field}={getattr(self, field)!r} is not known; expected "
                                      f"one of {', '.join(choices)}.")  # fmt: skip
        if self.antialias and self.mode == "nearest":
            raise SymnnValueError("antialias=True needs mode='linear' or 'cubic'; got 'nearest'.")


def _source(interp: Interpolation, n_in: int, n_out: int, scale: float, roi) -> np.ndarray:
    """The input coordinate of every output position (ONNX's coordinate transformations;
    ``length_resized`` is ``scale * n_in``, which differs from ``n_out`` when the scale
    does not divide)."""
    y, width = np.arange(n_out, dtype=np.float64), scale * n_in
    mode = interp.coordinate_transformation_mode
    if mode == "align_corners":
        return np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_crop_and_resize":
        lo, hi = roi
        if width == 1:
            return np.full(n_out, (hi - lo) * (n_in - 1) / 2 + lo * (n_in - 1))
        return y * (hi - lo) * (n_in - 1) / (width - 1) + lo * (n_in - 1)
    if mode == "pytorch_half_pixel" and width == 1:
        return np.full(n_out, -0.5)
    offset = 0.0
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
    return offset + (y + 0.5) / scale - 0.5


def _kernel(interp: Interpolation, d: np.ndarray) -> np.ndarray:
    """The linear (triangle) or cubic (Keys, coefficient ``a``) kernel at distances ``d``."""
    d = np.abs(d)
    if interp.mode == "linear":
        return np.clip(1 - d, 0, 1)
    a = interp.cubic_coeff_a
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def interpolation_taps(interp: Interpolation, n_in: int, n_out: int,
                       scale: float | None = None,
                       roi: Sequence[float] = (0.0, 1.0)) -> tuple[np.ndarray, ...]:
    """``(index, weight, outside)``: output ``i`` of a length-``n_in`` axis resized to
    ``n_out`` is ``sum_t weight[i, t] * x[index[i, t]]`` (indices clamped to the axis, ONNX's
    edge padding), or the extrapolation value where ``outside[i]`` (``tf_crop_and_resize``
    reading outside the input). ``scale`` defaults to ``n_out / n_in``. The taps start at
    the input position below, as PyTorch's kernels read them: at an exact input position the
    next one is read with weight 0, so a NaN there spreads as it does in PyTorch; nearest
    modes have one tap (a copy).

    >>> index, weight, _ = interpolation_taps(Interpolation("linear"), 2, 4)
    >>> index.tolist(), weight.tolist()
    ([[0, 0], [0, 1], [0, 1], [1, 1]], [[0.25, 0.75], [0.75, 0.25], [0.25, 0.75], [0.75, 0.25]])
    """
    scale = n_out / n_in if scale is None else float(scale)
    x = _source(interp, n_in, n_out, scale, roi)
    below = np.floor(x)
    ratio = (x - below)[:, None]
    if interp.mode == "nearest":
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
              "floor": ratio < 0, "ceil": ratio > 0}[interp.nearest_mode]  # fmt: skip
        index, w = below[:, None] + up, np.ones((n_out, 1))
    else:  # the kernel's reach, widened by 1/scale when antialiasing a shrink
        s = min(scale, 1.0) if interp.antialias else 1.0
        start = int(np.floor(-(1 if interp.mode == "linear" else 2) / s) + 1)
        offsets = np.arange(start, 2 - start)[None, :]
        index, w = below[:, None] + offsets, _kernel(interp, (offsets - ratio) * s)
        if interp.antialias:
            w = w / w.sum(axis=1, keepdims=True)
    if interp.exclude_outside:
        w = np.where((index < 0) | (index >= n_in), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    outside = np.zeros(n_out, dtype=bool)
    if interp.coordinate_transformation_mode == "tf_crop_and_resize":
        outside = (x < 0) | (x > n_in - 1)
    return np.clip(index, 0, n_in - 1).astype(np.int64), w, outside


@register
class Resize(Layer):
    """Resize the sample axes ``axes`` (the batch axis is never one) to ``sizes`` as ONNX's
    ``Resize`` does, with ``interpolation`` (an :class:`Interpolation` or a dict of its fields)
    and ``scales`` (the factors the coordinate transformation uses; default
    ``size / input size``) and ``roi`` (``tf_crop_and_resize``'s starts then ends, as
    fractions of each axis). PyTorch's ``F.interpolate(mode="bilinear", align_corners=True)``
    is ``Interpolation("linear", "align_corners")``.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor3("x", dtype="float64", shape=(None, 1, 2))
    >>> Resize([4], axes=[2], interpolation={"mode": "linear"})(x).eval(
    ...     {x: np.array([[[0.0, 1.0]]])}).tolist()
    [[[0.0, 0.25, 0.75, 1.0]]]
    """

    any_dtype = True

    def __init__(self, sizes: Sequence[int], axes: Sequence[int] = (2, 3),
                 interpolation: Interpolation | dict | None = None,
                 scales: Sequence[float] | None = None, roi: Sequence[float] | None = None,
                 name: str | None = None):  # fmt: skip
        super().__init__(name, None)
        self.sizes, self.axes = _ints(sizes, "sizes", 1), _ints(axes, "axes", 0)
        if len(self.sizes) != len(self.axes) or 0 in self.axes or len(set(self.axes)) < len(
                self.axes):  # fmt: skip
            raise SymnnValueError(
                f"Resize{self._label()} takes one size per axis, axes distinct and of the "
                f"samples (>= 1); got sizes={sizes!r}, axes={axes!r}."
            )
        if isinstance(interpolation, dict):
            interpolation = Interpolation(**interpolation)
        if not isinstance(interpolation, Interpolation | None):
            raise SymnnTypeError(f"interpolation must be an Interpolation, a dict or None; got "
                                 f"{describe(interpolation)}.")  # fmt: skip
        self.interpolation = interpolation or Interpolation()
        self.scales = None if scales is None else _floats(scales, "scales", len(self.axes), 0)
        self.roi = None if roi is None else _floats(roi, "roi", 2 * len(self.axes), None)

    def _taps(self, shape: tuple) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        for k, (axis, size) in enumerate(zip(self.axes, self.sizes)):
            if axis >= len(shape) or shape[axis] is None:
                raise SymnnValueError(
                    f"Resize{self._label()} needs the input's size on axis {axis}; the input "
                    f"has shape {shape} (put a Reshape or an Input with the sample shape first)."
                )
            scale = None if self.scales is None else self.scales[k]
            roi = (0.0, 1.0) if self.roi is None else (self.roi[k], self.roi[len(self.axes) + k])
            out.append((axis, *interpolation_taps(self.interpolation, shape[axis], size, scale,
                                                  roi)))  # fmt: skip
        return out

    def _check_input(self, x):
        x = super()._check_input(x)
        self._taps(x.type.shape)
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        for axis, index, weight, outside in self._taps(x.type.shape):
            along = [1] * x.ndim
            along[axis] = len(index)
            out = 0
            for t in range(index.shape[1]):
                picked = pt.take(x, pt.constant(index[:, t]), axis=axis)
                out = out + picked * pt.constant(weight[:, t].reshape(along).astype(x.dtype))
            if outside.any():
                fill = np.asarray(self.interpolation.extrapolation_value, dtype=x.dtype)
                out = pt.switch(pt.constant(outside.reshape(along)), fill, out)
            x = out
        return x

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        shape = list(input_shape)
        if max(self.axes) > len(shape):
            raise SymnnValueError(f"Resize{self._label()} axes {self.axes} do not fit samples "
                                  f"of shape {tuple(input_shape)}.")  # fmt: skip
        for axis, size in zip(self.axes, self.sizes):
            shape[axis - 1] = size
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "axes": self.axes, "interpolation": asdict(self.interpolation),
                "scales": self.scales, "roi": self.roi, "name": self.name}  # fmt: skip


def _ints(values: Any, name: str, low: int) -> list[int]:
    try:
        out = [int(v) for v in values]
    except (TypeError, ValueError):
        raise SymnnTypeError(
            f"{name} must be a sequence of ints; got {describe(values)}."
        ) from None
    if not out or min(out) < low or any(o != v for o, v in zip(out, values)):
        raise SymnnValueError(f"{name}={values!r} must be ints >= {low}.")
    return out


def _floats(values: Any, name: str, count: int, low: float | None) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise SymnnTypeError(
            f"{name} must be a sequence of numbers; got {describe(values)}."
        ) from None
    if len(out) != count or (low is not None and min(out) <= low):
        raise SymnnValueError(f"{name}={values!r} must be {count} numbers"
                              + ("" if low is None else f" > {low}") + ".")  # fmt: skip
    return out
