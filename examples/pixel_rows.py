"""An LSTM reads each image row by row (28 steps of 28 pixels for Fashion-MNIST, the classic
"pixel-row MNIST"; 8 steps of 8 for scikit-learn's digits when Fashion-MNIST is not
installed) and classifies it from its last state; then the classes are maximised with respect
to the whole sequence, pixels kept in [0, 1].

    python examples/pixel_rows.py
"""

from __future__ import annotations

import time

from _data import image_data, parser, subset

from symnn.inputopt import Reference, activation_maximization
from symnn.layers import LSTM, Dense, Reshape, Sequential
from symnn.train import Trainer


def network(steps: int, width: int, n_classes: int, units: int = 128) -> Sequential:
    """Flat rows ``(N, steps * width)`` seen as ``steps`` rows of ``width`` pixels."""
    return Sequential([
        Reshape((steps, width), name="rows"),
        LSTM(width, units, only_return_final=True, rng=0, name="lstm"),
        Dense(units, n_classes, "softmax", rng=1, name="classes"),
    ])  # fmt: skip


def main(epochs: int = 10, units: int = 128, steps: int = 100, n_train=None,
         out: str | None = None) -> dict:  # fmt: skip
    data = subset(image_data(), n_train, None)
    height, width = data.image_shape
    net = network(height, width, data.n_classes, units)
    print(f"{data!r}\n{net.summary()}")
    trainer = Trainer(net, optimizer="adam", learning_rate=2e-3, seed=0)
    t0 = time.perf_counter()
    trainer.fit(data.X_train, data.y_train, epochs=epochs, batch_size=128)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    print(f"test accuracy {accuracy:.4f} after {epochs} epochs ({time.perf_counter() - t0:.1f} s)")
    ref = Reference(data.X_train[:2000], labels=data.y_train[:2000], top_k=1)
    report = activation_maximization(net, range(data.n_classes), image_shape=data.image_shape,
                                     steps=steps, x0="class-mean", reference=ref)  # fmt: skip
    print(report.to_table())
    return {"accuracy": accuracy, "report": report, "network": net}


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--epochs", type=int, default=10, help="training epochs")
    ap.add_argument("--units", type=int, default=128, help="LSTM units")
    ap.add_argument("--steps", type=int, default=100, help="ascent steps per class")
    args = ap.parse_args()
    main(epochs=args.epochs, units=args.units, steps=args.steps)
