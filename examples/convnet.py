"""A convolutional network: Lasagne's MNIST CNN (two 5x5 convolutions of 32 channels with max
pooling, dropout, a dense layer of 256, ten classes) trained on Fashion-MNIST (scikit-learn's
digits with padded 3x3 convolutions when Fashion-MNIST is not installed); then activation
maximisation of the channels of both convolutional layers and of the ten classes, with a
figure: per unit, the found input and the reference input that activates it most.

    python examples/convnet.py
"""

from __future__ import annotations

import time
from pathlib import Path

from _data import image_data, parser, subset, wrote

from symnn import plot
from symnn.inputopt import InputPenalties, Reference, activation_maximization
from symnn.layers import from_arch
from symnn.train import Trainer

#: Lasagne's examples/mnist.py "cnn" (5x5 kernels need 28x28 images; digits are 8x8)
ARCH = {
    28: "conv32x5,pool2,conv32x5,pool2,drop0.5,256,drop0.5,{n}",
    8: "conv32x3same,pool2,conv32x3same,pool2,drop0.5,256,drop0.5,{n}",
}


def build(data, seed: int = 0):
    side = data.image_shape[0]
    if side not in ARCH:
        raise SystemExit(f"no architecture for {side}x{side} images (have {sorted(ARCH)})")
    return from_arch(ARCH[side].format(n=data.n_classes), data.image_shape, rng=seed)


def maximise(net, data, steps: int, n_ref: int):
    """Channels of both convolutional layers and the classes, with the default prior."""
    ref = Reference(data.X_train[:n_ref], labels=data.y_train[:n_ref], top_k=1)
    common = dict(image_shape=data.image_shape, steps=steps, reference=ref)
    convs = [i for i, layer in enumerate(net.layers) if type(layer).__name__ == "Conv2D"]
    reports = {}
    for k, index in enumerate(convs):
        reports[f"conv{k + 1} channels"] = activation_maximization(
            net, range(10), layer=index, x0="facets", **common, penalties=InputPenalties(jitter=1)
        )
    reports["classes"] = activation_maximization(net, range(10), x0="class-mean", **common)
    return reports


def figure(reports, data, n_ref: int, path: Path, network: str = "CNN") -> None:
    """Per report, the found inputs and under them the real input of highest activation."""
    rows = []
    for name, report in reports.items():
        rows.append((name, report.images()))
        best = [r.top_examples[0] for r in report.rows]
        rows.append(("top real", data.X_train[:n_ref][best].reshape(-1, *data.image_shape)))
    named = [c for c in (data.classes or []) if not str(c).isdigit()]
    classes = f" ({', '.join(f'{i} {c}' for i, c in enumerate(named))})" if named else ""
    plot.plot_image_rows(
        rows, path, titles=[str(u) for u in range(10)],
        title=f"{data.name} {network}: found inputs and the top real input per unit{classes}",
    )  # fmt: skip


def main(epochs: int = 15, steps: int = 200, n_train=None, n_ref: int = 20000, out="out/convnet"):
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = subset(image_data(), n_train, None)
    net = build(data)
    print(f"{data!r}\n{net.summary()}")
    trainer = Trainer(net, optimizer="adam", learning_rate=1e-3, seed=0)
    t0 = time.perf_counter()
    trainer.fit(data.X_train, data.y_train, epochs=epochs, batch_size=128)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    print(f"test accuracy {accuracy:.4f} after {epochs} epochs ({time.perf_counter() - t0:.1f} s)")
    reports = maximise(net, data, steps, n_ref)
    for name, report in reports.items():
        print(f"\n{name}:\n{report.to_table()}")
    path = out_dir / f"{data.name}_convnet_am.png"
    figure(reports, data, n_ref, path)
    wrote(path)
    beats = {k: sum(bool(r.exceeds_reference) for r in rep.rows) for k, rep in reports.items()}
    return {"accuracy": accuracy, "reports": reports, "beats_reference": beats, "network": net}


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--epochs", type=int, default=15, help="training epochs")
    ap.add_argument("--steps", type=int, default=200, help="ascent steps per unit")
    ap.add_argument("--out", default="out/convnet", help="output folder")
    args = ap.parse_args()
    main(epochs=args.epochs, steps=args.steps, out=args.out)
