"""The density priors of activation maximisation (Gaussian, Gaussian mixture), the starts
from data and the report's realism figures."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symnn.errors import SymnnValueError
from symnn.inputopt import Reference, activation_maximization
from symnn.inputopt.priors import PRIOR_ARRAYS, GaussianPrior, MixturePrior, gaussian_penalty


@pytest.fixture(scope="module")
def prior(rng_module=None):
    rng = np.random.default_rng(11)
    mixing = rng.normal(size=(6, 6))
    X = rng.normal(size=(400, 6)) @ mixing + 3.0
    return X, GaussianPrior.fit(X, n_components=3)


def test_fit_is_a_pca_with_an_isotropic_rest(prior):
    X, model = prior
    np.testing.assert_allclose(model.mean, X.mean(axis=0))
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(3), atol=1e-12)
    values = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1]
    np.testing.assert_allclose(model.variances, values[:3], rtol=1e-10)
    assert model.rest_variance == pytest.approx(values[3:].mean())
    # a real input scores about 0.5 (its Mahalanobis distance is about the width)
    assert 0.3 < model.penalty_numpy(X).mean() < 0.7


def _symbolic(model, dtype="float64"):
    x = pt.matrix("x", dtype=dtype)
    arrays = {k: pt.as_tensor_variable(v) for k, v in model.arrays(dtype).items()}
    assert set(arrays) == set(PRIOR_ARRAYS)
    return x, gaussian_penalty(x, arrays, model.width)


def test_penalty_against_numpy_and_finite_differences(prior):
    X, model = prior
    x, penalty = _symbolic(model)
    value = pytensor.function([x], penalty, mode="FAST_COMPILE")(X[:5])
    np.testing.assert_allclose(value, model.penalty_numpy(X[:5]), rtol=1e-10)
    # the full Mahalanobis form with the model's covariance
    basis = np.linalg.svd(model.components.T, full_matrices=True)[0]
    rest = basis[:, 3:]
    cov = (model.components.T * model.variances) @ model.components + model.rest_variance * (
        rest @ rest.T
    )
    z = X[:5] - model.mean
    maha = np.einsum("ij,jk,ik->i", z, np.linalg.inv(cov), z)
    np.testing.assert_allclose(value, maha / (2 * model.width), rtol=1e-8)
    arrays = {k: pt.as_tensor_variable(v) for k, v in model.arrays("float64").items()}
    pytensor.gradient.verify_grad(
        lambda v: gaussian_penalty(v, arrays, model.width).sum(),
        [X[:4]],
        rng=np.random.default_rng(0),
    )


@pytest.fixture(scope="module")
def digits_net():
    from symnn.datasets import load_digits
    from symnn.layers import mlp
    from symnn.train import Trainer

    data = load_digits()
    trainer = Trainer(mlp([64, 100, 10], rng=0), learning_rate=1e-2)
    trainer.fit(data.X_train, data.y_train, epochs=30, batch_size=32, progress=False)
    return trainer.network, data


def _class_mean_corr(x, X, y):
    out = []
    for c in range(10):
        a, b = x[c] - x[c].mean(), X[y == c].mean(axis=0)
        b = b - b.mean()
        out.append((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    return float(np.mean(out))


def test_with_a_reference_the_default_prior_makes_inputs_look_like_their_class(digits_net):
    net, data = digits_net
    X, y = data.X_train, data.y_train
    plain = activation_maximization(net, range(10), reference=X, prior=None, steps=200)
    prior = activation_maximization(net, range(10), reference=X, x0="mean", steps=200)
    assert plain.settings["prior"] is None and prior.settings["prior"] == "gmm"
    assert _class_mean_corr(prior.x, X, y) > _class_mean_corr(plain.x, X, y) + 0.1
    assert all(row.exceeds_reference for row in prior.rows)  # still beyond every real input


def test_starts_from_data(digits_net):
    net, data = digits_net
    X, y = data.X_train, data.y_train
    kw = dict(steps=1, learning_rate=1e-9, prior=None)
    mean = activation_maximization(net, [0, 1], reference=X, x0="mean", **kw)
    np.testing.assert_allclose(mean.x, np.repeat(X.mean(axis=0, keepdims=True), 2, 0), atol=1e-6)
    per_class = activation_maximization(
        net, [3, 7], reference=Reference(X, labels=y), x0="class-mean", **kw
    )
    np.testing.assert_allclose(per_class.x[1], X[y == 7].mean(axis=0), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prior": "student", "reference": "X"}, "prior='student' is not known"),
        ({"prior": "gaussian"}, "needs reference inputs to fit it to"),
        ({"prior": None, "prior_weight": 3.0}, "prior_weight=3.0 has no effect without a prior"),
        ({"x0": "class-mean", "reference": "X"}, r"needs reference=Reference\(X, labels=\.\.\.\)"),
        ({"x0": "median", "reference": "X"}, "x0='median' is not known"),
        ({"prior_weight": -1.0, "reference": "X"}, "prior_weight=-1.0"),
    ],
)
def test_bad_prior_arguments_are_named(digits_net, kwargs, match):
    net, data = digits_net
    if kwargs.get("reference") == "X":
        kwargs = {**kwargs, "reference": data.X_train}
    with pytest.raises(SymnnValueError, match=match):
        activation_maximization(net, [0], steps=2, **kwargs)


@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=4.0, size=(3, 6))
    X = np.concatenate(
        [c + rng.normal(size=(200, 6)) * [1, 1, 0.5, 0.3, 0.1, 0.1] for c in centres]
    )
    return X, MixturePrior.fit(X, n_components=4, n_mixture=3)


def test_mixture_penalty_is_scikit_learns_density_plus_the_isotropic_rest(mixture):
    """Against an independent reference: ``GaussianMixture.score_samples`` of the same
    mixture on the projections, the rest as a Gaussian of the rest variance."""
    from sklearn.mixture import GaussianMixture

    X, model = mixture
    z = X[:20] - model.mean
    p = z @ model.components.T
    gm = GaussianMixture(3, covariance_type="diag")
    gm.weights_, gm.means_, gm.covariances_ = (
        model.mix_weights,
        model.mix_means,
        model.mix_variances,
    )
    gm.precisions_cholesky_ = 1 / np.sqrt(model.mix_variances)
    rest = 0.5 * ((z**2).sum(1) - (p**2).sum(1)) / model.rest_variance
    expected = (-gm.score_samples(p) + rest) / model.width + model.offset
    np.testing.assert_allclose(model.penalty_numpy(X[:20]), expected, rtol=1e-10)
    assert model.penalty_numpy(X).mean() == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mixture_penalty_symbolic_equals_numpy_far_away_too(mixture, dtype):
    X, model = mixture
    x = pt.matrix("x", dtype=dtype)
    arrays = {k: pt.as_tensor_variable(v) for k, v in model.arrays(dtype).items()}
    fn = pytensor.function([x], MixturePrior.penalty(x, arrays, model.width), mode="FAST_COMPILE")
    far = X[:3] + 1e3  # every component's density underflows: the log-sum-exp must not
    rows = np.concatenate([X[:5], far]).astype(dtype)
    rtol = 1e-10 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(fn(rows), model.penalty_numpy(rows), rtol=rtol)


def test_mixture_penalty_gradient_against_finite_differences(mixture):
    X, model = mixture
    arrays = {k: pt.as_tensor_variable(v) for k, v in model.arrays("float64").items()}
    pytensor.gradient.verify_grad(
        lambda v: MixturePrior.penalty(v, arrays, model.width).sum(),
        [X[:4] + 0.3],
        rng=np.random.default_rng(0),
    )


def test_gmm_prior_and_the_realism_columns(digits_net):
    """prior='gmm' is readable too; with labels the report gives the class correlation and
    the 5-NN label (checked against scikit-learn's KNeighborsClassifier), and a judge's."""
    from sklearn.neighbors import KNeighborsClassifier

    net, data = digits_net
    X, y = data.X_train, data.y_train
    judge = KNeighborsClassifier(1).fit(X, y)
    reference = Reference(X, labels=y, judge=judge)
    report = activation_maximization(
        net, range(10), reference=reference, prior="gmm", x0="class-mean", steps=100
    )
    assert report.settings["prior"] == "gmm"
    assert all(row.exceeds_reference for row in report.rows)
    knn = KNeighborsClassifier(5, algorithm="brute").fit(X, y).predict(report.x)
    assert [row.knn_label for row in report.rows] == knn.tolist()
    assert [row.judge_label for row in report.rows] == judge.predict(report.x).tolist()
    corr = [row.class_corr for row in report.rows]
    expected = [np.corrcoef(report.x[c], X[y == c].mean(axis=0))[0, 1] for c in range(10)]
    np.testing.assert_allclose(corr, expected, rtol=1e-5)
    assert min(corr) > 0.5
    table = report.to_table()
    assert "class corr" in table and "5-NN" in table and "judge" in table
    hidden = activation_maximization(
        net, [0, 1], layer=0, reference=Reference(X, labels=y), steps=5
    )
    assert all(r.class_corr is None and r.knn_label is not None for r in hidden.rows)
    with (
        pytest.warns(DeprecationWarning, match="judge="),
        pytest.raises(SymnnValueError, match="judge needs reference inputs"),
    ):
        activation_maximization(net, [0], steps=2, judge=judge)


def test_a_named_prior_is_fitted_once_per_reference_content(monkeypatch):
    """``fitted_prior`` fits once per content (copies share the fit), fits again after an
    in-place change, and its callers in several threads get one fit each content."""
    from concurrent.futures import ThreadPoolExecutor

    from symnn.inputopt import priors

    calls = []
    fit = GaussianPrior.fit.__func__

    def counting(cls, X, *a, **k):
        calls.append(len(X))
        return fit(cls, X, *a, **k)

    monkeypatch.setattr(GaussianPrior, "fit", classmethod(counting))
    monkeypatch.setattr(priors, "_CACHE", type(priors._CACHE)())
    X = np.random.default_rng(3).normal(size=(60, 5))
    first = priors.fitted_prior("gaussian", X)
    assert priors.fitted_prior("gaussian", X.copy()) is first and calls == [60]
    X[0, 0] += 1.0
    changed = priors.fitted_prior("gaussian", X)
    assert changed is not first and len(calls) == 2
    assert not np.allclose(changed.mean, first.mean)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: priors.fitted_prior("gaussian", X), range(8)))
    assert all(g is changed for g in got) and len(calls) == 2
    for i in range(priors.CACHE_SIZE + 1):  # the least recently used is dropped
        priors.fitted_prior("gaussian", X + i + 1)
    assert priors.fitted_prior("gaussian", X) is not changed
    with pytest.raises(SymnnValueError, match="kind='pca' is not a prior's name"):
        priors.fitted_prior("pca", X)
