"""Seed 002: a 2-H-2 tanh network with L2 on scikit-learn's moons, decision boundaries for
hidden sizes 1, 2, 3, 4, 5, 20 and 50, and the three-class extension.

    python examples/moons_decision_boundary.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from symnn import plot
from symnn.datasets import make_moons
from symnn.fullbatch import ScipyTrainer
from symnn.layers import mlp

HIDDEN = (1, 2, 3, 4, 5, 20, 50)


def _fit(X, y, hidden, n_classes, maxiter, seed):
    net = mlp([2, hidden, n_classes], hidden="tanh", rng=seed, dtype="float64")
    trainer = ScipyTrainer(net, method="l-bfgs-b", l2=0.01, seed=seed)
    trainer.fit(X, y, maxiter=maxiter)
    return trainer


def main(hidden_sizes=HIDDEN, maxiter: int = 500, out: str = "out/moons", seed: int = 0):
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    X, y = make_moons(200, noise=0.2, seed=seed, dtype="float64")
    cols = min(4, len(hidden_sizes))
    rows = int(np.ceil(len(hidden_sizes) / cols))
    fig = Figure(figsize=(4 * cols, 3.6 * rows), layout="constrained")
    accuracies = {}
    for i, h in enumerate(hidden_sizes):
        trainer = _fit(X, y, h, 2, maxiter, seed)
        accuracies[h] = trainer.evaluate(X, y)["accuracy"]
        ax = fig.add_subplot(rows, cols, i + 1)
        plot.plot_decision_boundary(
            trainer.predict, X, y, ax=ax, title=f"hidden layer size {h} (acc {accuracies[h]:.2f})"
        )
        print(f"hidden {h:>2}: training accuracy {accuracies[h]:.3f}")
    fig.savefig(out_dir / "moons_hidden_sizes.png", dpi=100)
    X3, y3 = make_moons(300, noise=0.2, seed=seed, n_classes=3, dtype="float64")
    trainer = _fit(X3, y3, 5, 3, maxiter, seed)
    acc3 = trainer.evaluate(X3, y3)["accuracy"]
    plot.plot_decision_boundary(
        trainer.predict,
        X3,
        y3,
        out_dir / "moons_three_classes.png",
        title=f"three classes, hidden 5 (acc {acc3:.2f})",
    )
    print(f"three classes: training accuracy {acc3:.3f}")
    return {"accuracies": accuracies, "three_class_accuracy": acc3}


if __name__ == "__main__":
    main()
