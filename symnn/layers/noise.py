"""Dropout, with its random state in an explicitly seeded shared generator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnValueError
from ..utils import as_rng
from .base import Layer, attach_updates, register

__all__ = ["Dropout", "KeepMask"]


@register
class Dropout(Layer):
    """Sets each input to zero with probability ``p`` during training.

    The kept inputs are scaled by ``1 / (1 - p)`` (``rescale=True``) so the expected output
    equals the input; with ``deterministic=True`` the layer is the identity. Randomness comes
    from a shared PyTensor generator (``pt.random.shared_rng``) seeded from ``rng``; the
    generator's next state is recorded as a state update (see
    :func:`symnn.layers.get_updates`), so a training function advances it on every call.

    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from symnn.layers import get_updates
    >>> x = pt.matrix("x", dtype="float32")
    >>> y = Dropout(0.5, rng=0)(x)
    >>> f = pytensor.function([x], y, updates=get_updates(y), mode="FAST_COMPILE")
    >>> sorted(set(f(np.ones((4, 4), dtype="float32")).ravel().tolist()))
    [0.0, 2.0]
    """

    keeps_shape = True

    def __init__(
        self,
        p: float = 0.5,
        *,
        rescale: bool = True,
        rng: Any = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name, dtype)
        if not isinstance(p, (int, float, np.floating)) or not 0.0 <= float(p) < 1.0:
            raise SymnnValueError(f"p={p!r} is not a dropout probability; expected 0 <= p < 1.")
        self.p = float(p)
        self.rescale = bool(rescale)
        seed = int(as_rng(rng).integers(2**31 - 1))
        self.rng_state = pt.random.shared_rng(seed=seed, name=f"{name or 'dropout'}.rng")
        self._rngs.append(self.rng_state)

    def get_output_for(self, x, *, deterministic: bool = False):
        if deterministic or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        next_rng, mask = self.rng_state.bernoulli(keep, size=x.shape)
        out = x * pt.cast(mask, x.dtype)
        if self.rescale:
            out = out * np.asarray(1.0 / keep, dtype=x.dtype)
        return attach_updates(out, {self.rng_state: next_rng})

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p, "rescale": self.rescale, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dropout:
        return cls(**config)


@register
class KeepMask(Layer):
    """The mask of the inputs a dropout keeps when it keeps every one (inference, or a rate
    of 0): True for every element, of the input's shape (ONNX's ``Dropout`` ``mask`` output
    outside training).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> KeepMask()(x).eval({x: np.full((1, 2), np.nan, "float32")})
    array([[ True,  True]])
    """

    any_dtype = True
    integer_ok = True
    keeps_shape = True

    def __init__(self, name: str | None = None):
        super().__init__(name, None)

    def get_output_for(self, x, *, deterministic: bool = False):
        return pt.ones_like(x, dtype="bool")

    def output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}
