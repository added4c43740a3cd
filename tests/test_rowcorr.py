"""One output channel per image (``symnn.ops.rowcorr``): values against direct numpy loops
and PyTorch's grouped convolution, gradients against finite differences, on every backend;
``Conv2D.channel_per_row`` and the ``channel`` objective that uses it against reading the
whole layer."""

import threading

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch
from test_conv_ops import reference_conv

import symnn
from symnn.backend import python_nodes
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.inputopt.objectives import channel
from symnn.layers import Conv2D, from_arch
from symnn.ops.rowcorr import RowCorr, RowCorrT, row_corr

MODES = ["FAST_COMPILE", "C", "NUMBA", "JAX"]

CASES = [  # (N, C, H, W), kernel, stride, pad, dilation
    ((3, 2, 7, 6), (3, 2), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 9, 8), (2, 3), (2, 3), (4, 1), (2, 1)),  # padding larger than the kernel
    ((1, 1, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1)),  # one image, 1x1
    ((4, 2, 10, 10), (7, 7), (3, 2), (3, 3), (1, 1)),
    ((5, 3, 8, 11), (3, 3), (1, 2), (1, 1), (2, 2)),
]


def _reference(X, Wt, stride, pad, dilation):
    """Image i correlated with kernel i, by direct loops (float64)."""
    rows = [reference_conv(X[i : i + 1], Wt[i : i + 1], stride, pad, dilation)
            for i in range(len(X))]  # fmt: skip
    return np.concatenate(rows)[:, 0]


@pytest.fixture(scope="module")
def compiled():
    """``(case, dtype, mode) -> fn(x, w, g) = [out, d<g, out>/dx, d<g, out>/dw]``."""
    cache = {}

    def get(case, dtype, mode):
        if (case, dtype, mode) not in cache:
            _, kernel, stride, pad, dilation = CASES[case]
            x, w = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype)
            g = pt.tensor3("g", dtype=dtype)
            out = row_corr(x, w, kernel, stride, pad, dilation)
            grads = pytensor.grad(pt.sum(out * g), [x, w])
            cache[case, dtype, mode] = symnn.function([x, w, g], [out, *grads], mode=mode)
        return cache[case, dtype, mode]

    return get


def _data(case, dtype, seed=0):
    shape, kernel, stride, pad, dilation = CASES[case]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=shape)
    Wt = rng.normal(size=(shape[0], shape[1], *kernel))
    want = _reference(X, Wt, stride, pad, dilation)
    G = rng.normal(size=want.shape)
    return X.astype(dtype), Wt.astype(dtype), G.astype(dtype), want


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_values_and_gradients_match_direct_loops(compiled, case, dtype, mode):
    fn = compiled(case, dtype, mode)
    if mode in ("C", "NUMBA"):
        assert python_nodes(fn) == []
    X, Wt, G, want = _data(case, dtype)
    out, gx, gw = fn(X, Wt, G)
    tol = 1e-4 if dtype == "float32" else 1e-10
    assert out.dtype == gx.dtype == gw.dtype == dtype
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    # the op is linear in each input: <G, out> changes by exactly <G, row_corr(E, w)>
    _, _, stride, pad, dilation = CASES[case]
    rng = np.random.default_rng(1)
    for k in rng.choice(X.size, min(4, X.size), replace=False):
        E = np.zeros(X.size)
        E[k] = 1.0
        fd = np.sum(G * _reference(E.reshape(X.shape), Wt, stride, pad, dilation))
        np.testing.assert_allclose(gx.reshape(-1)[k], fd, rtol=tol * 10, atol=tol * 10)
    for k in rng.choice(Wt.size, min(4, Wt.size), replace=False):
        E = np.zeros(Wt.size)
        E[k] = 1.0
        fd = np.sum(G * _reference(X, E.reshape(Wt.shape), stride, pad, dilation))
        np.testing.assert_allclose(gw.reshape(-1)[k], fd, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("case", [1, 3])
def test_finite_differences_including_second_order(case):
    _, kernel, stride, pad, dilation = CASES[case]
    X, Wt, G, _ = _data(case, "float64", seed=2)
    rng = np.random.default_rng(3)

    def op(x, w):
        return row_corr(x, w, kernel, stride, pad, dilation)

    def adjoint(g, w):  # RowCorrT, whose own gradient is RowCorr again
        return RowCorrT(kernel, stride, pad, dilation)(g, w, pt.as_tensor_variable(X))

    pytensor.gradient.verify_grad(op, [X, Wt], rng=rng, mode="FAST_COMPILE")
    pytensor.gradient.verify_grad(adjoint, [G, Wt], rng=rng, mode="FAST_COMPILE")


def test_pytorch_grouped_convolution_agrees_nan_and_infinity_included():
    torch = import_torch()
    _, kernel, stride, pad, dilation = CASES[4]
    X, Wt, G, _ = _data(4, "float32", seed=4)
    # odd columns: with this stride, padding and dilation the windows read no even column
    X[0, 1, 3, 5], X[2, 0, 1, 1], X[3, 2, 7, 9] = np.nan, np.inf, -np.inf
    xt = torch.from_numpy(X.copy()).reshape(1, -1, *X.shape[2:]).requires_grad_(True)
    want = torch.nn.functional.conv2d(xt, torch.from_numpy(Wt), None, stride, pad, dilation,
                                      groups=len(X))[0]  # fmt: skip
    (want * torch.from_numpy(G)).sum().backward()
    for mode in ("FAST_COMPILE", "C", "NUMBA"):
        fn = _compiled_case4(mode)
        out, gx, _ = fn(X, Wt, G)
        np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gx, xt.grad.reshape(X.shape).numpy(), rtol=1e-4, atol=1e-4)
    assert np.isnan(out).any() and np.isinf(out).any()


_CASE4 = {}


def _compiled_case4(mode):
    if mode not in _CASE4:
        _, kernel, stride, pad, dilation = CASES[4]
        x, w = pt.tensor4(dtype="float32"), pt.tensor4(dtype="float32")
        g = pt.tensor3(dtype="float32")
        out = row_corr(x, w, kernel, stride, pad, dilation)
        _CASE4[mode] = symnn.function([x, w, g], [out, *pytensor.grad(pt.sum(out * g), [x, w])],
                                      mode=mode)  # fmt: skip
    return _CASE4[mode]


def test_strided_inputs_are_read_as_their_values(compiled):
    X, Wt, G, want = _data(0, "float64")
    fn = compiled(0, "float64", "C")
    wide = np.zeros((X.shape[0], X.shape[1], X.shape[2], 2 * X.shape[3]))
    wide[..., ::2] = X
    np.testing.assert_allclose(fn(wide[..., ::2], np.asfortranarray(Wt), G)[0], want,
                               rtol=1e-10, atol=1e-10)  # fmt: skip


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "C", "NUMBA"])
def test_kernels_for_another_batch_size_are_refused(mode):
    X, Wt, G, _ = _data(0, "float64")
    x, w, g = pt.tensor4(dtype="float64"), pt.tensor4(dtype="float64"), pt.tensor3(dtype="float64")
    _, kernel, stride, pad, dilation = CASES[0]
    forward = symnn.function([x, w], row_corr(x, w, kernel, stride, pad, dilation), mode=mode)
    with pytest.raises(ValueError, match="kernel per image"):
        forward(X, Wt[:2])
    adjoint = RowCorrT(kernel, stride, pad, dilation)(g, w, x)
    with pytest.raises(ValueError, match="kernel per image"):
        symnn.function([g, w, x], adjoint, mode=mode)(G, Wt[:2], X)


def test_kernels_of_another_type_are_refused():
    with pytest.raises(SymnnTypeError, match="w must be a 4-D float32"):
        RowCorr(3)(pt.tensor4(dtype="float32"), pt.tensor4(dtype="float64"))


def test_two_threads_running_two_compiled_functions_at_once_give_the_serial_results():
    _, kernel, stride, pad, dilation = CASES[3]
    x, w = pt.tensor4("x", dtype="float32"), pt.tensor4("w", dtype="float32")
    g = pt.tensor3("g", dtype="float32")
    out = row_corr(x, w, kernel, stride, pad, dilation)
    grads = [pytensor.grad(pt.sum(out * g), x)]  # RowCorrT too
    fns = [symnn.function([x, w, g], [out, *grads], mode="C") for _ in range(2)]
    inputs = [_data(3, "float32", seed=s)[:3] for s in range(2)]
    want = [[a.copy() for a in fn(*args)] for fn, args in zip(fns, inputs)]
    wrong = []

    def run(i):
        for _ in range(20):
            got = fns[i](*inputs[i])
            if not all(np.array_equal(a, b) for a, b in zip(got, want[i])):
                wrong.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


# -- the layer and the objective ----------------------------------------------------------
@pytest.mark.parametrize("flip, bias, geometry", [
    (False, True, dict(stride=1, pad=0)),
    (True, True, dict(stride=2, pad=2, dilation=2)),
    (False, False, dict(stride=(1, 2), pad="same")),
])  # fmt: skip
def test_channel_per_row_is_the_layer_output_picked(flip, bias, geometry):
    b = np.linspace(-1, 1, 5) if bias else None
    conv = Conv2D(3, 5, 3, flip_filters=flip, b=b, rng=0, **geometry)
    x = pt.tensor4("x", dtype="float32")
    X = np.random.default_rng(5).random((4, 3, 9, 9), dtype="float32")
    picks = [4, 0, 4, 2]
    fn = symnn.function([x], [conv.channel_per_row(x, picks), conv.preactivation(x)], mode="C")
    rows, full = fn(X)
    np.testing.assert_allclose(rows, full[np.arange(4), picks], rtol=1e-5, atol=1e-5)


def test_channel_per_row_names_what_it_cannot_do():
    x = pt.tensor4("x", dtype="float32")
    with pytest.raises(SymnnValueError, match="groups=1"):
        Conv2D(4, 4, 3, groups=2, rng=0).channel_per_row(x, [0, 1])
    with pytest.raises(SymnnValueError, match=r"channels=\[0, 5\].*0\.\.4"):
        Conv2D(4, 5, 3, rng=0).channel_per_row(x, [0, 5])


@pytest.fixture(scope="module")
def cnn():
    return from_arch("conv6x3,pool2,conv5x3,pool2,4", (12, 12), rng=0)


def _whole_layer(net, x, picks, preactivation):
    layer = net.layers[3]
    h = net.get_outputs(x, deterministic=True)[2]
    act = layer.preactivation(h) if preactivation else layer(h)
    return act.mean(axis=(2, 3))[pt.arange(x.shape[0]), np.asarray(picks)]


@pytest.mark.parametrize("mode, preactivation", [("C", True), ("C", False), ("NUMBA", False)])
def test_the_channel_objective_computes_only_the_channels_it_reads(cnn, mode, preactivation):
    x = pt.matrix("x", dtype="float32", shape=(None, 144))
    picks = [4, 1, 1, 0, 3]
    rows = channel(3, picks, preactivation=preactivation)(cnn, x)
    whole = _whole_layer(cnn, x, picks, preactivation)
    fn = symnn.function([x], [rows, pytensor.grad(rows.sum(), x),
                              whole, pytensor.grad(whole.sum(), x)], mode=mode)  # fmt: skip
    ops = [type(node.op) for node in fn.maker.fgraph.apply_nodes]
    assert ops.count(RowCorr) == 1 and ops.count(RowCorrT) == 1
    X = np.random.default_rng(6).random((5, 144), dtype="float32")
    got, got_grad, want, want_grad = fn(X)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-6)
    assert got.dtype == got_grad.dtype == "float32"


@pytest.mark.parametrize("objective, per_row", [
    (channel(3, [0, 1, 2]), True),  # a channel per row of a convolution
    (channel(1, [0, 1, 2], preactivation=False), True),  # relu: elementwise
    (channel(3, 2), False),  # one channel for every row: the layer's GEMM is as fast
    (channel(6, [0, 1, 2]), False),  # a dense layer
])  # fmt: skip
def test_which_channel_objectives_compute_one_channel_per_row(cnn, objective, per_row):
    x = pt.matrix("x", dtype="float32", shape=(None, 144))
    graph = objective(cnn, x)
    nodes = [v.owner for v in pytensor.graph.traversal.ancestors([graph]) if v.owner]
    assert any(isinstance(n.op, RowCorr) for n in nodes) == per_row


def _graph_cnn():
    from symnn.layers import Graph, Input, Reshape

    inp = Input((144,), name="x")
    h = Reshape((1, 12, 12), name="image")(inp)
    h = Conv2D(1, 6, 3, activation="relu", rng=0, name="conv")(h)
    return Graph(inp, h)


@pytest.mark.parametrize("which, preactivation, spatial", [
    ("sequential", None, None),  # before the relu, by default
    ("sequential", False, "center"),
    ("sequential", True, (2, 1)),
    ("graph", False, None),
])  # fmt: skip
def test_activation_maximization_computes_only_each_rows_channel(cnn, which, preactivation,
                                                                  spatial):  # fmt: skip
    from symnn.inputopt.units import Target

    net, layer = (cnn, 3) if which == "sequential" else (_graph_cnn(), "conv")
    target = Target.resolve(net, layer, preactivation=preactivation, spatial=spatial)
    x = pt.matrix("x", dtype="float32", shape=(None, 144))
    units = pytensor.shared(np.array([4, 0, 4], dtype="int64"))
    rows = target.unit_per_row(x, units)
    whole = target.activations(x)[pt.arange(x.shape[0]), units]
    fn = symnn.function([x], [rows, pytensor.grad(rows.sum(), x),
                              whole, pytensor.grad(whole.sum(), x)], mode="C")  # fmt: skip
    assert sum(isinstance(n.op, RowCorr) for n in fn.maker.fgraph.apply_nodes) == 1
    X = np.random.default_rng(7).random((3, 144), dtype="float32")
    got, got_grad, want, want_grad = fn(X)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-6)


def test_activation_maximization_of_conv_channels_runs_through_it(cnn):
    from symnn.inputopt import activation_maximization

    result = activation_maximization(cnn, units=[0, 2, 4], layer=3, steps=30, mode="C")
    assert result.x.shape == (3, 144) and np.isfinite(result.x).all()
    # each row's own channel is what rose: the activations of the result, read whole
    x = pt.matrix("x", dtype="float32", shape=(None, 144))
    layer = cnn.layers[3]
    acts = symnn.function([x], layer.preactivation(cnn.get_outputs(x)[2]).mean(axis=(2, 3)))
    start = acts(np.full((3, 144), 0.5, dtype="float32"))
    end = acts(result.x)
    assert (end[[0, 1, 2], [0, 2, 4]] > start[[0, 1, 2], [0, 2, 4]]).all()
