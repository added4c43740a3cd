"""Batch normalisation with running statistics updated through update pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnValueError
from ..init import Constant
from ..utils import check_positive
from .base import Layer, attach_updates, pad_constant, register

__all__ = ["BatchNorm", "LocalResponseNorm"]


@register
class BatchNorm(Layer):
    """Batch normalisation over the batch axis (Ioffe & Szegedy, 2015).

    Training (``deterministic=False``) normalises with the minibatch mean and variance and
    records state updates that move the running statistics towards them by ``momentum``;
    inference (``deterministic=True``) uses the running statistics. ``beta`` and ``gamma``
    are trainable and not regularised; ``mean`` and ``inv_std`` are state (not trainable).

    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from symnn.layers import get_updates
    >>> bn = BatchNorm(2)
    >>> x = pt.matrix("x", dtype="float32")
    >>> y = bn(x)
    >>> f = pytensor.function([x], y, updates=get_updates(y), mode="FAST_COMPILE")
    >>> out = f(np.array([[0, 1], [2, 3]], dtype="float32"))
    >>> np.round(out, 2), np.round(bn.mean.get_value(), 2)
    (array([[-1., -1.],
           [ 1.,  1.]], dtype=float32), array([0.1, 0.2], dtype=float32))
    """

    def __init__(
        self,
        n_units: int,
        *,
        epsilon: float = 1e-4,
        momentum: float = 0.1,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name, dtype)
        self.n_in = check_positive(n_units, "n_units", integer=True)
        check_positive(epsilon, "epsilon")
        if not 0.0 < float(momentum) <= 1.0:
            raise SymnnValueError(
                f"momentum={momentum!r} is not valid; expected 0 < momentum <= 1."
            )
        self.epsilon, self.momentum = float(epsilon), float(momentum)
        shape = (n_units,)
        self.beta = self.add_param(Constant(0.0), shape, "beta", None, regularizable=False)
        self.gamma = self.add_param(Constant(1.0), shape, "gamma", None, regularizable=False)
        self.mean = self.add_param(
            Constant(0.0), shape, "mean", None, trainable=False, regularizable=False
        )
        self.inv_std = self.add_param(
            Constant(1.0), shape, "inv_std", None, trainable=False, regularizable=False
        )

    def _check_input(self, x):
        x = pt.as_tensor_variable(x) if not isinstance(x, pt.TensorVariable) else x
        if x.type.ndim != 4:
            return super()._check_input(x)
        channels = x.type.shape[1]
        if channels is not None and channels != self.n_in:
            raise SymnnValueError(
                f"BatchNorm{self._label()} normalises {self.n_in} channels; the input has "
                f"{channels} (type {x.type})."
            )
        return x

    def output_shape(self, input_shape):
        if input_shape is not None and len(input_shape) == 3:  # (channels, height, width)
            if input_shape[0] != self.n_in:
                raise SymnnValueError(
                    f"normalises {self.n_in} channels but the layer before gives {input_shape}."
                )
            return input_shape
        return super().output_shape(input_shape)

    def get_output_for(self, x, *, deterministic: bool = False):
        """Per feature for matrices; per channel (over batch, height and width) for
        ``(N, C, H, W)`` inputs."""
        axes = (0, 2, 3) if x.ndim == 4 else (0,)

        def per_unit(v):
            return v.dimshuffle("x", 0, "x", "x") if x.ndim == 4 else v

        beta, gamma, mean, inv_std = map(per_unit, (self.beta, self.gamma, self.mean, self.inv_std))
        if deterministic:
            return (x - mean) * (gamma * inv_std) + beta
        eps = np.asarray(self.epsilon, dtype=x.dtype)
        a = np.asarray(self.momentum, dtype=x.dtype)
        if x.ndim == 4:  # channels first: the (C, N*H*W) rows a convolution writes contiguous
            rows = x.dimshuffle(1, 0, 2, 3).reshape((x.shape[1], -1))
            batch_mean = pt.mean(rows, axis=1)
            batch_inv_std = 1.0 / pt.sqrt(pt.var(rows, axis=1) + eps)
            scale = (self.gamma * batch_inv_std).dimshuffle(0, "x")
            shift = (self.beta - batch_mean * self.gamma * batch_inv_std).dimshuffle(0, "x")
            channels_first = (rows * scale + shift).reshape(
                (x.shape[1], x.shape[0], x.shape[2], x.shape[3])
            )
            out = pt.specify_shape(channels_first.dimshuffle(1, 0, 2, 3), x.type.shape)
        else:
            batch_mean = pt.mean(x, axis=axes)
            batch_inv_std = 1.0 / pt.sqrt(pt.var(x, axis=axes) + eps)
            out = (x - per_unit(batch_mean)) * (gamma * per_unit(batch_inv_std)) + beta
        updates = {
            self.mean: (1 - a) * self.mean + a * batch_mean,
            self.inv_std: (1 - a) * self.inv_std + a * batch_inv_std,
        }
        return attach_updates(out, updates)

    def get_config(self) -> dict[str, Any]:
        return {
            "n_units": self.n_in,
            "epsilon": self.epsilon,
            "momentum": self.momentum,
            "name": self.name,
            "dtype": self.dtype,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BatchNorm:
        return cls(**config)


@register
class LocalResponseNorm(Layer):
    """Local response normalisation across channels (AlexNet, GoogLeNet), with PyTorch's
    ``nn.LocalResponseNorm`` arguments and semantics (which ONNX's ``LRN`` shares)::

        b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta

    the window holding ``size`` channels around ``c`` (``size // 2`` before, ``(size - 1) //
    2`` after), zeros beyond the first and last channel. Works on ``(N, C, ...)`` tensors.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float64")
    >>> out = LocalResponseNorm(1, alpha=1.0, beta=1.0, k=0.0)(x)
    >>> out.eval({x: np.full((1, 2, 1, 1), 2.0)}).ravel()  # a / a**2
    array([0.5, 0.5])
    """

    any_dtype = True

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                 name: str | None = None):  # fmt: skip
        super().__init__(name, None)
        self.size = check_positive(size, "size", integer=True)
        self.alpha = float(check_positive(alpha, "alpha", allow_zero=True))
        self.beta = float(check_positive(beta, "beta", allow_zero=True))
        self.k = float(check_positive(k, "k", allow_zero=True))

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.type.ndim < 3:
            raise SymnnValueError(
                f"LocalResponseNorm{self._label()} takes (N, C, ...) inputs with at least one "
                f"spatial axis, as PyTorch's; got {x.type}."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        before, after = self.size // 2, (self.size - 1) // 2
        squares = pt.square(x)
        widths = [(0, 0), (before, after)] + [(0, 0)] * (x.type.ndim - 2)
        padded = pad_constant(squares, widths)
        c = x.shape[1]
        total = sum(padded[:, i : i + c] for i in range(self.size))
        k, alpha, beta = (np.asarray(v, dtype=x.type.dtype)
                          for v in (self.k, self.alpha / self.size, self.beta))  # fmt: skip
        return x / (k + alpha * total) ** beta

    def output_shape(self, input_shape):
        return input_shape
