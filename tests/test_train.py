import math
import os
import signal
import sys
import warnings

import numpy as np
import pytest

from symnn.backend.cache import CompiledCache
from symnn.backend.threads import blas_controller
from symnn.datasets import load_digits, xor
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.layers import mlp
from symnn.train import (
    Callback,
    EarlyStopping,
    History,
    LambdaCallback,
    PatienceRule,
    StopTraining,
    Trainer,
)
from symnn.updates import ExponentialDecay


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def small(digits):
    return digits.X_train[:300], digits.y_train[:300]


def _trainer(seed=0, **kw):
    kw.setdefault("optimizer", "adam")
    kw.setdefault("learning_rate", 0.01)
    return Trainer(mlp([64, 16, 10], rng=seed), seed=seed, **kw)


def _digits_trainer(**kw):
    """64-100-10 relu, Adam, on the real C backend (one graph for the tests that use it)."""
    return Trainer(
        mlp([64, 100, 10], hidden="relu", rng=0),
        optimizer="adam",
        learning_rate=1e-3,
        seed=0,
        mode="C",
        **kw,
    )


@pytest.mark.slow
def test_digits_mlp_reaches_97_percent_on_the_real_backend(digits):
    trainer = _digits_trainer()
    history = trainer.fit(
        digits.X_train,
        digits.y_train,
        epochs=40,
        batch_size=32,
        validation_data=(digits.X_test, digits.y_test),
        progress=False,
    )
    test = trainer.evaluate(digits.X_test, digits.y_test)
    assert test["accuracy"] >= 0.97, test
    assert history["val_accuracy"][-1] == pytest.approx(test["accuracy"])
    assert (trainer.predict(digits.X_test) == digits.y_test).mean() == pytest.approx(
        test["accuracy"]
    )


def test_xor_reaches_100_percent():
    X, y = xor()
    trainer = Trainer(mlp([2, 8, 2], hidden="tanh", rng=0), optimizer="adam", learning_rate=0.05)
    trainer.fit(X, y, epochs=300, batch_size=4)
    assert trainer.evaluate(X, y)["accuracy"] == 1.0
    np.testing.assert_array_equal(trainer.predict(X), y)


def test_same_seed_gives_identical_weights_and_history(small):
    runs = []
    for _ in range(2):
        t = _trainer(seed=3)
        h = t.fit(*small, epochs=2, batch_size=50)
        runs.append((t.network.get_values(), h.batch_loss))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


@pytest.mark.slow
def test_a_fixed_blas_thread_count_gives_bit_identical_weights_on_threaded_products(digits):
    lib = blas_controller()
    if lib is None:
        pytest.skip("symnn's BLAS is not under threadpoolctl's control")
    threads_before = lib.get_num_threads()

    class Counts(Callback):
        def __init__(self):
            self.seen = set()

        def on_batch_end(self, trainer, step, logs):
            self.seen.add(lib.get_num_threads())

    # 64 x 64 by 64 x 100: large enough for OpenBLAS to use two threads
    X, y = digits.X_train[:512], digits.y_train[:512]
    for n in (1, 2):
        runs = []
        for _ in range(2):
            counts = Counts()
            trainer = _digits_trainer(blas_threads=n)
            trainer.fit(X, y, epochs=2, batch_size=64, callbacks=[counts], progress=False)
            assert counts.seen == {n}
            runs.append(trainer.network.get_values())
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)
    assert lib.get_num_threads() == threads_before


def test_history_records_metrics_and_serialises(small, digits):
    t = _trainer()
    h = t.fit(*small, epochs=3, batch_size=100, validation_split=0.2)
    assert len(h) == 3 and len(h.batch_loss) == 3 * 3  # 240 samples -> 3 batches per epoch
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate"):
        assert len(h[key]) == 3
    assert h["loss"][-1] < h["loss"][0]
    again = History.from_dict(h.as_dict())
    assert again.epochs == h.epochs and again.stop_reason == "epochs=3 completed"


def test_callbacks_see_every_update_and_epoch_and_can_stop(small):
    seen = {"batches": 0, "epochs": []}

    def on_batch(trainer, step, logs):
        seen["batches"] += 1
        assert set(logs) == {"loss", "accuracy"}

    def on_epoch(trainer, epoch, logs):
        seen["epochs"].append(epoch)
        return epoch == 2

    t = _trainer()
    h = t.fit(
        *small,
        epochs=10,
        batch_size=100,
        callbacks=[LambdaCallback(on_epoch_end=on_epoch, on_batch_end=on_batch)],
    )
    assert seen == {"batches": 6, "epochs": [1, 2]}
    assert h.stop_reason == "a callback stopped training"

    class StopAtFive(Callback):
        def on_batch_end(self, trainer, step, logs):
            if step == 5:
                raise StopTraining

    assert (
        _trainer()
        .fit(*small, epochs=10, batch_size=100, callbacks=[StopAtFive()])
        .epochs[-1]["updates"]
        == 5
    )


def test_max_updates_and_tol_stop_training(small):
    t = _trainer()
    h = t.fit(*small, epochs=100, batch_size=30, max_updates=25)
    assert t.n_updates == 25 and h.stop_reason == "max_updates=25 reached"
    t = _trainer(learning_rate=1e-9, optimizer="sgd")
    h = t.fit(*small, epochs=100, batch_size=300, tol=1e-4)
    assert len(h) == 2 and "tol" in h.stop_reason


def test_keyboard_interrupt_keeps_last_completed_update_and_resume_continues(small):
    straight = _trainer()
    straight.fit(*small, epochs=2, batch_size=100)

    class Interrupt(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            raise KeyboardInterrupt

    t = _trainer()
    h = t.fit(*small, epochs=2, batch_size=100, callbacks=[Interrupt()])
    assert h.interrupted and len(h) == 1 and t.n_updates == 3
    t.fit(*small, epochs=1, batch_size=100)
    for a, b in zip(straight.network.get_values(), t.network.get_values()):
        np.testing.assert_array_equal(a, b)
    assert len(t.history) == 2


def test_real_sigint_is_deferred_to_the_end_of_the_update(small):
    reference = _trainer()
    reference.fit(*small, epochs=1, batch_size=50, max_updates=4)

    class SendSigint(Callback):
        def on_batch_end(self, trainer, step, logs):
            if step == 4:
                os.kill(os.getpid(), signal.SIGINT)

    t = _trainer()
    # the test runner may run in the background, where a shell makes SIGINT ignored
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        h = t.fit(*small, epochs=5, batch_size=50, callbacks=[SendSigint()])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    assert h.interrupted and t.n_updates == 4
    for a, b in zip(reference.network.get_values(), t.network.get_values()):
        np.testing.assert_array_equal(a, b)


def test_fit_leaves_an_ignored_sigint_ignored(small):
    seen = []

    class Look(Callback):
        def on_batch_end(self, trainer, step, logs):
            seen.append(signal.getsignal(signal.SIGINT))

    outer = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _trainer().fit(*small, epochs=1, batch_size=100, callbacks=[Look()])
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outer)
    assert seen and all(h is signal.SIG_IGN for h in seen)


def test_early_stopping_restores_best_weights(small, digits):
    best = {}

    class Record(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            best[epoch] = (logs["val_loss"], trainer.network.get_values())

    t = _trainer(learning_rate=0.05)
    h = t.fit(
        *small,
        epochs=40,
        batch_size=50,
        validation_data=(digits.X_test, digits.y_test),
        callbacks=[Record(), EarlyStopping(patience=2)],
    )
    assert h.stop_reason == "a callback stopped training" and len(h) < 40
    epoch = min(best, key=lambda e: best[e][0])
    assert h.best_epoch == epoch
    for a, b in zip(best[epoch][1], t.network.get_values()):
        np.testing.assert_array_equal(a, b)


def test_patience_rule_counts_updates(small, digits):
    t = _trainer(learning_rate=0.05)
    rule = PatienceRule(patience=12, patience_increase=2.0, improvement_threshold=0.995)
    seen = {}
    record = LambdaCallback(
        on_epoch_end=lambda tr, e, logs: seen.__setitem__(
            e, (logs["val_loss"], tr.network.get_values())
        )
    )
    h = t.fit(
        *small,
        epochs=50,
        batch_size=100,
        validation_data=(digits.X_test, digits.y_test),
        callbacks=[record, rule],
    )
    assert h.stop_reason == "a callback stopped training"
    assert rule.patience > 12  # improvements made it grow (updates x patience_increase)
    assert t.n_updates >= rule.patience and t.n_updates < 50 * 3
    best = min(seen, key=lambda e: seen[e][0])
    assert h.best_epoch == best and best < len(h)
    for a, b in zip(seen[best][1], t.network.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)  # the best weights came back


def test_learning_rate_schedule_per_step_and_epoch(small):
    t = _trainer(optimizer="sgd", learning_rate=0.5)
    h = t.fit(*small, epochs=3, batch_size=100, schedule=ExponentialDecay(0.5, 0.5))
    np.testing.assert_allclose(h["learning_rate"], [0.5, 0.25, 0.125])
    t = _trainer(optimizer="sgd", learning_rate=0.5)
    t.fit(
        *small, epochs=1, batch_size=100, schedule=ExponentialDecay(0.5, 0.5), schedule_every="step"
    )
    assert float(t.learning_rate.get_value()) == pytest.approx(0.5 * 0.5**2)


@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 1e4), ("adam", 1e35)])
def test_non_finite_loss_rolls_back_to_the_last_finite_update(small, optimizer, learning_rate):
    X, y = small
    net = mlp([64, 16, 10], hidden="relu", output="linear", rng=0, dropout=0.1)
    t = Trainer(net, optimizer=optimizer, learning_rate=learning_rate, loss="squared_error")
    seen = []
    record = LambdaCallback(on_batch_end=lambda tr, s, logs: seen.append(tr.get_state()))
    with pytest.warns(RuntimeWarning, match="non-finite training loss"):
        h = t.fit(X * 100, y, epochs=50, batch_size=20, callbacks=[record])
    assert h.stop_reason.startswith("non-finite") and "put back" in h.stop_reason
    assert 1 <= t.n_updates <= len(seen) and len(h.batch_loss) == t.n_updates
    for now, then in zip(t.get_state(), seen[t.n_updates - 1], strict=True):
        np.testing.assert_array_equal(now, then)
    assert all(np.all(np.isfinite(v)) for v in t.get_state())
    finite_states = [all(np.all(np.isfinite(v)) for v in s) for s in seen]
    assert finite_states[t.n_updates - 1] and not any(finite_states[t.n_updates :])


def test_without_guard_a_non_finite_loss_says_weights_may_hold_nan(small):
    X, y = small
    t = Trainer(
        mlp([64, 16, 10], output="linear", rng=0),
        optimizer="sgd",
        learning_rate=1e6,
        loss="squared_error",
        guard=False,
    )
    with pytest.warns(RuntimeWarning, match="guard=False"):
        t.fit(X * 100, y, epochs=50, batch_size=50)


def test_batchnorm_and_dropout_network_trains_and_updates_statistics(small):
    net = mlp([64, 32, 10], rng=0, dropout=0.2, batch_norm=True)
    t = Trainer(net, optimizer="adam", learning_rate=0.01)
    h = t.fit(*small, epochs=5, batch_size=50)
    bn = net.layers[1]
    assert np.any(bn.mean.get_value() != 0)
    assert h["loss"][-1] < h["loss"][0]


def test_regression_with_squared_error(rng):
    X = rng.uniform(-1, 1, (200, 3)).astype("float32")
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype("float32")
    t = Trainer(
        mlp([3, 1], output="linear", rng=0),
        loss="squared_error",
        optimizer="adam",
        learning_rate=0.05,
    )
    t.fit(X, y, epochs=100, batch_size=50)
    assert t.evaluate(X, y)["loss"] < 1e-3


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"y": np.zeros(5, dtype=int)}, SymnnValueError, "y has 5 labels but X has 300 samples"),
        ({"X": np.zeros((300, 10))}, SymnnValueError, "X has 10 features"),
        ({"batch_size": 0}, SymnnValueError, "batch_size=0"),
        ({"y": np.full(300, 10)}, SymnnValueError, r"labels outside \[0, 10\)"),
        ({"X": np.full((300, 64), np.nan)}, SymnnValueError, "X contains NaN"),
        ({"epochs": -1}, SymnnValueError, "epochs=-1"),
        ({"schedule_every": "minute"}, SymnnValueError, "schedule_every='minute'"),
        ({"validation_split": 1.5}, SymnnValueError, "validation_split=1.5"),
        ({"callbacks": [print]}, SymnnTypeError, "callbacks must be Callback"),
        ({"X": np.array([["a"] * 64] * 300)}, SymnnTypeError, "X must hold numbers"),
    ],
)
def test_bad_fit_arguments_are_named(small, kwargs, error, match):
    X, y = small
    args = {"X": X, "y": y, **kwargs}
    with pytest.raises(error, match=match):
        _trainer().fit(args.pop("X"), args.pop("y"), **args)


def test_bad_trainer_arguments_are_named():
    with pytest.raises(SymnnValueError, match="optimizer='adamw' is not known"):
        Trainer(mlp([2, 2], rng=0), optimizer="adamw")
    with pytest.raises(SymnnValueError, match="loss='hinge' is not known"):
        Trainer(mlp([2, 2], rng=0), loss="hinge")
    with pytest.raises(SymnnValueError, match="learning_rate=-1"):
        Trainer(mlp([2, 2], rng=0), learning_rate=-1)
    with pytest.raises(SymnnTypeError, match="network must be a symnn Layer"):
        Trainer("mlp")


def test_nan_in_loss_history_never_recorded(small):
    t = _trainer()
    h = t.fit(*small, epochs=1, batch_size=100)
    assert all(math.isfinite(v) for v in h.batch_loss)


def test_on_nonfinite_halve_rolls_back_halves_the_rate_and_continues(small):
    X, y = small
    t = Trainer(
        mlp([64, 16, 10], output="linear", rng=0),
        optimizer="sgd",
        learning_rate=1e4,
        loss="squared_error",
    )
    h = t.fit(X * 100, y, epochs=3, batch_size=50, on_nonfinite="halve", max_retries=60)
    assert h.notes and all("halved" in n for n in h.notes)
    # every retry halved the rate once, and only retries changed it
    assert float(t.learning_rate.get_value()) == pytest.approx(1e4 / 2 ** len(h.notes), rel=1e-6)
    assert all(np.all(np.isfinite(v)) for v in t.get_state())
    assert h.stop_reason == "epochs=3 completed" and t.n_updates == 18


def test_compile_train_step_guard_skips_a_non_finite_update():
    import pytensor
    import pytensor.tensor as pt

    from symnn import updates
    from symnn.train import compile_train_step

    x = pt.vector("x", dtype="float64")
    w = pytensor.shared(1.0, name="w")
    loss = pt.mean(pt.log(x) * w)  # log of a negative input: NaN loss and gradient
    step = compile_train_step(
        loss, updates.sgd(loss, [w], 0.1), inputs=[x], guard=True, data=[np.array([2.0, -1.0])]
    )
    step(np.array([0]))
    after_finite = w.get_value()
    assert after_finite != 1.0
    assert np.isnan(float(step(np.array([1]))[0]))
    assert w.get_value() == after_finite  # the NaN update was not applied


@pytest.mark.parametrize("split", [None, 0.25])
def test_nan_in_x_found_mid_epoch_names_the_row_and_keeps_the_weights_from_before_fit(small, split):
    X, y = small
    trainer = _trainer(optimizer="adam")
    trainer.fit(X, y, epochs=1, batch_size=32, progress=False)
    before = trainer.get_state()
    counters = (trainer.n_updates, trainer.n_epochs, len(trainer.history.epochs))
    shuffle_state = trainer.rng.bit_generator.state
    bad = X.copy()
    bad[217, 5] = np.nan  # reached after several updates of the shuffled epoch
    with pytest.raises(SymnnValueError, match=r"X contains NaN or infinity \(row 217\)"):
        trainer.fit(bad, y, epochs=2, batch_size=8, validation_split=split, progress=False)
    for a, b in zip(trainer.get_state(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (trainer.n_updates, trainer.n_epochs, len(trainer.history.epochs)) == counters
    assert trainer.rng.bit_generator.state == shuffle_state
    trainer.fit(X, y, epochs=1, batch_size=32, progress=False)  # and it trains on


@pytest.mark.slow
def test_infinity_in_x_is_found_by_the_step_on_the_real_backend(small):
    X, y = small
    trainer = _trainer(mode="C")
    bad = X.astype("float32")
    bad[3, 0] = -np.inf
    with pytest.raises(SymnnValueError, match=r"row 3\)"):
        trainer.fit(bad, y, epochs=1, batch_size=64, progress=False)


def test_a_batch_larger_than_the_data_is_clipped_with_a_warning(small):
    X, y = small
    t = _trainer()
    with pytest.warns(UserWarning, match="batch_size=100 is larger than the 50 training"):
        h = t.fit(X[:50], y[:50], epochs=2, batch_size=100)
    assert t.n_updates == 2 and len(h.batch_loss) == 2  # one full batch of 50 per epoch


def test_raw_pixels_draw_a_warning_and_scaled_data_none(small):
    import warnings

    X, y = small
    with pytest.warns(UserWarning, match=r"X has values up to 255.*pixels / 255"):
        _trainer().fit(X * 255, y, epochs=1, batch_size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _trainer().fit(X, y, epochs=1, batch_size=100)


def test_one_hot_targets_train_as_their_labels(small):
    X, y = small
    by_label, one_hot = _trainer(), _trainer()
    h1 = by_label.fit(X, y, epochs=2, batch_size=50)
    h2 = one_hot.fit(X, np.eye(10, dtype="float32")[y], epochs=2, batch_size=50)
    assert "accuracy" in h2.metrics  # one-hot targets get accuracy, as labels do
    np.testing.assert_allclose(h2.batch_loss, h1.batch_loss, rtol=1e-6)
    soft = np.full((len(y), 10), 0.1, dtype="float32")  # soft targets stay soft
    assert "accuracy" not in _trainer().fit(X, soft, epochs=1, batch_size=50).metrics


def test_history_and_trainer_print_short(small):
    t = _trainer()
    h = t.fit(*small, epochs=3, batch_size=10)
    assert len(repr(h)) < 300 and repr(h).startswith("History(3 epochs, 90 updates")
    text = repr(t)
    assert "optimizer='adam'" in text and "updates=90" in text and " at 0x" not in text


def test_progress_shows_in_a_notebook_kernel(monkeypatch):
    import types

    from symnn.train.trainer import interactive

    class ZMQInteractiveShell:
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert interactive()
    fake.get_ipython = lambda: None
    assert not interactive()


def test_a_second_trainer_of_the_same_model_reuses_the_compiled_step(small, monkeypatch):
    """The second trainer of an identical model copies the compiled step onto its own shared
    variables: no recompile, the same numbers as a fresh compile, and the two trainers never
    share a variable (weights, optimiser state, batch-norm statistics, dropout generators)."""
    from symnn.train import trainer as trainer_module

    def make(seed):
        net = mlp([64, 16, 10], rng=seed, dropout=0.2, batch_norm=True)
        return Trainer(net, seed=seed, blas_threads=1)

    X, y = small
    first = make(0)
    first.fit(X, y, epochs=1, batch_size=50, progress=False)
    before = first.get_state()
    compiles = []
    real = trainer_module.compile_train_step
    monkeypatch.setattr(
        trainer_module, "compile_train_step", lambda *a, **k: compiles.append(1) or real(*a, **k)
    )
    copied = make(1)
    copied.fit(X, y, epochs=2, batch_size=50, progress=False)
    assert compiles == []  # the step was copied, not compiled
    ((template, placeholders),) = [
        v
        for k, v in trainer_module._TEMPLATES.templates().items()
        if '"dropout": 0.2' in k or "0.2" in k
    ][-1:]
    assert all(len(s.get_value(borrow=True)) == 0 for s in template.storage)  # no data kept
    assert not set(placeholders) & set(first._state_vars() + copied._state_vars())
    for a, b in zip(before, first.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)  # training the copy left the first one alone
    monkeypatch.setattr(
        trainer_module, "_TEMPLATES", trainer_module._StepTemplates(CompiledCache())
    )
    fresh = make(1)
    fresh.fit(X, y, epochs=2, batch_size=50, progress=False)
    assert compiles == [1]
    for a, b in zip(copied.get_state(), fresh.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert copied.history.batch_loss == fresh.history.batch_loss


def test_a_callbacks_stop_is_typed_not_read_from_its_words():
    """A callback's message is a callback's stop whatever its words (one that starts with
    "non-finite" is not taken for the loop's non-finite stop, with its warning); a callback
    may also return a Stop of its own."""
    from symnn.train import LambdaCallback, Stop, StopReason

    X, y = np.random.default_rng(0).random((40, 4)).astype("float32"), np.arange(40) % 2
    words = "non-finite gradients in my own check"
    for answer, kind, message in [
        (words, StopReason.CALLBACK, words),
        (Stop(StopReason.CALLBACK, "enough"), StopReason.CALLBACK, "enough"),
    ]:
        t = Trainer(mlp([4, 3, 2], rng=0), mode="FAST_COMPILE")
        stop_now = LambdaCallback(on_epoch_end=lambda t_, e, logs, a=answer: a)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            h = t.fit(X, y, epochs=5, batch_size=20, callbacks=[stop_now], progress=False)
        assert (h.stopped_by, h.stop_reason, len(h)) == (kind, message, 1)


def test_predict_of_a_regression_network_returns_values_not_classes():
    """A squared-error network's predict is its output (it was thresholded at 0.5)."""
    rng = np.random.default_rng(0)
    X = rng.random((64, 3)).astype("float32")
    y = (X @ np.array([[1.0], [2.0], [-1.0]], dtype="float32")) * 3
    net = mlp([3, 8, 1], output="linear", rng=0)
    trainer = Trainer(net, loss="squared_error", mode="FAST_COMPILE", seed=0)
    trainer.fit(X, y, epochs=2, batch_size=16, progress=False)
    out = trainer.predict(X)
    np.testing.assert_array_equal(out, trainer.predict_proba(X))
    assert out.dtype == np.float32 and len(np.unique(out)) > 2
    clf = Trainer(mlp([3, 4, 2], rng=0), mode="FAST_COMPILE")
    assert clf.predict(X).dtype.kind == "i"
