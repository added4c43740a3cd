"""Input-optimisation speed: projected gradient ascent on the inputs of a 784-100-10 network,
symnn's ``maximize`` vs the same projected ascent written in PyTorch, interleaved in one run.

Row k of the batch maximises the logit of class k mod 10; every step is
``x <- clip(x + lr * grad, 0, 1)``. Prints microseconds per step (median of interleaved
rounds) and the ratio to PyTorch, plus the mean final objective of each (they must agree).

With ``--prior``, both maximise ``logit - 2 * penalty(x)`` with symnn's Gaussian density prior
(mean, 50 principal directions and the rest variance, fitted to 5,000 training images; the same
arrays in PyTorch): activation maximisation as ``activation_maximization`` runs it with a
reference set.

    python benchmarks/inputopt_speed.py [--prior]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor.tensor as pt
from _common import interleaved, machine, median

STEPS = 500
LR = 0.01
PRIOR_WEIGHT = 2.0
PRIOR: dict | None = None  # the prior's arrays (float32) when --prior is given


def fit_prior() -> dict:
    from _common import fashion_or_random

    from symnn.inputopt.priors import GaussianPrior

    X, _, _ = fashion_or_random(5000, "float32")
    return GaussianPrior.fit(X, n_components=50).arrays("float32")


def make_weights(seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(0, 0.05, (784, 100)).astype("float32"),
        np.zeros(100, "float32"),
        rng.normal(0, 0.1, (100, 10)).astype("float32"),
        np.zeros(10, "float32"),
    ]


class Symnn:
    name = "symnn"

    def __init__(self, weights, batch):
        from symnn.inputopt import maximize
        from symnn.layers import mlp

        self.maximize = maximize
        self.net = mlp([784, 100, 10], rng=0)
        self.net.set_values(weights)
        self.x = pt.matrix("x", dtype="float32", shape=(None, 784))
        logits = self.net[1].preactivation(self.net[0](self.x))
        self.objective = logits[pt.arange(self.x.shape[0]), np.arange(batch) % 10]
        if PRIOR is not None:
            from symnn.inputopt.priors import gaussian_penalty

            arrays = {k: pt.constant(v) for k, v in PRIOR.items()}
            penalty = gaussian_penalty(self.x, arrays, 784)
            self.objective = self.objective - np.float32(PRIOR_WEIGHT) * penalty
        self.x0 = np.random.default_rng(1).random((batch, 784)).astype("float32")
        self.maximize(self.objective, self.x, x0=self.x0, steps=2, learning_rate=LR)  # compile

    def run(self):
        r = self.maximize(self.objective, self.x, x0=self.x0, steps=STEPS, learning_rate=LR)
        self.final = float(r.value.mean())
        return r.seconds / STEPS * 1e6


class Torch:
    name = "pytorch"

    def __init__(self, weights, batch):
        import torch

        self.torch = torch
        self.W = [torch.from_numpy(w) for w in weights]
        self.units = torch.arange(batch) % 10
        self.x0 = torch.from_numpy(np.random.default_rng(1).random((batch, 784)).astype("float32"))
        self.prior = None if PRIOR is None else {k: torch.tensor(v) for k, v in PRIOR.items()}

    def penalty(self, x):
        """symnn's gaussian_penalty, written in PyTorch."""
        a = self.prior
        z = x - a["mean"]
        p = z @ a["components"].T
        inside = (p * p * a["inv_variances"]).sum(1)
        outside = ((z * z).sum(1) - (p * p).sum(1)) * a["inv_rest"]
        return (inside + outside) / (2 * 784)

    def run(self):
        torch = self.torch
        W1, b1, W2, b2 = self.W
        x = self.x0.clone().requires_grad_(True)
        rows = torch.arange(len(x))
        t0 = time.perf_counter()
        for _ in range(STEPS):
            logits = torch.relu(x @ W1 + b1) @ W2 + b2
            objective = logits[rows, self.units]
            if self.prior is not None:
                objective = objective - PRIOR_WEIGHT * self.penalty(x)
            (grad,) = torch.autograd.grad(objective.sum(), x)
            with torch.no_grad():
                x.add_(grad, alpha=LR).clamp_(0.0, 1.0)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            final = (torch.relu(x @ W1 + b1) @ W2 + b2)[rows, self.units]
            if self.prior is not None:
                final = final - PRIOR_WEIGHT * self.penalty(x)
            self.final = float(final.mean())
        return seconds / STEPS * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--prior", action="store_true", help="with the Gaussian density prior")
    args = ap.parse_args(argv)
    global PRIOR
    PRIOR = fit_prior() if args.prior else None
    print(f"machine: {machine()}" + ("; with the Gaussian prior" if args.prior else ""))
    weights = make_weights()
    for batch in (10, 100):
        objs = {}
        for cls in (Symnn, Torch):
            try:
                objs[cls.name] = cls(weights, batch)
            except ImportError:
                pass
        times = interleaved({n: o.run for n, o in objs.items()}, args.rounds)
        med = {n: median(v) for n, v in times.items()}
        print(
            f"\n784-100-10, batch of {batch} starts, {STEPS} projected steps, float32, median of "
            f"{args.rounds} interleaved rounds"
        )
        print(f"  {'implementation':<16}{'us/step':>10}{'vs pytorch':>12}{'final objective':>17}")
        for n, us in med.items():
            ratio = f"{us / med['pytorch']:.2f}x" if "pytorch" in med else "-"
            print(f"  {n:<16}{us:>10.1f}{ratio:>12}{objs[n].final:>17.4f}")


if __name__ == "__main__":
    main()
