"""Weight initialisers: callables ``(shape, rng) -> ndarray``.

Every initialiser is called with a shape and an explicit ``numpy.random.Generator`` (there is
no module-level random state). For a weight matrix of shape ``(n_in, n_out)`` the fan-in is
``shape[0]`` and the fan-out ``shape[1]``; for a convolution kernel ``(out_channels,
in_channels, kh, kw)`` (OIHW) the fan-in is ``in_channels * kh * kw`` and the fan-out
``out_channels * kh * kw``, as in Lasagne, Keras and PyTorch.

>>> import numpy as np
>>> w = GlorotUniform()((784, 100), np.random.default_rng(0))
>>> w.shape, w.dtype
((784, 100), dtype('float32'))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .errors import SymnnTypeError, SymnnValueError
from .utils import as_float_dtype

__all__ = [
    "Initializer",
    "GlorotUniform",
    "GlorotNormal",
    "XavierUniform",
    "XavierNormal",
    "HeUniform",
    "HeNormal",
    "Normal",
    "Uniform",
    "Constant",
    "Orthogonal",
    "get",
]


class Initializer(ABC):
    """Base class: subclasses implement :meth:`sample`."""

    def __call__(self, shape: Sequence[int], rng: np.random.Generator, dtype=None) -> np.ndarray:
        if not isinstance(rng, np.random.Generator):
            raise SymnnTypeError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)); "
                f"got {type(rng).__name__}."
            )
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise SymnnValueError(f"shape={shape} has a negative size.")
        return np.asarray(self.sample(shape, rng), dtype=as_float_dtype(dtype))

    @abstractmethod
    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draw values of ``shape`` from ``rng`` (float64; the caller casts)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise SymnnValueError(
            f"shape={shape}: Glorot and He initialisers need at least 2 dimensions (n_in, n_out)."
        )
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive  # OIHW: input channels are axis 1


class GlorotUniform(Initializer):
    """Glorot/Xavier uniform: ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    The Theano tutorial uses ``gain=4`` for sigmoid units.
    """

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        a = self.gain * np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape)


class GlorotNormal(Initializer):
    """Glorot/Xavier normal: ``N(0, std)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``."""

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        return rng.normal(0.0, self.gain * np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


XavierUniform = GlorotUniform
XavierNormal = GlorotNormal


class HeUniform(Initializer):
    """He uniform: ``U(-a, a)``, ``a = gain * sqrt(6 / fan_in)`` (``gain=1``: for ReLU)."""

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        fan_in, _ = _fans(shape)
        a = self.gain * np.sqrt(6.0 / fan_in)
        return rng.uniform(-a, a, size=shape)


class HeNormal(Initializer):
    """He normal: ``N(0, std)``, ``std = gain * sqrt(2 / fan_in)``."""

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        fan_in, _ = _fans(shape)
        return rng.normal(0.0, self.gain * np.sqrt(2.0 / fan_in), size=shape)


class Normal(Initializer):
    """Normal ``N(mean, std)``."""

    def __init__(self, std: float = 0.01, mean: float = 0.0):
        self.std, self.mean = float(std), float(mean)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.std, size=shape)


class Uniform(Initializer):
    """Uniform on ``(-range, range)`` for a number, or on ``(lo, hi)`` for a pair."""

    def __init__(self, range: float | tuple[float, float] = 0.01):  # noqa: A002 - Lasagne's name
        lo, hi = (-range, range) if np.isscalar(range) else range
        if not lo < hi:
            raise SymnnValueError(f"range={range!r} is empty; expected lo < hi.")
        self.range = (float(lo), float(hi))

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.range[0], self.range[1], size=shape)


class Constant(Initializer):
    """Every value equal to ``value``."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, self.value)


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014; Lasagne's
    ``Orthogonal``, the recurrent weights' default): the rows or the columns of the matrix
    ``(shape[0], prod(shape[1:]))`` are orthonormal.

    >>> W = Orthogonal()((4, 4), np.random.default_rng(0), "float64")
    >>> bool(np.allclose(W @ W.T, np.eye(4)))
    True
    """

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if len(shape) < 2:
            raise SymnnValueError(f"shape={shape}: Orthogonal needs at least 2 dimensions.")
        flat = (shape[0], int(np.prod(shape[1:])))
        a = rng.normal(0.0, 1.0, size=flat)
        u, _, vt = np.linalg.svd(a, full_matrices=False)
        q = u if u.shape == flat else vt
        return self.gain * q.reshape(shape)


_NAMES = {
    "orthogonal": Orthogonal,
    "glorot_uniform": GlorotUniform,
    "xavier_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "xavier_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "normal": Normal,
    "uniform": Uniform,
    "zeros": Constant,
}


def get(spec: Initializer | str | type, *, name: str = "init") -> Initializer:
    """An initialiser given as an instance, a class or a name (``"he_normal"``)."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, type) and issubclass(spec, Initializer):
        return spec()
    if isinstance(spec, str) and spec.lower() in _NAMES:
        return _NAMES[spec.lower()]()
    raise SymnnValueError(
        f"{name}={spec!r} is not an initialiser; expected an Initializer or one of "
        f"{', '.join(_NAMES)}."
    )
