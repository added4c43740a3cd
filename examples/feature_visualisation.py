"""Feature visualisation of a small CNN: every class and the channels of both convolutions,
under three parametrisations side by side (projected pixels, Lucid's Fourier basis, MaCo's
phase-only spectrum), each checked against real inputs (plausibility in the penultimate
features, the path through the layers, the class of the 5 nearest training images).

Trains on Fashion-MNIST when it is installed, else on scikit-learn's 8x8 digits. Writes
``feature_visualisation.png`` (classes under each parametrisation, channels of both
convolutions) and, per convolution, its channels next to their four strongest dataset
examples (``feature_visualisation_conv0.png``, ``..._conv2.png``).

    python examples/feature_visualisation.py --out figures
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _data import image_data, parser, subset, wrote

from symnn import plot
from symnn.inputopt import checks, objectives, visualize
from symnn.layers import from_arch
from symnn.train import Trainer

PARAMS = ("pixel", "fourier", "maco")


def architecture(side: int) -> str:
    """Two 3x3 convolutions of 16 channels, pooled when the image is large enough."""
    if side >= 20:
        return "conv16x3,pool2,conv16x3,pool2,64,{}"
    return "conv16x3,pool2,conv16x3,64,{}"


def _logits(net, X: np.ndarray) -> np.ndarray:
    """The class logits of the rows of ``X`` (one compiled function)."""
    import pytensor.tensor as pt

    from symnn import function

    x = pt.matrix("x", dtype=net.dtype, shape=(None, net.n_in))
    hidden = net.get_outputs(x, deterministic=True)[-2]
    return function([x], net.layers[-1].preactivation(hidden))(X)


def _class_checks(net, data, images: np.ndarray, k: int = 4) -> dict:
    """Per class image: plausibility against its class, the path against the ``k`` training
    images of highest logit, and the majority class of its 5 nearest training images."""
    X, y = data.X_train[:5000], data.y_train[:5000]
    plaus = [checks.plausibility(net, img[None], X[y == c])[0] for c, img in enumerate(images)]
    logits = _logits(net, X)
    tops = np.stack([X[np.argsort(-logits[:, c], kind="stable")[:k]] for c in range(len(images))])
    path = checks.path_similarity(net, images, tops)
    dist = ((images[:, None, :] - X[None]) ** 2).sum(axis=2)
    knn = [np.bincount(y[np.argsort(d)[:5]]).argmax() for d in dist]
    return {"plausibility": float(np.mean(plaus)),
            "path_final": float(path.visualisation[:, -1].mean()),
            "left_path": int((path.leaves_at >= 0).sum()),
            "knn_correct": int(sum(int(k) == c for c, k in enumerate(knn)))}  # fmt: skip


def _beside_examples(net, layer: str, images: np.ndarray, reference: np.ndarray, data) -> list:
    """Figure rows: channel ``c``'s visualisation, then the 4 reference inputs that drive it
    most; the label gives, at the channel's layer, the visualisation's correlation with the
    examples' mean activations and the least typical example's (Geirhos et al.'s check)."""
    top = checks.dataset_examples(net, layer, range(len(images)), reference, k=4)
    until = [la.name for la in net.layers].index(layer)
    path = checks.path_similarity(net, images, reference[top], until=until)
    rows = []
    for c, (image, ex) in enumerate(zip(images, top)):
        label = f"{layer}:{c} r={path.visualisation[c, -1]:.2f} ({path.natural[c, -1]:.2f})"
        rows.append((label, np.concatenate([image[None], reference[ex]]).reshape(
            -1, *data.image_shape[-2:])))  # fmt: skip
    return rows


def main(epochs: int = 5, steps: int = 200, n_train=None, out: str | None = None) -> dict:
    data = subset(image_data(), n_train, None)
    side = data.image_shape[0]
    net = from_arch(architecture(side).format(data.n_classes), data.image_shape, rng=0)
    print(f"{data!r}\n{net.summary()}")
    trainer = Trainer(net, optimizer="adam", learning_rate=2e-3, seed=0)
    trainer.fit(data.X_train, data.y_train, epochs=epochs, batch_size=128)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    print(f"test accuracy {accuracy:.4f}")
    reference = data.X_train[:5000]
    rows, scores = [], {}
    for param in PARAMS:
        t0 = time.perf_counter()
        # one compiled step for every class: row c maximises class c
        images = visualize(net, objectives.class_logit(range(data.n_classes)), param=param,
                           image_shape=data.image_shape, reference=reference, steps=steps).images
        scores[param] = {**_class_checks(net, data, images),
                         "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        rows.append((f"classes, {param}", images.reshape(-1, *data.image_shape)))
        print(f"{param:>8}: {scores[param]}")
    channels = {}
    for layer in ("conv0", "conv2"):
        objective = objectives.channel(layer, range(data.n_classes))  # row c: channel c
        channels[layer] = visualize(net, objective, image_shape=data.image_shape, param="fourier",
                                    steps=steps).images
        rows.append((f"{layer} 0-{data.n_classes - 1}, fourier",
                     channels[layer].reshape(-1, *data.image_shape)))  # fmt: skip
    if out is not None:
        path = Path(out) / "feature_visualisation.png"
        Path(out).mkdir(parents=True, exist_ok=True)
        plot.plot_image_rows(rows, path, title=f"test accuracy {accuracy:.3f}")
        wrote(path)
        for layer, images in channels.items():
            path = Path(out) / f"feature_visualisation_{layer}.png"
            plot.plot_image_rows(_beside_examples(net, layer, images, reference, data), path,
                                 titles=["visualisation", *(f"top {i}" for i in range(1, 5))],
                                 title=f"{layer}: channels next to their dataset examples; r: "
                                       "correlation with the examples' activations "
                                       "(the least typical example's)")
            wrote(path)
    return {"accuracy": accuracy, "scores": scores, "channels": channels, "network": net}


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--epochs", type=int, default=5, help="training epochs")
    ap.add_argument("--steps", type=int, default=200, help="ascent steps per image")
    ap.add_argument("--out", default=".", help="folder for the figure")
    args = ap.parse_args()
    main(epochs=args.epochs, steps=args.steps, out=args.out)
