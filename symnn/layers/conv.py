"""Convolutional and pooling layers on ``(N, C, H, W)`` images (NCHW, weights OIHW)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt

from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..init import Constant, GlorotUniform
from ..ops.conv import Im2Col, Pool2D, _pair, conv_output_size, pool_output_size
from ..ops.rowcorr import RowCorr
from ..utils import INTEGER_DTYPES, check_positive
from .base import Layer, pad_constant, register, tag_call

__all__ = ["Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"]

PAD_NAMES = ("valid", "same", "full")


def _set_geometry(layer: Layer, channels: tuple, kernel_size, stride, dilation) -> None:
    """A convolution's channel counts and window pairs, each checked by name."""
    layer.in_channels = check_positive(channels[0], "in_channels", integer=True)
    layer.out_channels = check_positive(channels[1], "out_channels", integer=True)
    layer.kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
    layer.stride = _pair(stride, "stride", minimum=1)
    layer.dilation = _pair(dilation, "dilation", minimum=1)


def _add_weights(layer: Layer, shape: tuple, W: Any, b: Any, rng: Any) -> None:
    """``layer.W`` of ``shape`` (Glorot uniform by default) and ``layer.b``, one per output
    channel (None: no bias)."""
    layer.W = layer.add_param(GlorotUniform() if W is None else W, shape, "W", rng)
    layer.b = None
    if b is not None:
        layer.b = layer.add_param(b, (layer.out_channels,), "b", rng, regularizable=False)


def _check_images(layer: Layer, x, channels: int | None):
    if x.type.ndim != 4:
        raise SymnnValueError(
            f"{type(layer).__name__}{layer._label()} takes images (N, C, H, W); got {x.type}. "
            "Put Reshape((C, H, W)) before it for flat inputs."
        )
    if channels is not None and x.type.shape[1] not in (None, channels):
        raise SymnnValueError(
            f"{type(layer).__name__}{layer._label()} expects {channels} channels; the input "
            f"has {x.type.shape[1]}."
        )
    return x


def _image_shape(layer: Layer, shape, channels: int | None) -> tuple[int, int, int] | None:
    """The per-sample input ``(C, H, W)`` checked, or None when not known."""
    if shape is None:
        return None
    if len(shape) != 3:
        raise SymnnValueError(
            f"takes images (C, H, W) per sample but the layer before gives {shape}; put "
            "Reshape((C, H, W)) before it."
        )
    if channels is not None and shape[0] != channels:
        raise SymnnValueError(
            f"expects {channels} channels but the layer before gives {shape[0]} {shape}."
        )
    return shape


@register
class Conv2D(Layer):
    """2-D convolution ``activation(conv(x, W) + b)`` by im2col and one GEMM.

    The signature follows Lasagne's ``Conv2DLayer`` (with PyTorch's names for the channel
    counts). ``W`` has shape ``(out_channels, in_channels, kh, kw)`` (OIHW, as Lasagne, PyTorch
    and ONNX); by default the layer computes a cross-correlation (``flip_filters=False``, as
    PyTorch and ONNX); ``flip_filters=True`` flips the kernels, a true convolution (Lasagne's
    default, Keras 1 on Theano), for weights trained there.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and of the output.
    kernel_size, stride, dilation
        Ints or ``(height, width)`` pairs.
    groups
        Grouped convolution (PyTorch's and ONNX's ``groups``): the channels split into
        ``groups`` groups, each output group seeing its input group only; ``W`` has shape
        ``(out_channels, in_channels // groups, kh, kw)``. ``groups=in_channels`` is a
        depthwise convolution.
    pad
        An int or pair (zeros on each side), ``"valid"`` (0), ``"same"`` (output as large as
        the input at stride 1; odd kernels) or ``"full"`` (every partial overlap).
    activation, W, b, name, rng, dtype
        As for :class:`~symnn.layers.Dense`; ``W`` defaults to Glorot uniform with the
        convolution's fans, ``b=None`` for no bias.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> conv = Conv2D(1, 8, 5, pad="same", activation="relu", rng=0)
    >>> conv.W.get_value().shape
    (8, 1, 5, 5)
    >>> conv(pt.tensor4("x", dtype="float32", shape=(None, 1, 28, 28))).type
    TensorType(float32, shape=(None, 8, 28, 28))
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
        dilation: Any = 1,
        flip_filters: bool = False,
        groups: int = 1,
        rng: Any = None,
        dtype: Any = None,
    ):
        super().__init__(name, dtype)
        _set_geometry(self, (in_channels, out_channels), kernel_size, stride, dilation)
        self.groups = check_positive(groups, "groups", integer=True)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise SymnnValueError(
                f"groups={groups!r} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}."
            )
        self.pad = pad
        self._pad = self._resolve_pad(pad)
        self.flip_filters = bool(flip_filters)
        self.activation = nonlinearities.get(activation)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        _add_weights(self, shape, W, b, rng)
        geometry = (self.kernel_size, self.stride, self._pad, self.dilation)
        self._im2col = Im2Col(*geometry, ones_row=self.b is not None and self.groups == 1)

    def _resolve_pad(self, pad: Any) -> tuple[int, int]:
        span = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
        if isinstance(pad, str):
            if pad not in PAD_NAMES:
                raise SymnnValueError(
                    f"pad={pad!r} is not known; expected an int, a pair or one of {PAD_NAMES}."
                )
            if pad == "same" and any(s % 2 for s in span):
                raise SymnnValueError(
                    f"pad='same' needs an odd kernel (with dilation); got kernel_size="
                    f"{self.kernel_size}, dilation={self.dilation}."
                )
            same = (span[0] // 2, span[1] // 2)
            return {"valid": (0, 0), "same": same, "full": tuple(span)}[pad]
        return _pair(pad, "pad", minimum=0)

    def _check_input(self, x):
        return _check_images(self, super()._check_input(x), self.in_channels)

    def output_shape(self, input_shape):
        shape = _image_shape(self, input_shape, self.in_channels)
        if shape is None:
            return None
        args = zip(shape[1:], self.kernel_size, self.stride, self._pad, self.dilation)
        oh, ow = (conv_output_size(*a) for a in args)
        if oh <= 0 or ow <= 0:
            raise SymnnValueError(
                f"kernel {self.kernel_size} does not fit the input {shape} with pad {self._pad}."
            )
        return (self.out_channels, oh, ow)

    def _channels_first(self, x, *, activation: bool):
        """The output as ``(out_channels, N, OH, OW)`` (contiguous: the GEMM's result, so the
        bias, the nonlinearity and their gradients run on contiguous memory)."""
        n, _, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (dh, dw) = self._pad, self.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        W = self.W[:, :, ::-1, ::-1] if self.flip_filters else self.W
        W = W.reshape((self.out_channels, -1))
        if self.groups > 1:
            z = self._grouped(W, x)
        elif (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
            cols = x.dimshuffle(1, 0, 2, 3).reshape((self.in_channels, n * h * w))
            z = pt.dot(W, cols) if self.b is None else pt.dot(W, cols) + self.b.dimshuffle(0, "x")
        elif self.b is None:
            z = pt.dot(W, self._im2col(x))
        else:  # the bias as one more weight column against a row of ones: one GEMM
            z = pt.dot(pt.concatenate([W, self.b.dimshuffle(0, "x")], axis=1), self._im2col(x))
        if activation:
            z = self.activation(z)
        return z.reshape((self.out_channels, n, oh, ow))

    def _grouped(self, W, x):
        """All groups in one batched product: the patches of every channel once, seen as
        ``(groups, cin*kh*kw, positions)``, times the weights as ``(groups, cout, cin*kh*kw)``
        (one graph node whatever the number of groups; the bias added after)."""
        g = self.groups
        cols = self._im2col(x)
        cols = cols.reshape((g, cols.shape[0] // g, cols.shape[1]))
        z = pt.matmul(W.reshape((g, self.out_channels // g, -1)), cols)
        z = z.reshape((self.out_channels, cols.shape[2]))
        return z if self.b is None else z + self.b.dimshuffle(0, "x")

    def _images(self, x, *, activation: bool):
        x = self._check_input(x)
        out = self._channels_first(x, activation=activation).dimshuffle(1, 0, 2, 3)
        if None not in x.type.shape[1:]:
            out = pt.specify_shape(out, (None, *self.output_shape(x.type.shape[1:])))
        return out

    def preactivation(self, x):
        """``conv(x, W) + b``: the layer's output before its nonlinearity."""
        return self._images(x, activation=False)

    def channel_per_row(self, x, channels: Sequence[int] | pt.TensorVariable):
        """Row ``i``'s channel ``channels[i]`` of :meth:`preactivation`, ``(n, OH, OW)``,
        computing that channel only (:mod:`symnn.ops.rowcorr`: an ascent of many channels
        at once does ``1 / out_channels`` of the convolution's products); ``x`` must have
        ``len(channels)`` rows. ``channels`` may be a symbolic int vector (its values are
        not checked: a negative index counts from the end, as numpy's).

        >>> import numpy as np, pytensor.tensor as pt
        >>> conv = Conv2D(2, 4, 3, pad=1, rng=0)
        >>> x = pt.tensor4("x", dtype="float32")
        >>> X = np.random.default_rng(0).random((3, 2, 5, 5), dtype="float32")
        >>> rows = conv.channel_per_row(x, [3, 0, 3]).eval({x: X})
        >>> full = conv.preactivation(x).eval({x: X})
        >>> bool(np.allclose(rows, full[[0, 1, 2], [3, 0, 3]], atol=1e-6))
        True
        """
        if self.groups != 1:
            raise SymnnValueError(
                f"Conv2D{self._label()}: channel_per_row needs groups=1; the layer has "
                f"groups={self.groups}."
            )
        if isinstance(channels, pt.TensorVariable):  # checked where its values are set
            index = channels
        else:
            index = np.asarray(channels, dtype="int64").ravel()
            if not len(index) or index.min() < 0 or index.max() >= self.out_channels:
                raise SymnnValueError(
                    f"channels={list(channels)!r}: expected one channel in "
                    f"0..{self.out_channels - 1} per row."
                )
        x = self._check_input(x)
        W = self.W[:, :, ::-1, ::-1] if self.flip_filters else self.W
        geometry = (self.kernel_size, self.stride, self._pad, self.dilation)
        z = RowCorr(*geometry)(x, W[index])
        return z if self.b is None else z + self.b[index].dimshuffle(0, "x", "x")

    def __call__(self, x, *, deterministic: bool = False):
        x = self._check_input(x)
        return tag_call(self, [x], self._images(x, activation=True))

    def get_output_for(self, x, *, deterministic: bool = False):
        return self._images(x, activation=True)

    def get_config(self) -> dict[str, Any]:
        name = nonlinearities.name_of(self.activation)
        if name is None:
            raise SymnnValueError(
                f"Conv2D{self._label()} uses a custom activation, which cannot be described "
                "by name; use one of symnn.nonlinearities.NAMES."
            )
        pad = self.pad if isinstance(self.pad, str) else list(self._pad)
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "pad": pad,
            "activation": name,
            "bias": self.b is not None,
            "name": self.name,
            "dilation": list(self.dilation),
            "flip_filters": self.flip_filters,
            "groups": self.groups,
            "dtype": self.dtype,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Conv2D:
        cfg = dict(config)
        bias = cfg.pop("bias", True)
        for key in ("kernel_size", "stride", "dilation", "pad"):
            if isinstance(cfg.get(key), list):
                cfg[key] = tuple(cfg[key])
        groups = cfg.get("groups", 1)
        kernel = np.broadcast_to(cfg["kernel_size"], 2)
        shape = (cfg["out_channels"], cfg["in_channels"] // groups, *kernel)
        return cls(**cfg, W=np.zeros(shape), b=Constant(0.0) if bias else None)


class _Pool(Layer):
    any_dtype = True
    mode = "max"

    def __init__(
        self, pool_size: Any = 2, stride: Any = None, pad: Any = 0, *, ignore_border=True,
        ceil_mode: bool = False, name: str | None = None,
    ):  # fmt: skip
        super().__init__(name, None)
        self.pool_size = _pair(pool_size, "pool_size", minimum=1)
        self.stride = self.pool_size if stride is None else _pair(stride, "stride", minimum=1)
        self.pad = _pair(pad, "pad", minimum=0)
        self.ignore_border = bool(ignore_border)
        self.ceil_mode = bool(ceil_mode)
        if self.ceil_mode and not self.ignore_border:
            raise SymnnValueError(
                "ceil_mode=True with ignore_border=False: pick one way of keeping partial "
                "windows (ceil_mode is PyTorch's and ONNX's)."
            )
        self._op = Pool2D(self.mode, self.pool_size, self.stride, self.pad, self.ignore_border)

    def _out_size(self, size: int, k: int, s: int, p: int) -> int:
        """PyTorch's output length; with ``ceil_mode`` the last window starts inside the
        image or its left padding."""
        if not self.ceil_mode:
            return pool_output_size(size, k, s, p, self.ignore_border)
        out = -(-(size + 2 * p - k) // s) + 1
        return out - 1 if (out - 1) * s >= size + p else out

    def _check_input(self, x):
        return _check_images(self, super()._check_input(x), None)

    def output_shape(self, input_shape):
        shape = _image_shape(self, input_shape, None)
        if shape is None:
            return None
        args = zip(shape[1:], self.pool_size, self.stride, self.pad)
        oh, ow = (self._out_size(*a) for a in args)
        fits = not self.ignore_border or all(
            s + 2 * p >= k for s, p, k in zip(shape[1:], self.pad, self.pool_size)
        )
        if oh <= 0 or ow <= 0 or not fits:
            raise SymnnValueError(f"pool_size {self.pool_size} does not fit the input {shape}.")
        return (shape[0], oh, ow)

    def get_output_for(self, x, *, deterministic: bool = False):
        if not self.ceil_mode:
            return self._op(x)
        size = x.type.shape[2:]
        if None in size:
            raise SymnnValueError(
                f"{type(self).__name__}{self._label()} ceil_mode=True needs a known image size; "
                f"got {x.type}."
            )
        outs = [self._out_size(*a) for a in zip(size, self.pool_size, self.stride, self.pad)]
        geometry = zip(outs, self.stride, self.pool_size, size, self.pad)
        extra = [max(0, (o - 1) * s + k - (n + 2 * p)) for o, s, k, n, p in geometry]
        if not any(extra):
            return self._op(x)
        return self._ceil_windows(x, size, extra)

    def _ceil_windows(self, x, size, extra):
        """Pooling with PyTorch's ceil-mode windows: the image extended on the bottom and
        right (by -inf for max; for averages, the window sums over explicit zero padding
        divided by PyTorch's counts)."""
        (ph, pw), (eh, ew) = self.pad, extra
        if self.mode == "max":
            low = np.asarray(-np.inf, dtype=x.dtype)
            wide = pad_constant(x, ((0, 0), (0, 0), (0, eh), (0, ew)), low)
            return self._op(wide)
        full = pad_constant(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)))
        means = Pool2D("average_inc_pad", self.pool_size, self.stride, 0, True)(full)
        counts = np.outer(*(self._counts(n, k, s, p, e) for n, k, s, p, e in
                            zip(size, self.pool_size, self.stride, self.pad, extra)))  # fmt: skip
        scale = np.prod(self.pool_size) / counts
        return means * pt.constant(scale.astype(x.dtype))

    def _counts(self, size: int, k: int, s: int, p: int, extra: int) -> np.ndarray:
        """Along one axis, the pixels each window divides by (padding counted or not)."""
        n_out = (size + 2 * p + extra - k) // s + 1
        start = np.arange(n_out) * s
        lo, hi = (0, size + 2 * p) if self.mode == "average_inc_pad" else (p, p + size)
        return np.minimum(start + k, hi) - np.maximum(start, lo)

    def get_config(self) -> dict[str, Any]:
        return {
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
            "pad": list(self.pad),
            "ignore_border": self.ignore_border,
            "ceil_mode": self.ceil_mode,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Pool:
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        return cls(**cfg)


@register
class MaxPool2D(_Pool):
    """Max pooling over ``pool_size`` windows (stride defaults to the window, Lasagne's
    ``MaxPool2DLayer``); the gradient goes to the first maximum of each window, as in
    PyTorch. ``ignore_border=False`` keeps partial windows at the bottom and right edges.
    On the output of :func:`symnn.nonlinearities.relu` it pools the values before the
    rectifier and rectifies the pooled ones (the same values and gradients, a quarter of
    the rectifier's work at pool 2, and no full-size rectified array to keep).

    >>> import pytensor.tensor as pt
    >>> MaxPool2D(2)(pt.tensor4("x", dtype="float32", shape=(None, 8, 24, 24))).type
    TensorType(float32, shape=(None, 8, 12, 12))

    Integer images of at most 32 bits are pooled too (in float64, exactly), as ONNX's
    ``MaxPool`` of ``uint8`` images.
    """

    mode = "max"
    integer_ok = True

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.type.dtype in INTEGER_DTYPES and x.type.dtype[-2:] == "64":
            raise SymnnTypeError(f"MaxPool2D{self._label()} takes integers of at most 32 bits "
                                 f"(pooled in float64, exactly); got {x.type.dtype}.")  # fmt: skip
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        if x.type.dtype not in INTEGER_DTYPES:
            before = nonlinearities.relu_input(x)
            if before is not None:  # max commutes with relu: rectify the pooled values only
                pooled = super().get_output_for(before, deterministic=deterministic)
                return nonlinearities.relu(pooled)
            return super().get_output_for(x, deterministic=deterministic)
        pooled = super().get_output_for(pt.cast(x, "float64"), deterministic=deterministic)
        return pt.cast(pooled, x.type.dtype)


@register
class AvgPool2D(_Pool):
    """Average pooling; ``include_pad=True`` divides by the whole window, padding included
    (Lasagne's ``average_inc_pad``, PyTorch's ``count_include_pad``), else by the pixels of the
    window inside the image.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float32")
    >>> AvgPool2D(2)(x).eval({x: np.ones((1, 1, 2, 2), dtype="float32")})
    array([[[[1.]]]], dtype=float32)
    """

    def __init__(
        self,
        pool_size: Any = 2,
        stride: Any = None,
        pad: Any = 0,
        *,
        ignore_border: bool = True,
        include_pad: bool = True,
        ceil_mode: bool = False,
        name: str | None = None,
    ):
        self.include_pad = bool(include_pad)
        self.mode = "average_inc_pad" if self.include_pad else "average_exc_pad"
        super().__init__(pool_size, stride, pad, ignore_border=ignore_border,
                         ceil_mode=ceil_mode, name=name)  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "include_pad": self.include_pad}


@register
class GlobalAvgPool2D(Layer):
    """The mean of each channel over height and width: ``(N, C, H, W) -> (N, C)``.

    >>> import pytensor.tensor as pt
    >>> GlobalAvgPool2D()(pt.tensor4("x", dtype="float32", shape=(None, 16, 7, 7))).type
    TensorType(float32, shape=(None, 16))
    """

    any_dtype = True

    def __init__(self, name: str | None = None):
        super().__init__(name, None)

    def _check_input(self, x):
        return _check_images(self, super()._check_input(x), None)

    def output_shape(self, input_shape):
        shape = _image_shape(self, input_shape, None)
        return None if shape is None else (shape[0],)

    def get_output_for(self, x, *, deterministic: bool = False):
        return pt.mean(x, axis=(2, 3))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


@register
class GlobalMaxPool2D(GlobalAvgPool2D):
    """The maximum of each channel over height and width: ``(N, C, H, W) -> (N, C)`` (a NaN
    in a channel gives NaN, as ``torch.amax``).

    >>> import pytensor.tensor as pt
    >>> GlobalMaxPool2D()(pt.tensor4("x", dtype="float32", shape=(None, 16, 7, 7))).type
    TensorType(float32, shape=(None, 16))
    """

    def get_output_for(self, x, *, deterministic: bool = False):
        return pt.max(x, axis=(2, 3))
