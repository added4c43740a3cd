"""Image parametrisations (symnn.inputopt.param) against numpy.fft, and visualize end to end:
the box, gradients against finite differences, the ascent raising its objective, and every
wrong argument named before compiling."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.gradcheck import check_grad
from symnn.inputopt import visualize
from symnn.inputopt.objectives import channel, diversity
from symnn.inputopt.param import IMAGENET_COLOR_SQRT, Parametrisation, fourier_basis
from symnn.layers import from_arch

FAST = "FAST_COMPILE"
RNG = np.random.default_rng(0)
REFERENCE = RNG.random((20, 36))


def _images(par, params, box=(0.0, 1.0)):
    p = pt.matrix("p", dtype="float64")
    return pytensor.function([p], par.image(p, box), mode=FAST)(params)


def _logit(img):
    return np.log(img / (1 - img))


@pytest.mark.parametrize("n", range(1, 10))
def test_the_fourier_basis_is_orthonormal_with_numpys_frequencies(n):
    B, f = fourier_basis(n)
    np.testing.assert_allclose(B.T @ B, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(np.sort(f), np.sort(np.abs(np.fft.fftfreq(n))), atol=1e-15)


def test_fourier_images_have_lucids_spectrum_by_numpys_fft():
    """Per 2-D frequency (|ky|, |kx|), the image's energy in numpy's orthonormal FFT equals
    the energy of its coefficients scaled by 1 / max(f, 1 / max(H, W)) / 4."""
    h, w = 6, 5
    par = Parametrisation.make("fourier", (h, w))
    coef = RNG.normal(size=(2, h * w))
    z = _logit(_images(par, coef)).reshape(2, h, w)
    spectrum = np.abs(np.fft.fft2(z, norm="ortho")) ** 2
    (_, fh), (_, fw) = fourier_basis(h), fourier_basis(w)
    scale = 1 / np.maximum(np.hypot(fh[:, None], fw[None, :]), 1 / max(h, w)) / 4
    energy = (coef.reshape(2, h, w) * scale) ** 2
    ky, kx = np.round(fh * h).astype(int), np.round(fw * w).astype(int)
    for a in set(ky):
        for b in set(kx):
            bins = spectrum[:, np.abs(np.fft.fftfreq(h, 1 / h)) == a][:, :,
                            np.abs(np.fft.fftfreq(w, 1 / w)) == b]  # fmt: skip
            want = energy[:, ky == a][:, :, kx == b].sum(axis=(1, 2))
            np.testing.assert_allclose(bins.sum(axis=(1, 2)), want, rtol=1e-9, atol=1e-15)


def test_maco_images_equal_numpys_inverse_fft_of_the_reference_magnitude():
    par = Parametrisation.make("maco", (6, 6), reference=REFERENCE)
    magnitude = np.abs(np.fft.fft2(REFERENCE.reshape(-1, 6, 6))).mean(axis=0)
    np.testing.assert_allclose(par.magnitude[0], magnitude)
    phase = RNG.uniform(-np.pi, np.pi, (3, 36))
    z = np.real(np.fft.ifft2(magnitude * np.exp(1j * phase.reshape(3, 6, 6)))).reshape(3, -1)
    z = (z - z.mean(axis=1, keepdims=True)) / (z.std(axis=1, keepdims=True) + 1e-4 / 36)
    got = _logit(_images(par, phase))
    # standardised images do not depend on the inverse DFT's 1 / (H W); the epsilon does,
    # by less than the tolerance
    np.testing.assert_allclose(got, z, rtol=1e-4, atol=1e-4)


def test_decorrelation_is_refused_where_there_are_no_three_colours():
    for kind, shape, value in [("fourier", (6, 6), True), ("pixel", (3, 2, 2), True),
                               ("fourier", (6, 6), "yes")]:  # fmt: skip
        with pytest.raises(SymnnValueError, match="decorrelate"):
            Parametrisation.make(kind, shape, decorrelate=value)


def test_colour_decorrelation_is_the_square_root_of_the_colour_covariance():
    colours = RNG.multivariate_normal([0.5] * 3, [[1, 0.8, 0.3], [0.8, 1, 0.5], [0.3, 0.5, 1]],
                                      size=(40, 4, 4))  # fmt: skip
    reference = colours.transpose(0, 3, 1, 2).reshape(40, -1)
    par = Parametrisation.make("fourier", (3, 4, 4), reference=reference)
    cov = np.cov(colours.reshape(-1, 3), rowvar=False)
    mix = par.colour @ par.colour.T
    np.testing.assert_allclose(mix / mix[0, 0], cov / cov[0, 0], rtol=1e-10)
    assert np.isclose(np.linalg.norm(par.colour, axis=0).max(), 1.0)
    imagenet = Parametrisation.make("fourier", (3, 4, 4)).colour
    np.testing.assert_allclose(imagenet, IMAGENET_COLOR_SQRT / np.linalg.norm(
        IMAGENET_COLOR_SQRT, axis=0).max())  # fmt: skip
    assert Parametrisation.make("fourier", (3, 4, 4), decorrelate=False).colour is None


@pytest.mark.parametrize("kind", ["fourier", "maco"])
def test_images_stay_in_the_box_for_any_parameters(kind):
    par = Parametrisation.make(kind, (6, 6), reference=REFERENCE)
    images = _images(par, 50 * RNG.normal(size=(4, 36)), box=(-1.0, 2.0))
    assert images.min() >= -1.0 and images.max() <= 2.0


@pytest.mark.parametrize("kind, shape", [("pixel", (6, 6)), ("fourier", (6, 6)),
                                         ("fourier", (3, 4, 4))])  # fmt: skip
def test_the_parameters_of_an_image_make_that_image(kind, shape):
    width = int(np.prod(shape))
    reference = RNG.random((10, width))
    par = Parametrisation.make(kind, shape, reference=reference)
    box = (-1.0, 2.0)
    x0 = np.clip(RNG.uniform(-1.5, 2.5, (3, width)), *box)  # with pixels on both bounds
    back = _images(par, par.parameters_of(x0, box), box)
    np.testing.assert_allclose(back, x0, atol=3.1e-4 * 1.0001)  # 1e-4 of the box's width
    with pytest.raises(SymnnValueError, match="a MaCo image keeps the reference's magnitude"):
        Parametrisation.make("maco", shape, reference=reference).parameters_of(x0, box)


@pytest.fixture(scope="module")
def net():
    return from_arch("conv4x3,pool2,8,3", (6, 6), rng=0, dtype="float64")


@pytest.mark.parametrize("kind", ["fourier", "maco"])
def test_gradients_through_the_parametrisation_equal_finite_differences(net, kind):
    par = Parametrisation.make(kind, (6, 6), reference=REFERENCE)
    p = pt.matrix("p", dtype="float64", shape=(None, 36))
    cost = pt.sum((channel("conv0", 1) - 0.3 * diversity("conv0"))(net, par.image(p, (0, 1))))
    start = par.initial(3, np.random.default_rng(1), (0.0, 1.0), "float64") + 0.3
    assert check_grad(cost, [p], [start], mode=FAST) < 1e-5  # relu kinks limit the FD


@pytest.mark.parametrize("kind", ["pixel", "fourier", "maco"])
def test_visualize_raises_its_objective_inside_the_box(net, kind):
    vis = visualize(net, channel("conv0", 2) - 0.1 * diversity("conv0"), image_shape=(6, 6), n=3,
                    param=kind, reference=REFERENCE, steps=60, seed=2, mode=FAST)  # fmt: skip
    assert vis.images.shape == (3, 36) and vis.image_shape == (1, 6, 6)
    assert vis.images.min() >= 0 and vis.images.max() <= 1
    start = vis.result.history[0]
    assert vis.values.sum() > start.sum() + 0.05, (vis.values, start)


def test_an_objective_with_an_index_per_row_sets_the_batch(net):
    vis = visualize(net, channel("conv0", range(4)), image_shape=(6, 6), steps=3, mode=FAST)
    assert vis.images.shape == (4, 36)


def test_accentuation_starts_from_x0_and_its_penalty_keeps_it_near(net):
    x0 = REFERENCE[:2]
    common = dict(image_shape=(6, 6), x0=x0, steps=80, learning_rate=0.1, mode=FAST)
    free = visualize(net, "channel:conv0:2", **common)
    held = visualize(net, "channel:conv0:2", seed_penalty=50.0, **common)
    assert free.images.shape == held.images.shape == (2, 36)
    far, near = (np.abs(v.images - x0).mean() for v in (free, held))
    assert near < 0.5 * far, (near, far)
    assert free.result.history[0].sum() < free.values.sum()


def test_a_second_call_reuses_the_graph_and_sets_its_seed_and_start_images(net, monkeypatch):
    """One graph per objective and settings: later calls compile nothing, the jitter's
    generator is seeded per call (same seed, same images) and the seed penalty pulls towards
    each call's own x0."""
    import symnn.inputopt.render as render

    built = []
    original = render._vis_graph
    monkeypatch.setattr(render, "_vis_graph", lambda *a: built.append(1) or original(*a))
    common = dict(image_shape=(6, 6), n=2, steps=30, jitter=1, mode=FAST)
    first = visualize(net, "channel:conv0:3", seed=4, **common)
    other = visualize(net, "channel:conv0:3", seed=5, **common)
    again = visualize(net, "channel:conv0:3", seed=4, **common)
    assert len(built) == 1
    np.testing.assert_array_equal(first.images, again.images)
    assert not np.allclose(first.images, other.images)
    held = dict(image_shape=(6, 6), steps=40, seed_penalty=1e3, learning_rate=0.1, mode=FAST)
    for x0 in (REFERENCE[:2], REFERENCE[2:4]):
        vis = visualize(net, "channel:conv0:3", x0=x0, **held)
        assert np.abs(vis.images - x0).mean() < 0.02
    assert len(built) == 2  # one more graph: the seed penalty's


def test_warps_and_jitter_show_the_network_transformed_images_seeded_per_call(net):
    """``scale``/``rotate``: what the network sees is the image warped by one of the seed's
    tables (checked by numpy: bilinear source pixels and weights), then jittered; a second
    call with the same seed repeats the images, the transformed ones are not returned."""
    import symnn.inputopt.render as render
    from symnn.inputopt.transforms import warp_tables

    opts = dict(image_shape=(6, 6), n=2, steps=25, scale=0.2, rotate=20, seed=3, mode=FAST)
    first = visualize(net, "channel:conv0:0", **opts)
    again = visualize(net, "channel:conv0:0", **opts)
    np.testing.assert_array_equal(first.images, again.images)
    assert first.values.sum() > first.result.history[0].sum()
    # the graph's transformation against numpy, for warps alone
    par = Parametrisation.make("pixel", (6, 6))
    rng = pt.random.shared_rng(seed=0)
    warps = (pytensor.shared(np.zeros((1, 36, 4), dtype=np.int64)),
             pytensor.shared(np.zeros((1, 36, 4))))  # fmt: skip
    p = pt.matrix("p", dtype="float64")
    seen, updates = render._transformed(p, par.image_shape, (0, 0), rng, warps)
    index, weight = warp_tables((6, 6, 1), 0.2, 20.0, seed=7, n=1)  # one table: no choice
    warps[0].set_value(index)
    warps[1].set_value(weight)
    x = np.random.default_rng(0).random((3, 36))
    got = pytensor.function([p], seen, updates=updates, mode=FAST)(x)
    want = (x[:, index[0]] * weight[0]).sum(axis=2)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_random_views_return_the_last_iterate_and_plain_ascents_the_best(net, monkeypatch):
    """Under random transformations each step's value is one random view's (Lucid returns
    the last iterate); without them the best recorded iterate, unless ``keep`` says."""
    import symnn.inputopt.render as render

    opts = dict(image_shape=(6, 6), n=3, steps=40, learning_rate=0.5, param="pixel", mode=FAST)
    jittered = visualize(net, "channel:conv0:0", jitter=2, **opts)
    np.testing.assert_array_equal(jittered.images, jittered.result.x_last)
    kept = []
    ascent = render.maximize
    record = lambda *a, **kw: kept.append(kw["keep"]) or ascent(*a, **kw)  # noqa: E731
    monkeypatch.setattr(render, "maximize", record)
    for extra in [{}, {"jitter": 2}, {"scale": 0.1}, {"noise": 0.1}, {"crop": (0.5, 1.0)},
                  {"jitter": 2, "keep": "best"}, {"keep": "last"}]:  # fmt: skip
        visualize(net, "channel:conv0:0", **opts, **extra)
    assert kept == ["best", "last", "last", "last", "last", "best", "last"]


def test_crops_and_noise_are_macos_seeded_per_call(net):
    """``crop``: the warps show random squares of the image resized to it (checked against
    numpy's bilinear sampling of the box); ``noise``: what the network sees moves by the
    noise's spread, the images do not; a call repeats with its seed."""
    import symnn.inputopt.render as render
    from symnn.inputopt.transforms import warp_tables

    index, weight = warp_tables((6, 6, 1), 0.0, 0.0, seed=2, n=3, crop=(0.5, 0.5))
    x = np.random.default_rng(1).random(36)
    crop = (x[index[1]] * weight[1]).sum(axis=1).reshape(6, 6)
    rng = np.random.default_rng(2)  # the table's draws, in its order
    rng.uniform(1, 1, 2), rng.uniform(0, 0, 2), rng.uniform(0.5, 0.5, 2)
    cy, cx = rng.normal(0.5, 0.15, (2, 2))[0] * 6 - 0.5
    src = (np.arange(6) - 2.5) * 0.5
    img = x.reshape(6, 6)

    def sample(y, xx):
        y0, x0 = int(np.floor(y)), int(np.floor(xx))
        total = 0.0
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            w = (1 - abs(y - y0 - dy)) * (1 - abs(xx - x0 - dx))
            if 0 <= y0 + dy < 6 and 0 <= x0 + dx < 6:
                total += w * img[y0 + dy, x0 + dx]
        return total

    want = np.array([[sample(cy + a, cx + b) for b in src] for a in src])
    np.testing.assert_allclose(crop, want, atol=1e-12)
    p = pt.matrix("p", dtype="float64")
    seen, updates = render._transformed(p, (1, 6, 6), (0, 0.1), pt.random.shared_rng(seed=0),
                                        None)  # fmt: skip
    diff = pytensor.function([p], seen - p, updates=updates, mode=FAST)(np.zeros((50, 36)))
    assert abs(diff.std() - np.sqrt(0.1**2 + 0.1**2 / 12)) < 0.005 and abs(diff.mean()) < 0.005
    opts = dict(image_shape=(6, 6), n=2, steps=20, crop=(0.6, 0.9), noise=0.05, seed=4,
                mode=FAST)  # fmt: skip
    first = visualize(net, "channel:conv0:0", **opts)
    np.testing.assert_array_equal(first.images, visualize(net, "channel:conv0:0", **opts).images)
    other = visualize(net, "channel:conv0:0", **{**opts, "seed": 5})
    assert not np.array_equal(first.images, other.images)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(scale=0.6), SymnnValueError, "small transformations are expected"),
    (dict(rotate=-1), SymnnValueError, "rotate"),
    (dict(param="maco"), SymnnValueError, "pass reference images"),
    (dict(param="fft"), SymnnValueError, "param='fft' is not known"),
    (dict(decorrelate=True), SymnnTypeError, "unexpected keyword.s. decorrelate; the ascent"),
    (dict(param=Parametrisation.make("fourier", (6, 5))), SymnnValueError,
     r"param is made for images \(1, 6, 5\); image_shape=\(6, 6\)"),
    (dict(image_shape=(6, 5)), SymnnValueError, "has 30 values; the network takes 36"),
    (dict(image_shape=(6,)), SymnnValueError, r"expected \(H, W\) or \(C, H, W\)"),
    (dict(reference=np.zeros((4, 30))), SymnnValueError, "reference has 30 columns"),
    (dict(bounds=(1.0, 0.0)), SymnnValueError, "expected finite lo < hi"),
    (dict(bounds="01"), SymnnTypeError, "bounds must be two numbers"),
    (dict(n=0), SymnnValueError, "n"),
    (dict(seed_penalty=1.0), SymnnValueError, "seed_penalty=1.0 pulls towards x0; no x0"),
    (dict(seed_penalty=-1.0), SymnnValueError, "seed_penalty=-1.0 is not valid"),
    (dict(x0=np.zeros((2, 30))), SymnnValueError, "x0 has 30 columns; the images have 36"),
    (dict(x0=np.full((2, 36), 2.0)), SymnnValueError, "x0 has values outside the bounds"),
    (dict(x0=np.zeros((2, 36)), n=3), SymnnValueError, "n=3 starts, but x0 has 2 rows"),
    (dict(x0=np.zeros((2, 36)), param="maco", reference=REFERENCE), SymnnValueError,
     "MaCo image keeps"),
    (dict(crop=0.1), SymnnTypeError, r"crop must be two numbers \(lo, hi\); got 0.1"),
    (dict(crop=(0.5, 1.5)), SymnnValueError, r"crop=\(0.5, 1.5\): expected sides 0 < lo"),
    (dict(noise=-0.1), SymnnValueError, "noise=-0.1 is not valid"),
    (dict(crops=0.1), SymnnTypeError, "unexpected keyword.s. crops"),
    (dict(objective=channel("conv0", [0, 1]), n=3), SymnnValueError,
     r"n=3, but channel\('conv0', \(0, 1\)\) has one index per row for 2 rows"),
    (dict(objective=3), SymnnTypeError, "objective must be an Objective or its text"),
    (dict(objective="channel:conv5:0"), SymnnValueError, "layer='conv5' is not a layer name"),
])  # fmt: skip
def test_bad_arguments_are_refused_by_name(net, kwargs, error, match):
    args = dict(objective="channel:conv0:0", image_shape=(6, 6), mode=FAST, steps=2) | kwargs
    with pytest.raises(error, match=match):
        visualize(net, **args)
