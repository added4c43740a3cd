"""Layers that change how a sample is laid out or scaled: ``Flatten``, ``Reshape``,
``Normalize``. They hold no weights and take either float type."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from .base import Layer, register

__all__ = ["Flatten", "Reshape", "Normalize"]


@register
class Flatten(Layer):
    """Each sample as one vector: ``(N, C, H, W) -> (N, C*H*W)`` in C order (as PyTorch's
    ``nn.Flatten`` and ONNX's ``Flatten``, so imported dense weights need no permutation).

    >>> import pytensor.tensor as pt
    >>> Flatten()(pt.tensor4("x", dtype="float32", shape=(None, 32, 4, 4))).type
    TensorType(float32, shape=(None, 512))
    """

    any_dtype = True
    integer_ok = True

    def __init__(self, name: str | None = None):
        super().__init__(name, None)

    def output_shape(self, input_shape):
        return None if input_shape is None else (int(np.prod(input_shape)),)

    def get_output_for(self, x, *, deterministic: bool = False):
        if x.type.ndim < 2:
            raise SymnnValueError(f"Flatten takes a batch (N, ...); got {x.type}.")
        per_sample = x.type.shape[1:]
        if None not in per_sample:  # a static width for the layers after it
            return x.reshape((x.shape[0], int(np.prod(per_sample))))
        return pt.flatten(x, 2)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


@register
class Reshape(Layer):
    """Each sample reshaped to ``shape``: ``Reshape((1, 28, 28))`` makes images of the rows of
    an ``(N, 784)`` matrix, so a convolutional network takes the same data, trainers and
    input optimisation as a dense one.

    >>> import pytensor.tensor as pt
    >>> Reshape((1, 28, 28))(pt.matrix("x", dtype="float32", shape=(None, 784))).type
    TensorType(float32, shape=(None, 1, 28, 28))
    """

    any_dtype = True
    integer_ok = True

    def __init__(self, shape: Any, name: str | None = None):
        super().__init__(name, None)
        try:
            self.shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise SymnnTypeError(f"shape must be a sequence of ints; got {shape!r}.") from None
        if self.shape and min(self.shape) < 0:  # () makes a batch of scalars; 0: empty axes
            raise SymnnValueError(f"shape={shape!r} is not valid; expected sizes >= 0.")
        self.size = int(np.prod(self.shape))
        #: the width of a flat input (a network starting with Reshape takes (N, size) matrices)
        self.n_in = self.size

    def _check_input(self, x):
        if isinstance(x, pt.TensorVariable) and x.type.ndim != 2:
            per_sample = x.type.shape[1:]
            if None not in per_sample and int(np.prod(per_sample)) != self.size:
                raise SymnnValueError(
                    f"Reshape({self.shape}) takes samples of {self.size} values; the input has "
                    f"{per_sample}."
                )
            return x
        return super()._check_input(x)

    def output_shape(self, input_shape):
        if input_shape is not None and int(np.prod(input_shape)) != self.size:
            raise SymnnValueError(
                f"reshapes samples of {self.size} values to {self.shape} but the layer before "
                f"gives {input_shape}."
            )
        return self.shape

    def get_output_for(self, x, *, deterministic: bool = False):
        return x.reshape((x.shape[0], *self.shape))

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "name": self.name}


@register
class Normalize(Layer):
    """``(x - mean) / std`` with fixed constants: a scalar each, one value per channel for
    images ``(N, C, H, W)``, or one per feature for matrices. Put it first so that input
    optimisation keeps its box in raw units (pixels in [0, 1]) while the network sees
    standardised inputs (an imported network's preprocessing).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> Normalize(0.5, 0.25)(x).eval({x: np.array([[1.0, 0.0]], dtype="float32")})
    array([[ 2., -2.]], dtype=float32)
    """

    any_dtype = True
    keeps_shape = True

    def __init__(self, mean: Any, std: Any, name: str | None = None):
        super().__init__(name, None)
        self.mean = np.asarray(mean, dtype="float64").reshape(-1)
        self.std = np.asarray(std, dtype="float64").reshape(-1)
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std))):
            raise SymnnValueError("mean and std must be finite.")
        if np.any(self.std <= 0):
            raise SymnnValueError(f"std={std!r} must be positive.")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise SymnnValueError(
                f"mean has {len(self.mean)} values and std {len(self.std)}; expected the same "
                "number (or a scalar)."
            )
        self.n_values = max(len(self.mean), len(self.std))

    def output_shape(self, input_shape):
        if input_shape is not None and self.n_values > 1:
            axis = input_shape[0] if len(input_shape) == 3 else input_shape[-1]
            if axis != self.n_values:
                raise SymnnValueError(
                    f"has {self.n_values} values (one per channel or feature) but the layer "
                    f"before gives {input_shape}."
                )
        return input_shape

    def get_output_for(self, x, *, deterministic: bool = False):
        mean = self.mean.astype(x.dtype)
        inv = (1.0 / self.std).astype(x.dtype)
        if x.ndim == 4 and self.n_values > 1:
            mean, inv = (np.broadcast_to(v, (self.n_values,))[:, None, None] for v in (mean, inv))
        elif self.n_values == 1:
            mean, inv = mean[0], inv[0]
        return (x - pt.constant(mean)) * pt.constant(inv)

    def get_config(self) -> dict[str, Any]:
        def plain(v):
            return float(v[0]) if len(v) == 1 else v.tolist()

        return {"mean": plain(self.mean), "std": plain(self.std), "name": self.name}
