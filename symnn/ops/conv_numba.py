"""numba implementations of the convolution and pooling ops (PyTensor's numba backend, its
default mode without symnn's: ``pytensor.function(...)``, ``.eval()``, ``SYMNN_MODE=NUMBA``).

The same loops as the C code; registering them keeps PyTensor from running the ops' Python
``perform`` in numba's object mode. Skipped when numba is missing or its dispatch API differs
from the one this was written against.
"""

from __future__ import annotations

import numpy as np

from .conv import Col2Im, Im2Col, Pool2D, Pool2DGrad
from .dispatch import register_numba


def _pool_size(size, pool, stride, pad, ignore_border):
    if ignore_border:
        return (size + 2 * pad - pool) // stride + 1
    if stride >= pool:
        return (size - 1) // stride + 1
    return max(0, (size - 1 - pool + stride) // stride) + 1


def _patches(nb, op):
    """A numba loop over (patch row, image, output position) pairs, copying pixels into the
    patch matrix (``into_cols``) or adding patch values back into the image (its adjoint)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.pad, op.dilation

    @nb.numba_njit
    def loop(img, cols, into_cols):
        n, c, h, w = img.shape
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh <= 0 or ow <= 0 or cols.shape[1] != n * oh * ow:
            raise ValueError("im2col/col2im: the kernel does not fit the padded input.")
        for ci in range(c):
            for ky in range(kh):
                for kx in range(kw):
                    k = (ci * kh + ky) * kw + kx
                    for ni in range(n):
                        for oy in range(oh):
                            iy = oy * sh - ph + ky * dh
                            if iy < 0 or iy >= h:
                                continue
                            for ox in range(ow):
                                ix = ox * sw - pw + kx * dw
                                if 0 <= ix < w:
                                    j = (ni * oh + oy) * ow + ox
                                    if into_cols:
                                        cols[k, j] = img[ni, ci, iy, ix]
                                    else:
                                        img[ni, ci, iy, ix] += cols[k, j]

    return loop


def _out_size(size, kernel, stride, pad, dilation):
    return max(0, (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1)


def _im2col(nb, op):
    loop = _patches(nb, op)
    (kh, kw), rows = op.kernel, op.kernel[0] * op.kernel[1]
    geometry = (op.stride, op.pad, op.dilation)
    ones = int(op.ones_row)
    size = nb.numba_njit(_out_size)

    @nb.numba_njit
    def im2col(x):
        n, c, h, w = x.shape
        (sh, sw), (ph, pw), (dh, dw) = geometry
        positions = n * size(h, kh, sh, ph, dh) * size(w, kw, sw, pw, dw)
        out = np.zeros((c * rows + ones, positions), dtype=x.dtype)
        loop(x, out, True)
        if ones:
            out[c * rows, :] = 1
        return out

    return im2col


def _col2im(nb, op):
    loop = _patches(nb, op)

    @nb.numba_njit
    def col2im(cols, like):
        out = np.zeros(like.shape, dtype=cols.dtype)
        loop(out, cols, False)
        return out

    return col2im


def _windows(nb, op):
    """A numba function ``(h, w, oy, ox) -> (y0, y1, x0, x1, count)``."""
    (kh, kw), (sh, sw), (ph, pw) = op.pool, op.stride, op.pad
    inc = op.mode == "average_inc_pad"

    @nb.numba_njit
    def window(h, w, oy, ox):
        ys, xs = oy * sh - ph, ox * sw - pw
        ye, xe = min(ys + kh, h + ph), min(xs + kw, w + pw)
        y0, x0, y1, x1 = max(ys, 0), max(xs, 0), min(ye, h), min(xe, w)
        count = (ye - ys) * (xe - xs) if inc else (y1 - y0) * (x1 - x0)
        return y0, y1, x0, x1, count

    return window


def _pool(nb, op):
    window = _windows(nb, op)
    args = (op.pool, op.stride, op.pad, op.ignore_border)
    is_max = op.mode == "max"

    @nb.numba_njit
    def pool(x):
        n, c, h, w = x.shape
        oh = _pool_size_nb(h, args[0][0], args[1][0], args[2][0], args[3])
        ow = _pool_size_nb(w, args[0][1], args[1][1], args[2][1], args[3])
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        for ni in range(n):
            for ci in range(c):
                for oy in range(oh):
                    for ox in range(ow):
                        y0, y1, x0, x1, count = window(h, w, oy, ox)
                        if is_max:
                            best = x[ni, ci, y0, x0]
                            for y in range(y0, y1):
                                for xx in range(x0, x1):
                                    v = x[ni, ci, y, xx]
                                    if v > best or v != v:  # NaN wins, as in PyTorch
                                        best = v
                            out[ni, ci, oy, ox] = best
                        else:
                            s = 0.0
                            for y in range(y0, y1):
                                for xx in range(x0, x1):
                                    s += x[ni, ci, y, xx]
                            out[ni, ci, oy, ox] = s / count
        return out

    _pool_size_nb = nb.numba_njit(_pool_size)
    return pool


def _pool_grad(nb, op):
    window = _windows(nb, op)
    is_max = op.mode == "max"

    @nb.numba_njit
    def pool_grad(x, gz):
        n, c, h, w = x.shape
        oh, ow = gz.shape[2], gz.shape[3]
        gx = np.zeros_like(x)
        for ni in range(n):
            for ci in range(c):
                for oy in range(oh):
                    for ox in range(ow):
                        y0, y1, x0, x1, count = window(h, w, oy, ox)
                        g = gz[ni, ci, oy, ox]
                        if is_max:
                            by, bx = y0, x0
                            best = x[ni, ci, y0, x0]
                            for y in range(y0, y1):
                                for xx in range(x0, x1):
                                    v = x[ni, ci, y, xx]
                                    if v > best or v != v:  # the last NaN, else first max
                                        best, by, bx = v, y, xx
                            gx[ni, ci, by, bx] += g
                        else:
                            for y in range(y0, y1):
                                for xx in range(x0, x1):
                                    gx[ni, ci, y, xx] += g / count
        return gx

    return pool_grad


def register() -> None:
    """Register the numba implementations (called when :mod:`symnn.ops` is imported)."""
    makers = {Im2Col: _im2col, Col2Im: _col2im, Pool2D: _pool, Pool2DGrad: _pool_grad}
    register_numba({cls: (lambda nb, op, node, m=m: m(nb, op)) for cls, m in makers.items()})
