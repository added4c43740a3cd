"""A small ResNet (a 3x3 stem, two residual blocks with batch normalisation, global average
pooling, ten classes) trained on Fashion-MNIST (scikit-learn's digits when Fashion-MNIST is not
installed); then its classes and the channels of its last residual block maximised with the
density prior, by layer name, with a figure: per unit, the found input and the real input that
activates it most.

    python examples/resnet.py
"""

from __future__ import annotations

import time
from pathlib import Path

from _data import image_data, parser, subset, wrote
from convnet import figure

from symnn.inputopt import InputPenalties, Reference, activation_maximization
from symnn.layers import resnet
from symnn.train import Trainer


def maximise(net, data, steps: int, n_ref: int) -> dict:
    """The classes and ten channels of the last block's output, by the layers' names."""
    ref = Reference(data.X_train[:n_ref], labels=data.y_train[:n_ref], top_k=1)
    common = dict(image_shape=data.image_shape, steps=steps, reference=ref)
    last = [la.name for la in net.layers if la.name and la.name.endswith(".relu")][-1]
    return {
        f"{last} channels": activation_maximization(
            net, range(10), layer=last, x0="facets", penalties=InputPenalties(jitter=1), **common
        ),
        "classes": activation_maximization(net, range(10), x0="class-mean", **common),
    }


def main(epochs: int = 8, steps: int = 200, n_train=None, n_ref: int = 20000,
         out: str = "out/resnet") -> dict:  # fmt: skip
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = subset(image_data(), n_train, None)
    net = resnet((1, *data.image_shape), data.n_classes, rng=0)
    print(f"{data!r}\n{net.summary()}")
    trainer = Trainer(net, optimizer="adam", learning_rate=2e-3, seed=0)
    t0 = time.perf_counter()
    trainer.fit(data.X_train, data.y_train, epochs=epochs, batch_size=64)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    print(f"test accuracy {accuracy:.4f} after {epochs} epochs ({time.perf_counter() - t0:.1f} s)")
    reports = maximise(net, data, steps, n_ref)
    for name, report in reports.items():
        print(f"\n{name}:\n{report.to_table()}")
    path = out_dir / f"{data.name}_resnet_am.png"
    figure(reports, data, n_ref, path, network="ResNet")
    wrote(path)
    beats = {k: sum(bool(r.exceeds_reference) for r in rep.rows) for k, rep in reports.items()}
    return {"accuracy": accuracy, "reports": reports, "beats_reference": beats, "network": net}


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--epochs", type=int, default=8, help="training epochs")
    ap.add_argument("--steps", type=int, default=200, help="ascent steps per unit")
    ap.add_argument("--out", default="out/resnet", help="output folder")
    args = ap.parse_args()
    main(epochs=args.epochs, steps=args.steps, out=args.out)
