"""Convolution and pooling ops against direct numpy references, in float32 and float64, on
the numpy path (FAST_COMPILE) and the C path (symnn's mode)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.backend import python_nodes, resolve_mode
from symnn.ops.conv import col2im, im2col, pool_2d

GEOMETRIES = [  # (N, C, H, W), kernel, stride, pad, dilation
    ((2, 3, 7, 6), (3, 3), (1, 1), (0, 0), (1, 1)),
    ((1, 2, 9, 8), (2, 3), (2, 1), (1, 2), (1, 1)),
    ((2, 1, 8, 9), (3, 2), (2, 3), (2, 0), (2, 1)),
    ((3, 2, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1)),
]


def _modes():
    return ["FAST_COMPILE", resolve_mode("C")]


def reference_conv(x, w, stride, pad, dilation):
    """Cross-correlation by direct loops (float64)."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * pad[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, f, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            ys, xs = oy * stride[0], ox * stride[1]
            patch = xp[:, :, ys : ys + dilation[0] * (kh - 1) + 1 : dilation[0],
                       xs : xs + dilation[1] * (kw - 1) + 1 : dilation[1]]  # fmt: skip
            out[:, :, oy, ox] = np.einsum("nckl,fckl->nf", patch, w)
    return out


@pytest.mark.parametrize("mode", _modes(), ids=["numpy", "C"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,kernel,stride,pad,dilation", GEOMETRIES)
def test_convolution_by_im2col_matches_direct_loops(
    shape, kernel, stride, pad, dilation, dtype, mode
):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape)
    Wt = rng.normal(size=(4, shape[1], *kernel))
    x = pt.tensor4("x", dtype=dtype)
    w = pt.tensor4("w", dtype=dtype)
    cols = im2col(x, kernel, stride, pad, dilation)
    n = x.shape[0]
    want = reference_conv(X, Wt, stride, pad, dilation)
    oh, ow = want.shape[2:]
    out = pt.dot(w.reshape((4, -1)), cols).reshape((4, n, oh, ow)).dimshuffle(1, 0, 2, 3)
    g = pt.tensor4("g", dtype=dtype)
    gx, gw = pytensor.grad(pt.sum(out * g), [x, w])
    fn = pytensor.function([x, w, g], [out, gx, gw], mode=mode)
    if mode != "FAST_COMPILE":
        assert python_nodes(fn) == []
    G = rng.normal(size=want.shape)
    got, got_gx, got_gw = fn(X.astype(dtype), Wt.astype(dtype), G.astype(dtype))
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # gradients: the conv is linear, so <G, conv(x, w)> pulled back by finite differences is
    # exact; check against the adjoint computed by numpy (einsum over the same patches)
    eps = 1.0
    for k in rng.choice(X.size, 5, replace=False):
        E = np.zeros(X.size)
        E[k] = eps
        fd = np.sum(G * reference_conv(E.reshape(X.shape), Wt, stride, pad, dilation))
        np.testing.assert_allclose(got_gx.reshape(-1)[k], fd, rtol=tol * 10, atol=tol * 10)
    for k in rng.choice(Wt.size, 5, replace=False):
        E = np.zeros(Wt.size)
        E[k] = eps
        fd = np.sum(G * reference_conv(X, E.reshape(Wt.shape), stride, pad, dilation))
        np.testing.assert_allclose(got_gw.reshape(-1)[k], fd, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("mode", _modes(), ids=["numpy", "C"])
def test_col2im_is_the_adjoint_of_im2col(mode):
    rng = np.random.default_rng(1)
    x = pt.tensor4("x", dtype="float64")
    c = pt.matrix("c", dtype="float64")
    geom = dict(kernel=(3, 2), stride=(2, 1), pad=(1, 1), dilation=(1, 2))
    X = rng.normal(size=(2, 3, 7, 8))
    im = pytensor.function([x], im2col(x, **geom), mode=mode)(X)
    C = rng.normal(size=im.shape)
    back = pytensor.function([x, c], col2im(c, x, **geom), mode=mode)(X, C)
    # <im2col(X), C> == <X, col2im(C)>
    assert np.sum(im * C) == pytest.approx(np.sum(X * back), rel=1e-12)


def reference_pool(x, k, s, p, mode, ignore_border):
    n, c, h, w = x.shape

    def size(L, kk, ss, pp):
        if ignore_border:
            return (L + 2 * pp - kk) // ss + 1
        return (L - 1) // ss + 1 if ss >= kk else max(0, (L - 1 - kk + ss) // ss) + 1

    oh, ow = size(h, k[0], s[0], p[0]), size(w, k[1], s[1], p[1])
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            ys, xs = oy * s[0] - p[0], ox * s[1] - p[1]
            ye, xe = min(ys + k[0], h + p[0]), min(xs + k[1], w + p[1])
            win = x[:, :, max(ys, 0) : min(ye, h), max(xs, 0) : min(xe, w)]
            if mode == "max":
                out[:, :, oy, ox] = win.max(axis=(2, 3))
            elif mode == "average_inc_pad":
                out[:, :, oy, ox] = win.sum(axis=(2, 3)) / ((ye - ys) * (xe - xs))
            else:
                out[:, :, oy, ox] = win.mean(axis=(2, 3))
    return out


POOLS = [  # pool, stride, pad, ignore_border
    ((2, 2), (2, 2), (0, 0), True),
    ((3, 3), (2, 2), (1, 1), True),
    ((3, 2), (1, 2), (0, 1), True),
    ((2, 2), (2, 2), (0, 0), False),
    ((3, 3), (2, 2), (0, 0), False),
    ((2, 2), (3, 3), (0, 0), True),  # gaps between windows
    ((2, 3), (3, 3), (1, 1), True),
]


@pytest.mark.parametrize("mode", _modes(), ids=["numpy", "C"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("how", ["max", "average_inc_pad", "average_exc_pad"])
@pytest.mark.parametrize("pool,stride,pad,ignore_border", POOLS)
def test_pooling_values_and_gradients(pool, stride, pad, ignore_border, how, dtype, mode):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2, 3, 7, 6))
    x = pt.tensor4("x", dtype=dtype)
    out = pool_2d(x, pool, stride, pad, mode=how, ignore_border=ignore_border)
    g = pt.tensor4("g", dtype=dtype)
    gx = pytensor.grad(pt.sum(out * g), x)
    fn = pytensor.function([x, g], [out, gx], mode=mode)
    if mode != "FAST_COMPILE":
        assert python_nodes(fn) == []
    want = reference_pool(X, pool, stride, pad, how, ignore_border)
    G = rng.normal(size=want.shape)
    got, got_gx = fn(X.astype(dtype), G.astype(dtype))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # central finite differences of <G, pool(x)> (distinct values: max is smooth here)
    h = 1e-6
    for k in rng.choice(X.size, 8, replace=False):
        E = np.zeros(X.size)
        E[k] = h
        E = E.reshape(X.shape)
        up = reference_pool(X + E, pool, stride, pad, how, ignore_border)
        down = reference_pool(X - E, pool, stride, pad, how, ignore_border)
        fd = np.sum(G * (up - down)) / (2 * h)
        np.testing.assert_allclose(got_gx.reshape(-1)[k], fd, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", _modes(), ids=["numpy", "C"])
def test_max_pool_gradient_goes_to_the_first_maximum_of_a_flat_window(mode):
    x = pt.tensor4("x", dtype="float32")
    gx = pytensor.grad(pt.sum(pool_2d(x, 2)), x)
    fn = pytensor.function([x], gx, mode=mode)
    got = fn(np.zeros((1, 1, 4, 4), dtype="float32"))[0, 0]
    want = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], dtype="float32")
    np.testing.assert_array_equal(got, want)  # one per window, as PyTorch (not 4x)
    assert got.sum() == 4


def test_bad_geometries_are_named():
    from symnn.errors import SymnnTypeError, SymnnValueError

    with pytest.raises(SymnnValueError, match="stride"):
        im2col(pt.tensor4("x"), 3, stride=0)
    with pytest.raises(SymnnTypeError, match="kernel"):
        im2col(pt.tensor4("x"), "3")
    with pytest.raises(SymnnTypeError, match="4-D"):
        im2col(pt.matrix("x"), 3)
    with pytest.raises(SymnnValueError, match="smaller than pool_size"):
        pool_2d(pt.tensor4("x"), 2, pad=2)
    with pytest.raises(SymnnValueError, match="ignore_border=False needs pad=0"):
        pool_2d(pt.tensor4("x"), 3, pad=1, ignore_border=False)
    x = pt.tensor4("x", dtype="float64")
    for mode in _modes():
        fn = pytensor.function([x], im2col(x, 5), mode=mode)
        with pytest.raises(ValueError, match="kernel"):
            fn(np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("mode", _modes(), ids=["numpy", "C"])
@pytest.mark.parametrize("how", ["max", "average_exc_pad"])
def test_pooling_reads_strided_inputs(mode, how):
    # the convolution layer hands pooling a transposed view (channels first in memory)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 2, 6, 5))  # (C, N, H, W) in memory
    x = pt.tensor4("x", dtype="float64")
    view = x.dimshuffle(1, 0, 2, 3)[:, :, :, ::-1]
    out = pool_2d(view, 2, mode=how)
    g = pt.tensor4("g", dtype="float64")
    fn = pytensor.function([x, g], [out, pytensor.grad(pt.sum(out * g), x)], mode=mode)
    V = X.transpose(1, 0, 2, 3)[:, :, :, ::-1]
    want = reference_pool(V, (2, 2), (2, 2), (0, 0), how, True)
    G = rng.normal(size=want.shape)
    got, gx = fn(X, G)
    np.testing.assert_allclose(got, want)
    h = 1e-6
    for k in rng.choice(X.size, 6, replace=False):
        E = np.zeros(X.size)
        E[k] = h
        Ev = E.reshape(X.shape).transpose(1, 0, 2, 3)[:, :, :, ::-1]
        geometry = ((2, 2), (2, 2), (0, 0), how, True)
        diff = reference_pool(V + Ev, *geometry) - reference_pool(V - Ev, *geometry)
        fd = np.sum(G * diff) / (2 * h)
        np.testing.assert_allclose(gx.reshape(-1)[k], fd, atol=1e-6)


@pytest.mark.parametrize("mode", _modes(), ids=["numpy", "C"])
def test_the_row_of_ones_carries_a_bias_and_gets_no_image_gradient(mode):
    rng = np.random.default_rng(6)
    x = pt.tensor4("x", dtype="float64")
    wb = pt.matrix("wb", dtype="float64")
    cols = im2col(x, 3, pad=1, ones_row=True)
    out = pt.dot(wb, cols)
    gx, gwb = pytensor.grad(pt.sum(out**2), [x, wb])
    fn = pytensor.function([x, wb], [cols, out, gx, gwb], mode=mode)
    X, WB = rng.normal(size=(2, 3, 5, 4)), rng.normal(size=(4, 3 * 9 + 1))
    c, o, g_x, g_wb = fn(X, WB)
    plain = pytensor.function([x], im2col(x, 3, pad=1), mode=mode)(X)
    np.testing.assert_array_equal(c[:-1], plain)
    np.testing.assert_array_equal(c[-1], 1.0)
    want = reference_conv(X, WB[:, :-1].reshape(4, 3, 3, 3), (1, 1), (1, 1), (1, 1))
    want = want + WB[:, -1][None, :, None, None]
    np.testing.assert_allclose(o.reshape(4, 2, 5, 4).transpose(1, 0, 2, 3), want, atol=1e-12)
    np.testing.assert_allclose(g_wb[:, -1], 2 * o.sum(axis=1), atol=1e-10)  # bias gradient
    # the image gradient: that of the same convolution with the bias added separately
    z = pt.dot(wb[:, :-1], im2col(x, 3, pad=1)) + wb[:, -1].dimshuffle(0, "x")
    g_sep = pytensor.function([x, wb], pytensor.grad(pt.sum(z**2), x), mode=mode)(X, WB)
    np.testing.assert_allclose(g_x, g_sep, atol=1e-10)


@pytest.mark.slow  # numba compiles
def test_numba_implementations_match_the_numpy_ones():
    """PyTensor's default backend (numba) runs the ops' numba loops, not object mode."""
    import warnings

    x = pt.tensor4("x", dtype="float64")
    X = np.random.default_rng(7).normal(size=(2, 3, 7, 6))
    outs = [im2col(x, 3, 2, 1, ones_row=True), col2im(im2col(x, 3, 2, 1), x, 3, 2, 1)]
    for how in ["max", "average_inc_pad", "average_exc_pad"]:
        for ignore_border in [True, False]:
            p = pool_2d(x, 3, 2, 0, mode=how, ignore_border=ignore_border)
            outs += [p, pytensor.grad(pt.sum(p**2), x)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # object mode warns
        got = pytensor.function([x], outs, mode="NUMBA")(X)
    want = pytensor.function([x], outs, mode="FAST_COMPILE")(X)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-12)
