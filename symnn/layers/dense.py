"""Fully connected layers: ``Dense`` and the learnable-slope rectifier ``PReLU``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from .. import nonlinearities
from ..errors import SymnnValueError
from ..init import Constant, GlorotUniform
from ..utils import check_positive
from .base import Layer, register

__all__ = ["Dense", "PReLU", "Activation"]


@register
class Dense(Layer):
    """A fully connected layer computing ``activation(x @ W + b)``.

    Parameters
    ----------
    n_in, n_out
        Number of input and output features; ``W`` has shape ``(n_in, n_out)``.
    activation
        A name from :mod:`symnn.nonlinearities` or a callable (default: linear).
    W, b
        Initialisers, arrays or shared variables; ``b=None`` for no bias.
    name
        Prefix of the parameter names (``"hidden.W"``).
    rng
        Seed or ``numpy.random.Generator`` for the initialisers.
    dtype
        ``"float32"`` (default) or ``"float64"``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> layer = Dense(784, 100, activation="relu", rng=0)
    >>> [p.name for p in layer.params]
    ['W', 'b']
    >>> layer(pt.matrix("x", dtype="float32")).type
    TensorType(float32, shape=(None, 100))
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: Any = "linear",
        W: Any = None,
        b: Any = Constant(0.0),
        name: str | None = None,
        *,
        rng: Any = None,
        dtype: Any = None,
    ):
        super().__init__(name, dtype)
        self.n_in = check_positive(n_in, "n_in", integer=True)
        self.n_out = check_positive(n_out, "n_out", integer=True)
        self.activation = nonlinearities.get(activation)
        self.W = self.add_param(GlorotUniform() if W is None else W, (n_in, n_out), "W", rng)
        self.b = None if b is None else self.add_param(b, (n_out,), "b", rng, regularizable=False)

    def preactivation(self, x):
        """``x @ W + b``: the layer's output before its nonlinearity."""
        x = self._check_input(x)
        z = pt.dot(x, self.W)
        return z if self.b is None else z + self.b

    def get_output_for(self, x, *, deterministic: bool = False):
        return self.activation(self.preactivation(x))

    def output_size(self, input_size):
        return self.n_out

    def output_shape(self, input_shape):
        if input_shape is not None and len(input_shape) != 1:
            raise SymnnValueError(
                f"expects inputs of shape ({self.n_in},) per sample; the layer before gives "
                f"{input_shape}: put Flatten() before it."
            )
        return super().output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        name = nonlinearities.name_of(self.activation)
        if name is None:
            raise SymnnValueError(
                f"Dense{self._label()} uses a custom activation {self.activation!r}, which "
                "cannot be described by name; use one of symnn.nonlinearities.NAMES."
            )
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "activation": name,
            "bias": self.b is not None,
            "name": self.name,
            "dtype": self.dtype,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        cfg = dict(config)
        bias = cfg.pop("bias", True)
        return cls(
            **cfg, W=np.zeros((cfg["n_in"], cfg["n_out"])), b=Constant(0.0) if bias else None
        )


@register
class PReLU(Layer):
    """Parametric rectifier: ``x`` for ``x > 0``, ``alpha * x`` otherwise, one learnable
    ``alpha`` per feature of the last axis, or with ``axis=1`` per channel of ``(N, C, ...)``
    images (PyTorch's ``nn.PReLU(num_parameters=C)``); not regularised.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> PReLU(2, alpha=0.5)(x).eval({x: np.array([[-2.0, 3.0]], dtype="float32")})
    array([[-1.,  3.]], dtype=float32)
    >>> images = pt.tensor4("images", dtype="float32")
    >>> PReLU(3, alpha=[0.0, 0.5, 1.0], axis=1)(images).eval({images: -np.ones((1, 3, 1, 1),
    ...     dtype="float32")}).ravel()
    array([-0. , -0.5, -1. ], dtype=float32)
    """

    def __init__(self, n_units: int, alpha: Any = 0.25, name: str | None = None, *,
                 axis: int = -1, dtype=None):  # fmt: skip
        super().__init__(name, dtype)
        n_units = check_positive(n_units, "n_units", integer=True)
        if axis not in (-1, 1):
            raise SymnnValueError(f"axis={axis!r}: expected -1 (the last axis) or 1 (channels).")
        self.axis = axis
        self.n_in = n_units if axis == -1 else None
        self.n_units = n_units
        spec = Constant(float(alpha)) if np.isscalar(alpha) else alpha
        self.alpha = self.add_param(spec, (n_units,), "alpha", None, regularizable=False)

    def _check_input(self, x):
        x = super()._check_input(x)
        if self.axis == 1 and (x.type.ndim < 2 or x.type.shape[1] not in (None, self.n_units)):
            raise SymnnValueError(f"PReLU{self._label()} has {self.n_units} channel slopes; the "
                                  f"input is {x.type}.")  # fmt: skip
        return x

    def output_shape(self, input_shape):
        if self.axis == 1 and input_shape is not None and input_shape[0] != self.n_units:
            raise SymnnValueError(f"has {self.n_units} channel slopes; the layer before gives "
                                  f"{input_shape}.")  # fmt: skip
        return input_shape if self.axis == 1 else super().output_shape(input_shape)

    def get_output_for(self, x, *, deterministic: bool = False):
        alpha = self.alpha
        if self.axis == 1:
            alpha = alpha.dimshuffle("x", 0, *["x"] * (x.type.ndim - 2))
        return pt.switch(x > 0, x, alpha * x)

    def get_config(self) -> dict[str, Any]:
        return {"n_units": self.n_units, "name": self.name, "axis": self.axis,
                "dtype": self.dtype}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PReLU:
        return cls(**config)


@register
class Activation(Layer):
    """A nonlinearity as a layer of ``n_units`` features, or channels for images (used after
    batch normalisation).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> Activation(2, "relu")(x).eval({x: np.array([[-1.0, 2.0]], dtype="float32")})
    array([[0., 2.]], dtype=float32)
    """

    def __init__(
        self,
        n_units: int,
        activation: Any = "linear",
        name: str | None = None,
        *,
        dtype: Any = None,
    ):
        super().__init__(name, dtype)
        self.n_in = check_positive(n_units, "n_units", integer=True)
        self.activation = nonlinearities.get(activation)

    def _check_input(self, x):
        if isinstance(x, pt.TensorVariable) and x.type.ndim == 4:  # images: n_units channels
            if x.type.shape[1] not in (None, self.n_in):
                raise SymnnValueError(
                    f"Activation{self._label()} has {self.n_in} units (channels); the input has "
                    f"{x.type.shape[1]} channels."
                )
            return x
        return super()._check_input(x)

    def output_shape(self, input_shape):
        if input_shape is not None and len(input_shape) == 3:
            if input_shape[0] != self.n_in:
                raise SymnnValueError(
                    f"has {self.n_in} units (channels) but the layer before gives {input_shape}."
                )
            return input_shape
        return super().output_shape(input_shape)

    def get_output_for(self, x, *, deterministic: bool = False):
        return self.activation(x)

    def get_config(self) -> dict[str, Any]:
        name = nonlinearities.name_of(self.activation)
        if name is None:
            raise SymnnValueError(
                f"Activation{self._label()} uses a custom function, which "
                "cannot be described by name."
            )
        return {"n_units": self.n_in, "activation": name, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Activation:
        return cls(**config)
