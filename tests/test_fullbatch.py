import numpy as np
import pytest

from symnn.datasets import load_digits
from symnn.errors import SymnnValueError
from symnn.layers import mlp
from symnn.train import Callback
from symnn.train.scipy import ScipyTrainer, pack, unpack


@pytest.fixture(scope="module")
def data():
    d = load_digits(dtype="float64")
    return d.X_train[:200], d.y_train[:200]


@pytest.mark.parametrize("method", ["cg", "l-bfgs-b", "tnc", "bfgs"])
def test_scipy_method_lowers_the_cost(method, data):
    t = ScipyTrainer(mlp([64, 8, 10], hidden="sigmoid", rng=0, dtype="float64"), method=method)
    before = t.evaluate(*data)["loss"]
    h = t.fit(*data, maxiter=40)
    after = t.evaluate(*data)["loss"]
    assert after < 0.5 * before
    assert h.epochs[-1]["loss"] == pytest.approx(after, rel=1e-6)
    assert len(h) > 0


def test_compiled_gradient_matches_finite_differences(data, rng):
    t = ScipyTrainer(mlp([64, 5, 10], hidden="tanh", rng=0, dtype="float64"), l2=0.01)
    theta = pack(t.network.params)
    value, grad = t.loss_and_grad(theta, *data)
    assert grad.dtype == np.float64 and grad.flags.c_contiguous and grad.shape == theta.shape
    for i in rng.choice(theta.size, 20, replace=False):
        e = np.zeros_like(theta)
        e[i] = 1e-6
        numeric = (
            t.loss_and_grad(theta + e, *data)[0] - t.loss_and_grad(theta - e, *data)[0]
        ) / 2e-6
        assert abs(numeric - grad[i]) <= 1e-6 * max(1.0, abs(numeric))


def test_float32_network_gets_float64_at_the_scipy_boundary(data):
    t = ScipyTrainer(mlp([64, 8, 10], rng=0), method="tnc")
    value, grad = t.loss_and_grad(pack(t.network.params), *data)
    assert grad.dtype == np.float64
    t.fit(*data, maxiter=10)
    assert t.network.params[0].get_value().dtype == np.float32


def test_per_minibatch_iterations(data):
    t = ScipyTrainer(mlp([64, 8, 10], rng=0, dtype="float64"), method="cg")
    before = t.evaluate(*data)["loss"]
    h = t.fit(*data, batch_size=50, iterations_per_batch=3, epochs=2)
    assert len(h) == 2 and h.stop_reason == "epochs=2 completed"
    assert h["loss"][-1] < before


def test_callback_stop_keeps_last_accepted_iterate(data):
    class StopAt(Callback):
        def on_batch_end(self, trainer, step, logs):
            self.values = trainer.network.get_values()
            return step == 3

    t = ScipyTrainer(mlp([64, 8, 10], rng=0, dtype="float64"))
    initial = t.network.get_values()
    stop = StopAt()
    h = t.fit(*data, maxiter=50, callbacks=[stop])
    assert h.stop_reason == "a callback stopped training" and t.n_updates == 3
    # the network holds the iterate the callback saw at update 3, not the initial weights
    for now, seen, first in zip(t.network.get_values(), stop.values, initial, strict=True):
        np.testing.assert_array_equal(now, seen)
        assert not np.array_equal(now, first)
    assert t.evaluate(*data)["loss"] == pytest.approx(h.batch_loss[-1], rel=1e-9)


def test_pack_unpack_round_trip():
    net = mlp([3, 4, 2], rng=0)
    theta = pack(net.params)
    assert theta.dtype == np.float64 and theta.size == 3 * 4 + 4 + 4 * 2 + 2
    unpack(net.params, np.zeros_like(theta))
    assert all(np.all(p.get_value() == 0) for p in net.params)
    with pytest.raises(SymnnValueError, match="theta has shape"):
        unpack(net.params, np.zeros(3))


def test_unknown_method_is_named():
    with pytest.raises(SymnnValueError, match="method='newton' is not known"):
        ScipyTrainer(mlp([2, 2], rng=0), method="newton")
