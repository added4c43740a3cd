"""Small random scalings and rotations of the inputs inside the ascent step (transformation
robustness, Olah et al., *Feature Visualization*, 2017): a table of ``K`` bilinear warps is
precomputed for the image shape; each step draws one warp per row and applies it as one flat
gather of four neighbours per pixel (C code, and its gradient a C scatter-add)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.c.op import COp

from ..ops.dispatch import register_jax, register_numba

__all__ = ["warp_tables", "warp_rows", "N_WARPS", "spectral_filter", "precondition"]

#: how many warps a table holds (each step draws one per row)
N_WARPS = 16


def warp_tables(
    image_shape: tuple[int, ...], scale: float, rotate: float, seed: Any, n: int = N_WARPS,
    crop: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(index (n, D, 4), weight (n, D, 4))``: for ``n`` warps (scale factor uniform in
    ``[1 - scale, 1 + scale]``, angle uniform in ``[-rotate, rotate]`` degrees, about the image
    centre; the first warp is the identity), the four source pixels of every output pixel
    (flat indices into one image) and their bilinear weights (0 outside the image).

    ``crop=(lo, hi)``: each warp after the first also shows a square crop of side uniform in
    ``[lo, hi]`` times the image's, centred at a point drawn from N(0.5, 0.15) in fractions of
    the image (MaCo's crops, Fel et al. 2023), resized to the whole image (before the scaling
    and rotation); the crop's parts outside the image are 0, as in ``roi_align``.

    >>> index, weight = warp_tables((3, 3), 0.0, 0.0, seed=0, n=2)
    >>> index.shape, float(weight[0].sum(axis=1).min())
    ((2, 9, 4), 1.0)
    """
    height, width = image_shape[0], image_shape[1]
    depth = int(np.prod(image_shape[2:], dtype=int))
    rng = np.random.default_rng(seed)
    factors = np.r_[1.0, rng.uniform(1 - scale, 1 + scale, n - 1)]
    angles = np.r_[0.0, np.deg2rad(rng.uniform(-rotate, rotate, n - 1))]
    sides, centres = np.ones(n), np.full((n, 2), 0.5)
    if crop is not None:
        sides[1:] = rng.uniform(crop[0], crop[1], n - 1)
        centres[1:] = rng.normal(0.5, 0.15, (n - 1, 2))
    tables = [_bilinear(height, width, s / side, a, centre)
              for s, a, side, centre in zip(factors, angles, sides, centres)]  # fmt: skip
    index = np.stack([t[0] for t in tables])
    weight = np.stack([t[1] for t in tables])
    if depth > 1:  # the same warp for every channel of a pixel (channels last)
        index = (index[:, :, None, :] * depth + np.arange(depth)[None, None, :, None]).reshape(
            n, -1, 4
        )
        weight = np.repeat(weight, depth, axis=1)
    return index, weight


def _bilinear(height: int, width: int, factor: float, angle: float, centre=(0.5, 0.5)):
    """``(index (D, 4), weight (D, 4))`` of one warp: output pixel ``p`` reads the input at
    the inverse warp of ``p`` about the image centre (scaling by ``factor``, rotation by
    ``angle`` radians), moved to ``centre`` (fractions of the image: ``(0.5, 0.5)`` is its
    centre), by bilinear interpolation, zero outside the image."""
    yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    cy, cx = (height - 1) / 2, (width - 1) / 2
    dy, dx = (yy - cy) / factor, (xx - cx) / factor
    sy = np.cos(angle) * dy + np.sin(angle) * dx + centre[0] * height - 0.5
    sx = -np.sin(angle) * dy + np.cos(angle) * dx + centre[1] * width - 0.5
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    index = np.zeros((height * width, 4), dtype=np.int64)
    weight = np.zeros((height * width, 4))
    corners = [(0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
               (1, 0, fy * (1 - fx)), (1, 1, fy * fx)]  # fmt: skip
    for j, (oy, ox, w) in enumerate(corners):
        py, px = y0 + oy, x0 + ox
        inside = (py >= 0) & (py < height) & (px >= 0) & (px < width)
        index[:, j] = (np.clip(py, 0, height - 1) * width + np.clip(px, 0, width - 1)).ravel()
        weight[:, j] = np.where(inside, w, 0.0).ravel()
    return index, weight


def warp_rows(x, choice, index, weight):
    """Row ``i`` of ``x`` (flat images) warped by table entry ``choice[i]``: one gather of
    ``(n, D, 4)`` values from the flattened batch, weighted and summed."""
    n, d = x.shape[0], x.shape[1]
    idx = index[choice] + (pt.arange(n) * d)[:, None, None]  # (n, D, 4) into x.reshape(-1)
    values = x.reshape((-1,))[idx.reshape((-1,))].reshape((n, d, 4))
    return pt.sum(values * weight[choice], axis=2)


def spectral_filter(image_shape: tuple[int, ...]) -> np.ndarray:
    """The ``(D, D)`` matrix of a 1/f filter on images of ``image_shape`` (channels last, each
    channel filtered alike): the 2-D Fourier transform, each frequency ``f`` weighted by
    ``1 / max(|f|, 1 / max(H, W))`` over the largest weight, the inverse transform. Symmetric,
    eigenvalues in (0, 1], the mean of an image passed unchanged: applied to the gradient it
    damps the high frequencies that make activation maximisation's images noisy (Olah et al.,
    *Feature Visualization*, 2017, "preconditioning").

    >>> P = spectral_filter((4, 4))
    >>> bool(np.allclose(P, P.T)), bool(np.allclose(P @ np.ones(16), np.ones(16)))
    (True, True)
    """
    height, width = image_shape[0], image_shape[1]
    depth = int(np.prod(image_shape[2:], dtype=int))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    weight = 1.0 / np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(height, width))
    weight /= weight.max()
    basis = np.eye(height * width).reshape(-1, height, width)
    filtered = np.real(np.fft.ifft2(np.fft.fft2(basis) * weight)).reshape(height * width, -1)
    matrix = (filtered + filtered.T) / 2  # symmetric up to rounding already
    return np.kron(matrix, np.eye(depth)) if depth > 1 else matrix


class Precondition(Op):
    """The identity forward; backward, the gradient times a fixed symmetric matrix, so a
    gradient ascent on the input moves along the filtered gradient."""

    __props__ = ()
    view_map = {0: [0]}

    def make_node(self, x, matrix):
        x, matrix = pt.as_tensor_variable(x), pt.as_tensor_variable(matrix)
        return Apply(self, [x, matrix], [x.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0]

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[0]]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        return [pt.dot(cotangents[0], inputs[1]), disconnected_type()]


class _PreconditionC(Precondition, COp):
    def c_code(self, node, name, inames, onames, sub):
        """The C code: the output is the input (a view)."""
        return f"Py_XDECREF({onames[0]}); {onames[0]} = {inames[0]}; Py_INCREF({inames[0]});"

    def c_code_cache_version(self):
        return (1,)


def precondition(x, matrix):
    """``x`` whose gradient is multiplied by ``matrix`` (symmetric) on the way back."""
    return _PreconditionC()(x, matrix)


def _numba_identity(nb, op, node):
    @nb.numba_njit
    def identity(x, matrix):
        return x

    return identity


register_numba({Precondition: _numba_identity})


def _jax_identity(op, node):
    def identity(x, matrix):
        return x

    return identity


register_jax({Precondition: _jax_identity})
