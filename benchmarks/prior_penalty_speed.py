"""The density priors' penalty and its gradient, as the ascent step computes them: the
Gaussian prior, the mixture prior (``MixturePrior.penalty``: squared distances as two matrix
products, no gradient through logsumexp's shift) and the mixture's direct form (a tensor of
rows x mixtures x components, the gradient through the max), fitted to scikit-learn's digits
(64 pixels; 50 components, 10 mixtures), 60 rows (ten units x six weights), C backend.
Prints ms per call (median of interleaved rounds of 1,000 calls). Run:

    python benchmarks/prior_penalty_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor
import pytensor.tensor as pt
from _common import machine, median


def direct_penalty(x, arrays: dict, width: int):
    """The mixture penalty written directly (the form before the rewrite)."""
    z = x - arrays["mean"]
    p = pt.dot(z, arrays["components"].T)
    diff = p[:, None, :] - arrays["mix_means"][None, :, :]
    logp = arrays["mix_log_norm"][None, :] - 0.5 * pt.sum(
        pt.square(diff) * arrays["mix_inv_var"][None, :, :], axis=2
    )
    top = pt.max(logp, axis=1, keepdims=True)
    inside = -(top[:, 0] + pt.log(pt.sum(pt.exp(logp - top), axis=1)))
    rest = pt.sum(pt.square(z), axis=1) - pt.sum(pt.square(p), axis=1)
    outside = np.asarray(0.5, dtype=x.dtype) * rest * arrays["inv_rest"]
    return (inside + outside) / np.asarray(width, dtype=x.dtype) + arrays["offset"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    from symnn.backend import function
    from symnn.datasets import load_digits
    from symnn.inputopt.priors import GaussianPrior, MixturePrior

    print(f"machine: {machine()}")
    X = load_digits().X_train
    gauss, mix = GaussianPrior.fit(X), MixturePrior.fit(X)
    rows = X[:60].astype("float32")
    fns, values = {}, {}
    for name, prior, penalty in (("Gaussian", gauss, GaussianPrior.penalty),
                                 ("mixture", mix, MixturePrior.penalty),
                                 ("mixture, direct form", mix, direct_penalty)):  # fmt: skip
        arrays = {k: pytensor.shared(v) for k, v in prior.arrays("float32").items()}
        x = pt.matrix("x", dtype="float32")
        total = penalty(x, arrays, X.shape[1]).sum()
        fns[name] = function([x], [total, pt.grad(total, x)], mode="C")
        values[name] = fns[name](rows)
    np.testing.assert_allclose(values["mixture"][0], values["mixture, direct form"][0], rtol=1e-4)
    np.testing.assert_allclose(values["mixture"][1], values["mixture, direct form"][1],
                               rtol=1e-3, atol=1e-6)  # fmt: skip
    times = {k: [] for k in fns}
    for _ in range(args.rounds):
        for name, f in fns.items():
            time.sleep(0.5)
            t0 = time.perf_counter()
            for _ in range(1000):
                f(rows)
            times[name].append(time.perf_counter() - t0)  # s per 1,000 calls = ms per call
    print("penalty + gradient, 60 rows of 64 pixels, ms per call (median):")
    for name, ts in times.items():
        print(f"  {name:>22}: {median(ts):.3f}")


if __name__ == "__main__":
    main()
