"""numba implementations of the recurrent cell ops of :mod:`symnn.ops.cells` (PyTensor's
numba backend): the same formulas with numpy's ``exp`` and ``tanh``, a scalar loop over the
cells; registering them keeps PyTensor from running the ops' Python ``perform``."""

from __future__ import annotations

import numpy as np

from .cells import GRUCell, GRUCellGrad, LSTMCell, LSTMCellGrad
from .dispatch import register_numba


def _numba_lstm_gates(nb):
    @nb.numba_njit
    def gates(z, c, i, j, h):
        si = 1 / (1 + np.exp(-z[i, j]))
        sf = 1 / (1 + np.exp(-z[i, h + j]))
        tg = np.tanh(z[i, 2 * h + j])
        so = 1 / (1 + np.exp(-z[i, 3 * h + j]))
        return si, sf, tg, so, sf * c[i, j] + si * tg

    return gates


def _numba_cell(nb, op, node):
    gates = _numba_lstm_gates(nb)

    @nb.numba_njit
    def cell(z, c):
        n, h = c.shape
        ho, co = np.empty_like(c), np.empty_like(c)
        for i in range(n):
            for j in range(h):
                _, _, _, so, cn = gates(z, c, i, j, h)
                co[i, j] = cn
                ho[i, j] = so * np.tanh(cn)
        return ho, co

    return cell


def _numba_grad(nb, op, node):
    gates = _numba_lstm_gates(nb)

    @nb.numba_njit
    def grad(z, c, dh, dcn):
        n, h = c.shape
        dz, dc = np.empty_like(z), np.empty_like(c)
        for i in range(n):
            for j in range(h):
                si, sf, tg, so, cn = gates(z, c, i, j, h)
                tc = np.tanh(cn)
                d = dcn[i, j] + dh[i, j] * so * (1 - tc * tc)
                dz[i, j] = d * tg * si * (1 - si)
                dz[i, h + j] = d * c[i, j] * sf * (1 - sf)
                dz[i, 2 * h + j] = d * si * (1 - tg * tg)
                dz[i, 3 * h + j] = dh[i, j] * tc * so * (1 - so)
                dc[i, j] = d * sf
        return dz, dc

    return grad


def _numba_gru_gates(nb):
    @nb.numba_njit
    def gates(zi, zh, i, j, h):
        r = 1 / (1 + np.exp(-(zi[i, j] + zh[i, j])))
        z = 1 / (1 + np.exp(-(zi[i, h + j] + zh[i, h + j])))
        return r, z, np.tanh(zi[i, 2 * h + j] + r * zh[i, 2 * h + j])

    return gates


def _numba_gru(nb, op, node):
    gates = _numba_gru_gates(nb)

    @nb.numba_njit
    def cell(zi, zh, hs):
        n, h = hs.shape
        out = np.empty_like(hs)
        for i in range(n):
            for j in range(h):
                _, z, nn = gates(zi, zh, i, j, h)
                out[i, j] = (1 - z) * nn + z * hs[i, j]
        return out

    return cell


def _numba_gru_grad(nb, op, node):
    gates = _numba_gru_gates(nb)

    @nb.numba_njit
    def grad(zi, zh, hs, d):
        n, h = hs.shape
        gi, gh, gs = np.empty_like(zi), np.empty_like(zh), np.empty_like(hs)
        for i in range(n):
            for j in range(h):
                r, z, nn = gates(zi, zh, i, j, h)
                dnp = d[i, j] * (1 - z) * (1 - nn * nn)
                drp = dnp * zh[i, 2 * h + j] * r * (1 - r)
                dzp = d[i, j] * (hs[i, j] - nn) * z * (1 - z)
                gi[i, j], gi[i, h + j], gi[i, 2 * h + j] = drp, dzp, dnp
                gh[i, j], gh[i, h + j], gh[i, 2 * h + j] = drp, dzp, dnp * r
                gs[i, j] = d[i, j] * z
        return gi, gh, gs

    return grad


def register() -> None:
    """Register the numba implementations (called when :mod:`symnn.ops` is imported)."""
    register_numba({LSTMCell: _numba_cell, LSTMCellGrad: _numba_grad, GRUCell: _numba_gru,
                    GRUCellGrad: _numba_gru_grad})  # fmt: skip
