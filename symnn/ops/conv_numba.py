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
from .rowcorr import RowCorr, RowCorrT


def _pool_size(size, pool, stride, pad, ignore_border):
    if ignore_border:
        return (size + 2 * pad - pool) // stride + 1
    if stride >= pool:
        return (size - 1) // stride + 1
    return max(0, (size - 1 - pool + stride) // stride) + 1


def _patches(nb, op):
    """A numba loop over (patch row, image, output row) triples of flat C-contiguous arrays,
    copying pixels into the patch matrix (``into_cols``, padding written as zeros) or adding
    patch values back into the image (its adjoint). As in the C code, the output positions
    whose pixel lies inside the image form one range per kernel column, so the innermost loop
    has no test. Its indices are unsigned: numba checks every signed index for a negative
    value to wrap around, which keeps LLVM from vectorising the copy (4x slower here)."""
    from numba import uint64

    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.pad, op.dilation

    @nb.numba_njit
    def loop(img, shape, cols, into_cols):
        n, c, h, w = shape
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        positions = n * oh * ow
        if oh <= 0 or ow <= 0 or cols.size < c * kh * kw * positions:
            raise ValueError("im2col/col2im: the kernel does not fit the padded input.")
        for ci in range(c):
            for ky in range(kh):
                for kx in range(kw):
                    k = (ci * kh + ky) * kw + kx
                    off = kx * dw - pw  # ix = ox * sw + off
                    lo = 0 if off >= 0 else (-off + sw - 1) // sw
                    hi = 0 if w - 1 - off < 0 else (w - 1 - off) // sw + 1
                    lo, hi = min(lo, ow), min(hi, ow)
                    hi = max(hi, lo)
                    for ni in range(n):
                        for oy in range(oh):
                            d = k * positions + (ni * oh + oy) * ow  # >= 0
                            iy = oy * sh - ph + ky * dh
                            inside = 0 <= iy < h
                            if into_cols:  # the padding: zeros
                                for ox in range(0, ow if not inside else lo):
                                    cols[uint64(d + ox)] = 0
                                for ox in range(hi if inside else ow, ow):
                                    cols[uint64(d + ox)] = 0
                            if not inside:
                                continue
                            src = ((ni * c + ci) * h + iy) * w + off  # src + ox * sw >= 0
                            if into_cols:
                                for ox in range(lo, hi):
                                    cols[uint64(d + ox)] = img[uint64(src + ox * sw)]
                            else:
                                for ox in range(lo, hi):
                                    img[uint64(src + ox * sw)] += cols[uint64(d + ox)]

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
        out = np.empty((c * rows + ones, positions), dtype=x.dtype)
        loop(np.ascontiguousarray(x).ravel(), x.shape, out.ravel(), True)
        if ones:
            out[c * rows, :] = 1
        return out

    return im2col


def _col2im(nb, op):
    loop = _patches(nb, op)

    @nb.numba_njit
    def col2im(cols, like):
        out = np.zeros(like.shape, dtype=cols.dtype)
        loop(out.ravel(), like.shape, np.ascontiguousarray(cols).ravel(), False)
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
    """Pooling over flat C-contiguous planes with unsigned indices (see :func:`_patches`)."""
    from numba import uint64

    window = _windows(nb, op)
    args = (op.pool, op.stride, op.pad, op.ignore_border)
    is_max = op.mode == "max"
    _pool_size_nb = nb.numba_njit(_pool_size)

    @nb.numba_njit
    def pool(x):
        n, c, h, w = x.shape
        oh = _pool_size_nb(h, args[0][0], args[1][0], args[2][0], args[3])
        ow = _pool_size_nb(w, args[0][1], args[1][1], args[2][1], args[3])
        src = np.ascontiguousarray(x).ravel()
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        dst = out.ravel()
        for plane in range(n * c):
            base, obase = plane * h * w, plane * oh * ow
            for oy in range(oh):
                for ox in range(ow):
                    y0, y1, x0, x1, count = window(h, w, oy, ox)
                    if is_max:
                        best = src[uint64(base + y0 * w + x0)]
                        for y in range(y0, y1):
                            for xx in range(x0, x1):
                                v = src[uint64(base + y * w + xx)]
                                if v > best or v != v:  # NaN wins, as in PyTorch
                                    best = v
                        dst[uint64(obase + oy * ow + ox)] = best
                    else:
                        total = 0.0
                        for y in range(y0, y1):
                            for xx in range(x0, x1):
                                total += src[uint64(base + y * w + xx)]
                        dst[uint64(obase + oy * ow + ox)] = total / count
        return out

    return pool


def _pool_grad(nb, op):
    from numba import uint64

    window = _windows(nb, op)
    is_max = op.mode == "max"

    @nb.numba_njit
    def pool_grad(x, gz):
        n, c, h, w = x.shape
        oh, ow = gz.shape[2], gz.shape[3]
        src = np.ascontiguousarray(x).ravel()
        grad = np.ascontiguousarray(gz).ravel()
        gx = np.zeros((n, c, h, w), dtype=x.dtype)
        dst = gx.ravel()
        for plane in range(n * c):
            base, gbase = plane * h * w, plane * oh * ow
            for oy in range(oh):
                for ox in range(ow):
                    y0, y1, x0, x1, count = window(h, w, oy, ox)
                    g = grad[uint64(gbase + oy * ow + ox)]
                    if is_max:
                        at = base + y0 * w + x0
                        best = src[uint64(at)]
                        for y in range(y0, y1):
                            for xx in range(x0, x1):
                                v = src[uint64(base + y * w + xx)]
                                if v > best or v != v:  # the last NaN, else the first max
                                    best, at = v, base + y * w + xx
                        dst[uint64(at)] += g
                    else:
                        for y in range(y0, y1):
                            for xx in range(x0, x1):
                                dst[uint64(base + y * w + xx)] += g / count
        return gx

    return pool_grad


def _row_loop(nb, op, forward: bool):
    """The loops of :mod:`symnn.ops.rowcorr`: ``out += w * x`` over each image's windows
    (``forward``), or the image gradient ``img += w * out`` (its adjoint)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.pad, op.dilation

    @nb.numba_njit
    def loop(img, w, plane):
        n, c, h, wd = img.shape
        oh, ow = plane.shape[1:]
        for i in range(n):
            for ch in range(c):
                for ky in range(kh):
                    for kx in range(kw):
                        wv = w[i, ch, ky, kx]
                        off = kx * dw - pw
                        lo = 0 if off >= 0 else min((-off + sw - 1) // sw, ow)
                        hi = 0 if wd - 1 - off < 0 else min((wd - 1 - off) // sw + 1, ow)
                        for oy in range(oh):
                            iy = oy * sh - ph + ky * dh
                            if iy < 0 or iy >= h:
                                continue
                            for ox in range(lo, hi):
                                if forward:
                                    plane[i, oy, ox] += wv * img[i, ch, iy, ox * sw + off]
                                else:
                                    img[i, ch, iy, ox * sw + off] += wv * plane[i, oy, ox]

    return loop


def _row_corr(nb, op):
    loop = _row_loop(nb, op, True)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.pad, op.dilation
    size = nb.numba_njit(_out_size)

    @nb.numba_njit
    def row_corr(x, w):
        n, c, h, wd = x.shape
        if w.shape != (n, c, kh, kw):
            raise ValueError("RowCorr: expected one (C, kh, kw) kernel per image")
        out = np.zeros((n, size(h, kh, sh, ph, dh), size(wd, kw, sw, pw, dw)), dtype=x.dtype)
        loop(np.ascontiguousarray(x), np.ascontiguousarray(w), out)
        return out

    return row_corr


def _row_corr_t(nb, op):
    loop = _row_loop(nb, op, False)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.pad, op.dilation
    size = nb.numba_njit(_out_size)

    @nb.numba_njit
    def row_corr_t(g, w, like):
        n, c, h, wd = like.shape
        if w.shape != (n, c, kh, kw):
            raise ValueError("RowCorrT: expected one (C, kh, kw) kernel per image")
        if g.shape != (n, size(h, kh, sh, ph, dh), size(wd, kw, sw, pw, dw)):
            raise ValueError("RowCorrT: g does not have the output's shape")
        out = np.zeros(like.shape, dtype=g.dtype)
        loop(out, np.ascontiguousarray(w), np.ascontiguousarray(g))
        return out

    return row_corr_t


def register() -> None:
    """Register the numba implementations (called when :mod:`symnn.ops` is imported)."""
    makers = {Im2Col: _im2col, Col2Im: _col2im, Pool2D: _pool, Pool2DGrad: _pool_grad,
              RowCorr: _row_corr, RowCorrT: _row_corr_t}  # fmt: skip
    register_numba({cls: (lambda nb, op, node, m=m: m(nb, op)) for cls, m in makers.items()})
