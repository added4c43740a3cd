"""Recurrent layers, embeddings and TimeDistributed: values and gradients against PyTorch's
nn.RNN/LSTM/GRU with the same weights (carried over by load_state_dict), masks against a
loop over each sequence's true length, finite differences, the C and Numba backends,
training, saving and graphs."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

import symnn
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.gradcheck import check_grad
from symnn.io import load_state_dict
from symnn.layers import (
    GRU,
    LSTM,
    RNN,
    Bidirectional,
    Dense,
    Embedding,
    Graph,
    Input,
    Reshape,
    Sequential,
    TimeDistributed,
)
from symnn.train import Trainer

FAST = "FAST_COMPILE"
N, T, F, H = 3, 5, 4, 6
X = np.random.default_rng(0).normal(size=(N, T, F))
KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def _layer(kind, **kw):
    return KINDS[kind](F, H, rng=1, dtype="float64", **kw)


def _run(layer, x_value, mask=None, mode=FAST):
    x = pt.tensor3("x", dtype=layer.dtype)
    if mask is None:
        return pytensor.function([x], layer(x), mode=mode)(x_value)
    m = pt.matrix("m", dtype=layer.dtype)
    return pytensor.function([x, m], layer(x, mask=m), mode=mode)(x_value, mask)


def _torch_twin(torch, kind, bidirectional=False, **kw):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    torch.manual_seed(0)
    return cls(F, H, batch_first=True, bidirectional=bidirectional, **kw).double()


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_values_and_input_gradients_equal_pytorchs_with_its_weights(kind):
    torch = import_torch()
    theirs = _torch_twin(torch, kind)
    ours = _layer(kind)
    report = load_state_dict(ours, {k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert not report.missing and not report.unexpected
    xt = torch.from_numpy(X.copy()).requires_grad_(True)
    want, _ = theirs(xt)
    (want ** 2).sum().backward()
    x = pt.tensor3("x", dtype="float64")
    out = ours(x)
    fn = pytensor.function([x], [out, pytensor.grad((out**2).sum(), x)], mode=FAST)
    got, grad = fn(X)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    final = _run(_layer(kind, only_return_final=True).__class__(
        F, H, only_return_final=True, dtype="float64",
        W_in=ours.W_in.get_value(), W_hid=ours.W_hid.get_value(), b=ours.b_in.get_value()), X)
    assert final.shape == (N, H)


@pytest.mark.parametrize("mode", [FAST, None])
def test_an_lstm_with_its_cell_state_equals_pytorchs_h_and_c(mode):
    """``with_cell``: h and c side by side; final: PyTorch's ``(h_n, c_n)``; every step:
    PyTorch's ``out`` beside cell states whose last is ``c_n`` (bidirectional: per direction)."""
    torch = import_torch()
    theirs = _torch_twin(torch, "lstm", bidirectional=True)
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    with torch.no_grad():
        out, (h_n, c_n) = theirs(torch.from_numpy(X))
    out, h_n, c_n = out.numpy(), h_n.numpy(), c_n.numpy()
    final = Bidirectional(_layer("lstm", with_cell=True, only_return_final=True), rng=2)
    steps = Bidirectional(_layer("lstm", with_cell=True), rng=2)
    for layer in (final, steps):
        load_state_dict(layer, state)
    got = _run(final, X, mode=mode).reshape(N, 2, 2, H)  # direction, (h, c), units
    np.testing.assert_allclose(got[:, :, 0], h_n.transpose(1, 0, 2), rtol=1e-10)
    np.testing.assert_allclose(got[:, :, 1], c_n.transpose(1, 0, 2), rtol=1e-10)
    seq = _run(steps, X, mode=mode).reshape(N, T, 2, 2, H)
    np.testing.assert_allclose(seq[:, :, :, 0], out.reshape(N, T, 2, H), rtol=1e-10)
    np.testing.assert_allclose(seq[:, -1, 0, 1], c_n[0], rtol=1e-10)  # forward: the last step
    np.testing.assert_allclose(seq[:, 0, 1, 1], c_n[1], rtol=1e-10)  # backward: the first
    assert final.output_shape((T, F)) == (4 * H,) and steps.output_shape((T, F)) == (T, 4 * H)
    with pytest.raises(SymnnTypeError, match="with_cell must be True or False"):
        LSTM(F, H, with_cell=1)


def test_bidirectional_equals_pytorchs_bidirectional_lstm():
    torch = import_torch()
    theirs = _torch_twin(torch, "lstm", bidirectional=True)
    ours = Bidirectional(_layer("lstm"), rng=2)
    load_state_dict(ours, {k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    want, _ = theirs(torch.from_numpy(X))
    np.testing.assert_allclose(_run(ours, X), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert ours.output_shape((T, F)) == (T, 2 * H)


def test_relu_rnn_equals_pytorchs():
    torch = import_torch()
    theirs = _torch_twin(torch, "rnn", nonlinearity="relu")
    ours = RNN(F, H, "relu", dtype="float64")
    load_state_dict(ours, {k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    want, _ = theirs(torch.from_numpy(X))
    np.testing.assert_allclose(_run(ours, X), want.detach().numpy(), rtol=1e-10, atol=1e-12)


def _torch_weight_grads(theirs, ours):
    """PyTorch's gradients regrouped as symnn's parameters (W_in/W_hid transposed)."""
    g = {k: v.grad.numpy() for k, v in theirs.named_parameters()}
    return [g["weight_ih_l0"].T, g["weight_hh_l0"].T, g["bias_ih_l0"], g["bias_hh_l0"]]


# float64 against PyTorch: test_values_and_input_gradients_equal_pytorchs_with_its_weights
@pytest.fixture(scope="module", params=[("C", "float32"), ("NUMBA", "float32")],
                ids=lambda p: "-".join(p))  # fmt: skip
def backend_and_dtype(request):
    if request.param[0] == "NUMBA":
        pytest.importorskip("numba")
    return request.param


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_values_input_and_weight_gradients_equal_pytorchs_on_each_backend(
    kind, backend_and_dtype
):
    """What users run: symnn's C mode and the Numba mode, float32 and float64, a mask."""
    torch = import_torch()
    backend, dtype = backend_and_dtype
    theirs = _torch_twin(torch, kind).to(getattr(torch, dtype))
    ours = KINDS[kind](F, H, rng=1, dtype=dtype)
    load_state_dict(ours, {k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xt = torch.from_numpy(X.astype(dtype)).requires_grad_(True)
    want, _ = theirs(xt)
    (want**2).sum().backward()
    x = pt.tensor3("x", dtype=dtype)
    out = ours(x)
    wrt = [x, ours.W_in, ours.W_hid, ours.b_in, ours.b_hid]
    fn = symnn.function([x], [out, *pytensor.grad((out**2).sum(), wrt)], mode=backend)
    got, *grads = fn(X.astype(dtype))
    assert got.dtype == dtype and all(g.dtype == dtype for g in grads)
    tol = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-12)}[dtype]
    np.testing.assert_allclose(got, want.detach().numpy(), **tol)
    np.testing.assert_allclose(grads[0], xt.grad.numpy(), **tol)
    for name, g, w in zip(["W_in", "W_hid", "b_in", "b_hid"], grads[1:],
                          _torch_weight_grads(theirs, ours)):  # fmt: skip
        np.testing.assert_allclose(g, w, err_msg=name, **tol)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_masks_equal_a_loop_over_each_sequences_true_length(kind):
    lengths = [5, 2, 3]
    mask = (np.arange(T)[None, :] < np.array(lengths)[:, None]).astype("float64")
    layer = _layer(kind)
    final = KINDS[kind](F, H, only_return_final=True, dtype="float64",
                        W_in=layer.W_in, W_hid=layer.W_hid, b=layer.b_in)  # fmt: skip
    final.b_hid.set_value(layer.b_hid.get_value())
    outs, last = _run(layer, X, mask), _run(final, X, mask)
    for i, n in enumerate(lengths):
        alone = _run(layer, X[i : i + 1, :n])[0]
        np.testing.assert_allclose(outs[i, :n], alone, rtol=1e-12)
        np.testing.assert_allclose(outs[i, n:], np.repeat(alone[-1:], T - n, axis=0), rtol=1e-12)
        np.testing.assert_allclose(last[i], alone[-1], rtol=1e-12)


@pytest.mark.parametrize("kind, options", [
    ("rnn", {}), ("lstm", {}), ("gru", {}), ("lstm", {"peepholes": True}),
    ("gru", {"backwards": True}), ("lstm", {"precompute_input": False, "learn_init": True}),
    ("rnn", {"only_return_final": True}), ("gru", {"reset_after": False}),
    ("lstm", {"with_cell": True, "backwards": True}),
    ("gru", {"reset_after": False, "precompute_input": False, "backwards": True}),
])  # fmt: skip
def test_gradients_equal_finite_differences(kind, options):
    layer = _layer(kind, **options)
    if options.get("peepholes"):
        layer.W_cell.set_value(np.random.default_rng(3).normal(size=(3, H)) * 0.3)
    x = pt.tensor3("x", dtype="float64")
    mask = np.ones((N, T))
    mask[1, 3:] = 0
    m = pt.matrix("m", dtype="float64")
    cost = pt.sum(pt.sin(layer(x, mask=m)))
    err = check_grad(cost, [x, *layer.params], [X], givens={m: mask}, mode=FAST)
    assert err < 1e-5, err


def test_options_change_what_they_say():
    layer = _layer("lstm")
    same = LSTM(F, H, precompute_input=False, dtype="float64", W_in=layer.W_in,
                W_hid=layer.W_hid, b=layer.b_in)  # fmt: skip
    np.testing.assert_allclose(_run(same, X), _run(layer, X), rtol=1e-12)
    back = LSTM(F, H, backwards=True, dtype="float64", W_in=layer.W_in, W_hid=layer.W_hid,
                b=layer.b_in)  # fmt: skip
    flipped = _run(layer, X[:, ::-1])[:, ::-1]
    np.testing.assert_allclose(_run(back, X), flipped, rtol=1e-12)  # aligned with the input
    x = pt.tensor3("x", dtype="float64")
    grads = {}
    for steps in (-1, 2):
        trunc = LSTM(F, H, gradient_steps=steps, dtype="float64", W_in=layer.W_in,
                     W_hid=layer.W_hid, b=layer.b_in)  # fmt: skip
        cost = trunc(x)[:, -1].sum()
        grads[steps] = pytensor.function([x], pytensor.grad(cost, x), mode=FAST)(X)
    assert np.abs(grads[2][:, :-2]).max() == 0 and np.abs(grads[-1][:, :-2]).max() > 0
    clipped = LSTM(F, H, grad_clipping=1e-3, dtype="float64", W_in=layer.W_in,
                   W_hid=layer.W_hid, b=layer.b_in)  # fmt: skip
    cost = clipped(x)[:, -1].sum()
    g = pytensor.function([x], pytensor.grad(cost, x), mode=FAST)(X)
    assert not np.allclose(g, grads[-1]) and np.allclose(_run(clipped, X), _run(layer, X))


def _gru_reset_before(layer, x):
    """A numpy loop of the GRU of Cho et al. (reset gate before the product with W_hn)."""
    W, R = layer.W_in.get_value(), layer.W_hid.get_value()
    b, c = layer.b_in.get_value(), layer.b_hid.get_value()
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, out = np.zeros((x.shape[0], H)), []
    for t in range(x.shape[1]):
        zi = x[:, t] @ W + b
        r = sig(zi[:, :H] + h @ R[:, :H] + c[:H])
        z = sig(zi[:, H : 2 * H] + h @ R[:, H : 2 * H] + c[H : 2 * H])
        n = np.tanh(zi[:, 2 * H :] + (r * h) @ R[:, 2 * H :] + c[2 * H :])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("mode", [FAST, None, "NUMBA"])
def test_a_gru_with_the_reset_gate_before_the_product_as_numpy(mode):
    """``reset_after=False``: Keras' option, ONNX's default GRU; PyTorch has none, so its
    weights are refused."""
    if mode == "NUMBA":
        pytest.importorskip("numba")
    layer = _layer("gru", reset_after=False)
    layer.b_hid.set_value(np.random.default_rng(2).normal(size=3 * H))
    want = _gru_reset_before(layer, X)
    np.testing.assert_allclose(_run(layer, X, mode=mode), want, rtol=1e-10)
    assert not np.allclose(_run(_layer("gru"), X), want, atol=1e-3)  # another function
    torch = import_torch()
    with pytest.raises(SymnnValueError, match=r"reset_after=False has no PyTorch counterpart"):
        load_state_dict(layer, _torch_twin(torch, "gru").state_dict())
    with pytest.raises(SymnnTypeError, match="reset_after must be True or False"):
        GRU(F, H, reset_after="no")


@pytest.mark.parametrize("mode", [None, "NUMBA"])
def test_the_default_c_and_the_numba_backends_compute_the_same(mode):
    if mode == "NUMBA":
        pytest.importorskip("numba")
    for kind in KINDS:
        layer = _layer(kind)
        mask = np.ones((N, T))
        mask[0, 2:] = 0
        np.testing.assert_allclose(_run(layer, X, mask, mode=mode), _run(layer, X, mask),
                                   rtol=1e-10)  # fmt: skip


def _sequence_task(n=256, seed=0):
    """Is the first feature's sum over time positive? (needs every step)."""
    rng = np.random.default_rng(seed)
    seqs = rng.normal(size=(n, T, F)).astype("float32")
    return seqs.reshape(n, -1), (seqs[:, :, 0].sum(axis=1) > 0).astype("int32")


def _sequence_net(kind="lstm"):
    return Sequential([Reshape((T, F)), KINDS[kind](F, 16, only_return_final=True, rng=0),
                       Dense(16, 2, "softmax", rng=1)])  # fmt: skip


def test_a_recurrent_classifier_trains_saves_and_resumes_exactly(tmp_path):
    Xs, y = _sequence_task()
    straight = Trainer(_sequence_net(), learning_rate=0.02, mode=FAST, seed=0)
    straight.fit(Xs, y, epochs=4, batch_size=32, progress=False)
    first = Trainer(_sequence_net(), learning_rate=0.02, mode=FAST, seed=0)
    first.fit(Xs, y, epochs=2, batch_size=32, progress=False)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    resumed.fit(Xs, y, epochs=2, batch_size=32, progress=False)
    for a, b in zip(straight.get_state(), resumed.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert straight.evaluate(Xs, y)["accuracy"] > 0.9
    assert "LSTM" in straight.network.summary()


def test_embeddings_a_gru_and_a_mask_in_a_graph_train_and_save(tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 10, size=(200, T)).astype("int32")
    lengths = rng.integers(2, T + 1, size=200)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype("float32")
    ids[mask == 0] = 0  # padding token
    y = ((ids == 3) & (mask == 1)).any(axis=1).astype("int32")  # was token 3 seen?
    tokens, m = Input((T,), name="ids", dtype="int32"), Input((T,), name="mask")
    h = GRU(8, 12, only_return_final=True, rng=0, name="gru")([Embedding(10, 8, rng=1)(tokens), m])
    net = Graph([tokens, m], Dense(12, 2, "softmax", rng=2)(h))
    trainer = Trainer(net, learning_rate=0.03, mode=FAST, seed=0)
    trainer.fit([ids, mask], y, epochs=15, batch_size=32, progress=False)
    assert trainer.evaluate([ids, mask], y)["accuracy"] > 0.9
    back = symnn.load(symnn.save(net, tmp_path / "net"))
    np.testing.assert_array_equal(Trainer(back, mode=FAST).predict_proba([ids, mask]),
                                  trainer.predict_proba([ids, mask]))  # fmt: skip


def test_time_distributed_is_the_layer_on_every_step():
    dense = Dense(F, 3, "tanh", rng=0, dtype="float64")
    x = pt.tensor3("x", dtype="float64", shape=(None, T, F))
    got = pytensor.function([x], TimeDistributed(dense)(x), mode=FAST)(X)
    np.testing.assert_allclose(got, np.tanh(X @ dense.W.get_value() + dense.b.get_value()))


def test_bad_input_is_refused_by_name():
    layer = _layer("lstm")
    with pytest.raises(SymnnValueError, match=r"LSTM takes sequences \(batch, time, 4\)"):
        layer(pt.matrix("x", dtype="float64"))
    with pytest.raises(SymnnValueError, match=r"mask must be a \(batch, time\) tensor"):
        layer(pt.tensor3("x", dtype="float64"), mask=pt.tensor3("m"))
    with pytest.raises(SymnnValueError, match="gradient_steps=0 must be -1"):
        LSTM(F, H, gradient_steps=0)
    with pytest.raises(SymnnTypeError, match="layer must be a forward RNN, LSTM or GRU"):
        Bidirectional(LSTM(F, H, backwards=True))
    with pytest.raises(SymnnTypeError, match="Embedding takes integer token ids"):
        Embedding(5, 2)(pt.matrix("x"))


@pytest.mark.parametrize("make", [
    lambda: LSTM(F, H, rng=1, peepholes=True),
    lambda: GRU(F, H, rng=1, only_return_final=True),
    lambda: RNN(F, H, rng=1, backwards=True),  # onnx's reference RNN has no Relu
    lambda: Bidirectional(LSTM(F, H, rng=1), rng=2),
    lambda: Bidirectional(GRU(F, H, rng=1, only_return_final=True), rng=2),
    lambda: Bidirectional(GRU(F, H, rng=1, reset_after=False), rng=2),
], ids=["lstm_peepholes", "gru_final", "rnn_backwards", "bi_lstm", "bi_gru_final",
        "bi_gru_reset_before"])  # fmt: skip
def test_exported_to_onnx_and_read_back(make, tmp_path):
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from symnn.io import from_onnx, to_onnx

    layer = make()
    for cell in getattr(layer, "forward", layer), getattr(layer, "backward", layer):
        if getattr(cell, "peepholes", False):
            cell.W_cell.set_value(np.random.default_rng(4).normal(size=(3, H)).astype("float32"))
        cell.b_in.set_value(np.random.default_rng(5).normal(size=cell.b_in.get_value().shape)
                            .astype("float32"))  # fmt: skip
    net = Sequential([Reshape((T, F)), layer])
    data = X.reshape(N, -1).astype("float32")
    x = pt.matrix("x", dtype="float32")
    mine = pytensor.function([x], net(x), mode=FAST)(data)
    path = to_onnx(net, tmp_path / "rnn.onnx")
    (ref,) = ReferenceEvaluator(str(path)).run(None, {"input": data})
    np.testing.assert_allclose(ref, mine, rtol=1e-5, atol=1e-6)
    back = from_onnx(path)
    np.testing.assert_allclose(pytensor.function([x], back(x), mode=FAST)(data), mine,
                               rtol=1e-6, atol=1e-7)  # fmt: skip
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": data})[0], mine, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_pytorch_exports_of_recurrent_classifiers_read_back_equal(kind, dynamo, tmp_path):
    torch = import_torch()
    from symnn.io import from_onnx

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = _torch_twin(torch, kind).float()
            self.fc = torch.nn.Linear(H, 3)

        def forward(self, x):
            out, _ = self.rnn(x.view(-1, T, F))
            return self.fc(out[:, -1])

    model = Model().eval()
    path = tmp_path / f"{kind}.onnx"
    if dynamo:
        pytest.importorskip("onnxscript")
        torch.onnx.export(model, (torch.zeros(2, T * F),), str(path), dynamo=True,
                          dynamic_shapes={"x": {0: torch.export.Dim("N")}})  # fmt: skip
    else:
        torch.onnx.export(model, torch.zeros(2, T * F), str(path), dynamo=False,
                          opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})  # fmt: skip
    data = X.reshape(N, -1).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(data)).numpy()
    net = from_onnx(path)
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x), mode=FAST)(data)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_net_classifier_trains_a_recurrent_builder_and_its_units_are_maximised():
    from symnn.estimator import NetClassifier
    from symnn.inputopt import activation_maximization

    def builder(n_in, n_out, *, rng, dtype):
        return Sequential([Reshape((T, F)), GRU(F, 16, only_return_final=True, rng=rng,
                                                dtype=dtype, name="gru"),
                           Dense(16, n_out, rng=rng, dtype=dtype)])  # fmt: skip

    Xs, y = _sequence_task()
    clf = NetClassifier(builder, max_iter=30, learning_rate_init=0.02, random_state=0)
    clf.fit(Xs, y)
    assert clf.score(Xs, y) > 0.9
    net = _sequence_net("gru")
    report = activation_maximization(net, [0, 3], layer=1, steps=20, seed=0)  # GRU units
    assert report.x.shape == (2, T * F) and np.all(np.abs(report.x) <= 1)
    assert all(r.moved for r in report.rows)
