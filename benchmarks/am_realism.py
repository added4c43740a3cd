"""Readable activation maximisation: plain AM against AM with the default density prior, on
the ten class units of a 784-256-10 relu network (Adam, 8 epochs) trained on Fashion-MNIST
(scikit-learn's digits and a 64-256-10 network when Fashion-MNIST is not installed), or with
``--arch cnn`` of the CNN ``conv16x5,pool2,conv16x5,pool2,64,10`` (Adam, 3 epochs).

Reference set: 20,000 training images with their labels. Per unit and in summary: does the
found input beat the unit's best real input; its correlation with the mean image of its class;
the majority label of its 5 nearest training images (k-NN agreement); the label an
independently trained scikit-learn ``MLPClassifier`` gives it (judge agreement); the mean
cosine of its penultimate-layer features with its class's real inputs (plausibility) and,
per layer, the correlation of its activations with its top real inputs' (path similarity:
the smallest over layers, and how many units leave the natural path), with what real test
images of the class score for scale; and the same cosine with the features centred on the
reference's mean feature (relu features are all non-negative, so uncentred cosines of any
confident input are high: the centred figure separates more). Writes a figure (per class:
plain, with the default prior, the top three real inputs). Run:

    python benchmarks/am_realism.py [--out docs/am_realism_fashion.png] [--steps 300]
    python benchmarks/am_realism.py --arch cnn [--out docs/am_realism_cnn.png]
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


def centred_features(net, X, mean=None):
    """Penultimate-layer features of the rows of ``X`` minus ``mean`` (their own mean if None),
    scaled to unit length, and the mean."""
    from symnn.inputopt.checks import layer_features
    from symnn.inputopt.units import _layers

    position = len(_layers(net)) - 2
    f = layer_features(net, X, layers={position})[position].astype(np.float64)
    mean = f.mean(axis=0) if mean is None else mean
    f = f - mean
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12), mean


def centred_plausibility(net, ref, X, units) -> np.ndarray:
    """Per row of ``X``, the mean centred cosine with the reference inputs of its unit's class."""
    feats, mean = centred_features(net, ref.data)
    found, _ = centred_features(net, np.asarray(X, dtype=ref.data.dtype), mean)
    return np.array([(feats[ref.labels == u] @ f).mean() for f, u in zip(found, units)])


def summary(name: str, report, net, ref) -> dict[str, float]:
    rows = report.rows
    centred = centred_plausibility(net, ref, report.x, [r.unit for r in rows])
    return {
        "rows": name,
        "beats best real": sum(bool(r.exceeds_reference) for r in rows),
        "class corr (mean)": float(np.mean([r.class_corr for r in rows])),
        "5-NN agrees": sum(r.knn_label == r.unit for r in rows),
        "judge agrees": sum(r.judge_label == r.unit for r in rows),
        "at bounds (mean)": float(np.mean([r.at_bounds for r in rows])),
        "plausibility (mean)": float(np.mean([r.plausibility for r in rows])),
        "centred plaus. (mean)": float(centred.mean()),
        "path corr (min)": float(min(min(r.path_corr) for r in rows)),
        "leave the path": sum(r.path_leaves_at >= 0 for r in rows),
    }


def real_plausibility(net, ref, X_test, y_test, n: int = 100) -> float:
    """The mean plausibility of ``n`` test images per class against their class's
    reference inputs: what a real input of the class scores."""
    from symnn.inputopt import checks

    per_class = [checks.plausibility(net, X_test[y_test == c][:n], ref.data[ref.labels == c])
                 for c in range(10)]  # fmt: skip
    picked = np.concatenate([X_test[y_test == c][:n] for c in range(10)])
    centred = centred_plausibility(net, ref, picked, np.repeat(np.arange(10), n))
    return float(np.mean(np.concatenate(per_class))), float(centred.mean())


def network(arch: str, shape: tuple[int, int], n_in: int):
    """The trained network's architecture and its epochs."""
    from symnn.layers import from_arch, mlp

    if arch == "cnn":  # digits' 8x8 images: 3x3 kernels, one pooling
        small = "conv16x3,pool2,conv16x3,64,10"
        return from_arch("conv16x5,pool2,conv16x5,pool2,64,10" if shape[0] >= 20 else small,
                         shape, rng=0), 3  # fmt: skip
    return mlp([n_in, 256, 10], hidden="relu", rng=0), 8


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="am_realism.png")
    ap.add_argument("--arch", choices=("dense", "cnn"), default="dense")
    args = ap.parse_args(argv)
    from sklearn.neural_network import MLPClassifier

    import symnn.inputopt.activation as am
    from symnn.inputopt import InputPenalties, Reference, activation_maximization
    from symnn.plot import plot_image_rows
    from symnn.train import Trainer

    data, shape, source = load()
    X, y = data.X_train, data.y_train
    n_in = X.shape[1]
    print(f"machine: {machine()}; {source}, {len(X)} training images")
    net, epochs = network(args.arch, shape, n_in)
    trainer = Trainer(net, seed=0)
    trainer.fit(X, y, epochs=epochs, batch_size=128, progress=False)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    print(f"network {args.arch} ({epochs} epochs), test accuracy {accuracy:.4f}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        judge = MLPClassifier(hidden_layer_sizes=(100,), max_iter=20, random_state=1).fit(X, y)
    judged = judge.score(data.X_test, data.y_test)
    print(f"judge (scikit-learn MLP, trained apart): test accuracy {judged:.4f}")
    ref = Reference(X[:20000], labels=y[:20000], judge=judge)
    # a fixed BLAS thread count: bit-identical runs (the tuned count changes the last bits)
    common = dict(steps=args.steps, learning_rate=0.05, image_shape=shape, reference=ref,
                  blas_threads=2)
    reports = {}
    weights = am.AUTO_PRIOR_WEIGHTS
    for name, kw in (
        ("plain", dict(prior=None)),
        ("prior", dict(x0="class-mean")),  # the default: gmm, weights up to 16
        ("gaussian prior", dict(x0="class-mean", prior="gaussian")),
        ("gmm prior, weights to 4", dict(x0="class-mean", prior="gmm", upto=4.0)),
        ("gaussian, weights to 4", dict(x0="class-mean", prior="gaussian", upto=4.0)),
        ("prior, top-input start", dict(x0="facets")),
        ("prior, per-row jitter", dict(x0="class-mean", penalties=InputPenalties(jitter=1))),
        ("prior, scale+rotate",
         dict(x0="class-mean", penalties=InputPenalties(scale=0.05, rotate=5))),
        ("plain, 1/f precond.", dict(prior=None, penalties=InputPenalties(precondition=True))),
    ):
        upto = kw.pop("upto", np.inf)
        am.AUTO_PRIOR_WEIGHTS = tuple(w for w in weights if w <= upto)
        t0 = time.perf_counter()
        reports[name] = activation_maximization(trainer.network, range(10), **common, **kw)
        print(f"\n{name} AM ({time.perf_counter() - t0:.1f} s with compiling):")
        print(reports[name].to_table())
    am.AUTO_PRIOR_WEIGHTS = weights
    real, centred = real_plausibility(trainer.network, ref, data.X_test, data.y_test)
    print(f"\nreal test images' plausibility (the scale of those columns): {real:.2f}, "
          f"centred {centred:.2f}")
    table = [summary(name, r, trainer.network, ref) for name, r in reports.items()]
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
        rows.append((f"real #{k + 1}", ref.data[picks].reshape(-1, *shape)))
    plot_image_rows(rows, args.out, titles=names, title=f"{source}: the ten class units")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
