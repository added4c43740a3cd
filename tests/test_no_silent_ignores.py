"""Every argument either has an effect or is refused: the scipy paths of training, input
optimisation and the estimators, and what a saved file keeps."""

import warnings

import numpy as np
import pytensor.tensor as pt
import pytest
from sklearn.exceptions import ConvergenceWarning

import symnn
from symnn.datasets import load_digits
from symnn.errors import SymnnValueError
from symnn.inputopt import InputPenalties, activation_maximization, maximize
from symnn.layers import mlp
from symnn.train import Callback, EarlyStopping, LambdaCallback, ScipyTrainer, StopTraining


@pytest.fixture(scope="module")
def data():
    d = load_digits(dtype="float64")
    return d.X_train[:200], d.y_train[:200]


def _scipy_trainer(**kw):
    return ScipyTrainer(mlp([64, 8, 10], rng=0, dtype="float64"), method="l-bfgs-b", **kw)


# -- ScipyTrainer: callbacks see the weights they judge ----------------------------------
def test_scipy_callbacks_see_the_current_iterate(data):
    t = _scipy_trainer()
    losses, seen = [], []

    def record(trainer, step, logs):
        losses.append(logs["loss"])
        seen.append(trainer.network.get_values())

    t.fit(*data, maxiter=15, callbacks=[LambdaCallback(on_batch_end=record)])
    probe = _scipy_trainer()
    for loss, values in zip(losses, seen):  # the logged loss is the loss of those weights
        probe.network.set_values(values)
        assert probe.evaluate(*data)["loss"] == pytest.approx(loss, rel=1e-9)
    assert not np.array_equal(seen[0][0], seen[-1][0])


def test_scipy_early_stopping_restores_the_best_iterate_not_the_initial_weights(data):
    t = _scipy_trainer()
    initial = t.network.get_values()
    stop = EarlyStopping("loss", patience=0, min_delta=1e9)  # nothing "improves" after epoch 1
    h = t.fit(*data, maxiter=30, callbacks=[stop])
    assert h.stop_reason == "a callback stopped training" and h.best_epoch == 1
    assert not np.array_equal(t.network.get_values()[0], initial[0])
    assert t.evaluate(*data)["loss"] == pytest.approx(h.epochs[0]["loss"], rel=1e-9)


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_batch_end"])
@pytest.mark.parametrize("batch_size", [None, 50])
def test_stop_training_raised_in_a_scipy_callback_stops_like_in_fit(data, hook, batch_size):
    class Raise(Callback):
        pass

    def stop(*args):
        raise StopTraining

    cb = Raise()
    setattr(cb, hook, stop)
    h = _scipy_trainer().fit(*data, maxiter=20, batch_size=batch_size, callbacks=[cb])
    assert h.stop_reason == "a callback stopped training"


# -- maximize with scipy ------------------------------------------------------------------
@pytest.fixture(scope="module")
def box():
    x = pt.matrix("x", dtype="float64", shape=(None, 3))
    return -pt.sum((x - np.array([0.2, 0.4, 1.7])) ** 2, axis=1), x


@pytest.mark.parametrize("method", ["l-bfgs-b", "tnc"])
def test_scipy_maximize_refuses_what_it_cannot_use(box, method):
    objective, x = box
    with pytest.raises(SymnnValueError, match="learning_rate=0.5 has no effect"):
        maximize(objective, x, method=method, learning_rate=0.5)
    with pytest.raises(SymnnValueError, match="every=.* has no effect"):
        maximize(objective, x, method=method, every=(2, lambda X: X))


def test_scipy_activation_maximization_refuses_jitter_and_blur(data):
    net = mlp([64, 8, 10], rng=0)
    with pytest.raises(SymnnValueError, match="jitter=1 has no effect with method='l-bfgs-b'"):
        activation_maximization(
            net, [0], method="l-bfgs-b", image_shape=(8, 8), penalties=InputPenalties(jitter=1)
        )
    with pytest.raises(SymnnValueError, match="has no effect with method='tnc'"):
        activation_maximization(
            net, [0], method="tnc", image_shape=(8, 8), penalties=InputPenalties(blur_every=2)
        )
    with pytest.raises(SymnnValueError, match="blur_sigma=1.0 has no effect without blur_every"):
        activation_maximization(
            net, [0], image_shape=(8, 8), penalties=InputPenalties(blur_sigma=1.0)
        )


def test_scipy_maximize_runs_with_the_fixed_blas_thread_count(box, monkeypatch):
    import importlib

    module = importlib.import_module("symnn.inputopt.maximize")

    made = []
    real = module.ThreadTuner

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(module, "ThreadTuner", Spy)
    maximize(*box, method="l-bfgs-b", blas_threads=1, steps=5)
    assert [t.fixed for t in made] == [1]


@pytest.mark.parametrize("method", ["l-bfgs-b", "tnc"])
def test_scipy_maximize_interrupted_returns_the_last_iterate(box, method, monkeypatch):
    from contextlib import contextmanager

    from symnn.backend import interrupt

    calls = {"n": 0}

    @contextmanager
    def ctrl_c_after_two_iterations():
        def interrupted():
            calls["n"] += 1
            return calls["n"] >= 2

        yield interrupted

    monkeypatch.setattr(interrupt, "deferred_interrupt", ctrl_c_after_two_iterations)
    r = maximize(*box, method=method, n_starts=2, steps=500)
    assert r.interrupted and r.stop_reason == "interrupted" and r.n_steps == 2
    assert r.x.shape == (2, 3) and np.all((r.x >= 0) & (r.x <= 1))
    np.testing.assert_allclose(r.value, r.history[-1])  # the result is the iterate reached


# -- estimators with a scipy optimizer ------------------------------------------------------
def test_estimator_with_scipy_warns_about_what_it_ignores_and_uses_the_rest(data, capsys):
    X, y = data
    clf = symnn.MLPClassifier(
        hidden_layer_sizes=(8,),
        solver="lbfgs",
        learning_rate_init=0.5,
        batch_size=32,
        max_iter=30,
        random_state=0,
        blas_threads=1,
    )
    with pytest.warns(
        UserWarning,
        match=r"learning_rate_init=0.5, batch_size=32 have no effect with solver='lbfgs'",
    ):
        clf.fit(X, y)
    assert clf._trainer.blas_threads == 1
    quiet = symnn.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # 5 iterations: not converged
        quiet.fit(X, y)  # defaults draw no other warning
    loose = symnn.MLPClassifier(
        hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500, tol=1e3, random_state=0
    ).fit(X, y)
    assert loose.n_iter_ < 30  # tol reaches scipy
    symnn.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3, verbose=True).fit(X, y)
    assert "upd" in capsys.readouterr().err  # verbose shows progress


# -- what a file keeps ------------------------------------------------------------------------
def test_save_keeps_mode_blas_threads_and_scipy_options(tmp_path, data):
    t = _scipy_trainer(mode="FAST_COMPILE", options={"gtol": 1e-3}, blas_threads=1)
    t.fit(*data, maxiter=3)
    again = symnn.load(symnn.save(t, tmp_path / "run"))
    assert isinstance(again, ScipyTrainer) and again.method == "L-BFGS-B"
    assert again.options == {"gtol": 1e-3} and again.mode == "FAST_COMPILE"
    assert again.blas_threads == 1
    from symnn.train import Trainer

    t = Trainer(
        mlp([4, 3, 2], rng=0),
        mode="FAST_COMPILE",
        blas_threads=2,
        momentum=0.5,
        optimizer="momentum",
    )
    again = symnn.load(symnn.save(t, tmp_path / "sgd"))
    assert (again.mode, again.blas_threads, again.optimizer_kwargs) == (
        "FAST_COMPILE",
        2,
        {"momentum": 0.5},
    )
    auto = symnn.load(symnn.save(Trainer(mlp([4, 3, 2], rng=0)), tmp_path / "auto"))
    assert auto.blas_threads is None and auto.mode is None


def test_save_refuses_a_mode_object_it_cannot_describe(tmp_path):
    from pytensor.compile.mode import get_mode

    from symnn.train import Trainer

    t = Trainer(mlp([4, 3, 2], rng=0), mode=get_mode("FAST_COMPILE"))
    with pytest.raises(SymnnValueError, match="pass mode as a name"):
        symnn.save(t, tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_trainer_refuses_an_update_rule_argument_at_construction():
    """Issue 28: ``clipvalue`` (Keras's) was accepted and refused only at the first ``fit``."""
    from symnn.layers import mlp
    from symnn.train import Trainer

    net = mlp([4, 3, 2], rng=0)
    with pytest.raises(symnn.SymnnTypeError, match="'adam' takes no argument 'clipvalue'"):
        Trainer(net, clipvalue=0.5)
    with pytest.raises(symnn.SymnnTypeError, match="'beta1', 'beta2', 'epsilon'"):
        Trainer(net, momentum=0.5)  # adam's own arguments are listed
    assert Trainer(net, optimizer="momentum", momentum=0.5).optimizer_kwargs == {"momentum": 0.5}
    assert Trainer(net, optimizer=lambda g, p, learning_rate, **kw: {}, anything=1)


def test_activation_maximization_given_a_trainer_says_to_pass_its_network():
    """Issue 28: the Trainer that ``symnn.load`` returns was refused without saying why."""
    from symnn.layers import mlp
    from symnn.train import Trainer

    trainer = Trainer(mlp([4, 3, 2], rng=0))
    with pytest.raises(symnn.SymnnTypeError, match=r"got a Trainer: pass its \.network"):
        activation_maximization(trainer, [0], steps=1)
