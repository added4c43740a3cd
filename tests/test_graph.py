"""Networks that are graphs: Input, Graph, merge layers, sub-layers held as attributes."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch
from pytensor.graph.traversal import ancestors

import symnn
from symnn.datasets import load_digits
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.gradcheck import check_grad
from symnn.inputopt import activation_maximization
from symnn.layers import (
    Add,
    Concat,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    Graph,
    Input,
    Layer,
    Maximum,
    Multiply,
    Reshape,
    Sequential,
    register,
)
from symnn.layers.base import calls_of
from symnn.train import Trainer

FAST = "FAST_COMPILE"


def _run(graph, *arrays, deterministic=True):
    xs = [pt.tensor(dtype=a.dtype, shape=(None, *a.shape[1:])) for a in arrays]
    out = graph(xs[0] if len(xs) == 1 else xs, deterministic=deterministic)
    return pytensor.function(xs, out, mode=FAST)(*arrays)


def residual_mlp(rng=0):
    x = Input((8,), name="x")
    h = Dense(8, 8, "relu", rng=rng, name="f")(x)
    h = Dense(8, 8, "linear", rng=rng + 1, name="g")(h)
    s = Add(name="skip")([h, x])
    y = Dense(8, 3, "softmax", rng=rng + 2, name="out")(s)
    return Graph(x, y, name="res")


def inception(rng=0):
    """GoogLeNet's block on 8x8 digits: 1x1, 3x3 and 5x5 branches concatenated on channels."""
    x = Input((64,), name="pixels")
    img = Reshape((1, 8, 8), name="img")(x)
    b1 = Conv2D(1, 4, 1, activation="relu", rng=rng, name="b1")(img)
    b3 = Conv2D(1, 4, 3, pad="same", activation="relu", rng=rng + 1, name="b3")(img)
    b5 = Conv2D(1, 4, 5, pad="same", activation="relu", rng=rng + 2, name="b5")(img)
    cat = Concat(axis=1, name="mixed")([b1, b3, b5])
    pooled = GlobalAvgPool2D(name="gap")(cat)
    return Graph(x, Dense(12, 10, "softmax", rng=rng + 3, name="logits")(pooled))


def dense_block(rng=0):
    """DenseNet's pattern: each layer sees the concatenation of all before it."""
    x = Input((6,), name="x")
    feats = [x]
    for i in range(3):
        inp = feats[0] if len(feats) == 1 else Concat(name=f"cat{i}")(feats)
        feats.append(Dense(6 + 4 * i, 4, "relu", rng=rng + i, name=f"d{i}")(inp))
    return Graph(x, Dense(18, 2, "softmax", rng=rng + 9, name="out")(Concat(name="all")(feats)))


def two_inputs(rng=0):
    a, b = Input((5,), name="a"), Input((3,), name="b")
    ha = Dense(5, 4, "tanh", rng=rng, name="fa")(a)
    hb = Dense(3, 4, "tanh", rng=rng + 1, name="fb")(b)
    y = Dense(4, 2, "linear", rng=rng + 2, name="out")(Multiply(name="gate")([ha, hb]))
    return Graph([a, b], y)


def test_residual_graph_computes_x_plus_f_x():
    net = residual_mlp()
    X = np.random.default_rng(0).random((5, 8)).astype("float32")
    f, g, out = (net.get_layer(n) for n in ("f", "g", "out"))
    h = np.maximum(X @ f.W.get_value() + f.b.get_value(), 0) @ g.W.get_value() + g.b.get_value()
    z = (h + X) @ out.W.get_value() + out.b.get_value()
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(_run(net, X), expected, rtol=1e-5, atol=1e-6)
    assert [p.name for p in net.params] == ["f.W", "f.b", "g.W", "g.b", "out.W", "out.b"]
    assert net.regularizable_params == [f.W, g.W, out.W]
    assert "Add 'skip'   g, x" in net.summary()


def test_two_input_graph_values_and_call_checks():
    net = two_inputs()
    rng = np.random.default_rng(1)
    A, B = rng.random((4, 5)).astype("float32"), rng.random((4, 3)).astype("float32")
    fa, fb, out = (net.get_layer(n) for n in ("fa", "fb", "out"))
    gate = np.tanh(A @ fa.W.get_value() + fa.b.get_value()) * np.tanh(
        B @ fb.W.get_value() + fb.b.get_value()
    )
    expected = gate @ out.W.get_value() + out.b.get_value()
    np.testing.assert_allclose(_run(net, A, B), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(SymnnValueError, match="takes 2 inputs \\(a, b\\) as a list"):
        net(pt.matrix("a"))
    with pytest.raises(SymnnValueError, match="input 'b' takes \\(None, 3\\)"):
        net([pt.matrix("a", dtype="float32", shape=(None, 5)),
             pt.matrix("b", dtype="float32", shape=(None, 4))])  # fmt: skip


def test_graphs_nest_in_graphs_and_sequentials_with_the_same_weights():
    inner = residual_mlp()
    x = Input((8,), name="x")
    outer = Graph(x, Dense(3, 2, "softmax", rng=7, name="head")(inner(x)))
    seq = Sequential([inner, Dense(3, 2, "softmax", rng=7)])
    assert outer.params[:6] == inner.params and seq.params[:6] == inner.params
    X = np.random.default_rng(2).random((3, 8)).astype("float32")
    np.testing.assert_allclose(_run(outer, X), _run(seq, X), rtol=1e-6)
    assert [la.name for la in outer.layers] == ["res", "head"]


@pytest.mark.parametrize("build", [residual_mlp, dense_block, inception, two_inputs])
def test_save_and_load_rebuild_the_same_graph(build, tmp_path):
    net = build()
    again = symnn.load(symnn.save(net, tmp_path / "g.npz"))
    assert isinstance(again, Graph) and again.summary() == net.summary()
    for a, b in zip(net.get_values(), again.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(3)
    arrays = [rng.random((4, *s.shape)).astype("float32") for s in net.input_specs]
    np.testing.assert_array_equal(_run(net, *arrays), _run(again, *arrays))


def test_a_damaged_graph_file_is_refused_before_anything_is_built():
    config = residual_mlp().get_config()
    config["nodes"][1]["inbound"][0] = ["node", 5, None]
    with pytest.raises(SymnnValueError, match="refers to \\['node', 5, None\\], which is no input"):
        Graph.from_config(config)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def trained_inception(digits):
    trainer = Trainer(inception(), optimizer="adam", learning_rate=0.01, seed=0)  # C backend
    trainer.fit(digits.X_train, digits.y_train, epochs=15, batch_size=32, progress=False)
    return trainer


@pytest.mark.slow
def test_an_inception_network_trains_and_resumes_exactly(trained_inception, digits, tmp_path):
    assert trained_inception.evaluate(digits.X_test, digits.y_test)["accuracy"] > 0.6
    X, y = digits.X_train[:256], digits.y_train[:256]
    straight = Trainer(inception(), seed=1)
    straight.fit(X, y, epochs=2, batch_size=32, progress=False)
    first = Trainer(inception(), seed=1)
    first.fit(X, y, epochs=1, batch_size=32, progress=False)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    resumed.fit(X, y, epochs=1, batch_size=32, progress=False)
    for a, b in zip(straight.network.get_values(), resumed.network.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.batch_loss == straight.history.batch_loss


@pytest.mark.slow
def test_activation_maximization_of_a_graph_node_by_name(trained_inception, digits):
    net = trained_inception.network
    classes = activation_maximization(net, [0, 1], steps=30, image_shape=(8, 8))
    assert all(r.probability is not None for r in classes.rows)  # the softmax output
    mixed = activation_maximization(net, [0, 11], layer="mixed", steps=30, image_shape=(8, 8))
    x = pt.matrix("x", dtype="float32", shape=(None, 64))
    mixed_layer = net.get_layer("mixed")
    cat = [v for v in ancestors([net(x, deterministic=True)])
           if any(c.layer is mixed_layer for c in calls_of(v))]  # fmt: skip
    channels = pytensor.function([x], cat[0].mean(axis=(2, 3)))(mixed.x)
    np.testing.assert_allclose(channels[[0, 1], [0, 11]], [r.best for r in mixed.rows], rtol=1e-4)
    branch = activation_maximization(net, [2], layer="b3", steps=10, image_shape=(8, 8))
    assert branch.settings["preactivation"] is True  # a relu convolution: before the relu


def test_merge_layers_match_numpy_and_their_gradients_finite_differences():
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    a, b = pt.matrix("a", dtype="float64"), pt.matrix("b", dtype="float64")
    cases = [
        (Concat(axis=1, name="c"), np.concatenate([A, B], axis=1)),
        (Concat(axis=-1, name="c"), np.concatenate([A, B], axis=1)),
        (Add(), A + B),
        (Add(coeffs=[0.5, -2.0]), 0.5 * A - 2.0 * B),
        (Multiply(), A * B),
        (Maximum(), np.maximum(A, B)),
    ]
    for layer, expected in cases:
        layer.dtype = "float64"
        out = layer([a, b])
        np.testing.assert_allclose(out.eval({a: A, b: B}), expected, rtol=1e-12)
        err = check_grad(pt.sum(out**2), [a, b], [A, B], mode=FAST)
        assert err < 1e-6, (layer, err)


def test_maximum_propagates_nan_as_torch_maximum():
    torch = import_torch()
    A = np.array([[np.nan, 1.0, -np.inf]], dtype="float32")
    B = np.array([[0.0, np.nan, 2.0]], dtype="float32")
    a, b = pt.matrix("a"), pt.matrix("b")
    got = pytensor.function([a, b], Maximum()([a, b]))(A, B)  # the default (C) backend
    want = torch.maximum(torch.from_numpy(A), torch.from_numpy(B)).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


def test_wrong_wiring_is_refused_at_construction_naming_the_nodes():
    x = Input((4,), name="x")
    h = Dense(4, 3, rng=0, name="h")(x)
    with pytest.raises(SymnnValueError, match=r"Add 'sum' inputs differ on axis 1 .*\(3,\), \(4,"):
        Add(name="sum")([h, x])
    with pytest.raises(SymnnValueError, match="axis=3 is not an axis of its 2-axis inputs"):
        Concat(axis=3)([h, x])
    with pytest.raises(SymnnTypeError, match="called on a list of at least two tensors"):
        Add()(h)
    with pytest.raises(SymnnValueError, match="two inputs are named 'x'"):
        Graph([x, Input((2,), name="x")], h)
    with pytest.raises(SymnnValueError, match="PyTensor op .* between layers.*use a merge layer"):
        Graph(x, Dense(3, 2, rng=1)(h * 2))
    other = Input((2,), name="other")
    with pytest.raises(SymnnValueError, match="input 'other' is disconnected"):
        Graph([x, other], h)
    with pytest.raises(SymnnValueError, match="depend on Input 'other' .*, which is not among"):
        Graph(x, Add()([Dense(4, 2, rng=2)(x), other]))
    with pytest.raises(SymnnValueError, match="not an Input nor made by a symnn layer"):
        Graph(x, Add()([h, Dense(3, 3, rng=3)(pt.matrix("raw", dtype="float32", shape=(None, 3)))]))
    with pytest.raises(SymnnTypeError, match="inputs\\[0\\] is not a symnn.layers.Input"):
        Graph(pt.matrix("m"), h)


@register
class TwoDense(Layer):
    """A layer made of layers (a user's block): two Dense layers held as attributes."""

    def __init__(self, n: int, rng=None, name=None):
        super().__init__(name)
        self.n = self.n_in = n
        self.first = Dense(n, n, "relu", rng=rng, name="first")
        self.pair = [Dense(n, n, "linear", rng=None if rng is None else rng + 1)]

    def get_output_for(self, x, *, deterministic=False):
        return self.pair[0](self.first(x)) + x


def test_sub_layers_held_as_attributes_are_tracked(tmp_path, digits):
    block = TwoDense(64, rng=0, name="block")
    net = Sequential([block, Dense(64, 10, "softmax", rng=5)])
    assert [name for name, _ in block.sublayers()] == ["first", "pair.0"]
    table = net.summary()
    assert "  .first Dense" in table and "  .pair.0 Dense" in table, table
    assert "total parameters: 8970" in table  # 2 x (64 x 64 + 64) + 64 x 10 + 10
    assert len(net.params) == 6
    before = block.first.W.get_value().copy()
    trainer = Trainer(net, mode=FAST, seed=0)
    trainer.fit(digits.X_train[:64], digits.y_train[:64], epochs=1, batch_size=32, progress=False)
    assert not np.array_equal(before, block.first.W.get_value())  # the inner weights train
    again = symnn.load(symnn.save(net, tmp_path / "net.npz"))
    for a, b in zip(net.get_values(), again.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)
    X = digits.X_test[:5]
    np.testing.assert_array_equal(_run(net, X), _run(again, X))
    report = activation_maximization(net, [0, 1], layer="block.first", steps=3, mode=FAST)
    assert report.settings["layer"] == "block.first" and report.x.shape == (2, 64)


def test_a_layer_given_to_a_constructor_is_saved_with_it(tmp_path):
    @register
    class Twice(Layer):
        def __init__(self, inner, name=None):
            super().__init__(name)
            self.inner = inner

        def get_output_for(self, x, *, deterministic=False):
            return self.inner(self.inner(x))

    net = Twice(Dense(3, 3, "tanh", rng=0))
    again = symnn.load(symnn.save(net, tmp_path / "twice.npz"))
    assert isinstance(again.inner, Dense)
    np.testing.assert_array_equal(again.inner.W.get_value(), net.inner.W.get_value())


def _torch_resnet(torch, widths=(4, 8)):
    nn = torch.nn

    def conv_bn(cin, cout, k, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                             nn.BatchNorm2d(cout))  # fmt: skip

    class Block(nn.Module):  # torchvision's BasicBlock
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a, self.b = conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1)
            self.down = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

        def forward(self, x):
            h = self.b(torch.relu(self.a(x)))
            return torch.relu(h + (x if self.down is None else self.down(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn(1, widths[0], 3, 1)
            self.blocks = nn.Sequential(Block(widths[0], widths[0], 1),
                                        Block(widths[0], widths[1], 2))  # fmt: skip
            self.fc = nn.Linear(widths[1], 10)

        def forward(self, x):
            h = self.blocks(torch.relu(self.stem(x.view(-1, 1, 12, 12))))
            return torch.softmax(self.fc(h.mean(dim=(2, 3))), dim=1)

    return Net()


def _torch_inception(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = nn.Conv2d(3, 4, 1)
            self.b3r, self.b3 = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 5, 3, padding=1)
            self.b5r, self.b5 = nn.Conv2d(3, 2, 1), nn.Conv2d(2, 3, 5, padding=2)
            self.pool, self.bp = nn.MaxPool2d(3, 1, 1), nn.Conv2d(3, 2, 1)
            self.fc = nn.Linear(14, 10)

        def forward(self, x):
            x = x.view(-1, 3, 8, 8)
            r = torch.relu
            h = torch.cat([r(self.b1(x)), r(self.b3(r(self.b3r(x)))), r(self.b5(r(self.b5r(x)))),
                           r(self.bp(self.pool(x)))], dim=1)  # fmt: skip
            return torch.softmax(self.fc(h.mean(dim=(2, 3))), dim=1)

    return Net()


def _symnn_inception():
    from symnn.layers import inception_block

    x = Input((3 * 8 * 8,), name="pixels")
    h = inception_block(Reshape((3, 8, 8))(x), 3, (4, 3, 5, 2, 3, 2), name="mixed", rng=0)
    return Graph(x, Dense(14, 10, "softmax", rng=1)(GlobalAvgPool2D()(h)))


@pytest.mark.parametrize("which", ["resnet", "inception"])
def test_resnet_and_inception_equal_their_pytorch_twins(which):
    """Weights carried over with load_state_dict by order; outputs equal to 1e-5."""
    torch = import_torch()
    from symnn.io import load_state_dict
    from symnn.layers import resnet

    torch.manual_seed(0)
    if which == "resnet":
        theirs, ours, width = _torch_resnet(torch), resnet((1, 12, 12), 10, (4, 8), rng=0), 144
        for m in theirs.modules():  # running statistics and affine terms that are not 0 and 1
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.5, 0.5)
    else:
        theirs, ours, width = _torch_inception(torch), _symnn_inception(), 192
    theirs.eval()
    report = load_state_dict(ours, {k: v.numpy() for k, v in theirs.state_dict().items()})
    assert not report.missing and not report.unexpected
    X = np.random.default_rng(5).random((6, width)).astype("float32")
    with torch.no_grad():
        want = theirs(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(_run(ours, X), want, atol=1e-5)


@pytest.mark.slow
def test_concat_joins_once_and_no_call_record_leaves_a_copy_in_the_compiled_step():
    """One Join per Concat layer in a compiled training step (its gradient a Split: views),
    and no copy left by the layer-call records (an identity the compiler removes)."""
    from pytensor.scalar.basic import Identity
    from pytensor.tensor.elemwise import Elemwise

    net = inception()
    x = pt.matrix("x", dtype="float32", shape=(None, 64))
    front = Sequential([Dropout(0.5, rng=0), Dense(64, 64, rng=0)])  # dropout off: x itself
    cost = pt.sum(net(front(x, deterministic=True)) ** 2)
    f = pytensor.function([x], [cost, *pytensor.grad(cost, net.params)])  # the default backend
    nodes = f.maker.fgraph.toposort()
    joins = [n for n in nodes if type(n.op).__name__ == "Join" and n.outputs[0].ndim == 4]
    assert len(joins) == 1  # the Concat layer
    assert not [n for n in nodes if isinstance(n.op, Elemwise)
                and isinstance(n.op.scalar_op, Identity)]  # fmt: skip
    copies = [n for n in nodes if type(n.op).__name__ == "DeepCopyOp"]
    assert all(n.outputs[0] in f.maker.fgraph.outputs for n in copies)


def test_a_net_classifier_trains_a_graph_from_its_builder(digits):
    from symnn import NetClassifier

    def residual(n_in, n_out, *, rng, dtype, width=32):
        x = Input((n_in,), name="x", dtype=dtype)
        h = Dense(n_in, width, "relu", rng=rng, dtype=dtype, name="h")(x)
        h = Add(name="skip")([Dense(width, width, "relu", rng=rng, dtype=dtype)(h), h])
        return Graph(x, Dense(width, n_out, rng=rng, dtype=dtype, name="out")(h))  # scores

    clf = NetClassifier(residual, max_iter=40, learning_rate_init=0.01, random_state=0,
                        network__width=16)  # fmt: skip
    clf.fit(digits.X_train, digits.y_train)
    graph = clf.network_.layers[0]  # the classifier adds the softmax after the scores
    assert isinstance(graph, Graph) and graph.get_layer("h").n_out == 16
    assert clf.score(digits.X_test, digits.y_test) > 0.9

    def ends_in_softmax(n_in, n_out, *, rng, dtype):
        x = Input((n_in,), dtype=dtype)
        return Graph(x, Dense(n_in, n_out, "softmax", rng=rng, dtype=dtype)(x))

    with pytest.raises(SymnnValueError, match="ends in a softmax activation; a builder returns"):
        NetClassifier(ends_in_softmax, max_iter=2).fit(digits.X_train, digits.y_train)


@pytest.mark.parametrize("build", [residual_mlp, dense_block, inception, two_inputs, "resnet"])
def test_graphs_export_to_onnx_as_dags(build, tmp_path):
    """Checked with onnx's reference evaluator (and onnxruntime when installed)."""
    from onnx.reference import ReferenceEvaluator

    from symnn.io import to_onnx
    from symnn.layers import resnet

    net = resnet((1, 8, 8), 10, (4, 8), rng=0) if build == "resnet" else build()
    path = to_onnx(net, tmp_path / "g.onnx")
    rng = np.random.default_rng(6)
    arrays = [rng.random((5, *s.shape)).astype("float32") for s in net.input_specs]
    feeds = {s.name: a for s, a in zip(net.input_specs, arrays)}
    (got,) = ReferenceEvaluator(str(path)).run(None, feeds)
    np.testing.assert_allclose(got, _run(net, *arrays), rtol=1e-5, atol=1e-6)
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, feeds)[0], got, rtol=1e-5, atol=1e-6)


def test_a_layer_without_onnx_export_writes_nothing(tmp_path):
    from symnn.io import to_onnx
    from symnn.layers import ChannelShuffle

    x = Input((2, 4, 4), name="img")
    net = Graph(x, ChannelShuffle(2)(x))
    with pytest.raises(SymnnValueError, match="ChannelShuffle has no ONNX export here"):
        to_onnx(net, tmp_path / "g.onnx")
    assert not list(tmp_path.iterdir())


def _two_input_data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    A, B = rng.random((n, 5)).astype("float32"), rng.random((n, 3)).astype("float32")
    y = ((A[:, 0] + B[:, 0]) > 1).astype("int32")  # needs both inputs
    return A, B, y


def test_a_two_input_graph_trains_evaluates_predicts_and_resumes_exactly(tmp_path):
    A, B, y = _two_input_data()
    def make():
        return Trainer(two_inputs(), optimizer="adam", learning_rate=0.02, mode=FAST, seed=3,
                       loss="categorical_crossentropy_from_logits")  # fmt: skip

    straight = make()
    straight.fit([A, B], y, epochs=4, batch_size=32, progress=False)
    first = make()
    first.fit([A, B], y, epochs=2, batch_size=32, progress=False)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    resumed.fit([A, B], y, epochs=2, batch_size=32, progress=False)
    for a, b in zip(straight.get_state(), resumed.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.batch_loss == straight.history.batch_loss
    assert straight.evaluate([A, B], y)["accuracy"] > 0.8
    probs = straight.predict_proba([A[:7], B[:7]])
    np.testing.assert_array_equal(probs, _run(straight.network, A[:7], B[:7]))
    assert straight.predict([A[:7], B[:7]]).shape == (7,)
    history = make().fit([A, B], y, epochs=2, validation_split=0.25, progress=False)
    assert "val_accuracy" in history.epochs[-1]
    with pytest.raises(SymnnTypeError, match=r"X must be a list of 2 arrays, one per input \(a"):
        straight.fit(A, y, epochs=1, progress=False)
    with pytest.raises(SymnnValueError, match="X\\[1\\] \\(input 'b'\\) has per-sample shape"):
        straight.predict_proba([A, np.zeros((240, 4), "float32")])
    with pytest.raises(SymnnValueError, match="rows; expected one length"):
        straight.predict_proba([A, B[:10]])


def test_scipy_trainer_fits_a_two_input_graph():
    from symnn.train import ScipyTrainer

    A, B, y = _two_input_data()
    trainer = ScipyTrainer(two_inputs(), loss="categorical_crossentropy_from_logits", mode=FAST)
    trainer.fit([A, B], y, maxiter=60)
    assert trainer.evaluate([A, B], y)["accuracy"] > 0.8


def two_heads(rng=0):
    """A shared trunk, a 3-class head and a regression head."""
    x = Input((6,), name="x")
    h = Dense(6, 16, "tanh", rng=rng, name="trunk")(x)
    return Graph(x, [Dense(16, 3, "softmax", rng=rng + 1, name="cls")(h),
                     Dense(16, 1, "linear", rng=rng + 2, name="size")(h)])  # fmt: skip


def _two_head_data(n=300):
    X = np.random.default_rng(5).random((n, 6)).astype("float32")
    return X, X[:, :3].argmax(axis=1).astype("int32"), X.sum(axis=1, keepdims=True) - 3


def _two_head_trainer(mode=None, weights=(1.0, 0.5)):
    return Trainer(two_heads(), loss={"cls": "categorical_crossentropy", "size": "squared_error"},
                   loss_weights=list(weights), learning_rate=0.02, mode=mode, seed=1)  # fmt: skip


@pytest.fixture(scope="module")
def two_head_trainer():
    """Trained on the default (C) backend: the numbers below are what users get."""
    X, yc, yv = _two_head_data()
    trainer = _two_head_trainer()
    trainer.fit(X, [yc, yv], epochs=30, batch_size=32, progress=False)
    return trainer


def test_two_outputs_train_each_with_its_loss_and_weight(two_head_trainer):
    X, yc, yv = _two_head_data()
    trainer = two_head_trainer
    scores = trainer.evaluate(X, [yc, yv])
    assert sorted(scores) == ["cls_accuracy", "cls_loss", "loss", "size_loss"]
    probs, values = trainer.predict_proba(X)
    cls_loss = float(np.mean(-np.log(probs[np.arange(len(X)), yc])))
    size_loss = float(np.mean((values - yv) ** 2))
    assert scores["cls_loss"] == pytest.approx(cls_loss, rel=1e-4)
    assert scores["size_loss"] == pytest.approx(size_loss, rel=1e-4)
    assert scores["loss"] == pytest.approx(cls_loss + 0.5 * size_loss, rel=1e-4)
    assert scores["cls_accuracy"] > 0.8 and size_loss < 0.05 * np.var(yv) * 10
    classes, predicted = trainer.predict(X[:9])
    np.testing.assert_array_equal(classes, probs[:9].argmax(axis=1))
    np.testing.assert_array_equal(predicted, values[:9])  # regression: the values
    by_name = trainer.evaluate(X, {"size": yv, "cls": yc})
    assert by_name == scores


def test_a_zero_loss_weight_leaves_its_head_untouched():
    X, yc, yv = _two_head_data(64)
    trainer = _two_head_trainer(FAST, weights=(1.0, 0.0))
    size = trainer.network.get_layer("size")
    before = [p.get_value() for p in size.params]
    trunk = trainer.network.get_layer("trunk").params[0].get_value()
    trainer.fit(X, [yc, yv], epochs=2, batch_size=16, progress=False)
    for a, p in zip(before, size.params, strict=True):
        np.testing.assert_array_equal(a, p.get_value())
    assert not np.array_equal(trunk, trainer.network.get_layer("trunk").params[0].get_value())


def test_two_outputs_resume_exactly_from_a_file(tmp_path):
    X, yc, yv = _two_head_data(96)
    straight = _two_head_trainer(FAST)
    straight.fit(X, [yc, yv], epochs=4, batch_size=32, progress=False)
    first = _two_head_trainer(FAST)
    first.fit(X, [yc, yv], epochs=2, batch_size=32, progress=False)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    assert resumed.loss_name == ["categorical_crossentropy", "squared_error"]
    assert resumed.loss_weights == [1.0, 0.5]
    resumed.fit(X, [yc, yv], epochs=2, batch_size=32, progress=False)
    for a, b in zip(straight.get_state(), resumed.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)
    history = _two_head_trainer(FAST).fit(X, [yc, yv], epochs=1, validation_split=0.25,
                                          progress=False)  # fmt: skip
    assert {"val_loss", "val_cls_accuracy", "val_size_loss"} <= set(history.epochs[-1])


def test_scipy_trainer_fits_two_outputs():
    from symnn.train import ScipyTrainer

    X, yc, yv = _two_head_data()
    trainer = ScipyTrainer(two_heads(), loss=["categorical_crossentropy", "squared_error"],
                           mode=FAST)  # fmt: skip
    trainer.fit(X, [yc, yv], maxiter=150, progress=False)
    scores = trainer.evaluate(X, [yc, yv])
    assert scores["cls_accuracy"] > 0.8 and scores["size_loss"] < 0.1


def test_the_losses_and_targets_of_two_outputs_are_checked_by_name():
    net = two_heads()
    X, yc, yv = _two_head_data(10)
    with pytest.raises(SymnnValueError, match=r"loss has 3 entries; the network has 2 output"):
        Trainer(net, loss=["squared_error"] * 3, mode=FAST)
    with pytest.raises(SymnnValueError, match=r"loss names no output 'sise'; expected one entry"):
        Trainer(net, loss={"cls": "categorical_crossentropy", "sise": "squared_error"})
    with pytest.raises(SymnnValueError, match=r"loss_weights lacks 'size'"):
        Trainer(net, loss_weights={"cls": 1.0})
    with pytest.raises(SymnnValueError, match=r"loss_weights for output 'size' is -1"):
        Trainer(net, loss_weights=[1, -1])
    with pytest.raises(SymnnValueError, match=r"loss for output 'size'='absolute' is not known"):
        Trainer(net, loss=["categorical_crossentropy", "absolute"])
    trainer = Trainer(net, loss=["categorical_crossentropy", "squared_error"], mode=FAST)
    with pytest.raises(SymnnTypeError, match=r"y must be a list of 2 arrays, one per output \(cls"):
        trainer.fit(X, yc, epochs=1, progress=False)
    with pytest.raises(SymnnValueError, match=r"y\[1\] \(output 'size'\) has 9 rows"):
        trainer.evaluate(X, [yc, yv[:9]])
    with pytest.raises(SymnnValueError, match=r"targets='labels' has 1 kinds; expected 2"):
        trainer.compile("labels")


def test_an_estimator_refuses_a_builder_of_two_outputs():
    from symnn.estimator import NetClassifier

    X, yc, _ = _two_head_data(20)
    clf = NetClassifier(lambda n_in, n_out, rng, dtype: two_heads(), max_iter=1)
    with pytest.raises(SymnnValueError, match="returned a Graph of 2 outputs; an estimator"):
        clf.fit(X, yc)
