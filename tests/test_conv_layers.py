"""Convolutional layers: values against numpy references, shapes, errors, save/load,
gradients, training and activation maximisation of channels."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from test_conv_ops import reference_conv, reference_pool

import symnn
from symnn.errors import SymnnValueError
from symnn.inputopt import Reference
from symnn.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    Normalize,
    Reshape,
    Sequential,
)


def small_cnn(dtype="float32"):
    return Sequential([
        Normalize(0.5, 0.5),
        Reshape((1, 8, 8)),
        Conv2D(1, 6, 3, pad="same", activation="relu", rng=0, dtype=dtype),
        MaxPool2D(2),
        BatchNorm(6, dtype=dtype),
        Conv2D(6, 4, (2, 3), stride=(1, 2), pad=(1, 0), dilation=(1, 1), rng=1, dtype=dtype),
        AvgPool2D(2, include_pad=False, ignore_border=False),
        Dropout(0.3, rng=2, dtype=dtype),
        Flatten(),
        Dense(4 * 3 * 1, 10, "softmax", rng=3, dtype=dtype),
    ])  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3),
        dict(kernel_size=(3, 2), stride=2, pad=1),
        dict(kernel_size=3, pad="same", dilation=2),
        dict(kernel_size=3, pad="full", flip_filters=True),
        dict(kernel_size=1),
    ],
)
def test_conv2d_matches_a_direct_convolution(kw, dtype):
    rng = np.random.default_rng(0)
    layer = Conv2D(3, 5, rng=0, dtype=dtype, activation="tanh", b=rng.normal(size=5), **kw)
    x = pt.tensor4("x", dtype=dtype)
    X = rng.normal(size=(2, 3, 9, 8))
    got = pytensor.function([x], layer(x))(X.astype(dtype))
    W = layer.W.get_value().astype(np.float64)
    if kw.get("flip_filters"):
        W = W[:, :, ::-1, ::-1]
    want = reference_conv(X, W, layer.stride, layer._pad, layer.dilation)
    want = np.tanh(want + layer.b.get_value()[None, :, None, None])
    assert got.shape == (2, 5, *layer.output_shape((3, 9, 8))[1:])
    np.testing.assert_allclose(got, want, atol=1e-5 if dtype == "float32" else 1e-12)
    if kw.get("pad") == "same":
        assert got.shape[2:] == X.shape[2:]


def test_pool_layers_match_numpy():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 3, 7, 7))
    x = pt.tensor4("x", dtype="float64")
    cases = [
        (MaxPool2D(2), ((2, 2), (2, 2), (0, 0), "max", True)),
        (MaxPool2D(3, 2, 1), ((3, 3), (2, 2), (1, 1), "max", True)),
        (AvgPool2D(2, ignore_border=False), ((2, 2), (2, 2), (0, 0), "average_inc_pad", False)),
        (AvgPool2D(3, 2, 1, include_pad=False), ((3, 3), (2, 2), (1, 1), "average_exc_pad", True)),
    ]
    for layer, args in cases:
        got = pytensor.function([x], layer(x))(X)
        np.testing.assert_allclose(got, reference_pool(X, *args), atol=1e-12)
        assert got.shape[1:] == layer.output_shape((3, 7, 7))
    got = pytensor.function([x], GlobalAvgPool2D()(x))(X)
    np.testing.assert_allclose(got, X.mean(axis=(2, 3)))


def test_normalize_per_channel_and_flatten_in_c_order():
    X = np.arange(2 * 3 * 2 * 2, dtype="float32").reshape(2, 3, 2, 2)
    x = pt.tensor4("x", dtype="float32")
    out = Flatten()(Normalize([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])(x))
    got = pytensor.function([x], out)(X)
    mean = np.array([1.0, 2.0, 3.0])[None, :, None, None]
    std = np.array([1.0, 2.0, 4.0])[None, :, None, None]
    np.testing.assert_allclose(got, ((X - mean) / std).reshape(2, -1), rtol=1e-6)


def test_batchnorm_on_images_uses_per_channel_statistics():
    bn = BatchNorm(3, dtype="float64")
    x = pt.tensor4("x", dtype="float64")
    X = np.random.default_rng(2).normal(loc=[[[[1.0]], [[5.0]], [[-2.0]]]], size=(4, 3, 5, 5))
    got = pytensor.function([x], bn(x), mode="FAST_COMPILE")(X)
    mean = X.mean(axis=(0, 2, 3), keepdims=True)
    std = np.sqrt(X.var(axis=(0, 2, 3), keepdims=True) + bn.epsilon)
    np.testing.assert_allclose(got, (X - mean) / std, atol=1e-10)


def test_shapes_are_tracked_and_a_mismatch_is_named_at_construction():
    net = small_cnn()
    assert net.n_in == 64 and net.n_out == 10
    assert net.output_shapes[2] == (6, 8, 8) and net.output_shapes[5] == (4, 5, 1)
    text = net.summary()
    assert "Conv2D" in text and "(6, 8, 8)" in text and "total parameters" in text
    with pytest.raises(SymnnValueError, match=r"layers\[2\] \(Dense\).*put Flatten\(\) before it"):
        Sequential([Reshape((1, 8, 8)), Conv2D(1, 2, 3), Dense(72, 10)])
    with pytest.raises(SymnnValueError, match=r"layers\[1\] \(Conv2D\) expects 3 channels"):
        Sequential([Reshape((1, 8, 8)), Conv2D(3, 2, 3)])
    with pytest.raises(SymnnValueError, match=r"layers\[1\] \(Conv2D\) takes images"):
        Sequential([Dense(4, 4), Conv2D(1, 2, 3)])
    with pytest.raises(SymnnValueError, match="does not fit"):
        Sequential([Reshape((1, 4, 4)), Conv2D(1, 2, 5)])
    with pytest.raises(SymnnValueError, match="pad='same' needs an odd kernel"):
        Conv2D(1, 2, 2, pad="same")
    with pytest.raises(SymnnValueError, match="pad='half' is not known"):
        Conv2D(1, 2, 3, pad="half")


def test_every_new_layer_saves_and_loads(tmp_path):
    net = small_cnn("float64")
    x = pt.matrix("x", dtype="float64")
    X = np.random.default_rng(3).uniform(size=(5, 64))
    before = pytensor.function([x], net(x, deterministic=True), mode="FAST_COMPILE")(X)
    path = symnn.save(net, tmp_path / "cnn.npz")
    loaded = symnn.load(path)
    after = pytensor.function([x], loaded(x, deterministic=True), mode="FAST_COMPILE")(X)
    np.testing.assert_array_equal(before, after)
    assert [type(la) for la in loaded.layers] == [type(la) for la in net.layers]
    assert loaded.layers[5].get_config() == net.layers[5].get_config()


def test_gradient_of_a_small_cnn_matches_finite_differences():
    net = small_cnn("float64")
    x = pt.matrix("x", dtype="float64")
    y = pt.lvector("y")
    probs = net(x, deterministic=True)
    cost = -pt.mean(pt.log(probs[pt.arange(y.shape[0]), y]))
    rng = np.random.default_rng(4)
    X, Y = rng.uniform(size=(3, 64)), np.array([1, 4, 7])
    assert symnn.check_grad(cost, [*net.params, x], [X], givens={y: Y}) < 1e-5


@pytest.mark.slow  # the C backend
def test_a_cnn_trains_and_its_channels_are_maximised_on_the_default_backend(users_backend):
    from pytensor.tensor.random.op import RandomVariable

    from symnn.backend import python_nodes
    from symnn.datasets import load_digits
    from symnn.inputopt import activation_maximization
    from symnn.train import Trainer

    data = load_digits(seed=0)
    net = small_cnn()
    trainer = Trainer(net, optimizer="adam", learning_rate=0.01, seed=0)
    trainer.fit(data.X_train, data.y_train, epochs=8, batch_size=32, progress=False)
    assert trainer.evaluate(data.X_test, data.y_test)["accuracy"] > 0.85
    # im2col, pooling and the GEMMs run in C; the dropout mask is PyTensor's random variable
    slow = python_nodes(trainer._compiled.step.fn)
    assert [n for n in slow if not isinstance(n.op, RandomVariable)] == []
    report = activation_maximization(
        net,
        range(6),
        layer=2,
        image_shape=(8, 8),
        steps=60,
        reference=Reference(data.X_train, top_k=3),
    )
    assert all(r.exceeds_reference for r in report.rows)
    assert report.settings["spatial"] is None
    centre = activation_maximization(net, [0, 1], layer=2, spatial="center", steps=30)
    assert centre.rows[0].best > 0
    with pytest.raises(SymnnValueError, match="spatial='center' has no effect"):
        activation_maximization(net, [0], layer=-1, spatial="center", steps=1)



#: pooling layers whose windows tile, overlap, reach into padding or past the image
RELU_POOLS = [
    dict(pool_size=2),
    dict(pool_size=3, stride=2, pad=1),
    dict(pool_size=2, ignore_border=False),
    dict(pool_size=2, ceil_mode=True),
]


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "C", "NUMBA"])
def test_max_pooling_of_a_relu_pools_first_with_the_same_values_and_gradients(mode, rng):
    """``MaxPool2D`` on ``relu(z)`` computes ``relu(pool(z))``: equal values and gradients to
    pooling the rectified values (the unfused graph), with NaN, infinities, zeros, -0.0,
    windows of negatives only and ties at zero."""
    from pytensor.graph.traversal import ancestors

    from symnn.layers.conv import _Pool
    from symnn.nonlinearities import relu, relu_input

    z = pt.tensor4("z", dtype="float64", shape=(None, 3, 7, 7))
    g = pt.tensor4("g", dtype="float64")
    outs = []
    for kw in RELU_POOLS:
        layer = MaxPool2D(**kw)
        fused, plain = layer(relu(z)), _Pool.get_output_for(layer, relu(z))
        assert relu_input(fused) is not None  # the rectifier comes last ...
        assert not any(relu_input(v) is z for v in ancestors([fused]))  # ... and only there
        for out in (fused, plain):
            outs += [out, pytensor.grad((out * g[:, :, : out.shape[2], : out.shape[3]]).sum(), z)]
    zv = rng.integers(-2, 3, (2, 3, 7, 7)).astype("float64")
    zv[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    zv[0, 1, :3, :3] = -1.0  # a window of negatives only
    zv[1, 2, 4:, 4:] = np.nan
    gv = rng.standard_normal((2, 3, 8, 8))
    got = symnn.function([z, g], outs, mode=mode)(zv, gv)
    for k, kw in enumerate(RELU_POOLS):
        fused_out, fused_grad, plain_out, plain_grad = got[4 * k : 4 * k + 4]
        np.testing.assert_array_equal(fused_out, plain_out, err_msg=str(kw))
        np.testing.assert_array_equal(fused_grad, plain_grad, err_msg=str(kw))
    assert np.isnan(got[0]).any() and (got[1] != 0).any()
