"""Feature visualisation of a small CNN: every class and the channels of both convolutions,
under three parametrisations side by side (projected pixels, Lucid's Fourier basis, MaCo's
phase-only spectrum), each checked against real inputs (plausibility in the penultimate
features, the path through the layers, the class of the 5 nearest training images).

Trains on Fashion-MNIST when it is installed, else on scikit-learn's 8x8 digits. Writes
``feature_visualisation.png`` (classes under each parametrisation, channels of both
convolutions) and, per convolution, its channels next to their four strongest dataset
examples (``feature_visualisation_conv0.png``, ``..._conv2.png``). Then the same machinery
on an imported network: a GoogLeNet-shaped ONNX file (stem and Inception blocks 3a to 4a,
random weights: the mechanics, not what a trained GoogLeNet sees) read with ``from_onnx``,
channels of ``mixed4a`` in colour under Lucid's recipe (Fourier basis, decorrelated colour,
jitter, scale and rotation) in ``feature_visualisation_googlenet.png``.

    python examples/feature_visualisation.py --out figures
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _data import image_data, parser, subset, wrote
from _googlenet import googlenet_onnx

from symnn import plot
from symnn.inputopt import Visualization, checks, objectives, visualize
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


def googlenet_channels(size: int = 224, steps: int = 128, n: int = 8,
                       out: str | None = None) -> Visualization:  # fmt: skip
    """The ``n`` channels of ``mixed4a`` of the GoogLeNet-shaped ONNX graph (random weights)
    most active on noise images, one image each at ``3 x size x size``. With random weights
    many channels are dead (zero on every input: nothing to ascend), hence the choice."""
    from symnn.inputopt.checks import layer_features
    from symnn.io import from_onnx

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "googlenet_to_4a.onnx"
        path.write_bytes(googlenet_onnx(size))
        net = from_onnx(path)
    t0 = time.perf_counter()
    noise = np.random.default_rng(0).uniform(size=(2, 3 * size * size)).astype(np.float32)
    last = len(net.layers) - 1  # mixed4a's Concat
    active = layer_features(net, noise, layers={last})[last].reshape(2, 512, -1).mean(axis=(0, 2))
    chosen = np.sort(np.argsort(-active, kind="stable")[:n])
    vis = visualize(net, objectives.channel("mixed4a", chosen), image_shape=(3, size, size),
                    param="fourier", steps=steps, jitter=max(1, size // 28), scale=0.1,
                    rotate=10)  # fmt: skip
    print(f"GoogLeNet-shaped graph, channels {chosen.tolist()} of mixed4a at {size}x{size}: "
          f"{time.perf_counter() - t0:.1f} s with compiling")
    if out is not None:
        path = Path(out) / "feature_visualisation_googlenet.png"
        _colour_row(vis.images.reshape(n, 3, size, size),
                    [f"channel {c}: {v:.3g}" for c, v in zip(chosen, vis.values)], path,
                    "GoogLeNet-shaped ONNX graph, RANDOM weights (the mechanics, not what a "
                    "trained network sees): mixed4a channels, Fourier basis")  # fmt: skip
        wrote(path)
    return vis


def _colour_row(images: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """One row of ``(n, 3, h, w)`` images in [0, 1] over their ``labels``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6 * len(images), 2.0))
    for c, image in enumerate(images):
        ax = fig.add_subplot(1, len(images), c + 1)
        ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
        ax.set_title(labels[c], fontsize=7)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100)


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
    ap.add_argument("--googlenet-size", type=int, default=224,
                    help="image side of the GoogLeNet-shaped graph's figure (0: skip it)")
    args = ap.parse_args()
    if args.googlenet_size:  # say it before training, not after
        try:
            import onnx  # noqa: F401
        except ImportError:
            ap.error("the GoogLeNet-shaped graph is an ONNX file: pip install 'symnn[onnx]', "
                     "or pass --googlenet-size 0")  # fmt: skip
    main(epochs=args.epochs, steps=args.steps, out=args.out)
    if args.googlenet_size:
        googlenet_channels(args.googlenet_size, out=args.out)
