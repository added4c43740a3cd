"""Objectives as values (symnn.inputopt.objectives): each term against a numpy transcription
of its definition (Lucid's for diversity), gradients against finite differences, the
algebra and its command-line form, a Graph's named nodes, and every wrong argument named."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.gradcheck import check_grad
from symnn.inputopt import maximize
from symnn.inputopt.objectives import (
    Objective,
    channel,
    class_logit,
    deepdream,
    direction,
    diversity,
    neuron,
    parse_objective,
)
from symnn.layers import Conv2D, Dense, Flatten, Graph, Input, MaxPool2D, Reshape, from_arch

FAST = "FAST_COMPILE"
X = np.random.default_rng(0).random((5, 36))


@pytest.fixture(scope="module")
def net():
    return from_arch("conv4x3,pool2,8,3", (6, 6), rng=0, dtype="float64")


@pytest.fixture(scope="module")
def acts(net):
    """The raw outputs of conv0 (n, 4, 4, 4), dense2 (n, 8) and the logits (n, 3)."""
    x = pt.matrix("x", dtype="float64")
    outs = net.get_outputs(x, deterministic=True)
    dense3 = net.layers[-1]
    logits = dense3.preactivation(outs[-2])
    pre = net.layers[1].preactivation(outs[0])
    fn = pytensor.function([x], [outs[1], outs[-2], logits, pre], mode=FAST)
    return dict(zip(["conv0", "dense2", "logits", "conv0_pre"], fn(X)))


def _values(net, objective):
    x = pt.matrix("x", dtype="float64", shape=(None, 36))
    return pytensor.function([x], objective(net, x), mode=FAST)(X)


def lucid_diversity(act):
    """Lucid's diversity (objectives.py) in numpy, channels last: the batch's scalar."""
    n, c = act.shape[:2]
    flat = act.reshape(n, c, -1).transpose(0, 2, 1)  # (n, positions, channels)
    grams = np.einsum("npi,npj->nij", flat, flat)
    grams = grams / np.sqrt(np.maximum((grams**2).sum(axis=(1, 2), keepdims=True), 1e-10))
    return sum((grams[i] * grams[j]).sum() for i in range(n) for j in range(n) if j != i) / n


def test_each_term_equals_its_numpy_definition(net, acts):
    conv, dense, logits = acts["conv0"], acts["dense2"], acts["logits"]
    v = np.array([0.5, -1.0, 2.0, 0.25])
    pre = acts["conv0_pre"]
    cases = {
        channel("conv0", 1, preactivation=False): conv[:, 1].mean(axis=(1, 2)),
        channel("conv0", 1): pre[:, 1].mean(axis=(1, 2)),  # relu: before it by default
        channel("dense2", 3, preactivation=False): dense[:, 3],
        neuron("conv0", 2, preactivation=False): conv[:, 2, 2, 2],
        neuron("conv0", 2, 0, 3, preactivation=True): pre[:, 2, 0, 3],
        neuron("dense2", 5, preactivation=False): dense[:, 5],
        direction("conv0", v): np.einsum("nchw,c->nhw", conv, v).mean(axis=(1, 2)),
        class_logit(2): logits[:, 2],
        deepdream("conv0"): (conv**2).mean(axis=(1, 2, 3)),
        deepdream(1): (conv**2).mean(axis=(1, 2, 3)),  # a position names the same layer
    }
    for objective, want in cases.items():
        got = _values(net, objective)
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=repr(objective))


def test_diversity_rows_add_up_to_lucids_and_compose(net, acts):
    rows = _values(net, diversity("conv0"))
    assert rows.shape == (5,)
    np.testing.assert_allclose(rows.sum(), lucid_diversity(acts["conv0"]), rtol=1e-12)
    both = _values(net, channel("conv0", 1, preactivation=False) - 0.5 * diversity("conv0")
                   + 2 * class_logit(0))  # fmt: skip
    want = acts["conv0"][:, 1].mean(axis=(1, 2)) - 0.5 * rows + 2 * acts["logits"][:, 0]
    np.testing.assert_allclose(both, want, rtol=1e-12)


def test_gradients_equal_finite_differences(net):
    x = pt.matrix("x", dtype="float64", shape=(None, 36))
    objective = direction("conv0", [1.0, -0.5, 0.3, 2.0]) - 3 * diversity("conv0")
    err = check_grad(pt.sum(objective(net, x)), [x], [X], mode=FAST)
    assert err < 1e-6, err


def test_subtracting_diversity_makes_the_starts_differ(net):
    x = pt.matrix("x", dtype="float64", shape=(None, 36))
    similarity = pytensor.function([x], diversity("conv0")(net, x), mode=FAST)
    found = {}
    for weight in (0.0, 5.0):
        objective = channel("conv0", 1) - weight * diversity("conv0")
        result = maximize(objective(net, x), x, n_starts=4, seed=3, steps=150, mode=FAST)
        found[weight] = similarity(result.x).mean()
    assert found[5.0] < found[0.0] - 0.05, found


def test_a_graphs_named_nodes_are_objective_layers():
    x = Input((36,), name="pixels", dtype="float64")
    img = Reshape((1, 6, 6), name="img")(x)
    a = Conv2D(1, 3, 3, activation="relu", rng=0, name="a", dtype="float64")(img)
    pooled = MaxPool2D(2, name="pool")(a)
    out = Dense(12, 2, "softmax", rng=1, name="out", dtype="float64")(Flatten(name="flat")(pooled))
    graph = Graph(x, out)
    xs = pt.matrix("x", dtype="float64", shape=(None, 36))
    values = pytensor.function([xs], channel("pool", 2)(graph, xs), mode=FAST)(X)
    conv = pytensor.function([xs], channel("a", 2)(graph, xs), mode=FAST)(X)
    assert values.shape == (5,) and np.all(values >= conv - 1e-12)  # max pooling >= mean
    with pytest.raises(SymnnValueError, match="'pool', 'flat', 'out'"):
        channel("conv9", 0)(graph, xs)
    with pytest.raises(SymnnValueError, match="channel 3 is out of range; the layer has 3"):
        channel("pool", 3)(graph, xs)


def test_the_algebra_and_its_text():
    objective = channel("conv1", 3) - 0.5 * diversity("conv1")
    assert repr(objective) == "channel('conv1', 3) - 0.5 * diversity('conv1')"
    assert parse_objective("channel:conv1:3 - 0.5*diversity:conv1") == objective
    assert parse_objective("neuron:2:5:0:1+class_logit:7") == neuron(2, 5, 0, 1) + class_logit(7)
    assert parse_objective("-2*deepdream:conv0") == -2 * deepdream("conv0")
    assert sum([channel(1, 0), channel(1, 1)]) == channel(1, 0) + channel(1, 1)
    assert (channel(1, 0) / 4).terms[0][0] == 0.25
    assert repr(-channel(1, 0)) == "-channel(1, 0)"


@pytest.mark.parametrize("make, match", [
    (lambda: channel("conv0", 1) + 1.0, "adds only to an objective"),
    (lambda: channel("conv0", 1) * channel("conv0", 2), "multiplied by a number"),
    (lambda: channel("conv0", 1) * float("nan"), "must be finite"),
    (lambda: channel("conv0", 1) / 0, "divided by 0"),
    (lambda: channel("conv0", -1), "c must be an index >= 0"),
    (lambda: channel(1.5, 0), "layer must be a layer's name or position"),
    (lambda: direction("conv0", [[1.0]]), "vector must be a finite 1-D array"),
    (lambda: parse_objective("channel:conv1"), "channel takes 2 ':'-separated values"),
    (lambda: parse_objective("chanel:conv1:3"), "'chanel' is not an objective"),
    (lambda: parse_objective("channel:conv1:x"), "'x' in 'channel:conv1:x' is not an integer"),
    (lambda: parse_objective("channel:conv1:3 diversity:conv1"), "cannot read it from"),
    (lambda: parse_objective(" "), "non-empty string"),
])  # fmt: skip
def test_bad_objectives_are_refused_by_name(make, match):
    with pytest.raises((SymnnTypeError, SymnnValueError), match=match):
        make()


@pytest.mark.parametrize("objective, match", [
    (channel("conv7", 0), "layer='conv7' is not a layer name; the network's layers are named"),
    (channel("conv0", 4), r"channel\('conv0', 4\): channel 4 is out of range; the layer has 4"),
    (channel(2, 9), r"channel\(2, 9\): channel 9 is out of range"),  # pooling: checked built
    (neuron("conv0", 0, 7, 0), "y 7 is out of range"),
    (neuron("dense2", 0, 1, 1), "y and x name a position of an image layer"),
    (direction("conv0", [1.0, 2.0]), "the vector has 2 values; the layer has 4 channels"),
    (class_logit(3), r"class_logit\(3\): class 3 is out of range; the layer has 3"),
])  # fmt: skip
def test_objectives_that_do_not_fit_the_network_are_refused_before_compiling(net, objective, match):
    x = pt.matrix("x", dtype="float64", shape=(None, 36))
    with pytest.raises(SymnnValueError, match=match):
        objective(net, x)


def test_objective_values_are_the_networks_float_type():
    net32 = from_arch("conv4x3,pool2,8,3", (6, 6), rng=0)
    x = pt.matrix("x", dtype="float32", shape=(None, 36))
    assert (channel("conv0", 0) - 0.5 * diversity("conv0"))(net32, x).dtype == "float32"
    assert isinstance(channel("conv0", 0), Objective)


def test_one_index_per_row_maximises_many_units_in_one_step(net, acts):
    rows = [2, 0, 1, 1, 0]
    got = _values(net, class_logit(rows) + channel("conv0", [3, 2, 1, 0, 3], preactivation=False))
    conv = acts["conv0"][np.arange(5), [3, 2, 1, 0, 3]].mean(axis=(1, 2))
    want = acts["logits"][np.arange(5), rows] + conv
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert (class_logit(range(3)) - diversity("conv0")).rows == 3 and channel(1, 0).rows is None
    with pytest.raises(SymnnValueError, match=r"its terms index \[2, 3\] rows"):
        _ = (class_logit([0, 1]) + channel("conv0", [0, 1, 2])).rows
    with pytest.raises(SymnnValueError, match="channel 4 is out of range"):
        _values(net, channel("conv0", [0, 4, 1, 1, 1]))
    with pytest.raises(SymnnValueError, match="c is an empty sequence"):
        channel("conv0", [])


def test_preactivation_is_named_in_the_text_and_refused_where_there_is_none(net):
    text = "channel('conv0', 1, preactivation=True)"
    assert repr(channel("conv0", 1, preactivation=True)) == text
    assert channel("conv0", 1) != channel("conv0", 1, preactivation=False)
    x = pt.matrix("x", dtype="float64", shape=(None, 36))
    with pytest.raises(SymnnValueError, match="preactivation=True needs a Dense or Conv2D"):
        channel(2, 0, preactivation=True)(net, x)  # the pooling layer
    with pytest.raises(SymnnValueError, match="preactivation='yes'"):
        channel("conv0", 0, preactivation="yes")
