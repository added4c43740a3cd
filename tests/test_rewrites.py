"""symnn's rewrites (``symnn.ops.rewrites``): every idiom a user may write for softmax
cross-entropy, binary cross-entropy and row indexing compiles, in symnn's C mode, to C code
only, and gives the values and gradients of the original graph (and of numpy references,
where the original overflows)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

import symnn
from symnn import nonlinearities as nl
from symnn.backend import python_nodes
from symnn.ops import (
    IncPick,
    IncRows,
    PickRows,
    inc_pick,
    inc_rows,
    log_softmax_rows,
    pick_rows,
    softmax_rows,
)

C = "C"
#: the original graph, with PyTensor's own rewrites only (Python linker: no C compile)
ORIGINAL = Mode(linker="py", optimizer="fast_run")


def _rows(z):
    return pt.arange(z.shape[0])


#: the integer-label idioms: name -> per-example loss of logits z and labels y
LABEL_IDIOMS = {
    "-log_softmax(z)[r, y] (PyTensor)": lambda z, y: (
        -pt.special.log_softmax(z, axis=-1)[_rows(z), y]
    ),
    "-log_softmax(z)[r, y] (symnn)": lambda z, y: -nl.log_softmax(z)[_rows(z), y],
    "-log(softmax(z))[r, y]": lambda z, y: -pt.log(pt.special.softmax(z, axis=-1))[_rows(z), y],
    "-log(softmax(z)[r, y])": lambda z, y: -pt.log(pt.special.softmax(z, axis=-1)[_rows(z), y]),
    "-log(symnn softmax(z)[r, y])": lambda z, y: -pt.log(nl.softmax(z)[_rows(z), y]),
}
#: the one-hot idioms: name -> per-example loss of logits z and one-hot rows Y
ONEHOT_IDIOMS = {
    "-sum(Y * log(softmax(z)))": lambda z, Y: (
        -pt.sum(Y * pt.log(pt.special.softmax(z, axis=-1)), axis=1)
    ),
    "-sum(Y * log_softmax(z))": lambda z, Y: (
        -pt.sum(Y * pt.special.log_softmax(z, axis=-1), axis=1)
    ),
    "-sum(Y * symnn log_softmax(z))": lambda z, Y: -pt.sum(Y * nl.log_softmax(z), axis=1),
}
AGGREGATES = {"mean": pt.mean, "sum": pt.sum}


def _reference(z, y, aggregate):
    """Cross-entropy of softmax(z) and its gradient, in float64 numpy."""
    z = z.astype(np.float64)
    s = z - z.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    n = len(z)
    onehot = np.eye(z.shape[1])[y]
    scale = 1.0 / n if aggregate == "mean" else 1.0
    return -logp[np.arange(n), y].sum() * scale, (np.exp(logp) - onehot) * scale


def _compile(cost_of, dtype, aggregate, mode, onehot=False):
    z = pt.matrix("z", dtype=dtype)
    t = pt.matrix("Y", dtype=dtype) if onehot else pt.lvector("y")
    cost = AGGREGATES[aggregate](cost_of(z, t))
    return symnn.function([z, t], [cost, pt.grad(cost, z)], mode=mode)


def _data(dtype, large, onehot=False, n=7, k=5):
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, (n, k)).astype(dtype)
    if large:  # logits a float32 softmax underflows on (exp(-100) = 4e-44)
        z[0] = [100, -100, 0, 50, -50][:k]
        z[1] = [-1000, 1000, 0, 0, 0][:k] if dtype == "float64" else [-80, 80, 0, 0, 0][:k]
    y = rng.integers(0, k, n)
    y[:2] = [1, 0]  # the true class is the one with vanishing probability
    return z, (np.eye(k, dtype=dtype)[y] if onehot else y)


@pytest.fixture(scope="module")
def compiled():
    """Compiled C and original functions, shared by the tests (compile once)."""
    cache = {}

    def get(table, name, dtype, aggregate, mode):
        key = (name, dtype, aggregate, str(mode))
        if key not in cache:
            onehot = table is ONEHOT_IDIOMS
            cache[key] = _compile(table[name], dtype, aggregate, mode, onehot)
        return cache[key]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", [*LABEL_IDIOMS, *ONEHOT_IDIOMS])
def test_idiom_compiles_to_c_with_the_original_values(compiled, name, dtype):
    table = LABEL_IDIOMS if name in LABEL_IDIOMS else ONEHOT_IDIOMS
    onehot = table is ONEHOT_IDIOMS
    tol = 2e-5 if dtype == "float32" else 1e-10
    for aggregate in AGGREGATES:
        fast = compiled(table, name, dtype, aggregate, C)
        assert python_nodes(fast) == [], name
        original = compiled(table, name, dtype, aggregate, ORIGINAL)
        z, t = _data(dtype, large=False, onehot=onehot)
        for got, want in zip(fast(z, t), original(z, t)):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        labels = t.argmax(axis=1) if onehot else t
        value, grad = _reference(z, labels, aggregate)
        np.testing.assert_allclose(fast(z, t)[0], value, rtol=tol)
        np.testing.assert_allclose(fast(z, t)[1], grad, rtol=tol, atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", [*LABEL_IDIOMS, *ONEHOT_IDIOMS])
def test_idiom_is_finite_and_right_for_large_logits(compiled, name, dtype):
    """Where the original overflows (log of an underflowed probability: inf, NaN
    gradients), the rewritten graph gives the float64 reference."""
    table = LABEL_IDIOMS if name in LABEL_IDIOMS else ONEHOT_IDIOMS
    onehot = table is ONEHOT_IDIOMS
    fast = compiled(table, name, dtype, "mean", C)
    z, t = _data(dtype, large=True, onehot=onehot)
    value, grad = _reference(z, t.argmax(axis=1) if onehot else t, "mean")
    got_value, got_grad = fast(z, t)
    assert np.isfinite(got_value) and np.isfinite(got_grad).all()
    np.testing.assert_allclose(got_value, value, rtol=1e-5)
    np.testing.assert_allclose(got_grad, grad, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_label_idioms_become_the_fused_op(compiled):
    for name in LABEL_IDIOMS:
        ops = {
            type(n.op).__name__
            for n in compiled(LABEL_IDIOMS, name, "float32", "mean", C).maker.fgraph.toposort()
        }
        assert {"SoftmaxCrossEntropy", "SoftmaxCrossEntropyGrad"} <= ops, (name, ops)
        assert not ops & {"AdvancedSubtensor", "AdvancedIncSubtensor", "Softmax"}, (name, ops)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_binary_crossentropy_is_stable_c(dtype):
    x = pt.matrix("x", dtype=dtype)
    t = pt.matrix("t", dtype=dtype)
    s = pt.sigmoid(x)
    cost = -pt.mean(t * pt.log(s) + (1 - t) * pt.log(1 - s))
    fn = symnn.function([x, t], [cost, pt.grad(cost, x)], mode=C)
    assert python_nodes(fn) == []
    xv = np.array([[-200, -50, 0, 30, 200, 1.5]], dtype)
    tv = np.array([[1, 0, 1, 0, 0, 1]], dtype)
    value, grad = fn(xv, tv)
    x64 = xv.astype(np.float64)
    want = np.mean(np.logaddexp(0, x64) - tv * x64)  # softplus(x) - t x
    np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-x64)) - tv) / xv.size, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_indexing_and_its_gradient_are_c(dtype):
    """``E[idx]`` (an embedding lookup) and its gradient, repeated and negative indices."""
    E = pytensor.shared(np.arange(12, dtype=dtype).reshape(4, 3))
    idx = pt.lvector("idx")
    w = pt.matrix("w", dtype=dtype)
    cost = pt.sum(E[idx] * w)
    fn = symnn.function([idx, w], [E[idx], pt.grad(cost, E)], mode=C)
    assert python_nodes(fn) == []
    iv = np.array([0, 2, 0, -1])
    wv = np.random.default_rng(0).normal(size=(4, 3)).astype(dtype)
    rows, grad = fn(iv, wv)
    np.testing.assert_array_equal(rows, E.get_value()[iv])
    want = np.zeros((4, 3))
    np.add.at(want, iv, wv)
    np.testing.assert_allclose(grad, want, rtol=1e-6)
    with pytest.raises(IndexError, match="index 4 is out of bounds"):
        fn(np.array([4]), wv[:1])


@pytest.mark.slow
def test_non_matching_graphs_are_left_with_their_meaning():
    """A softmax over the whole matrix (``axis=None``) is not a row softmax, and
    ``m[arange(n - 1), y]`` is not a pick of every row: both keep their values."""
    z = pt.matrix("z", dtype="float64")
    y = pt.lvector("y")
    whole = pt.special.softmax(z)
    partial = pt.log(pt.special.softmax(z, axis=-1))[pt.arange(z.shape[0] - 1), y]
    fn = symnn.function([z, y], [whole, partial], mode=C)
    zv = np.random.default_rng(1).normal(size=(3, 4))
    yv = np.array([1, 3])
    got_whole, got_partial = fn(zv, yv)
    np.testing.assert_allclose(got_whole, np.exp(zv) / np.exp(zv).sum())
    logp = zv - np.log(np.exp(zv).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(got_partial, logp[[0, 1], yv])
    assert not any(isinstance(n.op, PickRows) for n in fn.maker.fgraph.toposort())


# -- the ops themselves, C and perform against numpy ----------------------------------------
MODES = [pytest.param(C, marks=pytest.mark.slow, id="C"), pytest.param("FAST_COMPILE", id="py")]


@pytest.mark.parametrize("mode", MODES)
def test_pick_and_inc_pick_against_numpy(mode):
    m = pt.matrix("m", dtype="float32")
    g = pt.vector("g", dtype="float32")
    y = pt.ivector("y")
    fn = symnn.function(
        [m, g, y], [pick_rows(m, y), inc_pick(m, g, y), inc_pick(m, g, y, set=True)], mode=mode
    )
    mv = np.arange(12, dtype="float32").reshape(3, 4)
    gv = np.array([10, 20, 30], "float32")
    yv = np.array([2, 0, -1], "int32")
    strided = symnn.function([m, y], pick_rows(m.T[:3], y), mode=mode)
    np.testing.assert_array_equal(strided(mv, yv), mv.T[:3][np.arange(3), yv])
    picked, inc, put = fn(mv, gv, yv)
    rows = np.arange(3)
    np.testing.assert_array_equal(picked, mv[rows, yv])
    want = mv.copy()
    want[rows, yv] += gv
    np.testing.assert_array_equal(inc, want)
    want[rows, yv] = gv
    np.testing.assert_array_equal(put, want)
    with pytest.raises(IndexError, match="index -5 is out of bounds for size 4"):
        fn(mv, gv, np.array([0, -5, 1], "int32"))
    with pytest.raises(ValueError, match="2 indices for 3 rows"):
        fn(mv, gv, np.array([0, 1], "int32"))
    # one label (and one value) broadcast over the rows, as numpy's indexing does
    picked, inc, _ = fn(mv, gv[:1], np.array([2], "int32"))
    np.testing.assert_array_equal(picked, mv[:, 2])
    np.testing.assert_array_equal(inc[:, 2], mv[:, 2] + 10)


@pytest.mark.parametrize("mode", MODES)
def test_inc_rows_against_numpy(mode):
    x = pt.tensor3("x", dtype="float64")
    v = pt.tensor3("v", dtype="float64")
    i = pt.lvector("i")
    fn = symnn.function([x, v, i], [inc_rows(x, v, i), inc_rows(x, v, i, set=True)], mode=mode)
    rng = np.random.default_rng(2)
    xv, vv = rng.normal(size=(4, 2, 3)), rng.normal(size=(3, 2, 3))
    iv = np.array([1, -1, 1])
    inc, put = fn(xv, vv, iv)
    want = xv.copy()
    np.add.at(want, iv, vv)
    np.testing.assert_allclose(inc, want)
    want = xv.copy()
    want[iv] = vv
    np.testing.assert_allclose(put, want)
    with pytest.raises(ValueError, match="do not match"):
        fn(xv, vv[:, :1], iv)


def test_ops_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    y = np.array([2, 0, 1])
    pytensor.gradient.verify_grad(lambda m: PickRows()(m, y), [rng.normal(size=(3, 4))], rng=rng)
    pytensor.gradient.verify_grad(
        lambda x, g: IncPick()(x, g, y), [rng.normal(size=(3, 4)), rng.normal(size=3)], rng=rng
    )
    pytensor.gradient.verify_grad(
        lambda x, v: IncRows()(x, v, np.array([1, 1, 0])),
        [rng.normal(size=(3, 2)), rng.normal(size=(3, 2))],
        rng=rng,
    )
    for op in (softmax_rows, log_softmax_rows):
        pytensor.gradient.verify_grad(op, [rng.normal(size=(3, 5))], rng=rng)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_softmax_ops_against_numpy(mode, dtype):
    z = pt.matrix("z", dtype=dtype)
    fn = symnn.function([z], [softmax_rows(z), log_softmax_rows(z), softmax_rows(z.T)], mode=mode)
    zv = np.random.default_rng(5).normal(0, 4, (6, 3)).astype(dtype)
    zv[0] = [1000, -1000, 0] if dtype == "float64" else [88, -88, 0]
    z64 = zv.astype(np.float64)

    def log_softmax(a):
        s = a - a.max(axis=1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))

    sm, lsm, sm_t = fn(zv)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(sm, np.exp(log_softmax(z64)), rtol=tol, atol=tol)
    np.testing.assert_allclose(lsm, log_softmax(z64), rtol=tol, atol=tol)
    np.testing.assert_allclose(sm_t, np.exp(log_softmax(z64.T)), rtol=tol, atol=tol)
    assert IncPick(True) != IncPick(False) and IncRows(True) == IncRows(True)


@pytest.mark.slow
def test_hand_written_sgd_step_updates_the_first_layer_in_one_inplace_gemm():
    """An input without static width: the weight gradient carries the weight's shape, which
    must not keep ``W - lr * x.T @ d`` from becoming one in-place GEMM (values checked
    against numpy)."""
    rng = np.random.default_rng(6)
    W0 = rng.normal(0, 0.1, (5, 3)).astype("float32")
    W = pytensor.shared(W0.copy())
    x = pt.matrix("x", dtype="float32")  # shape (None, None)
    y = pt.lvector("y")
    z = x @ W
    loss = -pt.mean(pt.special.log_softmax(z, axis=-1)[pt.arange(z.shape[0]), y])
    lr = np.float32(0.5)
    step = symnn.function([x, y], loss, updates=[(W, W - lr * pt.grad(loss, W))], mode=C)
    gemms = [n for n in step.maker.fgraph.toposort() if type(n.op).__name__ == "Gemm"]
    assert gemms and gemms[0].op.inplace and gemms[0].inputs[0] is W
    assert python_nodes(step) == []
    xv = rng.normal(size=(4, 5)).astype("float32")
    yv = np.array([0, 2, 1, 2])
    step(xv, yv)
    logits = xv.astype(np.float64) @ W0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(4), yv] -= 1
    np.testing.assert_allclose(W.get_value(), W0 - 0.5 * xv.T @ p / 4, rtol=1e-5, atol=1e-6)


def test_one_gemm_per_product_with_the_prior_penalty():
    """The Gaussian prior's projection z @ C.T feeds the penalty and its gradient; PyTensor's
    scalar folding and the shape assertions computed it up to three times."""
    from pytensor.tensor.blas import Dot22, Dot22Scalar, Gemm

    from symnn.backend import resolve_mode
    from symnn.inputopt.priors import gaussian_penalty

    rng = np.random.default_rng(0)
    C = np.linalg.qr(rng.normal(size=(20, 5)))[0].T.astype("float32")  # (5, 20)
    arrays = {"mean": pt.constant(rng.uniform(size=20).astype("float32")),
              "components": pt.constant(C),
              "inv_variances": pt.constant(rng.uniform(1, 2, 5).astype("float32")),
              "inv_rest": pt.constant(np.float32(0.5))}  # fmt: skip
    x = pt.matrix("x", dtype="float32", shape=(None, 20))
    cost = pt.sum(np.float32(2.0) * gaussian_penalty(x, arrays, 20))
    outs = [cost, pytensor.grad(cost, x)]
    fast = pytensor.function([x], outs, mode=resolve_mode("C"))
    with_c = [
        n for n in fast.maker.fgraph.toposort()
        if isinstance(n.op, Dot22 | Dot22Scalar | Gemm)
        and any(np.array_equal(getattr(i, "data", None), d) for i in n.inputs for d in (C, C.T))
    ]  # fmt: skip
    assert len(with_c) == 2, [str(n) for n in with_c]
    X = rng.uniform(size=(7, 20)).astype("float32")
    want = pytensor.function([x], outs, mode="FAST_COMPILE")(X)
    for got, ref in zip(fast(X), want):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
