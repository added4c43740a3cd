"""The trust checks of symnn.inputopt.checks: path similarity (Geirhos et al.) and
plausibility (MaCo) against numpy transcriptions, their verdicts on real inputs and on noise,
the compiled function shared between calls and threads, and bad input named."""

import threading

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.datasets import load_digits
from symnn.errors import SymnnValueError
from symnn.inputopt.checks import (
    dataset_examples,
    layer_features,
    path_similarity,
    plausibility,
)
from symnn.layers import Dense, Graph, Input, from_arch
from symnn.train import Trainer

FAST = "FAST_COMPILE"


@pytest.fixture(scope="module")
def trained():
    data = load_digits()
    net = from_arch("conv6x3,pool2,24,10", (8, 8), rng=0, dtype="float64")
    Trainer(net, seed=0, mode=FAST).fit(data.X_train, data.y_train, epochs=8, progress=False)
    return net, data


def _pearson(a, b):
    return np.corrcoef(a, b)[0, 1]


def test_layer_features_are_each_layers_output(trained):
    net, data = trained
    feats = layer_features(net, data.X_test[:5], mode=FAST)
    x = pt.matrix("x", dtype="float64")
    outs = pytensor.function([x], net.get_outputs(x, deterministic=True), mode=FAST)(
        data.X_test[:5]
    )
    assert sorted(feats) == list(range(len(net.layers)))
    for i, out in enumerate(outs):
        np.testing.assert_allclose(feats[i], out.reshape(5, -1), rtol=1e-12)


def test_features_of_many_rows_come_in_blocks_equal_to_one_call(trained):
    net, data = trained
    X = data.X_train[:600]  # more than two blocks of 256
    whole = layer_features(net, X, mode=FAST)
    parts = [layer_features(net, X[s : s + 100], mode=FAST) for s in range(0, 600, 100)]
    some = layer_features(net, X, layers={4}, mode=FAST)
    assert list(some) == [4]
    for p in whole:
        np.testing.assert_allclose(whole[p], np.concatenate([q[p] for q in parts]), rtol=1e-12)


def test_path_similarity_equals_numpys_and_real_inputs_stay_on_the_path(trained):
    net, data = trained
    X = data.X_train
    k = 4
    examples = np.stack([X[data.y_train == c][:k] for c in (0, 3)])  # (2, k, 64)
    real = np.stack([X[data.y_train == c][k] for c in (0, 3)])  # one more of each class
    noise = np.random.default_rng(0).random((2, 64))
    on = path_similarity(net, real, examples, mode=FAST)
    off = path_similarity(net, noise, examples, until=4, mode=FAST)
    feats = layer_features(net, np.concatenate([real, examples.reshape(-1, 64)]), mode=FAST)
    for j, p in enumerate(on.layers):
        f = feats[p]
        ex = f[2:].reshape(2, k, -1)
        for i in range(2):
            assert np.isclose(on.visualisation[i, j], _pearson(f[i], ex[i].mean(0)), atol=1e-12)
            loo = [_pearson(ex[i, e], np.delete(ex[i], e, axis=0).mean(0)) for e in range(k)]
            assert np.isclose(on.natural[i, j], min(loo), atol=1e-12)
    assert off.layers == [p for p in on.layers if p <= 4]
    assert (off.leaves_at >= 0).all()  # noise leaves the path of real digits
    # a real digit of the class correlates with the examples' mean at the last layers
    assert (on.visualisation[:, -1] > 0.8).all(), on.visualisation


def test_plausibility_is_the_mean_cosine_of_penultimate_features(trained):
    net, data = trained
    images, real = data.X_test[:3], data.X_train[data.y_train == 5][:10]
    got = plausibility(net, images, real, mode=FAST)
    f = layer_features(net, np.concatenate([images, real]), mode=FAST)[len(net.layers) - 2]
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    np.testing.assert_allclose(got, (unit[:3] @ unit[3:].T).mean(axis=1), rtol=1e-12)
    test_fives = data.X_test[data.y_test == 5][:5]
    fives = plausibility(net, test_fives, real, mode=FAST)
    noise = plausibility(net, np.random.default_rng(1).random((5, 64)), real, mode=FAST)
    zeros = plausibility(net, test_fives, data.X_train[data.y_train == 0][:10], mode=FAST)
    # relu features are nonnegative, so every cosine is positive; the class ranks first
    assert fives.mean() > max(noise.mean(), zeros.mean()), (fives, noise, zeros)


def test_dataset_examples_rank_rows_by_each_channels_mean_activation(trained):
    """Against numpy: the conv layer's output per channel, averaged over positions, sorted
    (stable, highest first); a dense layer's units count as channels."""
    net, data = trained
    X = data.X_train[:120]
    X = np.concatenate([X, X[:5]])  # ties: the earlier row first
    got = dataset_examples(net, "conv0", [0, 5, 2], X, k=6, mode=FAST)
    at = [la.name for la in net.layers].index("conv0")
    conv = layer_features(net, X, mode=FAST)[at].reshape(len(X), 6, -1).mean(axis=2)
    want = np.stack([np.argsort(-conv[:, c], kind="stable")[:6] for c in (0, 5, 2)])
    np.testing.assert_array_equal(got, want)
    dense = dataset_examples(net, len(net.layers) - 2, range(24), X, k=3, mode=FAST)
    feats = layer_features(net, X, mode=FAST)[len(net.layers) - 2]
    assert dense.shape == (24, 3) and all(
        feats[dense[u, 0], u] == feats[:, u].max() for u in range(24))  # fmt: skip
    for bad, match in (({"channels": [6]}, r"channels=\[6\] must be indices below the "
                                           "layer's 6 channels"),
                       ({"k": 0}, "k=0 must be between 1 and the 125 rows"),
                       ({"layer": "conv9"}, "layer='conv9' is not a layer name")):  # fmt: skip
        args = {"layer": "conv0", "channels": [0], "k": 2, **bad}
        with pytest.raises(SymnnValueError, match=match):
            dataset_examples(net, args["layer"], args["channels"], X, k=args["k"], mode=FAST)


def test_one_compiled_function_serves_every_call_and_thread(trained, monkeypatch):
    net, data = trained
    layer_features(net, data.X_test[:2], mode=FAST)  # compiled here, once

    def no_compile(*a, **k):
        raise AssertionError("compiled again")

    monkeypatch.setattr("symnn.inputopt.checks.function", no_compile)
    want = layer_features(net, data.X_test[:40], mode=FAST)
    results, errors = {}, []

    def work(i):
        try:
            results[i] = layer_features(net, data.X_test[:40], mode=FAST)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results.values():
        for p in want:
            np.testing.assert_array_equal(got[p], want[p])


def test_a_graph_network_is_checked_layer_by_layer():
    x = Input((6,), name="x", dtype="float64")
    h = Dense(6, 5, "tanh", rng=0, name="h", dtype="float64")(x)
    out = Dense(5, 3, "softmax", rng=1, name="out", dtype="float64")(h)
    graph = Graph(x, out)
    feats = layer_features(graph, np.ones((2, 6)), mode=FAST)
    # a Graph's layers are its nodes: Input holds no computation
    assert [f.shape for f in feats.values()] == [(2, 5), (2, 3)]


@pytest.mark.parametrize("call, match", [
    (lambda n, X: path_similarity(n, X[:2], X[:2, None]), r"examples must be \(n, k >= 2"),
    (lambda n, X: path_similarity(n, X[:2], np.stack([X[:3]] * 3)), "with n = 2 images"),
    (lambda n, X: plausibility(n, X[:2], X[:4], layer=9), "layer=9 is out of range"),
    (lambda n, X: layer_features(n, X[:, :10]), r"X has shape \(450, 10\); expected rows of"),
])  # fmt: skip
def test_bad_input_is_named(trained, call, match):
    net, data = trained
    with pytest.raises(SymnnValueError, match=match):
        call(net, data.X_test)


def test_activation_reports_carry_the_checks_per_row(trained):
    from symnn.inputopt import Reference, activation_maximization

    net, data = trained
    ref = Reference(data.X_train, labels=data.y_train, top_k=4)
    report = activation_maximization(net, [0, 3], image_shape=(8, 8), reference=ref, steps=20,
                                     prior=None, mode=FAST)  # fmt: skip
    for row, x in zip(report.rows, report.x):
        assert len(row.path_corr) == len(net.layers) and row.path_leaves_at >= -1
        want = plausibility(net, x[None], data.X_train[data.y_train == row.unit], mode=FAST)
        assert np.isclose(row.plausibility, want[0], rtol=1e-12)
        path = path_similarity(net, x[None], data.X_train[row.top_examples][None], mode=FAST)
        np.testing.assert_allclose(row.path_corr, path.visualisation[0], atol=1e-6)
    hidden = activation_maximization(net, [1], layer="conv0", reference=ref, steps=5, prior=None,
                                     mode=FAST)  # fmt: skip
    assert len(hidden.rows[0].path_corr) == 2  # the Reshape and conv0: up to the target
    bare = activation_maximization(net, [0], image_shape=(8, 8), steps=5, mode=FAST)
    assert bare.rows[0].path_corr is None and bare.rows[0].plausibility is None
