"""A network from a short description: ``"conv32x5,pool2,conv32x5,pool2,256,10"``."""

from __future__ import annotations

import re
from typing import Any

from ..errors import SymnnValueError
from ..utils import as_float_dtype, as_rng
from .base import Layer
from .containers import Sequential, _default_init
from .conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from .dense import Dense
from .noise import Dropout
from .shape import Flatten, Reshape

__all__ = ["from_arch", "ARCH_HELP"]

ARCH_HELP = (
    "comma-separated layers: convFxK (F filters of KxK, no padding), convFxKsame (padded to "
    "keep the size), pool2 (max pooling), avgpool2, gap (global average pooling), drop0.5 "
    "(dropout), N (dense layer of N units); the last must be the number of classes"
)

_TOKENS = {
    "conv": re.compile(r"conv(\d+)x(\d+)(same)?"),
    "pool": re.compile(r"(avg)?pool(\d+)"),
    "drop": re.compile(r"drop(0?\.\d+)"),
    "dense": re.compile(r"(\d+)"),
}


def _parse(token: str) -> tuple[str, re.Match]:
    for kind, pattern in _TOKENS.items():
        match = pattern.fullmatch(token)
        if match:
            return kind, match
    if token == "gap":
        return "gap", None
    raise SymnnValueError(f"architecture layer {token!r} is not known; {ARCH_HELP}.")


def from_arch(
    arch: str,
    input_shape: tuple[int, ...],
    *,
    activation: str = "relu",
    rng: Any = None,
    dtype: Any = None,
) -> Sequential:
    """A classifier from ``arch`` for inputs of per-sample ``input_shape`` (``(C, H, W)``,
    or ``(H, W)`` for one channel); it takes flat rows ``(N, C*H*W)``, hidden layers use
    ``activation``, the last dense layer softmax.

    >>> net = from_arch("conv32x5,pool2,conv32x5,pool2,256,10", (28, 28), rng=0)
    >>> net.output_shapes[4], net.n_in, net.n_out
    ((32, 4, 4), 784, 10)
    """
    tokens = [t.strip() for t in str(arch).split(",") if t.strip()]
    if not tokens or _parse(tokens[-1])[0] != "dense":
        raise SymnnValueError(f"arch={arch!r} must end with the number of classes; {ARCH_HELP}.")
    shape = tuple(int(s) for s in input_shape)
    shape = (1, *shape) if len(shape) == 2 else shape
    dtype, gen = as_float_dtype(dtype), as_rng(rng)
    layers: list[Layer] = [Reshape(shape)]
    current: tuple[int, ...] = shape
    for i, token in enumerate(tokens):
        kind, m = _parse(token)
        last = i == len(tokens) - 1
        if kind == "conv":
            pad = "same" if m.group(3) else "valid"
            layer = Conv2D(current[0], int(m.group(1)), int(m.group(2)), pad=pad,
                           activation=activation, W=_default_init(activation), rng=gen,
                           dtype=dtype, name=f"conv{i}")  # fmt: skip
        elif kind == "pool":
            layer = (AvgPool2D if m.group(1) else MaxPool2D)(int(m.group(2)))
        elif kind == "gap":
            layer = GlobalAvgPool2D()
        elif kind == "drop":
            layer = Dropout(float(m.group(1)), rng=gen, dtype=dtype, name=f"dropout{i}")
        else:
            if len(current) != 1:
                layers.append(Flatten())
                current = layers[-1].output_shape(current)
            act = "softmax" if last else activation
            layer = Dense(current[0], int(m.group(1)), act, W=_default_init(act), rng=gen,
                          dtype=dtype, name=f"dense{i}")  # fmt: skip
        try:
            current = layer.output_shape(current)
        except SymnnValueError as exc:
            raise SymnnValueError(f"arch layer {token!r}: {exc}") from None
        layers.append(layer)
    return Sequential(layers)
