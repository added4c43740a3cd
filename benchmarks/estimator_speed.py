"""scikit-learn drop-in speed: ``symnn.MLPClassifier`` against
``sklearn.neural_network.MLPClassifier`` with identical parameters (784-100-10, 10 epochs,
``batch_size="auto"``, the same ``random_state``, so the same initial weights), adam and sgd,
on Fashion-MNIST (60,000 training and 10,000 test images; random data of the same shape when
it is not installed). Prints fit wall time (median of interleaved rounds, after one untimed
round that includes symnn's compile), test accuracy and the ratio. Run:

    python benchmarks/estimator_speed.py            # 3 rounds
    python benchmarks/estimator_speed.py --rounds 5 --samples 20000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import interleaved, machine, median


def load(n_train: int):
    from symnn.datasets import fashion_mnist_available, load_fashion_mnist

    if fashion_mnist_available():
        d = load_fashion_mnist(dtype="float32")
        return d.X_train[:n_train], d.y_train[:n_train], d.X_test, d.y_test, "Fashion-MNIST"
    rng = np.random.default_rng(0)
    X = rng.random((n_train + 10000, 784)).astype("float32")
    y = rng.integers(0, 10, len(X))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], "random data"


def runner(cls, params, data, scores):
    X, y, X_test, y_test = data

    def run() -> float:
        clf = cls(**params)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
        seconds = time.perf_counter() - t0
        scores.append(clf.score(X_test, y_test))
        return seconds

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=60000)
    args = ap.parse_args(argv)
    from sklearn.neural_network import MLPClassifier as Theirs

    from symnn import MLPClassifier as Ours

    X, y, X_test, y_test, source = load(args.samples)
    print(f"machine: {machine()}; {source}, {len(X)} training / {len(X_test)} test images")
    print(f"{'solver':<7}{'library':<10}{'fit s':>8}{'accuracy':>10}{'speed-up':>10}")
    for solver in ("adam", "sgd"):
        params = dict(hidden_layer_sizes=(100,), solver=solver, max_iter=10, random_state=0)
        if solver == "sgd":
            params["learning_rate_init"] = 0.01
        scores: dict[str, list[float]] = {"symnn": [], "scikit-learn": []}
        data = (X, y, X_test, y_test)
        runners = {
            "symnn": runner(Ours, params, data, scores["symnn"]),
            "scikit-learn": runner(Theirs, params, data, scores["scikit-learn"]),
        }
        times = interleaved(runners, args.rounds)
        ratio = median([b / a for a, b in zip(times["symnn"], times["scikit-learn"])])
        for name in runners:
            print(
                f"{solver:<7}{name:<10}{median(times[name]):>8.2f}"
                f"{median(scores[name][1:]):>10.4f}"
                + (f"{ratio:>9.2f}x" if name == "symnn" else "")
            )


if __name__ == "__main__":
    main()
