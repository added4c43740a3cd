"""Activation maximisation: the input each class of a trained classifier likes best, for a
digits classifier and (when installed) a Fashion-MNIST classifier; a PNG grid and the
per-unit report (activation, the best activation on real data, class probability).

    python examples/activation_maximization.py
"""

from __future__ import annotations

from pathlib import Path

from _data import parser, wrote

from symnn import datasets, plot
from symnn.inputopt import InputPenalties, activation_maximization
from symnn.layers import mlp
from symnn.train import Trainer


def run(data, hidden: int, epochs: int, steps: int, out_dir: Path, n_train=None):
    X, y = data.X_train[:n_train], data.y_train[:n_train]
    trainer = Trainer(
        mlp([data.n_features, hidden, data.n_classes], rng=0), optimizer="adam", learning_rate=1e-3
    )
    trainer.fit(X, y, epochs=epochs, batch_size=64)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    scale = (64 / data.n_features) ** 0.5  # 0.1 and 0.3 suit the 64 pixels of digits
    report = activation_maximization(
        trainer.network,
        range(data.n_classes),
        steps=steps,
        image_shape=data.image_shape,
        reference=X,
        penalties=InputPenalties(l2=0.1 * scale, tv=0.3 * scale),
    )
    titles = [f"{data.classes[r['unit']]}\np={r['probability']:.2f}" for r in report.rows]
    plot.plot_image_grid(
        report.images(),
        out_dir / f"{data.name}_classes.png",
        titles=titles,
        title=f"{data.name}: inputs that maximise each class logit",
    )
    (out_dir / f"{data.name}_report.json").write_text(report.dumps())
    wrote(out_dir / f"{data.name}_classes.png", out_dir / f"{data.name}_report.json")
    print(f"\n{data!r}: test accuracy {accuracy:.3f}")
    print(report.to_table())
    return {"accuracy": accuracy, "report": report}


def main(epochs: int = 30, steps: int = 300, n_train=None, out: str = "out/activation_max"):
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"digits": run(datasets.load_digits(), 100, epochs, steps, out_dir, n_train)}
    if datasets.fashion_mnist_available():
        fashion = datasets.load_fashion_mnist()
        results["fashion-mnist"] = run(fashion, 256, max(1, epochs // 6), steps, out_dir, n_train)
    return results


if __name__ == "__main__":
    ap = parser(__doc__, data=False)
    ap.epilog = (
        "Data: scikit-learn's digits, and Fashion-MNIST as well when installed "
        f"(${datasets.FASHION_MNIST_ENV} or {datasets.FASHION_MNIST_PATH})."
    )
    ap.add_argument("--epochs", type=int, default=30, help="training epochs (digits)")
    ap.add_argument("--steps", type=int, default=300, help="ascent steps per unit")
    ap.add_argument("--out", default="out/activation_max", help="output folder")
    args = ap.parse_args()
    main(epochs=args.epochs, steps=args.steps, out=args.out)
