import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.backend.cache import COMPILED
from symnn.datasets import load_digits
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.inputopt import (
    InputPenalties,
    Reference,
    activation_maximization,
    evaluate_objective,
    exhaustive_binary_maximum,
    maximize,
    round_to_binary,
)
from symnn.layers import Dense, Sequential, mlp
from symnn.train import Trainer

PATTERNS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")


@pytest.fixture(scope="module")
def seed004():
    """Seed 004's toy: a 2-3-1 sigmoid network trained so that only [0, 1] -> 1."""
    net = mlp([2, 3, 1], hidden="sigmoid", output="sigmoid", rng=1)
    targets = np.array([0, 1, 0, 0], dtype="float32")
    trainer = Trainer(net, loss="squared_error", optimizer="adam", learning_rate=0.1)
    trainer.fit(PATTERNS, targets, epochs=1500, batch_size=4)
    x = pt.matrix("x", dtype="float32", shape=(None, 2))
    return net, x, net(x, deterministic=True)[:, 0]


def test_seed004_network_learned_the_patterns(seed004):
    net, x, objective = seed004
    out = evaluate_objective(objective, x, PATTERNS)
    assert out[1] > 0.9 and np.all(out[[0, 2, 3]] < 0.1)


@pytest.mark.parametrize(
    "method, learning_rate, steps",
    # the sigmoid network is flat far from [0, 1]: plain gradient steps must be large there
    [
        ("gradient", 20.0, 1000),
        ("normalized", 0.05, 500),
        ("momentum", 2.0, 1000),
        ("adam", 0.05, 500),
        ("l-bfgs-b", None, 500),
        ("tnc", None, 500),
    ],
)
def test_seed004_ascent_converges_to_0_1_inside_the_box(seed004, method, learning_rate, steps):
    net, x, objective = seed004
    result = maximize(
        objective, x, n_starts=8, seed=0, steps=steps, learning_rate=learning_rate, method=method
    )
    assert np.all(result.x >= 0) and np.all(result.x <= 1)
    np.testing.assert_allclose(result.x, np.tile([0.0, 1.0], (8, 1)), atol=1e-3)
    at_01 = evaluate_objective(objective, x, np.array([[0.0, 1.0]]))[0]
    assert np.all(result.value >= at_01 - 1e-6)
    assert np.all(result.at_bounds == 1.0)


def test_seed004_unconstrained_ascent_leaves_the_unit_box(seed004):
    """What seed 004 saw: without the projection onto [0, 1] the input drifts out."""
    net, x, objective = seed004
    result = maximize(
        objective, x, x0=np.array([[0.5, 0.5]]), bounds=(-50, 50), steps=500, learning_rate=0.5
    )
    assert result.x.min() < 0 or result.x.max() > 1


def test_seed004_exhaustive_and_rounding_agree(seed004):
    net, x, objective = seed004
    best = exhaustive_binary_maximum(objective, x)
    np.testing.assert_array_equal(best.x, [0.0, 1.0])
    assert best.values.shape == (4,)
    xb, values = round_to_binary(objective, x, np.array([[0.1, 0.8], [0.7, 0.2]]))
    np.testing.assert_array_equal(xb, [[0, 1], [1, 0]])
    assert values[0] == pytest.approx(best.value)


@pytest.fixture(scope="module")
def digits_net():
    data = load_digits()
    trainer = Trainer(mlp([64, 100, 10], rng=0), optimizer="adam", learning_rate=1e-3)
    trainer.fit(data.X_train, data.y_train, epochs=30, batch_size=32)
    assert trainer.evaluate(data.X_test, data.y_test)["accuracy"] > 0.95
    return trainer, data


def test_ten_class_units_in_one_call_end_as_their_class(digits_net):
    trainer, data = digits_net
    report = activation_maximization(
        trainer.network,
        range(10),
        steps=200,
        learning_rate=0.05,
        image_shape=(8, 8),
        reference=data.X_train,
        prior=None,  # plain activation maximisation: the objective is the activation
    )
    assert report.x.shape == (10, 64)
    assert np.all(report.x >= 0) and np.all(report.x <= 1)
    np.testing.assert_array_equal(trainer.predict(report.x), np.arange(10))
    probs = trainer.predict_proba(report.x)[np.arange(10), np.arange(10)]
    assert np.all(probs >= 0.99)
    for row in report.rows:
        assert row["probability"] >= 0.99 and row["exceeds_reference"]
        assert row["best"] >= row["final"] - 1e-4
    table = report.to_table()
    assert "p(class)" in table and len(table.splitlines()) == 11
    assert report.to_json()["units"][3]["unit"] == 3


def test_second_call_reuses_the_compiled_step(digits_net):
    trainer, _ = digits_net
    activation_maximization(trainer.network, [1, 2], steps=5)
    before = len(COMPILED)  # graphs and ascent functions
    report = activation_maximization(
        trainer.network, [4, 5, 6], steps=7, learning_rate=0.01, seed=3
    )
    after = len(COMPILED)
    assert after == before and report.result.n_steps == 7


def test_regularisers_change_the_result(digits_net):
    trainer, _ = digits_net
    net = trainer.network
    plain = activation_maximization(net, [0], steps=100, image_shape=(8, 8))
    smooth = activation_maximization(
        net,
        [0],
        steps=100,
        image_shape=(8, 8),
        penalties=InputPenalties(tv=1.0, l2=0.5, blur_every=10, jitter=1),
    )

    def tv(img):
        return np.abs(np.diff(img, axis=0)).sum() + np.abs(np.diff(img, axis=1)).sum()

    assert tv(smooth.images()[0]) < tv(plain.images()[0])
    two = activation_maximization(
        net, [0], n_starts=2, steps=50, seed=1, penalties=InputPenalties(diversity=5.0)
    )
    assert not np.allclose(two.x[0], two.x[1])


def test_hidden_units_and_probability(digits_net):
    trainer, _ = digits_net
    report = activation_maximization(trainer.network, "0-4", layer=0, steps=50)
    assert len(report.rows) == 5 and report.rows[0]["probability"] is None
    prob = activation_maximization(trainer.network, [7], probability=True, steps=50)
    assert prob.rows[0]["best"] > 0.9


def test_projected_methods_and_lbfgsb_agree_on_a_known_box_optimum():
    x = pt.matrix("x", dtype="float64", shape=(None, 3))
    target = np.array([0.25, 1.7, -0.4])  # the box optimum is [0.25, 1, 0]
    objective = -pt.sum((x - target) ** 2, axis=1) + 0.1 * pt.sum(pt.sin(x), axis=1)
    # stationary point of -(x - t)^2 + 0.1 sin(x) in the first coordinate, by bisection
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if -2 * (mid - 0.25) + 0.1 * np.cos(mid) > 0 else (lo, mid)
    want = np.array([lo, 1.0, 0.0])
    for method, lr in [
        ("gradient", 0.1),
        ("normalized", 0.01),
        ("momentum", 0.05),
        ("adam", 0.02),
        ("l-bfgs-b", None),
        ("tnc", None),
    ]:
        r = maximize(objective, x, n_starts=4, steps=1000, learning_rate=lr, method=method)
        np.testing.assert_allclose(r.x, np.tile(want, (4, 1)), atol=2e-3, err_msg=method)


@pytest.mark.parametrize("steps", [20, 33, 100])  # best steps in 1st, 2nd, 4th snapshot
def test_best_iterate_is_returned_when_the_ascent_oscillates(steps):
    """Momentum with a large step overshoots; x must be the best iterate, found by replay."""
    x = pt.matrix("x", dtype="float64", shape=(None, 3))
    objective = -pt.sum((x - np.array([0.3, 0.6, 0.5])) ** 2, axis=1)
    r = maximize(
        objective, x, n_starts=5, seed=2, steps=steps, learning_rate=0.9, method="momentum"
    )
    best = r.history.max(axis=0)
    final_is_best = r.value > best
    assert not final_is_best.all()  # the run does oscillate
    np.testing.assert_allclose(r.value[~final_is_best], best[~final_is_best], rtol=0, atol=1e-12)
    np.testing.assert_allclose(evaluate_objective(objective, x, r.x), r.value, atol=1e-12)
    assert np.all((r.x >= 0) & (r.x <= 1))


def test_keep_last_returns_the_last_iterate_without_replaying():
    x = pt.matrix("x", dtype="float64", shape=(None, 3))
    objective = -pt.sum((x - np.array([0.3, 0.6, 0.5])) ** 2, axis=1)
    opts = dict(n_starts=5, seed=2, steps=33, learning_rate=0.9, method="momentum")
    best = maximize(objective, x, **opts)
    last = maximize(objective, x, keep="last", **opts)
    assert not np.array_equal(best.x, last.x)  # the run oscillates: best is not last
    np.testing.assert_array_equal(last.x, best.x_last)  # the same ascent, its last iterate
    np.testing.assert_allclose(evaluate_objective(objective, x, last.x), last.value, atol=1e-12)
    with pytest.raises(SymnnValueError, match="keep"):
        maximize(objective, x, keep="first")
    with pytest.raises(SymnnValueError, match="keep='last' has no effect with method='tnc'"):
        maximize(objective, x, keep="last", method="tnc")


def test_tol_stops_early_and_none_runs_every_step():
    x = pt.matrix("x", dtype="float64", shape=(None, 2))
    objective = -pt.sum((x - 0.5) ** 2, axis=1)
    r = maximize(objective, x, n_starts=2, steps=500, tol=1e-10)
    assert r.n_steps < 500 and "tol" in r.stop_reason
    r = maximize(objective, x, n_starts=2, steps=50)
    assert r.n_steps == 50 and r.history.shape == (50, 2)


def test_bounds_per_coordinate():
    x = pt.matrix("x", dtype="float64", shape=(None, 2))
    r = maximize(pt.sum(x, axis=1), x, bounds=([0, -1], [2, 3]), steps=100)
    np.testing.assert_allclose(r.x, [[2, 3]])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bounds": (1.0, 0.0)}, SymnnValueError, "lo >= hi"),
        ({"x0": np.array([[0.5, 1.5]])}, SymnnValueError, "outside the bounds"),
        ({"x0": np.array([[0.5, 0.5, 0.5]])}, SymnnValueError, "x0 has 3 columns"),
        ({"x0": np.array([[np.nan, 0.5]])}, SymnnValueError, "x0 contains NaN"),
        ({"method": "newton"}, SymnnValueError, "method='newton' is not known"),
        ({"steps": 0}, SymnnValueError, "steps=0"),
        ({"learning_rate": -1.0}, SymnnValueError, "learning_rate=-1.0"),
        ({"bounds": 5}, SymnnTypeError, "bounds must be a pair"),
    ],
)
def test_bad_maximize_arguments_are_named(kwargs, error, match):
    x = pt.matrix("x", dtype="float64", shape=(None, 2))
    with pytest.raises(error, match=match):
        maximize(pt.sum(x, axis=1), x, **kwargs)


def test_bad_objectives_are_named():
    x = pt.matrix("x", dtype="float64", shape=(None, 2))
    w = pytensor.shared(np.ones(2))
    with pytest.raises(SymnnValueError, match="does not depend on x"):
        maximize(pt.stack([pt.sum(w)]), x)
    with pytest.raises(SymnnValueError, match="one value per row"):
        maximize(pt.sum(x), x)
    with pytest.raises(SymnnValueError, match="no static width"):
        y = pt.matrix("y", dtype="float64")
        maximize(pt.sum(y, axis=1), y)
    with pytest.raises(SymnnTypeError, match="x must be a symbolic input matrix"):
        maximize(pt.sum(x, axis=1), w)


def test_bad_activation_maximization_arguments(digits_net):
    net = digits_net[0].network
    with pytest.raises(SymnnValueError, match="index 10 out of range"):
        activation_maximization(net, [3, 10])
    with pytest.raises(SymnnValueError, match="layer=5 is out of range"):
        activation_maximization(net, [0], layer=5)
    with pytest.raises(SymnnValueError, match="tv=1.0 needs an image"):
        activation_maximization(net, [0], penalties=InputPenalties(tv=1.0))
    with pytest.raises(SymnnValueError, match="image_shape=\\(7, 7\\) has 49 pixels"):
        activation_maximization(net, [0], image_shape=(7, 7))


@pytest.mark.parametrize("n", [1, 2])
def test_a_fixed_blas_thread_count_runs_every_ascent_step(n):
    from symnn.backend.threads import blas_controller

    lib = blas_controller()
    if lib is None:
        pytest.skip("symnn's BLAS is not under threadpoolctl's control")
    before = lib.get_num_threads()
    seen = set()

    def record(inputs):
        seen.add(lib.get_num_threads())
        return inputs

    x = pt.matrix("x", dtype="float64", shape=(None, 2))
    runs = [
        maximize(
            pt.sum(pt.sin(3 * x), axis=1),
            x,
            n_starts=3,
            steps=30,
            every=(1, record),
            blas_threads=n,
            mode="FAST_COMPILE",
        )
        for _ in range(2)
    ]
    assert seen == {n}
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert lib.get_num_threads() == before


def test_rectifier_units_are_maximised_by_preactivation_and_stuck_rows_are_marked():
    """A ReLU unit that is off at every start gets no gradient: by default hidden rectifier
    layers are maximised before the nonlinearity, so every unit moves; forced through the
    nonlinearity, a unit that is off everywhere is marked and warned about."""
    import warnings

    net = mlp([4, 3, 2], hidden="relu", rng=0)
    b = net.layers[0].b.get_value()
    b[0] = -100.0  # unit 0 of the hidden layer is off for every input in [0, 1]
    net.layers[0].b.set_value(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = activation_maximization(net, "all", layer="dense0", steps=20)
    assert report.settings["preactivation"] is True
    assert all(r.moved for r in report.rows)
    with pytest.warns(RuntimeWarning, match=r"unit\(s\) \[0\] never changed"):
        forced = activation_maximization(net, "all", layer=0, steps=20, preactivation=False)
    assert [r.moved for r in forced.rows] == [False, True, True]
    assert forced.to_json()["units"][0]["moved"] is False


def test_layers_are_named_or_counted_with_every_layer():
    net = mlp([4, 3, 2], hidden="relu", rng=0, dropout=0.5)  # dense0, dropout0, dense1
    by_name = activation_maximization(net, [1], layer="dense1", steps=5)
    by_index = activation_maximization(net, [1], layer=2, steps=5)
    np.testing.assert_array_equal(by_name.x, by_index.x)
    with pytest.raises(SymnnValueError, match="'hidden' is not a layer name.*'dropout0'"):
        activation_maximization(net, [0], layer="hidden")


def test_report_gives_dataset_examples_and_realism_figures(digits_net):
    from symnn.inputopt.realism import _nearest_distances, _pearson

    trainer, data = digits_net
    ref = data.X_train[:400]
    report = activation_maximization(
        trainer.network, [3, 7], steps=30, image_shape=(8, 8), reference=Reference(ref, top_k=4)
    )
    w0, b0, w1, b1 = (v.astype(np.float64) for v in trainer.network.get_values())
    acts = np.maximum(ref @ w0 + b0, 0) @ w1 + b1  # the class logits, by numpy
    for row, x in zip(report.rows, report.x):
        want = np.argsort(-np.asarray(acts)[:, row.unit], kind="stable")[:4]
        assert row.top_examples == want.tolist()  # the unit's strongest real inputs
        mean = ref[want].astype(np.float64).mean(axis=0)
        assert row.top_corr == pytest.approx(np.corrcoef(x, mean)[0, 1], abs=1e-9)
        assert row.nn_ratio > 0
    assert "top corr" in report.to_table() and "nn ratio" in report.to_table()
    assert report.to_json()["units"][0]["top_examples"] == report.rows[0].top_examples
    # the helpers against numpy: a row of the reference is at distance 0 from it
    d = _nearest_distances(ref[:3].astype(np.float64), ref.astype(np.float64))
    np.testing.assert_allclose(d, 0, atol=1e-6)
    assert _pearson(np.arange(5.0), 2 * np.arange(5.0) + 1) == pytest.approx(1.0)


@pytest.mark.parametrize("image_shape", [(5, 7), (4, 6, 3)])
@pytest.mark.parametrize("compiled", ["FAST_COMPILE", "C"])
def test_jitter_shifts_every_row_by_its_own_amount(image_shape, compiled):
    from symnn.backend import python_nodes, resolve_mode
    from symnn.inputopt.objective import _shift_rows

    mode = resolve_mode(compiled) if compiled == "C" else compiled
    n, d = 4, int(np.prod(image_shape))
    x = pt.matrix("x", dtype="float64", shape=(None, d))
    shift = pt.lmatrix("shift")
    g = pt.matrix("g", dtype="float64")
    out = _shift_rows(x, shift, image_shape)
    grad = pytensor.grad(pt.sum(out * g), x)
    fn = pytensor.function([x, shift, g], [out, grad], mode=mode)
    if compiled == "C":
        assert python_nodes(fn) == []
    rng = np.random.default_rng(0)
    X, G = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    shifts = np.array([[0, 0], [1, -2], [-3, 5], [7, 1]])
    got, got_grad = fn(X, shifts, G)
    for k in range(n):
        img = X[k].reshape(image_shape)
        want = np.roll(img, tuple(shifts[k]), axis=(0, 1)).reshape(-1)
        np.testing.assert_array_equal(got[k], want)
        back = np.roll(G[k].reshape(image_shape), tuple(-shifts[k]), axis=(0, 1)).reshape(-1)
        np.testing.assert_allclose(got_grad[k], back)


def test_facet_starts_are_kmeans_centres_of_the_units_top_inputs(digits_net):
    from sklearn.cluster import KMeans

    from symnn.inputopt.starts import FACET_POOL
    from symnn.utils import as_rng

    trainer, data = digits_net
    ref = data.X_train[:500]
    report = activation_maximization(
        trainer.network, [2, 5], n_starts=3, steps=1, learning_rate=1e-9, x0="facets",
        reference=ref, image_shape=(8, 8), prior=None, seed=3,
    )  # fmt: skip
    starts = report.x  # one tiny step: still the starts (to float32 rounding)
    w0, b0, w1, b1 = (v.astype(np.float64) for v in trainer.network.get_values())
    acts = np.maximum(ref @ w0 + b0, 0) @ w1 + b1
    for i, unit in enumerate([2, 5]):
        top = np.argsort(-acts[:, unit], kind="stable")[: FACET_POOL * 3]
        state = int(as_rng(3).integers(2**31 - 1))  # the k-means seed drawn from seed=3
        km = KMeans(n_clusters=3, n_init=3, random_state=state).fit(ref[top])
        strength = [acts[top][km.labels_ == c, unit].mean() for c in range(3)]
        want = km.cluster_centers_[np.argsort(strength)[::-1]]  # strongest facet first
        np.testing.assert_allclose(starts[3 * i : 3 * i + 3], want, atol=1e-6)
        assert [r.unit for r in report.rows[3 * i : 3 * i + 3]] == [unit] * 3
    with pytest.raises(SymnnValueError, match="x0='facets' needs reference inputs"):
        activation_maximization(trainer.network, [2], x0="facets", steps=1)
    with pytest.raises(SymnnValueError, match="'facets'"):
        activation_maximization(trainer.network, [2], x0="centre", steps=1)


def test_a_warp_is_scipys_bilinear_affine_transform():
    from scipy import ndimage

    from symnn.inputopt.transforms import _bilinear

    img = np.random.default_rng(0).uniform(size=(9, 8))
    for factor, angle in [(1.0, 0.0), (1.1, 0.0), (0.9, 0.2), (1.05, -0.3)]:
        index, weight = _bilinear(9, 8, factor, angle)
        got = (img.reshape(-1)[index] * weight).sum(axis=1).reshape(9, 8)
        c, s = np.cos(angle), np.sin(angle)
        matrix = np.array([[c, s], [-s, c]]) / factor  # output -> input coordinates
        centre = np.array([4.0, 3.5])
        want = ndimage.affine_transform(
            img, matrix, offset=centre - matrix @ centre, order=1, mode="constant", cval=0.0
        )
        inside = weight.sum(axis=1).reshape(9, 8) > 1 - 1e-9  # scipy's edge handling differs
        np.testing.assert_allclose(got[inside], want[inside], atol=1e-12)


@pytest.mark.parametrize("compiled", ["FAST_COMPILE", "C"])
def test_warped_rows_and_their_gradient(compiled):
    from symnn.backend import python_nodes, resolve_mode
    from symnn.inputopt.transforms import warp_rows, warp_tables

    mode = resolve_mode(compiled) if compiled == "C" else compiled
    index, weight = warp_tables((6, 5, 2), 0.1, 10.0, seed=3, n=4)
    assert index.shape == (4, 60, 4)
    x = pt.matrix("x", dtype="float64")
    choice = pt.lvector("choice")
    g = pt.matrix("g", dtype="float64")
    out = warp_rows(x, choice, pt.constant(index), pt.constant(weight))
    fn = pytensor.function([x, choice, g], [out, pytensor.grad(pt.sum(out * g), x)], mode=mode)
    if compiled == "C":
        assert python_nodes(fn) == []
    rng = np.random.default_rng(4)
    X, G, C = rng.normal(size=(3, 60)), rng.normal(size=(3, 60)), np.array([0, 2, 3])
    got, grad = fn(X, C, G)
    for i, k in enumerate(C):
        M = np.zeros((60, 60))  # the warp as a matrix: out = M @ x
        np.add.at(M, (np.repeat(np.arange(60), 4), index[k].ravel()), weight[k].ravel())
        np.testing.assert_allclose(got[i], M @ X[i], atol=1e-12)
        np.testing.assert_allclose(grad[i], M.T @ G[i], atol=1e-12)
    np.testing.assert_allclose(got[0], X[0], atol=1e-12)  # table entry 0 is the identity


def test_scale_and_rotate_are_checked(digits_net):
    trainer, _ = digits_net
    net = trainer.network
    with pytest.raises(SymnnValueError, match="scale=0.1 needs an image"):
        activation_maximization(net, [0], steps=1, penalties=InputPenalties(scale=0.1))
    with pytest.raises(SymnnValueError, match="small transformations"):
        activation_maximization(
            net, [0], image_shape=(8, 8), steps=1, penalties=InputPenalties(scale=0.6)
        )
    with pytest.raises(SymnnValueError, match="rotate=5 has no effect with method='l-bfgs-b'"):
        activation_maximization(
            net, [0], image_shape=(8, 8), method="l-bfgs-b", penalties=InputPenalties(rotate=5)
        )
    report = activation_maximization(
        net, [0, 1], image_shape=(8, 8), steps=5, penalties=InputPenalties(scale=0.05, rotate=5)
    )
    assert report.settings["scale"] == 0.05 and report.settings["rotate"] == 5


def test_the_1_over_f_filter_and_the_preconditioned_gradient():
    from symnn.backend import python_nodes, resolve_mode
    from symnn.inputopt.transforms import precondition, spectral_filter

    P = spectral_filter((6, 5))
    values = np.linalg.eigvalsh(P)
    assert np.allclose(P, P.T) and values.min() > 0 and np.isclose(values.max(), 1.0)
    np.testing.assert_allclose(P @ np.ones(30), np.ones(30), atol=1e-12)  # the mean passes
    stripes = np.tile([1.0, -1.0], 15)  # the highest frequency along the rows
    assert np.linalg.norm(P @ stripes) < 0.3 * np.linalg.norm(stripes)
    # against numpy's FFT directly: filtering an image
    img = np.random.default_rng(0).normal(size=(6, 5))
    fy, fx = np.fft.fftfreq(6)[:, None], np.fft.fftfreq(5)[None, :]
    w = 1 / np.maximum(np.hypot(fy, fx), 1 / 6)
    want = np.real(np.fft.ifft2(np.fft.fft2(img) * w / w.max()))
    np.testing.assert_allclose((P @ img.ravel()).reshape(6, 5), want, atol=1e-12)
    # the op: identity forward, gradient times P
    x = pt.matrix("x", dtype="float64")
    c = pt.matrix("c", dtype="float64")
    y = precondition(x, pt.constant(P))
    fn = pytensor.function([x, c], [y, pytensor.grad(pt.sum(y * c), x)], mode=resolve_mode("C"))
    assert python_nodes(fn) == []
    X, C = np.ones((2, 30)), np.random.default_rng(1).normal(size=(2, 30))
    out, grad = fn(X, C)
    np.testing.assert_array_equal(out, X)
    np.testing.assert_allclose(grad, C @ P, atol=1e-12)


def test_preconditioned_activation_maximization_is_smoother(digits_net):
    trainer, data = digits_net
    kw = dict(image_shape=(8, 8), steps=80, prior=None, seed=2)
    plain = activation_maximization(trainer.network, range(10), **kw)
    smooth = activation_maximization(
        trainer.network, range(10), **kw, penalties=InputPenalties(precondition=True)
    )

    def roughness(report):  # mean squared difference of neighbouring pixels
        img = report.images()
        return np.mean(np.diff(img, axis=1) ** 2) + np.mean(np.diff(img, axis=2) ** 2)

    assert roughness(smooth) < roughness(plain)
    assert all(r.moved for r in smooth.rows)
    with pytest.raises(SymnnValueError, match="precondition=True needs an image"):
        activation_maximization(
            trainer.network, [0], steps=1, penalties=InputPenalties(precondition=True)
        )


def test_the_automatic_prior_weight_is_the_strongest_that_still_beats_the_reference(digits_net):
    """Each unit keeps the strongest of AUTO_PRIOR_WEIGHTS under which its input still
    activates it beyond its best reference input (else the weakest), checked against one run
    per fixed weight from the same starts."""
    from symnn.inputopt.activation import AUTO_PRIOR_WEIGHTS

    trainer, data = digits_net
    kw = dict(steps=60, image_shape=(8, 8), reference=data.X_train[:300], seed=0)
    auto = activation_maximization(trainer.network, range(8), **kw)
    fixed = {w: activation_maximization(trainer.network, range(8), prior_weight=w, **kw).rows
             for w in AUTO_PRIOR_WEIGHTS}  # fmt: skip
    for k, row in enumerate(auto.rows):
        beat = [w for w in AUTO_PRIOR_WEIGHTS if fixed[w][k].exceeds_reference]
        want = max(beat, default=AUTO_PRIOR_WEIGHTS[0])
        assert row.prior_weight == want, (k, row.prior_weight, want)
        assert row.best == pytest.approx(fixed[want][k].best, rel=1e-3)
    assert len({row.prior_weight for row in auto.rows}) > 1  # the choice is per unit


def test_scale_and_rotate_act_on_the_step():
    """A unit that reads one pixel: without warps only that pixel's gradient is non-zero, so
    the ascent moves that pixel alone; with random scaling and rotation the pixel is sampled
    between its neighbours, and they move too."""
    net = Sequential([Dense(64, 1, None, W=np.zeros((64, 1)), b=np.zeros(1), dtype="float64")])
    net.layers[0].W.set_value(np.eye(64)[:, [27]])  # the pixel at (3, 3)
    x0 = np.full((1, 64), 0.5)
    kw = dict(x0=x0, steps=10, prior=None, image_shape=(8, 8), learning_rate=0.01, seed=0)
    plain = activation_maximization(net, [0], **kw).x
    moved = np.flatnonzero(np.abs(plain - x0) > 1e-9)
    assert moved.tolist() == [27]
    warped = activation_maximization(
        net, [0], **kw, penalties=InputPenalties(scale=0.05, rotate=5)
    ).x
    assert np.count_nonzero(np.abs(warped - x0) > 1e-9) > 1


def test_the_old_keyword_forms_warn_and_give_the_same_report(digits_net):
    """Penalties as keywords, ``reference=(X, labels)``, ``top_k=``/``judge=``: deprecated
    (they go in 0.3), and equal to the one form that stays."""
    trainer, data = digits_net
    X, y = data.X_train[:300], data.y_train[:300]
    new = activation_maximization(
        trainer.network, [0, 3], steps=20, image_shape=(8, 8), seed=1, blas_threads=1,
        penalties=InputPenalties(l2=0.1, tv=0.2), reference=Reference(X, labels=y, top_k=2),
    )  # fmt: skip
    with pytest.warns(DeprecationWarning, match="goes in 0.3") as caught:
        old = activation_maximization(
            trainer.network, [0, 3], steps=20, image_shape=(8, 8), seed=1, blas_threads=1,
            l2=0.1, tv=0.2, reference=(X, y), top_k=2,
        )  # fmt: skip
    assert len(caught) == 2 and all(w.filename == __file__ for w in caught)  # the caller's line
    np.testing.assert_array_equal(new.x, old.x)
    assert new.settings == old.settings
    assert [r.top_examples for r in new.rows] == [r.top_examples for r in old.rows]
    with pytest.raises(SymnnValueError, match="InputPenalties"):
        with pytest.warns(DeprecationWarning):
            activation_maximization(trainer.network, [0], penalties=InputPenalties(), l2=0.1)


def test_ascent_options_are_maximizes_and_checked_before_compiling(digits_net, monkeypatch):
    from symnn.inputopt.activation import ASCENT_OPTIONS

    trainer, _ = digits_net
    assert set(ASCENT_OPTIONS) == {"steps", "learning_rate", "method", "tol", "blas_threads",
                                   "keep"}  # fmt: skip
    with pytest.raises(SymnnTypeError, match="unexpected keyword 'stepz'.*steps, learning_rate"):
        activation_maximization(trainer.network, [0], stepz=3)

    def no_compile(*a, **k):
        raise AssertionError("compiled before checking the ascent options")

    monkeypatch.setattr("symnn.inputopt.objective.function", no_compile)
    for kwargs, match in (
        ({"method": "tnc", "learning_rate": 0.1}, "learning_rate=0.1 has no effect"),
        ({"steps": 0}, "steps"),
        ({"tol": -1.0}, "tol"),
        ({"method": "sgd"}, "method"),
        ({"blas_threads": 0}, "blas_threads"),
        ({"x0": "mean"}, "x0='mean' needs reference inputs"),
        ({"units": [10]}, "index 10 out of range"),
    ):
        units = kwargs.pop("units", [0])
        with pytest.raises(SymnnValueError, match=match):  # a fresh network: nothing cached
            activation_maximization(mlp([64, 8, 10], rng=5), units, **kwargs)


def test_distinctness_against_numpy_and_the_weight_choice_it_makes():
    """``_distinctness``: 1 - the largest Pearson correlation with the typical input and with
    the other units' pictures under the same weight; the choice keeps the strongest weight
    that both activates the unit beyond its reference and stays distinct."""
    from symnn.inputopt.activation import DISTINCT_MIN, _choose_weights, _distinctness
    from symnn.inputopt.objective import _Rows

    rng = np.random.default_rng(0)
    a, b, typical = rng.normal(size=(3, 50))
    x = np.stack([a, 2 * a + 1, b, typical, b + 0.01 * a])  # unit 0, 1 alike; unit 3 typical
    rows = _Rows(np.array([0, 1, 2, 3, 4]), np.zeros(5, dtype=int), (1.0,))
    got = _distinctness(x, rows, typical)
    corr = np.corrcoef(np.vstack([x, typical]))
    np.fill_diagonal(corr, -1.0)
    np.testing.assert_allclose(got, 1 - corr[:5].max(axis=1), atol=1e-12)
    assert got[0] == pytest.approx(0.0, abs=1e-12) and got[3] == pytest.approx(0.0, abs=1e-12)
    # weights are compared within their own group: unit 0 alone at weight index 1
    two = _Rows(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), (0.5, 4.0))
    np.testing.assert_allclose(_distinctness(x[[0, 1, 0, 2]], two, None),
                               1 - np.array([1.0, 1.0, corr[0, 2], corr[0, 2]]), atol=1e-12)
    # per (unit, start) block of weights 0.5, 1, 2, 4 (rows in that order)
    four = _Rows(np.repeat([0, 1, 2], 4), np.tile(np.arange(4), 3), (0.5, 1.0, 2.0, 4.0))
    reached = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    d = np.array([0.5, 0.4, 0.3, 0.0, 0.05, 0.02, 0.08, 0.01, 0.9, 0.9, 0.9, 0.9])
    assert d[2] >= DISTINCT_MIN > d[3]
    # unit 0: the strongest distinct weight (2.0); unit 1: none distinct, the most distinct
    # (2.0); unit 2: none reached, the weakest
    assert _choose_weights(reached, d, four).tolist() == [2, 6, 8]


def test_the_report_gives_each_unit_its_distinctness(digits_net):
    trainer, data = digits_net
    report = activation_maximization(
        trainer.network, [1, 4, 7], steps=30, image_shape=(8, 8),
        reference=Reference(data.X_train[:400]),
    )  # fmt: skip
    x = report.x.astype(np.float64)
    corr = np.corrcoef(np.vstack([x, data.X_train[:400].mean(axis=0)]))
    np.fill_diagonal(corr, -1.0)
    want = 1 - corr[:3].max(axis=1)
    np.testing.assert_allclose([r.distinctness for r in report.rows], want, atol=1e-6)
    assert {r.prior_weight for r in report.rows} <= {0.5, 1.0, 2.0, 4.0}
