import pickle
import warnings

import numpy as np
import pytest
from _sklearn_checks import parametrize_checks, with_check_params
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from symnn import MLPClassifier, MLPRegressor
from symnn.errors import SymnnValueError

# Small, fast settings for scikit-learn's conformance checks (each check fits many times).
FAST = dict(
    hidden_layer_sizes=(16,), learning_rate_init=0.02, batch_size=32, max_iter=60, random_state=0
)


@pytest.mark.slow  # every scikit-learn check
@parametrize_checks([MLPClassifier(**FAST), MLPRegressor(**FAST)])
def test_sklearn_compatible_estimator(estimator, check):
    check(with_check_params(estimator, check))


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_classifier_learns_iris_with_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(**{**FAST, "max_iter": 150}).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.score(X, names) > 0.9
    assert clf.predict_proba(X).shape == (150, 3)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1, rtol=1e-5)
    assert len(clf.loss_curve_) == clf.n_iter_ and clf.network_.n_in == 4


def test_pipeline_cross_val_score_and_clone(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    fresh = clone(pipe)
    assert not hasattr(fresh[-1], "network_")


def test_grid_search_serial(iris):
    X, y = iris
    search = GridSearchCV(MLPClassifier(**FAST), {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.8


def test_pickle_round_trip_rebuilds_compiled_functions_lazily(iris):
    X, y = iris
    clf = MLPClassifier(**FAST).fit(X, y)
    blob = pickle.dumps(clf)
    assert b"pytensor.compile" not in blob  # no compiled function inside
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X))


def test_same_random_state_same_model(iris):
    X, y = iris
    a = MLPClassifier(**FAST).fit(X, y)
    b = MLPClassifier(**FAST).fit(X, y)
    for va, vb in zip(a.network_.get_values(), b.network_.get_values()):
        np.testing.assert_array_equal(va, vb)


def test_blas_threads_reaches_the_trainer_and_is_a_hyperparameter(iris):
    X, y = iris
    clf = MLPClassifier(**FAST, blas_threads=1).fit(X, y)
    assert clf._trainer.blas_threads == 1
    assert clone(clf).get_params()["blas_threads"] == 1
    assert MLPClassifier(**FAST).fit(X, y)._trainer.blas_threads is None  # "auto": tuned


def test_partial_fit_and_warm_start_count_as_scikit_learn_does(iris):
    """``n_iter_`` counts the epochs of the last call (1 for ``partial_fit``), ``t_`` and
    ``loss_curve_`` keep counting across calls; warm start continues from the weights."""
    X, y = iris
    clf = MLPClassifier(**FAST)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    first = clf.loss_curve_[-1]
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 21 and clf.t_ == 21 * len(X)
    assert clf.loss_curve_[-1] < first
    warm = MLPClassifier(**{**FAST, "max_iter": 5, "warm_start": True}).fit(X, y)
    w0 = warm.coefs_[0]
    warm.fit(X, y)
    assert warm.n_iter_ == 5 and len(warm.loss_curve_) == 10
    assert not np.array_equal(w0, warm.coefs_[0])
    with pytest.raises(SymnnValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)


def test_early_stopping_records_validation_scores(iris):
    X, y = iris
    clf = MLPClassifier(
        **{**FAST, "early_stopping": True, "max_iter": 300, "n_iter_no_change": 5}
    ).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.n_iter_ < 300  # it stopped early
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert all(0 <= s <= 1 for s in clf.validation_scores_)  # accuracies


def test_early_stopping_restores_the_weights_of_the_best_validation_epoch(iris, monkeypatch):
    from symnn.estimator import epochs

    seen = []

    class Recording(epochs.SklearnEpochs):
        def on_epoch_end(self, trainer, epoch, logs):
            out = super().on_epoch_end(trainer, epoch, logs)
            seen.append((self.est.validation_scores_[-1], trainer.network.get_values()))
            return out

    monkeypatch.setattr("symnn.estimator.base.SklearnEpochs", Recording)
    X, y = iris
    clf = MLPClassifier(
        **{**FAST, "early_stopping": True, "max_iter": 300, "n_iter_no_change": 5}
    ).fit(X, y)
    best = int(np.argmax([score for score, _ in seen]))  # the first epoch with the best score
    assert best < len(seen) - 1  # it stopped after the best epoch, not at it
    for a, b in zip(seen[best][1], clf.network_.get_values(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["lbfgs", "l-bfgs-b", "sgd", "momentum"])
def test_other_optimizers(iris, solver):
    X, y = iris
    clf = MLPClassifier(**{**FAST, "solver": solver, "learning_rate_init": 0.05})
    if solver in ("lbfgs", "l-bfgs-b"):
        clf.set_params(learning_rate_init=0.001, batch_size="auto")
    clf.fit(X, y)
    assert clf.score(X, y) > 0.7


def test_regressor_multi_output():
    X, Y = make_regression(200, 5, n_targets=2, noise=0.1, random_state=0)
    Y = Y / Y.std(axis=0)
    reg = MLPRegressor(**{**FAST, "max_iter": 200}).fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.score(X, Y) > 0.9


@pytest.mark.parametrize(
    "params, match",
    [
        ({"activation": "swish"}, "activation='swish' is not known"),
        ({"solver": "adamw"}, "solver='adamw' is not known"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"learning_rate_init": 0}, "learning_rate_init=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"dtype": "int8"}, "dtype='int8'"),
    ],
)
def test_bad_hyperparameters_are_named_at_fit(iris, params, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**{**FAST, **params}).fit(X, y)


def test_early_stopping_with_auto_batch_on_a_small_data_set(iris):
    """batch_size="auto" is counted after the validation rows are held out: no crash and no
    warning on 150 samples (the held-out 15 left 135 < 200 training rows)."""
    import warnings

    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # 5 epochs are not enough
        clf = MLPClassifier(early_stopping=True, max_iter=5, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ == 5


def test_early_stopping_with_a_too_small_validation_set_is_an_error(iris):
    """As in scikit-learn: fewer than 2 validation rows is an error, not a silent switch."""
    X, y = iris
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPClassifier(early_stopping=True, max_iter=2, random_state=0).fit(X[::17], y[::17])


# -- the drop-in: scikit-learn's meanings, checked against scikit-learn itself ----------------
def _twin_cases():
    from sklearn.datasets import make_multilabel_classification

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    Xr, yr = make_regression(120, 4, noise=1.0, random_state=0)
    Xm, Ym = make_multilabel_classification(100, 6, n_classes=3, random_state=0)
    return {
        "multiclass sgd nesterov": ("C", X, y, {"solver": "sgd", "alpha": 0.1}),
        "binary adam": ("C", X[y < 2], y[y < 2], {"solver": "adam", "alpha": 0.01}),
        "multilabel adam": ("C", Xm / 10, Ym, {"solver": "adam"}),
        "regression sgd momentum": (
            "R", Xr, yr / yr.std(), {"solver": "sgd", "nesterovs_momentum": False}),
        "regression invscaling": (
            "R", Xr, yr / yr.std(), {"solver": "sgd", "learning_rate": "invscaling",
                                     "learning_rate_init": 0.1}),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_twin_cases()))
def test_same_trajectory_as_scikit_learns_estimator(case):
    """Same random_state, minibatches in order: scikit-learn's initial weights, alpha scale,
    losses, update rules, schedules and fitted attributes, to float32 precision (this
    failed before the drop-in: alpha was batch_size times stronger, the regression loss
    lacked its 1/2, coefs_/n_layers_/... did not exist)."""
    from sklearn import neural_network as sk

    kind, X, y, params = _twin_cases()[case]
    ours_cls, theirs_cls = (
        (MLPClassifier, sk.MLPClassifier) if kind == "C" else (MLPRegressor, sk.MLPRegressor)
    )
    common = dict(hidden_layer_sizes=(7,), batch_size=16, shuffle=False, max_iter=6,
                  random_state=3, **params)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**common, dtype="float64").fit(X, y)
        theirs = theirs_cls(**common).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "best_loss_"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name)), name
    if kind == "R":
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    if kind == "C":
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6)
        np.testing.assert_allclose(
            ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-6, atol=1e-9
        )
    float32 = ours_cls(**common).fit(X, y)  # the default: float32, the same to its precision
    np.testing.assert_allclose(float32.loss_curve_, theirs.loss_curve_, rtol=2e-3)


def test_lbfgs_matches_scikit_learn_and_warns_when_not_converged():
    from sklearn.neural_network import MLPClassifier as Theirs

    X, y = load_iris(return_X_y=True)
    common = dict(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=15, random_state=0)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge after 15"):
        ours = MLPClassifier(**common, dtype="float64").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = Theirs(**common).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 15
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-3)


def test_convergence_warning_and_the_stopping_rule(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopped by tol: no warning
        clf = MLPClassifier(max_iter=500, tol=10.0, n_iter_no_change=2, random_state=0)
        clf.fit(X, y)
    from sklearn.neural_network import MLPClassifier as Theirs

    theirs = Theirs(max_iter=500, tol=10.0, n_iter_no_change=2, random_state=0).fit(X, y)
    assert clf.n_iter_ == theirs.n_iter_ == 4  # the first epoch, then 3 without improvement


def test_former_spellings_warn_and_keep_working(iris):
    X, y = iris
    with pytest.warns(FutureWarning) as record:
        clf = MLPClassifier(optimizer="sgd", learning_rate=0.05, max_epochs=4, random_state=0)
        clf.fit(X, y)
    said = " ".join(str(w.message) for w in record)
    for new in ("solver='sgd'", "learning_rate_init=0.05", "max_iter=4"):
        assert new in said
    assert clf.n_iter_ == 4 and clf._trainer.optimizer_name == "nesterov_momentum"


def test_sparse_input_and_float32_overflow_are_handled(iris):
    import scipy.sparse as sp

    X, y = iris
    dense = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    sparse = MLPClassifier(max_iter=5, random_state=0).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.coefs_[0], sparse.coefs_[0])
    huge = X.copy()
    huge[0, 0] = 1e300  # finite in float64, infinite in float32
    with pytest.raises(SymnnValueError, match="beyond the range of dtype='float32'"):
        MLPClassifier(max_iter=5).fit(huge, y)


def test_parameters_a_solver_does_not_use_are_named(iris):
    X, y = iris
    with pytest.warns(UserWarning, match=r"momentum=0.5 has no effect with solver='adam'"):
        MLPClassifier(momentum=0.5, max_iter=2).fit(X, y)
    with pytest.warns(UserWarning, match=r"beta_1=0.5 has no effect with solver='sgd'"):
        MLPClassifier(solver="sgd", beta_1=0.5, max_iter=2).fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
