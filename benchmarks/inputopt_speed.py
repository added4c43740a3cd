"""Input-optimisation speed: projected gradient ascent on the inputs of a 784-100-10 network,
symnn's ``maximize`` vs the same projected ascent written in PyTorch, interleaved in one run.

Row k of the batch maximises the logit of class k mod 10; every step is
``x <- clip(x + lr * grad, 0, 1)``. Prints microseconds per step (median of interleaved
rounds) and the ratio to PyTorch, plus the mean final objective of each (they must agree).

    python benchmarks/inputopt_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor.tensor as pt
from _common import interleaved, machine, median

STEPS = 500
LR = 0.01


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

    def run(self):
        torch = self.torch
        W1, b1, W2, b2 = self.W
        x = self.x0.clone().requires_grad_(True)
        rows = torch.arange(len(x))
        t0 = time.perf_counter()
        for _ in range(STEPS):
            logits = torch.relu(x @ W1 + b1) @ W2 + b2
            objective = logits[rows, self.units]
            (grad,) = torch.autograd.grad(objective.sum(), x)
            with torch.no_grad():
                x.add_(grad, alpha=LR).clamp_(0.0, 1.0)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            self.final = float((torch.relu(x @ W1 + b1) @ W2 + b2)[rows, self.units].mean())
        return seconds / STEPS * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
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
