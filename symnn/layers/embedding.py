"""Tokens to vectors, and any layer applied to every step of a sequence: :class:`Embedding`
(PyTorch's ``nn.Embedding``, Keras' ``Embedding``) and :class:`TimeDistributed` (one call of
the layer on the ``batch * time`` steps, a reshape rather than a loop)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from ..init import Normal
from ..utils import check_positive, describe
from .base import Layer, _encode_layers, register, tag_call

__all__ = ["Embedding", "TimeDistributed"]


@register
class Embedding(Layer):
    """Row ``k`` of ``W (n_tokens, n_dims)`` for each token id ``k`` of an integer input of
    any shape: ``(batch, time)`` ids give ``(batch, time, n_dims)``. ``W`` starts as
    ``N(0, 1)``, as PyTorch's; its gradient touches only the rows of the ids seen.

    >>> import numpy as np, pytensor.tensor as pt
    >>> ids = pt.imatrix("ids")
    >>> Embedding(10, 4, rng=0)(ids).eval({ids: np.array([[1, 2, 3]], "int32")}).shape
    (1, 3, 4)
    """

    def __init__(self, n_tokens: int, n_dims: int, W: Any = None, name: str | None = None,
                 *, rng: Any = None, dtype: Any = None):  # fmt: skip
        super().__init__(name, dtype)
        self.n_tokens = check_positive(n_tokens, "n_tokens", integer=True)
        self.n_dims = check_positive(n_dims, "n_dims", integer=True)
        self.W = self.add_param(Normal(1.0) if W is None else W, (n_tokens, n_dims), "W", rng)

    def _check_input(self, x):
        if isinstance(x, np.ndarray | list):
            x = pt.as_tensor_variable(np.asarray(x, dtype="int64"))
        if not isinstance(x, pt.TensorVariable) or x.type.dtype[:3] not in ("int", "uin"):
            raise SymnnTypeError(
                f"Embedding{self._label()} takes integer token ids (e.g. pt.imatrix); got "
                f"{describe(x) if not isinstance(x, pt.TensorVariable) else x.type}."
            )
        return x

    def get_output_for(self, x, *, deterministic: bool = False):
        return self.W[x]

    def output_shape(self, input_shape):
        return None if input_shape is None else (*input_shape, self.n_dims)

    def torch_keys(self, suffix: str = "") -> list[tuple[str, Any, bool]]:
        """``nn.Embedding.weight`` is ``W`` as it is."""
        return [("weight", self.W, False)]

    def get_config(self) -> dict[str, Any]:
        return {"n_tokens": self.n_tokens, "n_dims": self.n_dims, "name": self.name,
                "dtype": self.dtype}  # fmt: skip


@register
class TimeDistributed(Layer):
    """``layer`` applied to every step of ``(batch, time, ...)`` inputs, as one call on the
    ``batch * time`` steps (Keras' ``TimeDistributed``): ``TimeDistributed(Dense(64, 10))``
    maps ``(N, T, 64)`` to ``(N, T, 10)``.

    >>> import pytensor.tensor as pt
    >>> from symnn.layers import Dense
    >>> x = pt.tensor3("x", dtype="float32", shape=(None, 7, 4))
    >>> TimeDistributed(Dense(4, 2, rng=0))(x).type.shape
    (None, 7, 2)
    """

    any_dtype = True

    def __init__(self, layer: Layer, name: str | None = None):
        if not isinstance(layer, Layer):
            raise SymnnTypeError(f"layer must be a symnn Layer; got {describe(layer)}.")
        self.layer = layer
        super().__init__(name, layer.dtype)

    def __call__(self, x, *, deterministic: bool = False):
        x = super()._check_input(x)
        if x.type.ndim < 3:
            raise SymnnValueError(
                f"TimeDistributed{self._label()} takes (batch, time, ...) inputs; got {x.type}."
            )
        n, t = x.shape[0], x.shape[1]
        steps = x.reshape((n * t, *[x.shape[i] for i in range(2, x.type.ndim)]),
                          ndim=x.type.ndim - 1)  # fmt: skip
        steps = pt.specify_shape(steps, (None, *x.type.shape[2:]))
        y = self.layer(steps, deterministic=deterministic)
        out = y.reshape((n, t, *[y.shape[i] for i in range(1, y.type.ndim)]), ndim=y.type.ndim + 1)
        out = pt.specify_shape(out, (None, x.type.shape[1], *y.type.shape[1:]))
        return tag_call(self, [x], out)

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        inner = self.layer.output_shape(tuple(input_shape[1:]))
        return None if inner is None else (input_shape[0], *inner)

    def get_config(self) -> dict[str, Any]:
        return {"layer": _encode_layers(self.layer), "name": self.name}
