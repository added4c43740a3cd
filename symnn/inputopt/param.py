"""Image parametrisations for feature visualisation: what the ascent moves, and how the image
the network sees is made from it.

- ``"pixel"``: the pixels themselves, projected onto the box ``[lo, hi]`` after each step.
- ``"fourier"`` (Lucid's ``fft_image``): coefficients of an orthonormal real Fourier basis,
  each scaled by ``1 / max(f, 1 / max(H, W))`` (``f``: its spatial frequency in cycles per
  pixel, as ``numpy.fft.fftfreq``), so equal steps move low frequencies more: the 1/f
  spectrum of natural images. The basis is separable (``B_H @ coefficients @ B_W.T`` per
  channel, two small matrix products), which spans the same images as Lucid's ``irfft2d``
  with the same scale per frequency, and runs as GEMMs on every backend.
- ``"maco"`` (Fel et al. 2023, Horama's ``maco_fv``): only the phase ``phi`` of the 2-D
  spectrum moves; its magnitude ``M`` is fixed to the mean ``|fft2|`` of reference images
  (per channel). The image is ``Re(ifft2(M exp(i phi)))``, computed with cosine and sine
  matrices, then standardised per image.

For ``"fourier"`` and ``"maco"`` the box holds by **squashing**, not projection: the image is
``lo + (hi - lo) * sigmoid(z)`` (Lucid's ``to_valid_rgb``). A projection would clip pixels
that the parameters cannot follow back (every coefficient moves every pixel), while the
squashed image is inside the box for any parameters, which then move freely. Three-channel
images are first mixed by a colour decorrelation matrix (Lucid's ``to_valid_rgb``
``decorrelate=True``): the square root of the reference pixels' colour covariance when given,
else Lucid's ImageNet matrix, each scaled by its largest column norm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnValueError

__all__ = ["PARAMS", "Parametrisation", "fourier_basis", "IMAGENET_COLOR_SQRT"]

PARAMS = ("pixel", "fourier", "maco")

#: Lucid's ``color_correlation_svd_sqrt`` (ImageNet), used without reference images
IMAGENET_COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)

#: Lucid's initial standard deviation of the Fourier coefficients, and its final scale
_FOURIER_SD, _FOURIER_DIVISOR = 0.01, 4.0

#: the parameters' box for the ascent: never reached (the sigmoid is flat long before)
PARAM_BOUND = 1e4


def fourier_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(B, f)``: an orthonormal real Fourier basis of length ``n`` as columns of ``B``
    (constant, cosines and sines of ``k`` cycles, and the alternating column for even ``n``)
    and each column's frequency ``f = k / n`` (``|numpy.fft.fftfreq(n)|`` of its ``k``).

    >>> B, f = fourier_basis(4)
    >>> np.allclose(B.T @ B, np.eye(4)), f.tolist()
    (True, [0.0, 0.25, 0.25, 0.5])
    """
    t = np.arange(n)
    cols, freqs = [np.full(n, 1 / np.sqrt(n))], [0.0]
    for k in range(1, (n - 1) // 2 + 1):
        cols += [np.sqrt(2 / n) * np.cos(2 * np.pi * k * t / n),
                 np.sqrt(2 / n) * np.sin(2 * np.pi * k * t / n)]  # fmt: skip
        freqs += [k / n, k / n]
    if n % 2 == 0 and n > 1:
        cols.append(np.cos(np.pi * t) / np.sqrt(n))
        freqs.append(0.5)
    return np.stack(cols, axis=1), np.array(freqs)


def _colour_sqrt(reference: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray:
    """The colour decorrelation matrix: ``U sqrt(S)`` of the reference pixels' colour
    covariance (or Lucid's ImageNet matrix), divided by its largest column norm."""
    if reference is None:
        sqrt = IMAGENET_COLOR_SQRT
    else:
        pixels = reference.reshape(len(reference), *shape).transpose(0, 2, 3, 1).reshape(-1, 3)
        u, s, _ = np.linalg.svd(np.cov(pixels, rowvar=False))
        sqrt = u * np.sqrt(s)
    return sqrt / np.max(np.linalg.norm(sqrt, axis=0))


@dataclass(frozen=True, eq=False)
class Parametrisation:
    """How an image ``(C, H, W)`` is made from the parameters the ascent moves.

    Build one with :meth:`make`; :meth:`image` maps symbolic parameters ``(n, width)`` to
    images ``(n, C*H*W)`` in the box, :meth:`initial` draws starting parameters.
    """

    kind: str
    image_shape: tuple[int, int, int]
    magnitude: np.ndarray | None = None  #: maco: the fixed ``|fft2|`` per channel (C, H, W)
    colour: np.ndarray | None = None  #: the 3x3 colour decorrelation matrix, or None

    @classmethod
    def make(cls, kind: str, image_shape: Any, *, reference: np.ndarray | None = None,
             decorrelate: Any = "auto") -> Parametrisation:  # fmt: skip
        """Check the arguments (naming each) and fit what the parametrisation needs from the
        ``reference`` images (rows of ``C*H*W`` values)."""
        if kind not in PARAMS:
            raise SymnnValueError(f"param={kind!r} is not known; expected one of {PARAMS}.")
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or min(shape) < 1:
            raise SymnnValueError(
                f"image_shape={image_shape!r}: expected (H, W) or (C, H, W) of positive sizes."
            )
        if decorrelate not in ("auto", True, False):
            raise SymnnValueError(f"decorrelate={decorrelate!r}: expected 'auto', True or False.")
        if decorrelate is True and (shape[0] != 3 or kind == "pixel"):
            raise SymnnValueError(
                f"decorrelate=True mixes the three colour channels of a Fourier or MaCo image; "
                f"the image has {shape[0]} channel(s) and param={kind!r}."
            )
        colour = None
        if kind != "pixel" and shape[0] == 3 and decorrelate is not False:
            colour = _colour_sqrt(reference, shape)
        magnitude = None
        if kind == "maco":
            if reference is None:
                raise SymnnValueError(
                    "param='maco' fixes the spectrum's magnitude to the mean |FFT| of real "
                    f"images and has none for {shape[0]}-channel {shape[1]}x{shape[2]} inputs: "
                    "pass reference images (reference=X_train, rows of C*H*W values)."
                )
            images = reference.reshape(len(reference), *shape)
            magnitude = np.abs(np.fft.fft2(images, axes=(-2, -1))).mean(axis=0)
        return cls(kind, shape, magnitude, colour)

    @property
    def width(self) -> int:
        """Parameters per image."""
        return int(np.prod(self.image_shape))

    def initial(self, n: int, rng: np.random.Generator, box: tuple[float, float],
                dtype: str) -> np.ndarray:  # fmt: skip
        """``n`` starting parameter rows: uniform pixels in the box, Lucid's small random
        spectrum, or MaCo's random phases."""
        if self.kind == "pixel":
            return rng.uniform(box[0], box[1], (n, self.width)).astype(dtype)
        if self.kind == "fourier":
            return (_FOURIER_SD * rng.standard_normal((n, self.width))).astype(dtype)
        return rng.uniform(-np.pi, np.pi, (n, self.width)).astype(dtype)

    def parameters_of(self, images: np.ndarray, box: tuple[float, float]) -> np.ndarray:
        """The parameters whose image is ``images`` (rows of ``C*H*W`` values in the box;
        pixels within 1e-4 of a bound come back 1e-4 inside it): the start of an
        accentuation. A MaCo image keeps the reference's magnitude spectrum, so it has none."""
        if self.kind == "pixel":
            return np.array(images, dtype=np.float64)
        if self.kind == "maco":
            raise SymnnValueError(
                "x0: a MaCo image keeps the reference's magnitude spectrum, so it cannot start "
                "from a given image; accentuate with param='fourier' or param='pixel'."
            )
        c, h, w = self.image_shape
        u = np.clip((np.asarray(images, dtype=np.float64) - box[0]) / (box[1] - box[0]),
                    1e-4, 1 - 1e-4)  # fmt: skip
        z = np.log(u / (1 - u)).reshape(-1, c, h, w)
        if self.colour is not None:
            z = np.einsum("ic,nchw->nihw", np.linalg.inv(self.colour), z)
        (bh, fh), (bw, fw) = fourier_basis(h), fourier_basis(w)
        scale = 1.0 / np.maximum(np.sqrt(fh[:, None] ** 2 + fw[None, :] ** 2), 1.0 / max(h, w))
        coef = _FOURIER_DIVISOR * np.einsum("yi,ncyx,xj->ncij", bh, z, bw) / scale
        return coef.reshape(len(z), -1)

    def image(self, p: Any, box: tuple[float, float]) -> Any:
        """The images ``(n, C*H*W)`` for the parameters ``p`` (symbolic ``(n, width)``)."""
        if self.kind == "pixel":
            return p
        c, h, w = self.image_shape
        grid = p.reshape((p.shape[0], c, h, w))
        z = self._fourier(grid) if self.kind == "fourier" else self._maco(grid)
        if self.colour is not None:
            z = pt.tensordot(z, self.colour.astype(p.dtype), axes=[[1], [1]]).transpose(0, 3, 1, 2)
        lo, hi = (np.asarray(v, dtype=p.dtype) for v in box)
        return (lo + (hi - lo) * pt.sigmoid(z)).reshape((p.shape[0], self.width))

    def _fourier(self, grid: Any) -> Any:
        (bh, fh), (bw, fw) = fourier_basis(self.image_shape[1]), fourier_basis(self.image_shape[2])
        freqs = np.sqrt(fh[:, None] ** 2 + fw[None, :] ** 2)
        scale = 1.0 / np.maximum(freqs, 1.0 / max(self.image_shape[1:]))
        dtype = grid.dtype
        scaled = grid * scale.astype(dtype)
        z = _right(_left(bh.astype(dtype), scaled), bw.T.astype(dtype))
        return z / np.asarray(_FOURIER_DIVISOR, dtype=dtype)

    def _maco(self, phase: Any) -> Any:
        c, h, w = self.image_shape
        dtype = phase.dtype
        ky, kx = np.arange(h), np.arange(w)
        cy, sy = (f(2 * np.pi * np.outer(ky, ky) / h).astype(dtype) for f in (np.cos, np.sin))
        cx, sx = (f(2 * np.pi * np.outer(kx, kx) / w).astype(dtype) for f in (np.cos, np.sin))
        mag = self.magnitude.astype(dtype)
        re, im = mag * pt.cos(phase), mag * pt.sin(phase)
        # Re(F_H (re + i im) F_W) with F = C + iS, the inverse DFT up to 1 / (H W)
        left_re = _left(cy, re) - _left(sy, im)
        left_im = _left(cy, im) + _left(sy, re)
        z = _right(left_re, cx) - _right(left_im, sx)
        flat = z.reshape((z.shape[0], -1))
        mean = flat.mean(axis=1, keepdims=True)
        std = pt.sqrt(pt.sqr(flat - mean).mean(axis=1, keepdims=True))
        return ((flat - mean) / (std + np.asarray(1e-4, dtype=dtype))).reshape(z.shape)


def _left(m: np.ndarray, x: Any) -> Any:
    """``m @ x`` for a matrix ``m`` (h, h) and images ``x`` (n, c, h, w), as one 2-D product
    (a GEMM in C; PyTensor runs a matrix times a stack of images in Python)."""
    n, c, h, w = x.shape
    flat = x.transpose(2, 0, 1, 3).reshape((h, n * c * w))
    return pt.dot(m, flat).reshape((m.shape[0], n, c, w)).transpose(1, 2, 0, 3)


def _right(x: Any, m: np.ndarray) -> Any:
    """``x @ m`` for images ``x`` (n, c, h, w) and a matrix ``m`` (w, w'), one 2-D product."""
    n, c, h, w = x.shape
    return pt.dot(x.reshape((n * c * h, w)), m).reshape((n, c, h, m.shape[1]))
