"""symnn's public calls from several threads at once (Dask workers, joblib's threading
backend, web services) and several processes sharing one compile directory, on the default
C backend: every result equals the serial one with the same seed and a fixed BLAS count."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytensor.tensor as pt
import pytest
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV, KFold

import symnn
from symnn import MLPClassifier
from symnn.datasets import load_digits
from symnn.inputopt import InputPenalties, activation_maximization, maximize
from symnn.io import from_onnx, load_state_dict, to_onnx
from symnn.layers import from_arch, mlp
from symnn.train import ScipyTrainer, Trainer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("users_backend")]


def in_threads(fn, args_list):
    """Run ``fn(*args)`` for each args in its own thread, all released at once."""
    barrier = threading.Barrier(len(args_list))
    results, errors = [None] * len(args_list), []

    def run(i, args):
        barrier.wait()
        try:
            results[i] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.X_train, d.y_train


def _fit(X, y, seed):
    clf = MLPClassifier(hidden_layer_sizes=(24,), max_iter=15, random_state=seed, blas_threads=1)
    return clf.fit(X, y)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_estimators_fitted_in_threads_equal_serial_fits(digits, n):
    X, y = digits
    serial = [_fit(X, y, seed).predict_proba(X) for seed in range(n)]
    threaded = in_threads(lambda seed: _fit(X, y, seed).predict_proba(X), [(s,) for s in range(n)])
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def trained(digits):
    X, y = digits
    return _fit(X, y, 0)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_predict_on_one_shared_estimator_from_threads(trained, digits, n):
    X, _ = digits
    parts = [X[i::n] for i in range(n)]
    serial = [trained.predict_proba(p) for p in parts]
    threaded = in_threads(trained.predict_proba, [(p,) for p in parts])
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def objective(trained):
    x = pt.matrix("x", dtype="float32", shape=(None, 64))
    return trained.network_(x, deterministic=True)[:, 3], x


@pytest.mark.parametrize("method", ["adam", "l-bfgs-b"])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_maximize_on_one_shared_objective_from_threads(objective, n, method):
    def run(seed):
        r = maximize(*objective, n_starts=4, seed=seed, steps=60, method=method, blas_threads=1)
        return r.x, r.value

    serial = [run(s) for s in range(n)]
    threaded = in_threads(run, [(s,) for s in range(n)])
    for (xa, va), (xb, vb) in zip(serial, threaded):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(va, vb)


def test_activation_maximization_of_one_network_from_threads(trained):
    def run(units):
        r = activation_maximization(
            trained.network_, units, steps=40, image_shape=(8, 8), blas_threads=1,
            penalties=InputPenalties(jitter=1),
        )  # fmt: skip
        return r.x

    jobs = [([0, 1],), ([2],), ([3, 4, 5],), ([6],)]
    serial = [run(*j) for j in jobs]
    for a, b in zip(serial, in_threads(run, jobs)):
        np.testing.assert_array_equal(a, b)


def test_visualize_of_one_network_and_objective_from_threads():
    """Calls that share one visualisation graph (its seeded generator, its start images)
    from threads give what they give alone."""
    from symnn.inputopt import visualize
    from symnn.layers import from_arch

    net = from_arch("conv4x3,pool2,8,3", (6, 6), rng=0)
    x0 = np.random.default_rng(0).uniform(0.2, 0.8, (8, 36)).astype("float32")

    def run(seed, rows):
        return visualize(net, "channel:conv0:1", image_shape=(6, 6), x0=x0[rows], steps=30,
                         jitter=1, seed=seed, seed_penalty=0.5, blas_threads=1).images

    jobs = [(0, slice(0, 2)), (1, slice(2, 5)), (2, slice(5, 6)), (3, slice(6, 8))]
    serial = [run(*j) for j in jobs]
    for a, b in zip(serial, in_threads(run, jobs)):
        np.testing.assert_array_equal(a, b)


def test_trainers_with_different_fixed_thread_counts_in_threads(digits):
    """A run with blas_threads=1 and one with 2 at the same time: each gives what it gives
    alone (the BLAS count is the run's own, not whatever another thread set last)."""
    X, y = digits

    def run(threads):
        t = Trainer(mlp([64, 100, 10], rng=0), seed=0, blas_threads=threads)
        t.fit(X, y, epochs=2, batch_size=64, progress=False)
        return t.network.get_values()

    serial = [run(1), run(2)]
    for a, b in zip(serial, in_threads(run, [(1,), (2,)])):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)


GRID = {"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}


@pytest.fixture(scope="module")
def serial_search(digits):
    X, y = digits
    base = MLPClassifier(
        hidden_layer_sizes=(24,),
        learning_rate_init=0.01,
        max_iter=15,
        random_state=0,
        blas_threads=1,
    )
    search = GridSearchCV(base, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=1)
    scores = search.fit(X, y).cv_results_["mean_test_score"]
    assert np.all(scores > 0.4) and scores.max() > 0.6, scores  # chance is 0.1
    return base, scores


def test_grid_search_with_joblib_threads_equals_serial(digits, serial_search):
    X, y = digits
    base, serial = serial_search
    search = GridSearchCV(base, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=4)
    with parallel_backend("threading", n_jobs=4):
        search.fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], serial)


def test_grid_search_on_dask_workers_with_four_threads_each_equals_serial(digits, serial_search):
    import distributed
    X, y = digits
    base, serial = serial_search
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=4,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
    ):
        search = GridSearchCV(base, GRID, cv=KFold(3, shuffle=True, random_state=0), n_jobs=-1)
        with parallel_backend("dask"):
            search.fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], serial)


COMPILE_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from symnn.datasets import load_digits
    from symnn.layers import mlp
    from symnn.train import Trainer

    d = load_digits()
    t = Trainer(mlp([64, 16, 10], rng=0), seed=0, blas_threads=1)
    h = t.fit(d.X_train, d.y_train, epochs=2, batch_size=64, progress=False)
    print(repr(h.batch_loss[-1]), round(t.evaluate(d.X_test, d.y_test)["accuracy"], 6))
    """
)


def test_two_processes_compile_the_same_step_into_an_empty_compile_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SYMNN_MODE"}
    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp_path / 'compiledir'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COMPILE_SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    assert outs[0][0] == outs[1][0] and outs[0][0].strip()
    assert any((tmp_path / "compiledir").rglob("*.so"))  # they really compiled C modules


FIRST_COMPILES_SCRIPT = textwrap.dedent(
    """
    import threading
    from symnn import MLPClassifier
    from symnn.datasets import load_digits

    d = load_digits()
    errors, barrier = [], threading.Barrier(4)

    def fit(seed):
        barrier.wait()
        try:
            MLPClassifier(hidden_layer_sizes=(24,), max_iter=2, random_state=seed).fit(
                d.X_train, d.y_train
            )
        except BaseException as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=fit, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("errors:", errors)
    """
)


def test_the_first_compiles_of_a_fresh_process_from_four_threads(tmp_path):
    """A new process whose first compiles happen in four threads at once (a Dask worker's
    first tasks), in an empty compile directory of its own, so that the C modules really are
    compiled from those threads: PyTensor initialises its settings lazily and must not race."""
    env = {k: v for k, v in os.environ.items() if k != "SYMNN_MODE"}
    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp_path / 'compiledir'}"
    res = subprocess.run(
        [sys.executable, "-c", FIRST_COMPILES_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "errors: []" in res.stdout, res.stdout
    assert any((tmp_path / "compiledir").rglob("*.so"))  # compiled there, from the threads


# -- every public entry point from 2, 4 and 8 threads: results equal the serial ones ----------
def _equal_lists(serial, threaded):
    for a, b in zip(serial, threaded, strict=True):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)


def _cnn(seed):
    return from_arch("conv4x3same,pool2,conv4x3,10", (8, 8), rng=seed)


def _fit_cnn(X, y, seed):
    t = Trainer(_cnn(seed), seed=seed, blas_threads=1)
    t.fit(X[:400], y[:400], epochs=1, batch_size=32, progress=False)
    return t


@pytest.mark.parametrize("n", [2, 4, 8])
def test_convolutional_networks_trained_and_used_in_threads(digits, n):
    X, y = digits

    def run(seed):
        t = _fit_cnn(X, y, seed)
        return [*t.network.get_values(), t.predict_proba(X[:100])]

    seeds = [(s,) for s in range(n)]
    _equal_lists([run(*s) for s in seeds], in_threads(run, seeds))


@pytest.fixture(scope="module")
def cnn_trainer(digits):
    return _fit_cnn(*digits, 0)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_onnx_export_and_import_in_threads(cnn_trainer, digits, tmp_path, n):
    X, _ = digits

    def run(i):
        path = to_onnx(cnn_trainer.network, tmp_path / f"net{i}.onnx")
        back = from_onnx(path)
        x = pt.matrix("x", dtype="float32")
        return path.read_bytes(), symnn.function([x], back(x, deterministic=True))(X[:50])

    serial = run(-1)
    for data, out in in_threads(run, [(i,) for i in range(n)]):
        assert data == serial[0]
        np.testing.assert_array_equal(out, serial[1])


@pytest.mark.parametrize("n", [2, 4, 8])
def test_save_load_and_load_state_dict_in_threads(cnn_trainer, digits, tmp_path, n):
    X, _ = digits
    first, conv, dense = (la for la in cnn_trainer.network.layers if la.params)
    torch_layout = {  # the trained weights as PyTorch would hold them
        "c0.weight": first.W.get_value(), "c0.bias": first.b.get_value(),
        "c1.weight": conv.W.get_value(), "c1.bias": conv.b.get_value(),
        "fc.weight": dense.W.get_value().T, "fc.bias": dense.b.get_value(),
    }  # fmt: skip

    def run(i):
        again = symnn.load(symnn.save(cnn_trainer, tmp_path / f"run{i}"))
        fresh = _cnn(100 + i)
        load_state_dict(fresh, torch_layout)
        return again.predict_proba(X[:100]), fresh.get_values()

    serial = run(-1)
    np.testing.assert_array_equal(serial[0], cnn_trainer.predict_proba(X[:100]))
    for probs, values in in_threads(run, [(i,) for i in range(n)]):
        np.testing.assert_array_equal(probs, serial[0])
        _equal_lists([values], [serial[1]])


@pytest.mark.parametrize("n", [2, 4, 8])
def test_scipy_trainers_in_threads(digits, n):
    X, y = digits

    def run(seed):
        t = ScipyTrainer(mlp([64, 16, 10], rng=seed, dtype="float64"), blas_threads=1)
        t.fit(X[:300].astype("float64"), y[:300], maxiter=20)
        return t.network.get_values()

    seeds = [(s,) for s in range(n)]
    _equal_lists([run(*s) for s in seeds], in_threads(run, seeds))


@pytest.mark.parametrize("n", [2, 4, 8])
def test_activation_maximization_with_a_prior_and_warps_in_threads(trained, digits, n):
    X, _ = digits
    kw = dict(steps=20, image_shape=(8, 8), reference=X[:300], blas_threads=1,
              penalties=InputPenalties(scale=0.05, rotate=5))  # fmt: skip

    def run(unit):
        report = activation_maximization(trained.network_, [unit], seed=unit, **kw)
        assert report.settings["prior"] == "gmm"
        return [report.x, np.asarray([r.prior_weight for r in report.rows])]

    units = [(u,) for u in range(n)]
    _equal_lists([run(*u) for u in units], in_threads(run, units))
