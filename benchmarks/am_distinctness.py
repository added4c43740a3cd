"""Channels that show their own pattern: activation maximisation of the 16 channels of the
first convolution of a small CNN (``conv16x5,pool2,conv16x5,pool2,64,10`` trained 2 epochs
on Fashion-MNIST, or on random data when it is not installed) with the default density
prior, its weight chosen per channel among ``AUTO_PRIOR_WEIGHTS`` two ways: the strongest
weight whose picture still beats the channel's best reference input (the rule before
distinctness), and the default rule that also keeps the picture distinct from the typical
reference input and from the other channels' pictures (``DISTINCT_MIN``). Prints the chosen
weights, the median correlation of the pictures with the mean reference input, the median of
each picture's largest correlation with another channel's, and how many exceed 0.95.

    python benchmarks/am_distinctness.py
"""

from __future__ import annotations

import numpy as np
from _common import fashion_or_random

import symnn.inputopt.activation as am
from symnn.inputopt import Reference, activation_maximization
from symnn.layers import from_arch
from symnn.train import Trainer


def figures(x: np.ndarray, typical: np.ndarray) -> str:
    z = x - x.mean(axis=1, keepdims=True)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    t = (typical - typical.mean()) / np.linalg.norm(typical - typical.mean())
    corr = z @ z.T
    np.fill_diagonal(corr, -1.0)
    most = corr.max(axis=1)
    return (f"corr with the mean input: median {np.median(z @ t):.2f}; largest corr with "
            f"another channel: median {np.median(most):.2f}, above 0.95 for "
            f"{int((most > 0.95).sum())} of {len(x)}")  # fmt: skip


def main() -> None:
    X, y, source = fashion_or_random(60000, "float32")
    net = from_arch("conv16x5,pool2,conv16x5,pool2,64,10", (28, 28), rng=0)
    Trainer(net, optimizer="adam", learning_rate=2e-3, seed=0).fit(X, y, epochs=2,
                                                                   batch_size=128)  # fmt: skip
    ref = Reference(X[:10000], labels=y[:10000])
    print(f"data: {source}")
    default = am.DISTINCT_MIN
    for label, value in (("strongest weight that beats the reference", -1.0),
                         (f"and distinct (DISTINCT_MIN={default})", default)):  # fmt: skip
        am.DISTINCT_MIN = value
        report = activation_maximization(net, list(range(16)), layer="conv0",
                                         image_shape=(28, 28), reference=ref)  # fmt: skip
        print(f"\n{label}:\n  weights {[r.prior_weight for r in report.rows]}")
        print(f"  beat their best reference input: "
              f"{sum(bool(r.exceeds_reference) for r in report.rows)} of 16")
        print("  " + figures(report.x.astype(np.float64), X[:10000].mean(axis=0)))
    am.DISTINCT_MIN = default


if __name__ == "__main__":
    main()
