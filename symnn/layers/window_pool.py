"""Pooling over any number of trailing axes with dilation and asymmetric padding: ONNX's
``MaxPool``/``AveragePool`` (and PyTorch's ``MaxPool3d``, ``AvgPool3d``) in full.

Built from strided slices of the padded input, one axis after another (a box window's max
or sum is the max or sum along each axis in turn), the taps of each axis in window order:
slower than :class:`~symnn.layers.MaxPool2D` / :class:`~symnn.layers.AvgPool2D` (one C op
each), which cover undilated 2-D windows with symmetric padding; ``from_onnx`` uses this
layer only where those do not fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnValueError
from .base import Layer, pad_constant, register

__all__ = ["WindowPool"]

MODES = ("max", "average_inc_pad", "average_exc_pad")


def _ints(value: Any, name: str, n: int, minimum: int) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise SymnnValueError(f"{name} must be {n} integers; got {value!r}.") from None
    if len(out) != n or min(out, default=minimum) < minimum:
        raise SymnnValueError(f"{name}={value!r}: expected {n} integers >= {minimum}.")
    return out


@register
class WindowPool(Layer):
    """Max or average pooling of ``(N, C, *spatial)`` over the last ``len(kernel)`` axes.

    ``stride`` and ``dilation`` per axis; ``pads`` ONNX's order, every axis's begin then every
    axis's end; ``ceil_mode`` keeps a last partial window when it starts inside the image or
    its begin padding (PyTorch's and ONNX's rule). ``mode``: ``"max"`` (the first maximum of
    each window in row-major window order gets the gradient, NaN propagates, as in PyTorch),
    ``"average_inc_pad"`` (divides by the window's taps inside the padded image: ONNX's
    ``count_include_pad=1``) or ``"average_exc_pad"`` (by its taps inside the image).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor3("x", dtype="float32", shape=(None, 1, 5))
    >>> pool = WindowPool("max", kernel=(2,), dilation=(2,))
    >>> pool(x).eval({x: np.float32([[[1, 5, 2, 0, 3]]])})
    array([[[2., 5., 3.]]], dtype=float32)
    """

    any_dtype = True

    def __init__(self, mode: str, kernel: Any, stride: Any = None, pads: Any = None,
                 dilation: Any = None, ceil_mode: bool = False,
                 name: str | None = None):  # fmt: skip
        super().__init__(name, None)
        if mode not in MODES:
            raise SymnnValueError(f"mode={mode!r} is not one of {MODES}.")
        self.mode = mode
        if not isinstance(kernel, list | tuple) or not kernel:
            raise SymnnValueError(f"kernel must be a sequence of window sizes, one per pooled "
                                  f"axis; got {kernel!r}.")  # fmt: skip
        self.kernel = _ints(kernel, "kernel", len(kernel), 1)
        n = len(self.kernel)
        self.stride = _ints(stride or [1] * n, "stride", n, 1)
        self.dilation = _ints(dilation or [1] * n, "dilation", n, 1)
        self.pads = _ints(pads or [0] * 2 * n, "pads", 2 * n, 0)
        self.ceil_mode = bool(ceil_mode)

    def _sizes(self, spatial: tuple) -> list[int]:
        """The output size along each pooled axis."""
        n = len(self.kernel)
        out = []
        for i, size in enumerate(spatial):
            span = size + self.pads[i] + self.pads[n + i] - (self.kernel[i] - 1) * self.dilation[i]
            if span < 1:
                raise SymnnValueError(f"WindowPool{self._label()}: the dilated kernel "
                                      f"{self.kernel} does not fit the input {spatial}.")
            s = self.stride[i]
            k = -(-(span - 1) // s) if self.ceil_mode else (span - 1) // s
            if self.ceil_mode and k * s >= size + self.pads[i]:
                k -= 1  # the last window would start in the end padding
            out.append(k + 1)
        return out

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.type.ndim != len(self.kernel) + 2 or None in x.type.shape[2:]:
            raise SymnnValueError(
                f"WindowPool{self._label()} pools {len(self.kernel)} axes of (N, C, ...) "
                f"inputs of known size; got {x.type}."
            )
        return x

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        if len(input_shape) != len(self.kernel) + 1:
            raise SymnnValueError(f"pools {len(self.kernel)} axes of (C, ...) samples; the "
                                  f"layer before gives {input_shape}.")  # fmt: skip
        return (input_shape[0], *self._sizes(tuple(input_shape[1:])))

    def get_output_for(self, x, *, deterministic: bool = False):
        spatial = tuple(x.type.shape[2:])
        outs, n = self._sizes(spatial), len(self.kernel)
        # pad to the pads plus what the last windows reach beyond them (ceil mode)
        ends = [max(self.pads[n + i], (o - 1) * s + (k - 1) * d + 1 - size - self.pads[i])
                for i, (o, s, k, d, size) in enumerate(zip(outs, self.stride, self.kernel,
                                                           self.dilation, spatial))]  # fmt: skip
        low = -np.inf if self.mode == "max" else 0.0
        padded = pad_constant(x, [(0, 0), (0, 0), *zip(self.pads[:n], ends)], low)
        out = padded
        for i in reversed(range(n)):  # last axis first: the row-major first maximum wins
            out = self._pool_axis(out, i, outs[i])
        if self.mode == "max":
            return out
        return out / pt.constant(self._counts(spatial, outs).astype(x.dtype))

    def _pool_axis(self, x, i: int, size: int):
        """Windows along pooled axis ``i`` only: a box window is one axis after another."""
        k, s, d = self.kernel[i], self.stride[i], self.dilation[i]
        axis = i + 2
        taps = pt.stack([x[(slice(None),) * axis + (slice(t * d, t * d + (size - 1) * s + 1, s),)]
                         for t in range(k)])  # fmt: skip
        if self.mode != "max":
            return taps.sum(axis=0)
        first = pt.argmax(taps, axis=0, keepdims=True)  # the first maximum (or NaN)
        return pt.take_along_axis(taps, first, axis=0)[0]

    def _counts(self, spatial: tuple, outs: list) -> np.ndarray:
        """The taps each window divides by: inside the padded image, or inside the image."""
        n, counts = len(self.kernel), np.ones(())
        for i, (size, o, s, k, d) in enumerate(zip(spatial, outs, self.stride, self.kernel,
                                                   self.dilation)):  # fmt: skip
            pos = np.arange(o)[:, None] * s + np.arange(k)[None] * d  # in the padded image
            begin, end = self.pads[i], self.pads[n + i]
            inc = self.mode == "average_inc_pad"
            lo, hi = (0, size + begin + end) if inc else (begin, begin + size)
            counts = np.multiply.outer(counts, ((pos >= lo) & (pos < hi)).sum(axis=1))
        return counts
