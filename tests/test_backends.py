"""Every PyTensor backend symnn offers (``mode="C"``, ``"NUMBA"``, ``"JAX"``) computes the
same values: each symnn op against its numpy ``perform`` (NaN and infinity included),
training a dense and a convolutional network, activation maximisation with the density
prior, random warps and 1/f preconditioning, the non-finite rollback and exact resume.

No op runs in numba's object mode anywhere in the suite: ``pyproject.toml`` turns PyTensor's
"Numba will use object mode" warning into an error. The compiled functions are shared
through module fixtures (a cold numba compile of a training step takes tens of seconds)."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

import symnn
from symnn.backend import BACKENDS, mode_name, python_nodes, resolve_mode, usable_backends
from symnn.datasets import load_digits
from symnn.inputopt import InputPenalties, activation_maximization
from symnn.inputopt.transforms import precondition, warp_rows
from symnn.layers import from_arch, mlp
from symnn.ops import (
    col2im,
    im2col,
    inc_pick,
    inc_rows,
    log_softmax_rows,
    pick_rows,
    pool_2d,
    softmax_cross_entropy,
    softmax_rows,
    take_rows,
)
from symnn.ops.rowsum import row_sum
from symnn.train import Trainer

pytestmark = pytest.mark.slow

OTHER = ["NUMBA", "JAX"]


def test_every_backend_is_usable_here():
    assert set(usable_backends()) == set(BACKENDS)
    assert all(state == "usable" for state in usable_backends().values()), usable_backends()
    for name in BACKENDS:
        assert mode_name(resolve_mode(name.lower())) == name


def test_a_backend_is_one_word_and_a_wrong_one_names_them():
    with pytest.raises(symnn.SymnnValueError, match="expected one of .*C.*JAX.*NUMBA"):
        resolve_mode("CUDA")


# -- every op, every backend, against numpy ---------------------------------------------------
CONV = [dict(kernel=3, pad=1), dict(kernel=(2, 3), stride=2, pad=(0, 1), dilation=2),
        dict(kernel=2, ones_row=True)]
POOL = [dict(pool_size=2), dict(pool_size=3, stride=2, pad=1),
        dict(pool_size=3, stride=2, pad=1, mode="average_inc_pad"),
        dict(pool_size=3, stride=2, pad=1, mode="average_exc_pad"),
        dict(pool_size=3, stride=2, ignore_border=False),
        dict(pool_size=(2, 3), stride=(1, 2), ignore_border=False, mode="average_exc_pad")]


def _op_graph(dtype):
    m, v = pt.matrix("m", dtype=dtype), pt.matrix("v", dtype=dtype)
    g, x4 = pt.vector("g", dtype=dtype), pt.tensor4("x4", dtype=dtype)
    y, i = pt.lvector("y"), pt.lvector("i")
    xent = softmax_cross_entropy(m, y)
    outs = [pick_rows(m, y), inc_pick(m, g, y), inc_pick(m, g, y, set=True), inc_rows(m, v, i),
            inc_rows(m, v, i, set=True), take_rows(m, i), row_sum(m), softmax_rows(m),
            log_softmax_rows(m), xent, pytensor.grad(xent.sum(), m),
            precondition(m, pt.eye(3, dtype=dtype))]
    table = np.random.default_rng(5)
    index = pt.constant(table.integers(0, 3, size=(2, 3, 4)))
    weight = pt.constant(table.uniform(size=(2, 3, 4)).astype(dtype))
    warped = warp_rows(m, y % 2, index, weight)
    outs += [warped, pytensor.grad((warped * v[y]).sum(), m)]
    for kw in CONV:
        cols = im2col(x4, **kw)
        outs += [cols, col2im(cols * 2, x4, **kw)]
    for kw in POOL:
        p = pool_2d(x4, **kw)
        outs += [p, pytensor.grad(((p - 0.5) ** 2).sum(), x4)]
    return [m, y, g, i, v, x4], outs


def _op_values(dtype, special: bool):
    rng = np.random.default_rng(3)
    M, X4 = rng.normal(size=(4, 3)), rng.normal(size=(2, 3, 7, 6))
    X4[0, 0, 0, :2] = 1.5  # a tie inside a pooling window: the first maximum takes it
    if special:
        M[1, 2], X4[1, 1, 2, 2], X4[1, 2, 3, 3], X4[0, 1, 4, 4] = np.nan, np.nan, np.inf, -np.inf
        X4[1, 0, 0, 0] = X4[1, 0, 1, 1] = np.nan  # two NaNs in one window: the last one
    values = [M, np.array([0, 2, 1, 1]), rng.normal(size=4), np.array([0, 3, 0]),
              rng.normal(size=(3, 3)), X4]
    return [np.asarray(a, dtype=dtype) if a.dtype.kind == "f" else a for a in values]


@pytest.fixture(scope="module", params=["float32", "float64"])
def op_functions(request):
    inputs, outs = _op_graph(request.param)
    fns = {
        name: pytensor.function(inputs, outs, mode=resolve_mode(name), on_unused_input="ignore")
        for name in ["FAST_COMPILE", *BACKENDS]
    }
    return request.param, outs, fns


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan-inf"])
def test_every_op_matches_numpy_on_every_backend(op_functions, backend, special):
    dtype, outs, fns = op_functions
    values = _op_values(dtype, special)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's invalid-value warnings
        want = fns["FAST_COMPILE"](*values)
        got = fns[backend](*values)
    rtol = 2e-5 if dtype == "float32" else 1e-12
    for out, a, b in zip(outs, got, want, strict=True):
        a = np.asarray(a)
        assert a.dtype == b.dtype and a.shape == b.shape, out
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, equal_nan=True, err_msg=str(out))


# -- NaN and infinity through max pooling, as PyTorch has them -------------------------------
# torch.nn.functional.max_pool2d(x, 2) and its backward with this x and upstream gradient,
# PyTorch 2.13 CPU: NaN is the window's maximum and its last NaN takes the gradient; an
# infinite upstream gradient reaches only the maximum
TORCH_OUT = [np.nan, 7.0, 13.0, np.nan]
TORCH_GRAD = [1, 0, 0, 0, 0, 0, 0, np.inf, 0, 0, 0, 0, 0, 1, 0, 1]


@pytest.mark.parametrize("backend", ["FAST_COMPILE", *BACKENDS])
def test_max_pooling_propagates_nan_as_pytorch_does(backend):
    x, gz = pt.tensor4("x", dtype="float64"), pt.tensor4("gz", dtype="float64")
    out = pool_2d(x, 2)
    fn = pytensor.function(
        [x, gz], [out, pytensor.grad(None, x, known_grads={out: gz})], mode=resolve_mode(backend)
    )
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    X[0, 0, 0, 0] = X[0, 0, 2, 2] = X[0, 0, 3, 3] = np.nan
    G = np.ones((1, 1, 2, 2))
    G[0, 0, 0, 1] = np.inf
    got, grad = fn(X, G)
    np.testing.assert_array_equal(got.ravel(), TORCH_OUT)
    np.testing.assert_array_equal(np.asarray(grad).ravel(), TORCH_GRAD)


def test_max_pooling_matches_pytorch_itself():
    torch = import_torch()
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    X[0, 0, 0, 0] = X[0, 0, 2, 2] = X[0, 0, 3, 3] = np.nan
    t = torch.tensor(X, requires_grad=True)
    g = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    g[0, 0, 0, 1] = np.inf
    out = torch.nn.functional.max_pool2d(t, 2)
    out.backward(g)
    np.testing.assert_array_equal(out.detach().numpy().ravel(), TORCH_OUT)
    np.testing.assert_array_equal(t.grad.numpy().ravel(), TORCH_GRAD)


def _overlapping_case():
    """A 6x6 image with ties, NaNs and an infinite upstream gradient, for windows that
    overlap (3x3, strides 1 and 2, padding 1)."""
    X = np.round(np.random.default_rng(8).normal(size=(1, 2, 6, 6)))  # many ties
    X[0, 0, 1, 1] = X[0, 0, 1, 3] = X[0, 1, 4, 4] = np.nan
    return X


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_max_pooling_gradients_agree_with_the_reference(backend, stride):
    """Each window's gradient goes to its first maximum, or its last NaN, once: the
    compiled kernels against the numpy implementation (and PyTorch, below)."""
    x, gz = pt.tensor4("x", dtype="float64"), pt.tensor4("gz", dtype="float64")
    out = pool_2d(x, 3, stride, pad=1)
    grad = pytensor.grad(None, x, known_grads={out: gz})
    X = _overlapping_case()
    ref = pytensor.function([x, gz], [out, grad], mode="FAST_COMPILE")
    G = np.random.default_rng(9).normal(size=ref(X, np.zeros((1, 2, 6, 6)))[0].shape)
    G[0, 1, 0, 0] = np.inf
    fn = pytensor.function([x, gz], [out, grad], mode=resolve_mode(backend))
    for a, b in zip(fn(X, G), ref(X, G)):
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.parametrize("stride", [1, 2])
def test_overlapping_max_pooling_gradients_match_pytorch(stride):
    torch = import_torch()
    X = _overlapping_case()
    x, gz = pt.tensor4("x", dtype="float64"), pt.tensor4("gz", dtype="float64")
    out = pool_2d(x, 3, stride, pad=1)
    fn = pytensor.function([x, gz], [out, pytensor.grad(None, x, known_grads={out: gz})])
    t = torch.tensor(X, requires_grad=True)
    pooled = torch.nn.functional.max_pool2d(t, 3, stride, 1)
    G = np.random.default_rng(9).normal(size=tuple(pooled.shape))
    pooled.backward(torch.tensor(G))
    got, grad = fn(X, G)
    np.testing.assert_array_equal(got, pooled.detach().numpy())
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


# -- training, input optimisation: the same values on every backend ---------------------------
@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _networks():
    return {
        "mlp": lambda: mlp([64, 32, 10], rng=0, batch_norm=True),
        "dropout": lambda: mlp([64, 32, 10], rng=0, dropout=0.1),
        "cnn": lambda: from_arch("conv4x3same,pool2,conv8x3same,avgpool2,10", (8, 8), rng=0),
    }


#: JAX draws dropout masks from its own generator (PyTensor compiles a copy of the shared
#: numpy generator into the XLA program), so a network with dropout trains to other values
#: there; every other network gives the C backend's values
COMPARED = [(b, n) for b in OTHER for n in _networks() if (b, n) != ("JAX", "dropout")]


@pytest.fixture(scope="module")
def trained(digits):
    """``{(backend, network): (trainer, history)}`` after two epochs from the same weights,
    with the same shuffles and dropout masks."""
    runs = {}
    X, y = digits.X_train[:480], digits.y_train[:480]
    for backend in BACKENDS:
        for name, build in _networks().items():
            if (backend, name) == ("JAX", "dropout"):
                continue
            t = Trainer(build(), seed=0, mode=backend, blas_threads=1)
            h = t.fit(X, y, epochs=2, batch_size=32, progress=False)
            runs[backend, name] = (t, h)
    return runs


@pytest.mark.parametrize("backend, network", COMPARED)
def test_training_gives_the_c_backends_values(trained, digits, backend, network):
    (c, hc), (o, ho) = trained["C", network], trained[backend, network]
    np.testing.assert_allclose(ho.batch_loss, hc.batch_loss, rtol=1e-4)
    for a, b in zip(o.network.get_values(), c.network.get_values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(
        o.predict_proba(digits.X_test), c.predict_proba(digits.X_test), atol=1e-4
    )
    assert o.evaluate(digits.X_test, digits.y_test)["accuracy"] == pytest.approx(
        c.evaluate(digits.X_test, digits.y_test)["accuracy"], abs=0.005
    )


def test_pytensors_own_default_mode_trains_to_the_same_values(trained, digits):
    """``Mode(linker="auto")`` (PyTensor's default: numba, without symnn's rewrites) runs
    symnn's own ops too and gives the C backend's values."""
    from pytensor.compile.mode import Mode

    c, hc = trained["C", "cnn"]
    t = Trainer(_networks()["cnn"](), seed=0, mode=Mode(linker="auto"), blas_threads=1)
    h = t.fit(digits.X_train[:480], digits.y_train[:480], epochs=2, batch_size=32,
              progress=False)
    np.testing.assert_allclose(h.batch_loss, hc.batch_loss, rtol=1e-4)
    for a, b in zip(t.network.get_values(), c.network.get_values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert mode_name(t.mode) == "NUMBA"


def test_numba_steps_run_no_python(trained, digits):
    """Every node of the numba training, evaluation and prediction functions has a numba
    implementation (the suite also errors on PyTensor's object-mode warning)."""
    for name in _networks():
        trainer = trained["NUMBA", name][0]
        assert python_nodes(trainer._compiled.step.fn) == []
    x = pt.matrix("x", dtype="float32")
    z = pt.tensor4("z", dtype="float32")
    fn = symnn.function([x, z], [softmax_rows(x), pool_2d(z, 2)], mode="NUMBA")
    assert python_nodes(fn) == []
    with pytest.warns(UserWarning, match="object mode"):
        slow = symnn.function([x], _PythonOnly()(x), mode="NUMBA")
    assert [type(n.op) for n in python_nodes(slow)] == [_PythonOnly]
    np.testing.assert_array_equal(slow(np.ones((2, 2), "float32")), np.full((2, 2), 2.0))


class _PythonOnly(Op):
    """An op with only a Python ``perform``: numba runs it in object mode."""

    __props__ = ()

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0] * 2


#: random warps draw from a generator, which JAX replaces by its own (see COMPARED)
WARPS = dict(scale=0.05, rotate=5)


@pytest.fixture(scope="module")
def maximised(trained, digits):
    kw = dict(image_shape=(8, 8), steps=25, seed=1, reference=digits.X_train[:400])
    net = trained["C", "mlp"][0].network
    return {
        (backend, warps): activation_maximization(
            net, [0, 3, 7], mode=backend, **kw,
            penalties=InputPenalties(precondition=True, **(WARPS if warps else {})),
        )
        for backend in BACKENDS
        for warps in (False, True)
    }


@pytest.mark.parametrize("backend, warps", [("NUMBA", True), ("NUMBA", False), ("JAX", False)])
def test_activation_maximization_with_prior_gives_the_c_values(maximised, backend, warps):
    c, o = maximised["C", warps], maximised[backend, warps]
    assert c.settings == o.settings and c.settings["prior"] != "none"
    assert (c.settings["scale"], c.settings["rotate"]) == ((0.05, 5) if warps else (0, 0))
    np.testing.assert_allclose(o.x, c.x, atol=2e-3)
    np.testing.assert_allclose(o.result.value, c.result.value, rtol=1e-3)


def test_activation_maximization_with_warps_runs_on_jax(maximised):
    report = maximised["JAX", True]
    assert np.all(np.isfinite(report.x)) and all(r.moved for r in report.rows)
    assert not np.allclose(report.x, maximised["JAX", False].x, atol=1e-3)  # the warps acted


@pytest.mark.parametrize("backend", OTHER)
def test_non_finite_loss_rolls_back_on_every_backend(digits, backend):
    X, y = digits.X_train[:200] * 100, digits.y_train[:200]
    net = mlp([64, 16, 10], hidden="relu", output="linear", rng=0)
    t = Trainer(net, optimizer="sgd", learning_rate=1e4, loss="squared_error", mode=backend)
    with pytest.warns(RuntimeWarning, match="non-finite training loss"):
        h = t.fit(X, y, epochs=20, batch_size=20, progress=False)
    assert h.stop_reason.startswith("non-finite") and "put back" in h.stop_reason
    assert all(np.all(np.isfinite(v)) for v in t.get_state())


@pytest.mark.parametrize("backend", OTHER)
def test_nan_in_the_data_is_named_on_every_backend(digits, backend):
    X = digits.X_train[:100].copy()
    X[37, 5] = np.nan
    t = Trainer(mlp([64, 8, 10], rng=0), mode=backend)
    before = t.network.get_values()
    with pytest.raises(symnn.SymnnValueError, match="row 37"):
        t.fit(X, digits.y_train[:100], epochs=1, batch_size=10, progress=False)
    for a, b in zip(t.network.get_values(), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", OTHER)
def test_two_epochs_save_load_two_epochs_equals_four_on_every_backend(digits, tmp_path, backend):
    X, y = digits.X_train[:320], digits.y_train[:320]

    dropout = 0.0 if backend == "JAX" else 0.2  # JAX's masks: see COMPARED

    def fresh():
        return Trainer(mlp([64, 16, 10], rng=0, dropout=dropout), seed=5, mode=backend)

    straight = fresh()
    straight.fit(X, y, epochs=4, batch_size=64, progress=False)
    first = fresh()
    first.fit(X, y, epochs=2, batch_size=64, progress=False)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    assert mode_name(resumed.mode) == backend
    resumed.fit(X, y, epochs=2, batch_size=64, progress=False)
    for a, b in zip(straight.network.get_values(), resumed.network.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)
