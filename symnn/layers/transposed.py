"""The transposed convolution (Lasagne's ``TransposedConv2DLayer``, PyTorch's
``ConvTranspose2d``): the gradient of a convolution with respect to its input, as a layer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from .. import nonlinearities
from ..errors import SymnnValueError
from ..init import Constant
from ..ops.conv import Col2Im, _pair
from ..utils import check_positive
from .base import Layer, register, tag_call
from .conv import _add_weights, _check_images, _image_shape, _set_geometry

__all__ = ["ConvTranspose2D"]


@register
class ConvTranspose2D(Layer):
    """Transposed 2-D convolution: each input pixel adds ``W`` times its value into a window
    of the output (PyTorch's ``ConvTranspose2d``: weights ``(in_channels, out_channels //
    groups, kh, kw)``, output size ``(H - 1) * stride - 2 * pad + dilation * (k - 1) +
    output_padding + 1``; with ``groups`` the input channels of group ``g`` feed only its
    output channels, as in PyTorch). One GEMM per group and :class:`~symnn.ops.conv.Col2Im`,
    the scatter-add that is the adjoint of the convolution's patch matrix.

    >>> import pytensor.tensor as pt
    >>> up = ConvTranspose2D(8, 4, 4, stride=2, pad=1, rng=0)
    >>> up.W.get_value().shape
    (8, 4, 4, 4)
    >>> up(pt.tensor4("x", dtype="float32", shape=(None, 8, 7, 7))).type
    TensorType(float32, shape=(None, 4, 14, 14))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        pad: Any = 0,
        activation: Any = "linear",
        W: Any = None,
        b: Any = Constant(0.0),
        name: str | None = None,
        *,
        output_padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        rng: Any = None,
        dtype: Any = None,
    ):
        super().__init__(name, dtype)
        _set_geometry(self, (in_channels, out_channels), kernel_size, stride, dilation)
        self.groups = check_positive(groups, "groups", integer=True)
        if in_channels % self.groups or out_channels % self.groups:
            raise SymnnValueError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}."
            )
        self.pad = _pair(pad, "pad", minimum=0)
        self.output_padding = _pair(output_padding, "output_padding", minimum=0)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise SymnnValueError(
                f"output_padding={output_padding!r} must be smaller than stride={self.stride}."
            )
        self.activation = nonlinearities.get(activation)
        shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        _add_weights(self, shape, W, b, rng)
        self._col2im = Col2Im(self.kernel_size, self.stride, self.pad, self.dilation)

    def _check_input(self, x):
        return _check_images(self, super()._check_input(x), self.in_channels)

    def _out_hw(self, h, w):
        return tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, s, p, d, k, op in zip((h, w), self.stride, self.pad, self.dilation,
                                         self.kernel_size, self.output_padding)
        )  # fmt: skip

    def output_shape(self, input_shape):
        shape = _image_shape(self, input_shape, self.in_channels)
        if shape is None:
            return None
        oh, ow = self._out_hw(*shape[1:])
        if oh <= 0 or ow <= 0:
            raise SymnnValueError(f"pad {self.pad} leaves no output for the input {shape}.")
        return (self.out_channels, oh, ow)

    def preactivation(self, x):
        """The transposed convolution plus bias, before the nonlinearity."""
        x = self._check_input(x)
        n, _, h, w = x.shape
        cols = x.dimshuffle(1, 0, 2, 3).reshape((self.in_channels, -1))  # (in, N*H*W)
        g, per = self.groups, self.in_channels // self.groups
        weights = self.W.reshape((self.in_channels, -1)).T  # (out/g*kh*kw, in)
        # group k: its input channels times its weights, the groups' rows one after another
        parts = [pt.dot(weights[:, k * per : (k + 1) * per], cols[k * per : (k + 1) * per])
                 for k in range(g)] if g > 1 else [pt.dot(weights, cols)]  # fmt: skip
        patches = pt.concatenate(parts) if g > 1 else parts[0]
        oh, ow = self._out_hw(h, w)
        like = pt.zeros((n, self.out_channels, oh, ow), dtype=x.dtype)  # its shape only
        out = self._col2im(patches, like)
        if self.b is not None:
            out = out + self.b.dimshuffle("x", 0, "x", "x")
        if None not in x.type.shape[1:]:
            out = pt.specify_shape(out, (None, *self.output_shape(x.type.shape[1:])))
        return out

    def __call__(self, x, *, deterministic: bool = False):
        x = self._check_input(x)
        return tag_call(self, [x], self.activation(self.preactivation(x)))

    def get_output_for(self, x, *, deterministic: bool = False):
        return self.activation(self.preactivation(x))

    def get_config(self) -> dict[str, Any]:
        name = nonlinearities.name_of(self.activation)
        if name is None:
            raise SymnnValueError(
                f"ConvTranspose2D{self._label()} uses a custom activation, which cannot be "
                "described by name; use one of symnn.nonlinearities.NAMES."
            )
        return {
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size), "stride": list(self.stride),
            "pad": list(self.pad), "activation": name, "bias": self.b is not None,
            "name": self.name, "output_padding": list(self.output_padding),
            "dilation": list(self.dilation), "groups": self.groups, "dtype": self.dtype,
        }  # fmt: skip

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ConvTranspose2D:
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        bias = cfg.pop("bias", True)
        kernel = np.broadcast_to(cfg["kernel_size"], 2)
        shape = (cfg["in_channels"], cfg["out_channels"] // cfg.get("groups", 1), *kernel)
        return cls(**cfg, W=np.zeros(shape), b=Constant(0.0) if bias else None)
