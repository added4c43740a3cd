"""Cross-validation speed: ``cross_val_score(MLPClassifier(...), X, y, cv=3)`` with
``symnn.MLPClassifier`` against ``sklearn.neural_network.MLPClassifier`` with identical
parameters (784-100-10, adam, 10 epochs, the same ``random_state``) on 20,000 Fashion-MNIST
rows (random data of the same shape when it is not installed).

Every fold fits a fresh clone. symnn compiles a model's step once per process and gives each
later clone with the same architecture and dtype the compiled code with its own shared
variables, so the first round (printed apart) includes the compile and the timed rounds do
not. Prints medians of interleaved rounds and the ratio. Run:

    python benchmarks/cv_speed.py                    # 3 rounds
    python benchmarks/cv_speed.py --rounds 5 --samples 20000
"""

from __future__ import annotations

import argparse
import time
import warnings

from _common import fashion_or_random, interleaved, machine, median


def runner(cls, params, X, y, first: list[float]):
    from sklearn.model_selection import cross_val_score

    def run() -> float:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = cross_val_score(cls(**params), X, y, cv=3)
        seconds = time.perf_counter() - t0
        if not first:
            first.append(seconds)
        runner.scores.setdefault(cls.__module__, []).append(float(scores.mean()))
        return seconds

    return run


runner.scores = {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=20000)
    args = ap.parse_args(argv)
    from sklearn.neural_network import MLPClassifier as Theirs

    from symnn import MLPClassifier as Ours

    X, y, source = fashion_or_random(args.samples, "float32")
    print(f"machine: {machine()}; {source}, {len(X)} rows, 3-fold cross_val_score")
    params = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=10, random_state=0)
    first: dict[str, list[float]] = {"symnn": [], "scikit-learn": []}
    runners = {
        "symnn": runner(Ours, params, X, y, first["symnn"]),
        "scikit-learn": runner(Theirs, params, X, y, first["scikit-learn"]),
    }
    times = interleaved(runners, args.rounds)
    ratio = median([b / a for a, b in zip(times["symnn"], times["scikit-learn"])])
    print(f"{'library':<14}{'first s':>9}{'median s':>10}{'accuracy':>10}")
    for name, cls in (("symnn", Ours), ("scikit-learn", Theirs)):
        acc = median(runner.scores[cls.__module__])
        print(f"{name:<14}{first[name][0]:>9.2f}{median(times[name]):>10.2f}{acc:>10.4f}")
    print(f"scikit-learn time / symnn time (median of rounds): {ratio:.2f}x")


if __name__ == "__main__":
    main()
