"""Decision boundaries of a 2-H-2 tanh network on scikit-learn's moons, for hidden sizes 1, 2,
3, 4, 5, 20 and 50 (L-BFGS-B with a light L2 penalty), and the three-class extension: one hidden
unit draws a straight line, three or more bend around the moons.

    python examples/moons_decision_boundary.py [--l2 1e-3] [--out out/moons]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _data import parser, wrote
from matplotlib.figure import Figure

from symnn import plot
from symnn.datasets import make_moons
from symnn.layers import mlp
from symnn.train import ScipyTrainer

HIDDEN = (1, 2, 3, 4, 5, 20, 50)


def _fit(X, y, hidden, n_classes, maxiter, seed, l2):
    net = mlp([2, hidden, n_classes], hidden="tanh", rng=seed, dtype="float64")
    trainer = ScipyTrainer(net, method="l-bfgs-b", l2=l2, seed=seed)
    trainer.fit(X, y, maxiter=maxiter)
    return trainer


def main(
    hidden_sizes=HIDDEN,
    maxiter: int = 500,
    out: str = "out/moons",
    seed: int = 0,
    l2: float = 1e-3,
):
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    X, y = make_moons(200, noise=0.2, seed=seed, dtype="float64")
    cols = min(4, len(hidden_sizes))
    rows = int(np.ceil(len(hidden_sizes) / cols))
    fig = Figure(figsize=(4 * cols, 3.6 * rows), layout="constrained")
    accuracies = {}
    for i, h in enumerate(hidden_sizes):
        trainer = _fit(X, y, h, 2, maxiter, seed, l2)
        accuracies[h] = trainer.evaluate(X, y)["accuracy"]
        ax = fig.add_subplot(rows, cols, i + 1)
        plot.plot_decision_boundary(
            trainer.predict, X, y, ax=ax, title=f"hidden layer size {h} (acc {accuracies[h]:.2f})"
        )
        print(f"hidden {h:>2}: training accuracy {accuracies[h]:.3f}")
    fig.savefig(out_dir / "moons_hidden_sizes.png", dpi=100)
    X3, y3 = make_moons(300, noise=0.2, seed=seed, n_classes=3, dtype="float64")
    trainer = _fit(X3, y3, 5, 3, maxiter, seed, l2)
    acc3 = trainer.evaluate(X3, y3)["accuracy"]
    plot.plot_decision_boundary(
        trainer.predict,
        X3,
        y3,
        out_dir / "moons_three_classes.png",
        title=f"three classes, hidden 5 (acc {acc3:.2f})",
    )
    print(f"three classes: training accuracy {acc3:.3f}")
    wrote(out_dir / "moons_hidden_sizes.png", out_dir / "moons_three_classes.png")
    return {"accuracies": accuracies, "three_class_accuracy": acc3}


if __name__ == "__main__":
    ap = parser(__doc__, data=False)
    ap.epilog = "Data: scikit-learn's two moons (200 points, noise 0.2), made offline."
    ap.add_argument("--maxiter", type=int, default=500, help="L-BFGS-B iterations per network")
    ap.add_argument("--l2", type=float, default=1e-3, help="L2 penalty on the weights")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    ap.add_argument("--out", default="out/moons", help="output folder")
    args = ap.parse_args()
    main(maxiter=args.maxiter, out=args.out, seed=args.seed, l2=args.l2)
