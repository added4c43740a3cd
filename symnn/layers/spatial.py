"""Layers that move pixels and channels of ``(N, C, H, W)`` images: ``Transpose``,
``ChannelShuffle`` (ShuffleNet), ``Pad`` and ``Upsample2D``, with PyTorch's semantics
(``Tensor.permute``, ``nn.ChannelShuffle``, ``nn.ZeroPad2d``/``ReflectionPad2d``/
``ReplicationPad2d``, ``nn.Upsample(mode="nearest"|"bilinear", align_corners=False)``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import check_positive, describe
from .base import Layer, pad_constant, register
from .conv import _check_images, _image_shape

__all__ = ["Transpose", "ChannelShuffle", "Pad", "Upsample2D", "PAD_MODES", "UPSAMPLE_MODES"]

PAD_MODES = ("constant", "reflect", "replicate", "circular")
UPSAMPLE_MODES = ("nearest", "bilinear")


class _ImageLayer(Layer):
    """A parameter-free layer on images of either float type."""

    any_dtype = True

    def _check_input(self, x):
        return _check_images(self, super()._check_input(x), None)


@register
class Transpose(Layer):
    """Permute the axes, batch axis first and kept (ONNX's ``Transpose`` ``perm``, PyTorch's
    ``permute``): ``Transpose((0, 2, 3, 1))`` turns NCHW into NHWC.

    >>> import pytensor.tensor as pt
    >>> Transpose((0, 2, 3, 1))(pt.tensor4("x", shape=(None, 3, 5, 7))).type.shape
    (None, 5, 7, 3)
    """

    any_dtype = True
    integer_ok = True

    def __init__(self, axes: Any, name: str | None = None):
        super().__init__(name)
        try:
            self.axes = [int(a) for a in axes]
        except TypeError:
            raise SymnnTypeError(
                f"axes must be a sequence of ints; got {describe(axes)}."
            ) from None
        if sorted(self.axes) != list(range(len(self.axes))) or self.axes[:1] != [0]:
            raise SymnnValueError(
                f"axes={axes!r} is not a permutation keeping the batch axis first; expected "
                "e.g. (0, 2, 3, 1)."
            )

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.type.ndim != len(self.axes):
            raise SymnnValueError(
                f"Transpose{self._label()} axes={self.axes} is for {len(self.axes)}-axis inputs; "
                f"got {x.type}."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        return x.dimshuffle(*self.axes)

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        full = (None, *input_shape)
        return tuple(full[a] for a in self.axes[1:])


@register
class ChannelShuffle(_ImageLayer):
    """ShuffleNet's channel shuffle: ``C = groups * k`` channels read as a ``(groups, k)``
    grid and written transposed (``torch.nn.ChannelShuffle``).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float64")
    >>> ChannelShuffle(2)(x).eval({x: np.arange(4.0).reshape(1, 4, 1, 1)}).ravel()
    array([0., 2., 1., 3.])
    """

    def __init__(self, groups: int, name: str | None = None):
        super().__init__(name)
        self.groups = check_positive(groups, "groups", integer=True)

    def _check_input(self, x):
        x = super()._check_input(x)
        c = x.type.shape[1]
        if c is not None and c % self.groups:
            raise SymnnValueError(
                f"ChannelShuffle{self._label()} groups={self.groups} does not divide the "
                f"input's {c} channels."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        n, c, h, w = x.shape
        g = self.groups
        grid = x.reshape((n, g, c // g, h, w)).dimshuffle(0, 2, 1, 3, 4)
        out = grid.reshape((n, c, h, w))
        return pt.specify_shape(out, x.type.shape)

    def output_shape(self, input_shape):
        return _image_shape(self, input_shape, None)


def _four(pad: Any) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` from an int or PyTorch's 4-tuple."""
    values = [pad] * 4 if isinstance(pad, int | np.integer) else list(pad)
    if len(values) != 4 or not all(isinstance(v, int | np.integer) and v >= 0 for v in values):
        raise SymnnValueError(
            f"pad={pad!r} is not valid; expected an int >= 0 or (left, right, top, bottom) as "
            "PyTorch's padding."
        )
    return tuple(int(v) for v in values)


@register
class Pad(_ImageLayer):
    """Pad images on each side: ``mode="constant"`` (``value``, zeros by default),
    ``"reflect"`` (mirrored without repeating the edge), ``"replicate"`` (the edge
    repeated) or ``"circular"`` (the image repeated, ONNX's ``wrap``); ``pad`` an int or
    ``(left, right, top, bottom)`` as PyTorch's.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float64")
    >>> Pad((1, 1, 0, 0), "reflect")(x).eval({x: np.arange(3.0).reshape(1, 1, 1, 3)}).ravel()
    array([1., 0., 1., 2., 1.])
    """

    integer_ok = True

    def __init__(self, pad: Any, mode: str = "constant", value: float = 0.0, name=None):
        super().__init__(name)
        self.pad = _four(pad)
        if mode not in PAD_MODES:
            raise SymnnValueError(f"mode={mode!r} is not known; expected one of {PAD_MODES}.")
        if mode != "constant" and value != 0.0:
            raise SymnnValueError(f"value={value!r} has no effect with mode={mode!r}.")
        self.mode, self.value = mode, float(value)

    def _check_input(self, x):
        x = super()._check_input(x)
        left, right, top, bottom = self.pad
        h, w = x.type.shape[2:]
        if self.mode == "reflect" and (
            (h is not None and max(top, bottom) >= h) or (w is not None and max(left, right) >= w)
        ):
            raise SymnnValueError(
                f"Pad{self._label()} reflect padding {self.pad} must be smaller than the image "
                f"({h}x{w}) on each side."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        left, right, top, bottom = self.pad
        if self.mode == "constant":  # pt.pad would compute a float32 image in float64
            return pad_constant(x, ((0, 0), (0, 0), (top, bottom), (left, right)), self.value)
        rows = self._source(x.shape[2], top, bottom)
        cols = self._source(x.shape[3], left, right)
        return x[:, :, rows][:, :, :, cols]

    def _source(self, size, before: int, after: int):
        """For each output position along an axis, the input position it copies (a gather,
        whose gradient is a scatter-add on every backend)."""
        i = pt.arange(-before, size + after)
        if self.mode == "replicate":
            return pt.clip(i, 0, size - 1)
        if self.mode == "circular":
            return i % size
        return pt.switch(i < 0, -i, pt.switch(i >= size, 2 * (size - 1) - i, i))

    def output_shape(self, input_shape):
        shape = _image_shape(self, input_shape, None)
        if shape is None:
            return None
        left, right, top, bottom = self.pad
        return (shape[0], shape[1] + top + bottom, shape[2] + left + right)

    def get_config(self) -> dict[str, Any]:
        return {"pad": list(self.pad), "mode": self.mode, "value": self.value, "name": self.name}


def _linear_matrix(size: int, scale: int) -> np.ndarray:
    """``(size * scale, size)``: PyTorch's bilinear weights along one axis
    (``align_corners=False``: source ``(i + 0.5) / scale - 0.5``, clamped at 0)."""
    out = np.zeros((size * scale, size))
    for i in range(size * scale):
        src = max((i + 0.5) / scale - 0.5, 0.0)
        lo = min(int(np.floor(src)), size - 1)
        hi = min(lo + 1, size - 1)
        frac = src - lo
        out[i, lo] += 1.0 - frac
        out[i, hi] += frac
    return out


@register
class Upsample2D(_ImageLayer):
    """Enlarge images by integer factors ``scale`` (an int or ``(height, width)``):
    ``"nearest"`` repeats pixels, ``"bilinear"`` interpolates as PyTorch's
    ``nn.Upsample(mode="bilinear", align_corners=False)`` (needs a known image size).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float64")
    >>> Upsample2D(2)(x).eval({x: np.arange(2.0).reshape(1, 1, 1, 2)}).tolist()
    [[[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]]]
    """

    def __init__(self, scale: Any = 2, mode: str = "nearest", name: str | None = None):
        super().__init__(name)
        pair = (scale, scale) if np.isscalar(scale) else tuple(scale)
        if len(pair) != 2 or not all(isinstance(s, int | np.integer) and s >= 1 for s in pair):
            raise SymnnValueError(
                f"scale={scale!r} is not valid; expected an int >= 1 or a pair of them."
            )
        if mode not in UPSAMPLE_MODES:
            raise SymnnValueError(f"mode={mode!r} is not known; expected one of {UPSAMPLE_MODES}.")
        self.scale, self.mode = tuple(int(s) for s in pair), mode

    def _check_input(self, x):
        x = super()._check_input(x)
        if self.mode == "bilinear" and None in x.type.shape[2:]:
            raise SymnnValueError(
                f"Upsample2D{self._label()} bilinear needs a known image size; got {x.type} "
                "(put Reshape((C, H, W)) or an Input with the image's shape before it)."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        sh, sw = self.scale
        if self.mode == "nearest":
            return pt.repeat(pt.repeat(x, sh, axis=2), sw, axis=3)
        h, w = x.type.shape[2:]
        rows = pt.constant(_linear_matrix(h, sh).astype(x.dtype))  # (H*sh, H)
        cols = pt.constant(_linear_matrix(w, sw).T.astype(x.dtype))  # (W, W*sw)
        wide = pt.tensordot(x, cols, axes=[[3], [0]])  # (N, C, H, W*sw)
        tall = pt.tensordot(wide, rows, axes=[[2], [1]])  # (N, C, W*sw, H*sh)
        return tall.dimshuffle(0, 1, 3, 2)

    def output_shape(self, input_shape):
        shape = _image_shape(self, input_shape, None)
        if shape is None:
            return None
        return (shape[0], shape[1] * self.scale[0], shape[2] * self.scale[1])

    def get_config(self) -> dict[str, Any]:
        return {"scale": list(self.scale), "mode": self.mode, "name": self.name}
