"""The promises whose numbers depend on the backend, checked on the backend users get:
symnn's default mode (C with scipy's OpenBLAS, BLAS threads tuned by timing), not the
FAST_COMPILE mode of the graph-logic tests. scikit-learn's checks, every ascent method with
its best-iterate replay, the non-finite rollback, exact resume and determinism."""

import numpy as np
import pytensor.tensor as pt
import pytest
from _sklearn_checks import parametrize_checks, with_check_params

import symnn
from symnn import MLPClassifier, MLPRegressor, NetClassifier
from symnn.datasets import load_digits
from symnn.estimator import dense_network
from symnn.inputopt import maximize
from symnn.layers import mlp
from symnn.train import LambdaCallback, Trainer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("users_backend")]


@pytest.fixture(scope="module")
def digits():
    return load_digits()


# -- scikit-learn's own checks, every one, default hyperparameters ---------------------------
@parametrize_checks(
    [MLPClassifier(), MLPRegressor(), NetClassifier(dense_network)],
)
def test_sklearn_checks_on_the_default_backend(estimator, check):
    check(with_check_params(estimator, check))


def test_predictions_do_not_depend_on_the_other_rows(digits):
    X, y = digits.X_train[:400], digits.y_train[:400]
    for est in (
        MLPClassifier(hidden_layer_sizes=(100,), max_iter=5, random_state=0),
        MLPRegressor(hidden_layer_sizes=(100,), max_iter=5, random_state=0),
    ):
        est.fit(X, y)
        method = est.predict_proba if hasattr(est, "predict_proba") else est.predict
        whole = method(X)
        for rows in (slice(0, 1), slice(3, 4), slice(5, 70), slice(None, None, 3)):
            np.testing.assert_array_equal(method(X[rows]), whole[rows])


def test_fixed_blas_threads_give_identical_estimators(digits):
    X, y = digits.X_train, digits.y_train
    fits = [MLPClassifier(max_iter=3, random_state=1, blas_threads=2).fit(X, y) for _ in range(2)]
    for a, b in zip(fits[0].network_.get_values(), fits[1].network_.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- input optimisation -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_ascent_method_finds_a_known_box_optimum(dtype):
    x = pt.matrix("x", dtype=dtype, shape=(None, 3))
    target = np.array([0.25, 1.7, -0.4])  # the box optimum is [0.25, 1, 0]
    objective = -pt.sum((x - target.astype(dtype)) ** 2, axis=1)
    for method, lr in [
        ("gradient", 0.1),
        ("normalized", 0.01),
        ("momentum", 0.05),
        ("adam", 0.02),
        ("l-bfgs-b", None),
        ("tnc", None),
    ]:
        r = maximize(objective, x, n_starts=4, steps=1000, learning_rate=lr, method=method)
        np.testing.assert_allclose(r.x, np.tile([0.25, 1.0, 0.0], (4, 1)), atol=2e-3)


def test_best_iterate_replay_on_a_network(digits):
    """Momentum with a large step oscillates; the returned rows are the best iterates,
    recovered by replaying with the BLAS thread counts the steps ran with."""
    net = mlp([64, 100, 10], hidden="relu", rng=0)
    Trainer(net, seed=0).fit(digits.X_train, digits.y_train, epochs=3, progress=False)
    x = pt.matrix("x", dtype="float32", shape=(None, 64))
    objective = net(x, deterministic=True)[:, 3] - 0.1 * pt.sum(x**2, axis=1)
    r = maximize(objective, x, n_starts=64, seed=0, steps=70, learning_rate=2.0, method="momentum")
    best = r.history.max(axis=0)
    replayed = r.value < best + 1e-6 * np.abs(best)
    assert replayed.any() and not replayed.all()
    np.testing.assert_allclose(r.value[replayed], best[replayed], rtol=2e-6)
    assert np.all((r.x >= 0) & (r.x <= 1))


# -- training: rollback, resume, determinism ---------------------------------------------------
@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 1e4), ("adam", 1e35)])
def test_non_finite_loss_rolls_back_to_the_last_finite_update(digits, optimizer, learning_rate):
    X, y = digits.X_train[:300] * 100, digits.y_train[:300]
    net = mlp([64, 16, 10], hidden="relu", output="linear", rng=0, dropout=0.1)
    t = Trainer(net, optimizer=optimizer, learning_rate=learning_rate, loss="squared_error")
    seen = []
    record = LambdaCallback(on_batch_end=lambda tr, s, logs: seen.append(tr.get_state()))
    with pytest.warns(RuntimeWarning, match="non-finite training loss"):
        h = t.fit(X, y, epochs=50, batch_size=20, callbacks=[record])
    assert h.stop_reason.startswith("non-finite") and "put back" in h.stop_reason
    for now, then in zip(t.get_state(), seen[t.n_updates - 1], strict=True):
        np.testing.assert_array_equal(now, then)
    assert all(np.all(np.isfinite(v)) for v in t.get_state())


def _resumable(seed=5):
    return Trainer(
        mlp([64, 100, 10], rng=0, dropout=0.2, batch_norm=True), seed=seed, blas_threads=2
    )


def test_two_epochs_save_load_two_epochs_equals_four_straight(digits, tmp_path):
    X, y = digits.X_train, digits.y_train
    straight = _resumable()
    straight.fit(X, y, epochs=4, batch_size=64, progress=False)
    first = _resumable()
    first.fit(X, y, epochs=2, batch_size=64, progress=False)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    assert resumed.blas_threads == 2 and resumed.mode is None
    resumed.fit(X, y, epochs=2, batch_size=64, progress=False)
    for a, b in zip(straight.network.get_values(), resumed.network.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.batch_loss == straight.history.batch_loss
