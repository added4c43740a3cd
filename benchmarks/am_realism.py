"""Readable activation maximisation: plain AM against AM with the default density prior, on
the ten class units of a 784-256-10 relu network (Adam, 8 epochs) trained on Fashion-MNIST
(scikit-learn's digits and a 64-256-10 network when Fashion-MNIST is not installed).

Reference set: 20,000 training images with their labels. Per unit and in summary: does the
found input beat the unit's best real input; its correlation with the mean image of its class;
the majority label of its 5 nearest training images (k-NN agreement); the label an
independently trained scikit-learn ``MLPClassifier`` gives it (judge agreement). Writes a
figure (per class: plain, with the prior, the top three real inputs). Run:

    python benchmarks/am_realism.py [--out docs/am_realism_fashion.png] [--steps 300]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import machine


def load():
    from symnn.datasets import fashion_mnist_available, load_digits, load_fashion_mnist

    if fashion_mnist_available():
        d = load_fashion_mnist(dtype="float32")
        return d, (28, 28), "Fashion-MNIST"
    return load_digits(), (8, 8), "digits"


def summary(name: str, report) -> dict[str, float]:
    rows = report.rows
    return {
        "rows": name,
        "beats best real": sum(bool(r.exceeds_reference) for r in rows),
        "class corr (mean)": float(np.mean([r.class_corr for r in rows])),
        "5-NN agrees": sum(r.knn_label == r.unit for r in rows),
        "judge agrees": sum(r.judge_label == r.unit for r in rows),
        "at bounds (mean)": float(np.mean([r.at_bounds for r in rows])),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="am_realism.png")
    args = ap.parse_args(argv)
    from sklearn.neural_network import MLPClassifier

    from symnn.inputopt import InputPenalties, Reference, activation_maximization
    from symnn.layers import mlp
    from symnn.plot import plot_image_rows
    from symnn.train import Trainer

    data, shape, source = load()
    X, y = data.X_train, data.y_train
    n_in = X.shape[1]
    print(f"machine: {machine()}; {source}, {len(X)} training images")
    trainer = Trainer(mlp([n_in, 256, 10], hidden="relu", rng=0), seed=0)
    trainer.fit(X, y, epochs=8, batch_size=128, progress=False)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    print(f"network {n_in}-256-10 relu, test accuracy {accuracy:.4f}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        judge = MLPClassifier(hidden_layer_sizes=(100,), max_iter=20, random_state=1).fit(X, y)
    judged = judge.score(data.X_test, data.y_test)
    print(f"judge (scikit-learn MLP, trained apart): test accuracy {judged:.4f}")
    ref = Reference(X[:20000], labels=y[:20000], judge=judge)
    common = dict(steps=args.steps, learning_rate=0.05, image_shape=shape, reference=ref)
    reports = {}
    for name, kw in (
        ("plain", dict(prior=None)),
        ("prior", dict(x0="class-mean")),
        ("gmm prior", dict(x0="class-mean", prior="gmm")),
        ("prior, top-input start", dict(x0="facets")),
        ("prior, per-row jitter", dict(x0="class-mean", penalties=InputPenalties(jitter=1))),
        ("prior, scale+rotate",
         dict(x0="class-mean", penalties=InputPenalties(scale=0.05, rotate=5))),
        ("plain, 1/f precond.", dict(prior=None, penalties=InputPenalties(precondition=True))),
    ):
        t0 = time.perf_counter()
        reports[name] = activation_maximization(trainer.network, range(10), **common, **kw)
        print(f"\n{name} AM ({time.perf_counter() - t0:.1f} s with compiling):")
        print(reports[name].to_table())
    print()
    table = [summary(name, r) for name, r in reports.items()]
    keys = list(table[0])
    print("  ".join(f"{k:>23}" for k in keys))
    for row in table:
        print(
            "  ".join(f"{v:>23.2f}" if isinstance(v, float) else f"{v!s:>23}" for v in row.values())
        )
    names = data.classes or [str(c) for c in range(10)]
    rows = [("plain", reports["plain"].images()), ("with prior", reports["prior"].images())]
    for k in range(3):
        picks = [r.top_examples[k] for r in reports["prior"].rows]
        rows.append((f"real #{k + 1}", ref[0][picks].reshape(-1, *shape)))
    plot_image_rows(rows, args.out, titles=names, title=f"{source}: the ten class units")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
