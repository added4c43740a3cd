import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn import check_grad, init
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.layers import BatchNorm, Dense, Dropout, PReLU, Sequential, get_updates, mlp


def test_dense_computes_activation_of_affine_map(rng):
    layer = Dense(3, 2, activation="tanh", rng=rng)
    x = pt.matrix("x", dtype="float32")
    xv = rng.standard_normal((4, 3)).astype("float32")
    want = np.tanh(xv @ layer.W.get_value() + layer.b.get_value())
    np.testing.assert_allclose(layer(x).eval({x: xv}), want, rtol=1e-5)
    assert layer.W.get_value().shape == (3, 2)


def test_dense_params_order_and_tags():
    layer = Dense(3, 2, rng=0)
    assert layer.params == [layer.W, layer.b]
    assert layer.regularizable_params == [layer.W]
    no_bias = Dense(3, 2, b=None, rng=0)
    assert no_bias.params == [no_bias.W]


def test_dense_accepts_arrays_and_shared_weights():
    w = np.arange(6, dtype="float64").reshape(3, 2)
    layer = Dense(3, 2, W=w, b=np.ones(2), dtype="float64")
    np.testing.assert_array_equal(layer.W.get_value(), w)
    shared = pytensor.shared(np.zeros((3, 2), dtype="float32"))
    assert Dense(3, 2, W=shared).W is shared
    with pytest.raises(SymnnValueError, match=r"W has shape \(2, 3\); expected \(3, 2\)"):
        Dense(3, 2, W=np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_gradient(dtype, rng):
    layer = Dense(4, 3, activation="sigmoid", rng=rng, dtype=dtype)
    x = pt.matrix("x", dtype=dtype)
    cost = pt.sum(layer(x) ** 2)
    err = check_grad(cost, layer.params, givens={x: rng.standard_normal((5, 4))})
    assert err < (1e-2 if dtype == "float32" else 1e-6)


def test_dense_rejects_wrong_width_before_pytensor():
    layer = Dense(784, 10, rng=0)
    with pytest.raises(SymnnValueError, match="expects 784 input features; the input has 64"):
        layer(pt.matrix("x", dtype="float32", shape=(None, 64)))
    with pytest.raises(SymnnTypeError, match="input has dtype int64"):
        layer(pt.lmatrix("x"))
    with pytest.raises(SymnnTypeError, match="must be a symbolic tensor"):
        layer("x")


def test_same_seed_same_network():
    a, b = mlp([5, 4, 3], rng=7), mlp([5, 4, 3], rng=7)
    for va, vb in zip(a.get_values(), b.get_values()):
        np.testing.assert_array_equal(va, vb)
    c = mlp([5, 4, 3], rng=8)
    assert not np.array_equal(a.get_values()[0], c.get_values()[0])


def test_mlp_structure_and_output_is_a_distribution(rng):
    net = mlp([784, 100, 10], hidden="sigmoid", rng=0)
    assert [p.get_value().shape for p in net.params] == [(784, 100), (100,), (100, 10), (10,)]
    x = pt.matrix("x", dtype="float32")
    out = net(x).eval({x: rng.random((3, 784)).astype("float32")})
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_mlp_rejects_bad_sizes():
    with pytest.raises(SymnnValueError, match="at least two positive widths"):
        mlp([784])
    with pytest.raises(SymnnValueError, match="hidden='rectify' is not known"):
        mlp([2, 2], hidden="rectify")


def test_sequential_checks_layer_sizes():
    with pytest.raises(SymnnValueError, match=r"layers\[1\] \(Dense\) expects 5 inputs"):
        Sequential([Dense(3, 4, rng=0), Dense(5, 2, rng=0)])
    with pytest.raises(SymnnTypeError, match=r"layers\[0\] is not a symnn Layer"):
        Sequential([lambda x: x])


def test_get_and_set_values_round_trip_and_validate():
    net = mlp([3, 4, 2], rng=0)
    values = net.get_values()
    net.set_values([np.zeros_like(v) for v in values])
    assert all(np.all(p.get_value() == 0) for p in net.params)
    net.set_values(values)
    np.testing.assert_array_equal(net.params[0].get_value(), values[0])
    with pytest.raises(SymnnValueError, match="values has 3 arrays; expected 4"):
        net.set_values(values[:3])
    bad = [v.copy() for v in values]
    bad[2] = np.zeros((9, 9))
    with pytest.raises(SymnnValueError, match=r"shape \(9, 9\); expected \(4, 2\)"):
        net.set_values(bad)
    np.testing.assert_array_equal(net.params[0].get_value(), values[0])  # nothing written


def test_dropout_masks_in_training_and_is_identity_in_inference():
    x = pt.matrix("x", dtype="float32")
    drop = Dropout(0.25, rng=0)
    y = drop(x)
    f = pytensor.function([x], y, updates=get_updates(y))
    xv = np.ones((200, 50), dtype="float32")
    a, b = f(xv), f(xv)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02
    assert not np.array_equal(a, b)  # the generator state advances
    np.testing.assert_array_equal(drop(x, deterministic=True).eval({x: xv}), xv)


def test_dropout_same_seed_same_masks():
    x = pt.matrix("x", dtype="float32")
    outs = []
    for _ in range(2):
        y = Dropout(0.5, rng=3)(x)
        outs.append(pytensor.function([x], y, updates=get_updates(y))(np.ones((5, 5), "float32")))
    np.testing.assert_array_equal(*outs)


def test_dropout_rejects_bad_probability():
    with pytest.raises(SymnnValueError, match="p=1.0 is not a dropout probability"):
        Dropout(1.0)


def test_batchnorm_training_normalises_and_updates_running_stats(rng):
    bn = BatchNorm(3, momentum=0.5)
    x = pt.matrix("x", dtype="float32")
    y = bn(x)
    f = pytensor.function([x], y, updates=get_updates(y))
    xv = (rng.standard_normal((64, 3)) * 3 + 5).astype("float32")
    out = f(xv)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(bn.mean.get_value(), 0.5 * xv.mean(axis=0), rtol=1e-5)
    assert bn.params == [bn.beta, bn.gamma]
    assert len(bn.get_params()) == 4
    # inference uses the running statistics and records no updates
    z = bn(x, deterministic=True)
    assert get_updates(z) == {}
    # running statistics after one update from mean 0, inv_std 1 with momentum 0.5, by numpy
    mean = 0.5 * xv.astype(np.float64).mean(axis=0)
    inv_std = 0.5 * 1.0 + 0.5 / np.sqrt(xv.astype(np.float64).var(axis=0) + 1e-4)
    np.testing.assert_allclose(bn.inv_std.get_value(), inv_std, rtol=1e-5)
    np.testing.assert_allclose(z.eval({x: xv}), (xv - mean) * inv_std, rtol=1e-4, atol=1e-4)


def test_batchnorm_gradient(rng):
    bn = BatchNorm(2, dtype="float64")
    x = pt.matrix("x", dtype="float64")
    cost = pt.sum(bn(x) ** 3)
    assert check_grad(cost, [bn.gamma, bn.beta, x], [rng.standard_normal((6, 2))]) < 1e-5


def test_mlp_with_batchnorm_and_dropout_collects_state_updates(rng):
    net = mlp([4, 8, 3], rng=0, dropout=0.5, batch_norm=True)
    x = pt.matrix("x", dtype="float32")
    ups = get_updates(net(x))
    assert len(ups) == 3  # running mean, running inv_std, dropout generator
    assert get_updates(net(x, deterministic=True)) == {}


def test_prelu_learns_its_slope(rng):
    layer = PReLU(3, alpha=0.1, dtype="float64")
    x = pt.matrix("x", dtype="float64")
    cost = pt.sum(layer(x) ** 2)
    xv = rng.uniform(0.5, 1.0, (4, 3)) * np.array([-1, 1, -1])
    assert layer.params == [layer.alpha]
    assert check_grad(cost, [layer.alpha, x], [xv]) < 1e-6


def test_layer_repr_is_readable():
    assert repr(Dense(2, 3, "relu", rng=0)) == (
        "Dense(n_in=2, n_out=3, activation='relu', bias=True, name=None)"
    )
    assert "Dense" in repr(mlp([2, 3, 1], rng=0))


def test_initializer_by_name():
    layer = Dense(3, 4, W="he_normal", rng=0)
    assert layer.W.get_value().std() > 0
    assert isinstance(init.get("glorot_uniform"), init.GlorotUniform)
