"""JAX implementations of symnn's ops (PyTensor's JAX backend: ``mode="JAX"``, the route to
GPUs).

Each op is a ``jax.numpy`` expression that PyTensor's JAX linker traces into one XLA
program: the patch matrix of :class:`~symnn.ops.conv.Im2Col` from
``lax.conv_general_dilated_patches``, its adjoint by ``jax.vjp``, pooling as a gather of
precomputed window indices (so the gradient of max pooling goes to the first maximum of each
window, or to its last NaN, exactly as the C and numba code and PyTorch do), the pick and
scatter ops with ``.at[]``, softmax and the fused cross-entropy with ``jax.nn``, the LSTM and
GRU cells of :mod:`~symnn.ops.cells` and their gradients with ``jax.nn.sigmoid`` and
``jnp.tanh``.

A compiled XLA program cannot raise: an index out of bounds is clamped and a NaN in a
gathered row is not reported by :class:`~symnn.ops.gather.TakeRows`, so symnn's trainer checks
the data before it fits on this backend. ``jax`` is imported only when PyTensor's JAX
dispatch is (:mod:`symnn.ops.dispatch`).
"""

from __future__ import annotations

import numpy as np

from .cells import GRUCell, GRUCellGrad, LSTMCell, LSTMCellGrad
from .conv import Col2Im, Im2Col, Pool2D, Pool2DGrad
from .dispatch import register_jax
from .gather import TakeRows
from .indexing import IncPick, IncRows, PickRows
from .rowcorr import RowCorr, RowCorrT
from .rowsum import RowSum
from .softmax import LogSoftmaxRows, SoftmaxRows
from .softmax_xent import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad


def _patch_table(op, h: int, w: int) -> np.ndarray:
    """``(kh*kw, OH*OW)``: the flat pixel each kernel cell sees at each output position
    (``h * w``, a zero, in the padding)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.pad, op.dilation
    oh, ow = op.out_hw(h, w)
    iy = np.arange(kh)[:, None] * dh + np.arange(oh)[None, :] * sh - ph  # (kh, oh)
    ix = np.arange(kw)[:, None] * dw + np.arange(ow)[None, :] * sw - pw  # (kw, ow)
    iy, ix = np.broadcast_arrays(iy[:, None, :, None], ix[None, :, None, :])  # (kh, kw, oh, ow)
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    return np.where(inside, iy * w + ix, h * w).reshape(kh * kw, oh * ow).astype(np.int32)


def _patches(op):
    """``x (N, C, H, W) -> (C*kh*kw, N*OH*OW)`` without the ones row: a gather, so a NaN
    reaches only the patches that hold its pixel."""
    import jax.numpy as jnp

    def patches(x):
        n, c, h, w = x.shape
        table = _patch_table(op, h, w)
        flat = jnp.concatenate([x.reshape(n, c, h * w), jnp.zeros((n, c, 1), x.dtype)], -1)
        cols = flat[:, :, table]  # (N, C, kh*kw, OH*OW)
        return cols.transpose(1, 2, 0, 3).reshape(c * table.shape[0], n * table.shape[1])

    return patches


def _im2col(op, node):
    import jax.numpy as jnp

    patches = _patches(op)

    def im2col(x):
        cols = patches(x)
        if op.ones_row:
            cols = jnp.concatenate([cols, jnp.ones((1, cols.shape[1]), cols.dtype)])
        return cols

    return im2col


def _col2im(op, node):
    import jax

    patches = _patches(op)

    def col2im(cols, like):
        if op.ones_row:
            cols = cols[:-1]
        _, adjoint = jax.vjp(patches, jax.numpy.zeros(like.shape, cols.dtype))
        return adjoint(cols)[0]

    return col2im


def _window_table(op, h: int, w: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(index (P, K), count (P,), oh, ow)``: for every output position the flat pixel of
    each window cell (``h * w`` for a cell outside the image) and the divisor of average
    pooling, as the C and numpy code compute them."""
    oh, ow = op.out_hw(h, w)
    index = np.full((oh * ow, op.pool[0] * op.pool[1]), h * w, dtype=np.int32)
    count = np.ones(oh * ow)
    for oy, ox, y0, y1, x0, x1, divisor in op.window_bounds(h, w):
        cells = [y * w + x for y in range(y0, y1) for x in range(x0, x1)]
        index[oy * ow + ox, : len(cells)] = cells
        count[oy * ow + ox] = divisor
    return index, count, oh, ow


def _windows(op, x):
    """The window values ``(N, C, P, K)`` (``-inf`` or 0 outside the image) and the table."""
    import jax.numpy as jnp

    n, c, h, w = x.shape
    index, count, oh, ow = _window_table(op, h, w)
    fill = -jnp.inf if op.mode == "max" else 0
    flat = jnp.concatenate([x.reshape(n, c, h * w), jnp.full((n, c, 1), fill, x.dtype)], -1)
    return flat[:, :, index], index, count, (oh, ow)


def _pool(op, node):
    def pool(x):
        win, _, count, (oh, ow) = _windows(op, x)
        out = win.max(axis=-1) if op.mode == "max" else win.sum(axis=-1) / count.astype(x.dtype)
        return out.reshape(*x.shape[:2], oh, ow)

    return pool


def _pool_grad(op, node):
    import jax.numpy as jnp

    def pool_grad(x, gz):
        n, c, h, w = x.shape
        win, index, count, _ = _windows(op, x)
        g = gz.reshape(n * c, -1)
        if op.mode == "max":
            k = win.shape[-1]
            nan = jnp.isnan(win)
            last_nan = k - 1 - jnp.argmax(nan[..., ::-1], axis=-1)
            pick = jnp.where(nan.any(-1), last_nan, jnp.argmax(win, axis=-1))
            cells = jnp.asarray(index)[jnp.arange(index.shape[0]), pick].reshape(n * c, -1)
        else:
            cells = jnp.broadcast_to(jnp.asarray(index), (n * c, *index.shape))
            cells = cells.reshape(n * c, -1)
            g = jnp.repeat(g / count.astype(gz.dtype), index.shape[1], axis=-1)
        rows = jnp.arange(n * c)[:, None]
        gx = jnp.zeros((n * c, h * w + 1), gz.dtype).at[rows, cells].add(g)
        return gx[:, : h * w].reshape(x.shape)

    return pool_grad


def _take_rows(op, node):
    def take_rows(data, idx):
        return data[idx]

    return take_rows


def _pick(op, node):
    import jax.numpy as jnp

    def pick(m, y):
        return m[jnp.arange(m.shape[0]), y]

    return pick


def _inc_pick(op, node):
    import jax.numpy as jnp

    def inc_pick(x, g, y):
        at = x.at[jnp.arange(x.shape[0]), y]
        g = jnp.broadcast_to(g, (x.shape[0],))
        return at.set(g) if op.set else at.add(g)

    return inc_pick


def _inc_rows(op, node):
    import jax.numpy as jnp

    def inc_rows(x, v, idx):
        v = jnp.broadcast_to(v, (idx.shape[0], *x.shape[1:]))
        return x.at[idx].set(v) if op.set else x.at[idx].add(v)

    return inc_rows


def _row_sum(op, node):
    def row_sum(x):
        return x.sum(axis=1).astype(x.dtype)

    return row_sum


def _softmax(op, node):
    import jax

    log = isinstance(op, LogSoftmaxRows)

    def softmax(z):
        return jax.nn.log_softmax(z, axis=1) if log else jax.nn.softmax(z, axis=1)

    return softmax


def _xent(op, node):
    import jax
    import jax.numpy as jnp

    def xent(z, y):
        return -jax.nn.log_softmax(z, axis=1)[jnp.arange(z.shape[0]), y]

    return xent


def _xent_grad(op, node):
    import jax
    import jax.numpy as jnp

    def xent_grad(g, z, y):
        p = jax.nn.softmax(z, axis=1)
        p = p.at[jnp.arange(z.shape[0]), y].add(-1)
        return (jnp.broadcast_to(g, (z.shape[0],))[:, None] * p).astype(z.dtype)

    return xent_grad


# -- the recurrent cells ----------------------------------------------------------------------
def _jax_gates(z, c):
    import jax
    import jax.numpy as jnp

    i, f, g, o = jnp.split(z, 4, axis=1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _jax_cell(op, node):
    import jax.numpy as jnp

    def cell(z, c):
        si, sf, tg, so = _jax_gates(z, c)
        cn = sf * c + si * tg
        return so * jnp.tanh(cn), cn

    return cell


def _jax_grad(op, node):
    import jax.numpy as jnp

    def grad(z, c, dh, dcn):
        si, sf, tg, so = _jax_gates(z, c)
        tc = jnp.tanh(sf * c + si * tg)
        d = dcn + dh * so * (1 - tc * tc)
        dz = jnp.concatenate([d * tg * si * (1 - si), d * c * sf * (1 - sf),
                              d * si * (1 - tg * tg), dh * tc * so * (1 - so)], axis=1)
        return dz, d * sf

    return grad


def _jax_row_corr_fn(op):
    """Image ``i`` correlated with kernel ``i``: one grouped convolution, a group per image."""
    from jax import lax

    def row_corr(x, w):
        n, c, h, wd = x.shape
        out = lax.conv_general_dilated(
            x.reshape(1, n * c, h, wd), w, window_strides=op.stride,
            padding=[(p, p) for p in op.pad], rhs_dilation=op.dilation,
            feature_group_count=n,
        )  # fmt: skip
        return out[0]

    return row_corr


def _jax_row_corr(op, node):
    return _jax_row_corr_fn(op)


def _jax_row_corr_t(op, node):
    import jax

    forward = _jax_row_corr_fn(op)

    def row_corr_t(g, w, like):
        return jax.vjp(lambda x: forward(x, w), like)[1](g)[0]

    return row_corr_t


def _jax_gru_gates(zi, zh):
    import jax
    import jax.numpy as jnp

    (ir, iz, i_n), (hr, hz, hn) = jnp.split(zi, 3, axis=1), jnp.split(zh, 3, axis=1)
    r, z = jax.nn.sigmoid(ir + hr), jax.nn.sigmoid(iz + hz)
    return r, z, jnp.tanh(i_n + r * hn), hn


def _jax_gru(op, node):
    def cell(zi, zh, h):
        r, z, n, _ = _jax_gru_gates(zi, zh)
        return (1 - z) * n + z * h

    return cell


def _jax_gru_grad(op, node):
    import jax.numpy as jnp

    def grad(zi, zh, h, d):
        r, z, n, hn = _jax_gru_gates(zi, zh)
        dnp = d * (1 - z) * (1 - n * n)
        drp, dzp = dnp * hn * r * (1 - r), d * (h - n) * z * (1 - z)
        return (jnp.concatenate([drp, dzp, dnp], axis=1),
                jnp.concatenate([drp, dzp, dnp * r], axis=1), d * z)  # fmt: skip

    return grad


def register() -> None:
    """Register the JAX implementations (called when :mod:`symnn.ops` is imported)."""
    register_jax({
        Im2Col: _im2col,
        Col2Im: _col2im,
        Pool2D: _pool,
        Pool2DGrad: _pool_grad,
        TakeRows: _take_rows,
        PickRows: _pick,
        IncPick: _inc_pick,
        IncRows: _inc_rows,
        RowSum: _row_sum,
        RowCorr: _jax_row_corr,
        RowCorrT: _jax_row_corr_t,
        SoftmaxRows: _softmax,
        LogSoftmaxRows: _softmax,
        SoftmaxCrossEntropy: _xent,
        SoftmaxCrossEntropyGrad: _xent_grad,
        LSTMCell: _jax_cell,
        LSTMCellGrad: _jax_grad,
        GRUCell: _jax_gru,
        GRUCellGrad: _jax_gru_grad,
    })
