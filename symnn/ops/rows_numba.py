"""numba implementations of symnn's row ops: the pick and its scatters, the minibatch
gather, row sums and the row softmaxes (PyTensor's numba backend: ``mode="NUMBA"``,
PyTensor's default ``Mode(linker="auto")``).

The same loops as the C code, with the same errors; registering them keeps PyTensor from
running the ops' Python ``perform`` in numba's object mode. The convolution and pooling loops
are in :mod:`symnn.ops.conv_numba`, the fused cross-entropy's in
:mod:`symnn.ops.softmax_xent`.
"""

from __future__ import annotations

import numpy as np

from .dispatch import register_numba
from .gather import NonFiniteRowError, TakeRows
from .indexing import IncPick, IncRows, PickRows
from .rowsum import RowSum
from .softmax import LogSoftmaxRows, SoftmaxRows


def _column(nb):
    """``(y, i, k) -> y[i]`` with a negative index counted from the end, checked."""

    @nb.numba_njit
    def column(y, i, k):
        j = y[i] + k if y[i] < 0 else y[i]
        if j < 0 or j >= k:
            raise IndexError("pick: an index is out of bounds.")
        return j

    return column


def _pick(nb, op, node):
    out_dtype = np.dtype(node.outputs[0].dtype)
    column = _column(nb)

    @nb.numba_njit
    def pick(m, y):
        n, k = m.shape
        if len(y) != n:
            raise ValueError("pick: the index count does not match the rows.")
        out = np.empty(n, dtype=out_dtype)
        for i in range(n):
            out[i] = m[i, column(y, i, k)]
        return out

    return pick


def _inc_pick(nb, op, node):
    assign = op.set
    column = _column(nb)

    @nb.numba_njit
    def inc_pick(x, g, y):
        n, k = x.shape
        if len(y) != n:
            raise ValueError("inc_pick: the index count does not match the rows.")
        if len(g) != n and len(g) != 1:
            raise ValueError("inc_pick: the values do not match the rows.")
        out = x.copy()
        for i in range(n):
            j = column(y, i, k)
            v = g[i] if len(g) == n else g[0]
            if assign:
                out[i, j] = v
            else:
                out[i, j] += v
        return out

    return inc_pick


def _inc_rows(nb, op, node):
    assign = op.set

    @nb.numba_njit
    def inc_rows(x, v, idx):
        n, n_idx = x.shape[0], len(idx)
        if (v.shape[0] != n_idx and v.shape[0] != 1) or v.shape[1:] != x.shape[1:]:
            raise ValueError("inc_rows: the values do not match the rows.")
        out = x.copy()
        flat = out.reshape((n, -1))
        src = np.ascontiguousarray(v).reshape((v.shape[0], -1))
        for j in range(n_idx):
            r = idx[j] + n if idx[j] < 0 else idx[j]
            if r < 0 or r >= n:
                raise IndexError("inc_rows: an index is out of bounds.")
            s = 0 if v.shape[0] == 1 else j
            if assign:
                flat[r, :] = src[s, :]
            else:
                flat[r, :] += src[s, :]
        return out

    return inc_rows


def _take_rows(nb, op, node):
    check = op._checks(node)

    @nb.numba_njit
    def take_rows(data, idx):
        n, n_idx = data.shape[0], len(idx)
        src = np.ascontiguousarray(data).reshape((n, -1))
        out = np.empty((n_idx, src.shape[1]), dtype=data.dtype)
        for i in range(n_idx):
            j = idx[i] + n if idx[i] < 0 else idx[i]
            if j < 0 or j >= n:
                raise IndexError("take_rows: an index is out of bounds.")
            bad = False
            for e in range(src.shape[1]):
                v = src[j, e]
                out[i, e] = v
                if check and not np.isfinite(v):
                    bad = True
            if bad:
                raise NonFiniteRowError(j)
        return out.reshape((n_idx,) + data.shape[1:])

    return take_rows


def _row_sum(nb, op, node):
    out_dtype = np.dtype(node.outputs[0].dtype)

    @nb.numba_njit
    def row_sum(x):
        n, m = x.shape
        out = np.empty(n, dtype=out_dtype)
        for i in range(n):
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
            j = 0
            while j + 8 <= m:
                a0 += x[i, j]
                a1 += x[i, j + 1]
                a2 += x[i, j + 2]
                a3 += x[i, j + 3]
                a4 += x[i, j + 4]
                a5 += x[i, j + 5]
                a6 += x[i, j + 6]
                a7 += x[i, j + 7]
                j += 8
            while j < m:
                a0 += x[i, j]
                j += 1
            out[i] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        return out

    return row_sum


def _softmax(nb, op, node):
    log = isinstance(op, LogSoftmaxRows)

    @nb.numba_njit
    def softmax(z):
        n, k = z.shape
        out = np.empty((n, k), dtype=z.dtype)
        for i in range(n):
            m = -np.inf
            for j in range(k):
                v = z[i, j]
                if v > m or v != v:  # NaN wins, as in numpy's max
                    m = v
                    if v != v:
                        break
            s = 0.0
            for j in range(k):
                e = np.exp(z[i, j] - m)
                out[i, j] = e
                s += e
            if log:
                shift = m + np.log(s)
                for j in range(k):
                    out[i, j] = z[i, j] - shift
            else:
                for j in range(k):
                    out[i, j] = out[i, j] / s
        return out

    return softmax


def register() -> None:
    """Register the numba implementations (called when :mod:`symnn.ops` is imported)."""
    register_numba({
        PickRows: _pick,
        IncPick: _inc_pick,
        IncRows: _inc_rows,
        TakeRows: _take_rows,
        RowSum: _row_sum,
        SoftmaxRows: _softmax,
        LogSoftmaxRows: _softmax,
    })
