"""``symnn.ops.cells``: the fused elementwise half of an LSTM step and its gradient on the
C backend (vectorised float32 sigmoid and tanh), numba and the Python implementation, against
numpy in float64 (values, NaN and infinity where numpy puts them), finite differences, and
the accuracy of the float32 approximations on a dense grid. The LSTM layer against PyTorch
is in ``test_recurrent.py``."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.backend import resolve_mode
from symnn.errors import SymnnTypeError
from symnn.gradcheck import check_grad
from symnn.ops.cells import gru_cell, lstm_cell

RNG = np.random.default_rng(0)
N, H = 5, 7
Z = RNG.normal(size=(N, 4 * H)) * 4
C = RNG.normal(size=(N, H))
Z[0, :4] = [np.nan, np.inf, -np.inf, 100.0]  # input gate
Z[1, H : H + 3] = [-np.inf, np.inf, -100.0]  # forget gate
Z[2, 2 * H : 2 * H + 2] = [np.inf, -np.inf]  # candidate
Z[3, 3 * H] = np.nan  # output gate
W_H, W_C = RNG.normal(size=(2, N, H))


def _numpy(z, c, wh, wc):
    """Values and gradients of ``sum(h * wh + c' * wc)`` by numpy in float64."""
    with np.errstate(all="ignore"):
        i, f, g, o = np.split(z, 4, axis=1)
        si, sf, so = (1 / (1 + np.exp(-v)) for v in (i, f, o))
        tg = np.tanh(g)
        cn = sf * c + si * tg
        tc = np.tanh(cn)
        h = so * tc
        d = wc + wh * so * (1 - tc**2)
        dz = np.concatenate([d * tg * si * (1 - si), d * c * sf * (1 - sf), d * si * (1 - tg**2),
                             wh * tc * so * (1 - so)], axis=1)  # fmt: skip
    return [h, cn, dz, d * sf]


@pytest.fixture(scope="module", params=["float32", "float64"])
def compiled(request):
    dtype = request.param
    z, c, wh, wc = (pt.matrix(n, dtype=dtype) for n in ("z", "c", "wh", "wc"))
    h, cn = lstm_cell(z, c)
    outs = [h, cn, *pytensor.grad(pt.sum(h * wh + cn * wc), [z, c])]
    modes = {"C": resolve_mode("C"), "NUMBA": resolve_mode("NUMBA"), "python": "FAST_COMPILE"}
    return dtype, {k: pytensor.function([z, c, wh, wc], outs, mode=m) for k, m in modes.items()}


@pytest.mark.parametrize("backend", ["C", "NUMBA", "python", "JAX"])
def test_values_gradients_nan_and_infinity_equal_numpys(compiled, backend):
    dtype, fns = compiled
    if backend == "JAX":
        pytest.importorskip("jax")
        z, c, wh, wc = (pt.matrix(n, dtype=dtype) for n in ("z", "c", "wh", "wc"))
        h, cn = lstm_cell(z, c)
        outs = [h, cn, *pytensor.grad(pt.sum(h * wh + cn * wc), [z, c])]
        fns = {"JAX": pytensor.function([z, c, wh, wc], outs, mode=resolve_mode("JAX"))}
    args = [a.astype(dtype) for a in (Z, C, W_H, W_C)]
    want = _numpy(*(a.astype(np.float64) for a in args))
    tol = 2e-6 if dtype == "float32" else 1e-12
    for got, ref, what in zip(fns[backend](*args), want, ["h", "c", "dz", "dc"]):
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=what)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", None])
def test_gradients_equal_finite_differences(mode):
    z, c = pt.matrix("z", dtype="float64"), pt.matrix("c", dtype="float64")
    h, cn = lstm_cell(z, c)
    cost = pt.sum(h * W_H) + pt.sum(cn * W_C) + pt.sum(h * cn)
    zs, cs = RNG.normal(size=(N, 4 * H)), RNG.normal(size=(N, H))
    assert check_grad(cost, [z, c], [zs, cs], mode=mode) < 5e-6


def test_float32_sigmoid_and_tanh_are_within_a_few_ulps_on_a_dense_grid():
    """The C backend's float32 gates against numpy's float64 functions at 2,000,000 points of
    [-10, 10] plus the edge cases (tiny, large, infinite, NaN)."""
    edge = [0.0, 1e-5, -1e-5, 3e-4, 5e-4, 7.9, 8.0, 20.0, -20.0, -87.0, -88.5, -100.0,
            np.inf, -np.inf, np.nan]  # fmt: skip
    x = np.concatenate([np.linspace(-10, 10, 2_000_000), edge]).astype("float32")
    x = np.concatenate([x, np.zeros(-len(x) % 1000, "float32")]).reshape(-1, 1000)
    z, c = pt.matrix("z", dtype="float32"), pt.matrix("c", dtype="float32")
    f = pytensor.function([z, c], lstm_cell(z, c)[1], mode=resolve_mode("C"))
    full = np.full((len(x), 1000), 100.0, "float32")  # saturated gates: exactly 1
    zero = np.zeros((len(x), 1000), "float32")
    tanh = f(np.hstack([full, zero, x, zero]), zero)  # c' = 1 * tanh(x)
    sig = f(np.hstack([x, zero, full, zero]), zero)  # c' = sigmoid(x) * 1
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        for got, want in ((tanh, np.tanh(x64)), (sig, 1 / (1 + np.exp(-x64)))):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            ok = np.isfinite(want) & (np.abs(want) > 1e-30)
            ulps = np.abs(got[ok] - want[ok]) / np.spacing(np.abs(want[ok]).astype(np.float32))
            assert ulps.max() <= 8, ulps.max()
    at = {v: np.flatnonzero(x.ravel() == v)[0] for v in (np.inf, -np.inf, -100.0)}
    assert tanh.ravel()[at[np.inf]] == 1 and tanh.ravel()[at[-np.inf]] == -1
    assert sig.ravel()[at[-np.inf]] == 0 and sig.ravel()[at[np.inf]] == 1
    assert 0 <= sig.ravel()[at[-100.0]] < 1e-38


def test_bad_shapes_and_types_are_named():
    z, c = pt.matrix("z", dtype="float32"), pt.matrix("c", dtype="float32")
    f = pytensor.function([z, c], lstm_cell(z, c), mode=resolve_mode("C"))
    with pytest.raises(ValueError, match=r"gates of shape \(2, 8\) do not fit a state of "
                                         r"shape \(2, 3\)"):  # fmt: skip
        f(np.zeros((2, 8), "float32"), np.zeros((2, 3), "float32"))
    with pytest.raises(SymnnTypeError, match="float matrices of one dtype"):
        lstm_cell(pt.matrix("z", dtype="float64"), c)
    with pytest.raises(SymnnTypeError, match="float matrices of one dtype"):
        lstm_cell(pt.tensor3("z"), c)


def _gru_numpy(zi, zh, h, w):
    """``h'`` and the gradients of ``sum(h' * w)`` by numpy in float64."""
    with np.errstate(all="ignore"):
        (ir, iz, i_n), (hr, hz, hn) = np.split(zi, 3, axis=1), np.split(zh, 3, axis=1)
        r, z = 1 / (1 + np.exp(-(ir + hr))), 1 / (1 + np.exp(-(iz + hz)))
        n = np.tanh(i_n + r * hn)
        dnp = w * (1 - z) * (1 - n**2)
        drp, dzp = dnp * hn * r * (1 - r), w * (h - n) * z * (1 - z)
        return [(1 - z) * n + z * h, np.hstack([drp, dzp, dnp]), np.hstack([drp, dzp, dnp * r]),
                w * z]  # fmt: skip


ZI, ZH = RNG.normal(size=(2, N, 3 * H)) * 4
ZI[0, :3] = [np.nan, np.inf, -np.inf]
ZH[1, H : H + 2] = [np.inf, -np.inf]
ZI[2, 2 * H] = np.inf


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["C", "NUMBA", "python", "JAX"])
def test_gru_values_gradients_nan_and_infinity_equal_numpys(dtype, backend):
    if backend == "JAX":
        pytest.importorskip("jax")
    zi, zh, h, w = (pt.matrix(n, dtype=dtype) for n in ("zi", "zh", "h", "w"))
    out = gru_cell(zi, zh, h)
    outs = [out, *pytensor.grad(pt.sum(out * w), [zi, zh, h])]
    mode = "FAST_COMPILE" if backend == "python" else resolve_mode(backend)
    args = [a.astype(dtype) for a in (ZI, ZH, C, W_H)]
    got = pytensor.function([zi, zh, h, w], outs, mode=mode)(*args)
    want = _gru_numpy(*(a.astype(np.float64) for a in args))
    tol = 2e-6 if dtype == "float32" else 1e-12
    for g, ref, what in zip(got, want, ["h", "dzi", "dzh", "dh"], strict=True):
        assert g.dtype == dtype
        np.testing.assert_array_equal(np.isnan(g), np.isnan(ref), err_msg=what)
        np.testing.assert_allclose(g, ref, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", None])
def test_gru_gradients_equal_finite_differences(mode):
    zi, zh, h = (pt.matrix(n, dtype="float64") for n in ("zi", "zh", "h"))
    out = gru_cell(zi, zh, h)
    cost = pt.sum(out * W_H) + pt.sum(out**2)
    values = [RNG.normal(size=(N, 3 * H)), RNG.normal(size=(N, 3 * H)), RNG.normal(size=(N, H))]
    assert check_grad(cost, [zi, zh, h], values, mode=mode) < 5e-6


def test_gru_bad_shapes_are_named():
    zi, zh, h = (pt.matrix(n, dtype="float32") for n in ("zi", "zh", "h"))
    f = pytensor.function([zi, zh, h], gru_cell(zi, zh, h), mode=resolve_mode("C"))
    with pytest.raises(ValueError, match=r"gru_cell: gates of shape \(2, 6\) do not fit a state"):
        f(np.zeros((2, 6), "float32"), np.zeros((2, 9), "float32"), np.zeros((2, 3), "float32"))
