"""Hyperparameter search across processes through joblib's backends: loky, and a Dask
LocalCluster of two worker processes on 127.0.0.1 (what a real cluster would run)."""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, KFold

from symnn import MLPClassifier

pytestmark = pytest.mark.slow  # Dask clusters and joblib workers

GRID = {"alpha": [1e-4, 1e-2], "learning_rate_init": [0.01, 0.03]}  # 4 settings
BASE = MLPClassifier(hidden_layer_sizes=(8,), batch_size=32, max_iter=30, random_state=0)


@pytest.fixture(scope="module")
def serial_scores():
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(BASE, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=1)
    scores = search.fit(X, y).cv_results_["mean_test_score"]
    # sensible, not only equal: every setting learns iris well above chance (1/3)
    assert np.all(scores > 0.6) and scores.max() > 0.85, scores
    return X, y, scores


def test_grid_search_with_loky_equals_serial(serial_scores):
    X, y, serial = serial_scores
    search = GridSearchCV(BASE, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=2)
    with parallel_backend("loky"):
        search.fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], serial)


def test_grid_search_on_a_dask_local_cluster_equals_serial(serial_scores):
    import distributed
    X, y, serial = serial_scores
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        search = GridSearchCV(BASE, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=-1)
        with parallel_backend("dask"):
            search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], serial)


def _warm(X, y):
    """What docs/distributed.md tells users to run on every worker: a one-epoch fit and a
    score of the model searched, on a few rows of every class."""
    from sklearn.base import clone

    from symnn.backend.parallel import modules_compiled

    clone(BASE).set_params(max_iter=1).fit(X[::5], y[::5]).score(X[::5], y[::5])
    return modules_compiled()


def _modules_compiled():
    from symnn.backend.parallel import modules_compiled

    return modules_compiled()


@pytest.mark.slow
def test_warmed_dask_workers_compile_no_c_code_during_the_search(tmp_path, monkeypatch):
    """Workers start on an empty compile directory with symnn's own backend; after the warm
    step, a search over alpha and the learning rate compiles no C module anywhere."""
    import distributed
    monkeypatch.setenv("PYTENSOR_FLAGS", f"base_compiledir={tmp_path}")
    monkeypatch.delenv("SYMNN_MODE", raising=False)
    X, y = load_iris(return_X_y=True)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        warmed = client.run(_warm, X, y)
        assert sum(warmed.values()) > 0  # the workers really compiled C code
        search = GridSearchCV(BASE, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=-1)
        with parallel_backend("dask"):
            search.fit(X, y)
        assert client.run(_modules_compiled) == warmed
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores > 0.6) and scores.max() > 0.85, scores
