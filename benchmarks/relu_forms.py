"""What ``symnn.nonlinearities.relu``'s form costs in a dense network's training step: the same
step of an MLP 784-100-100-10 (plain SGD, float32, C backend) with the rectifier written as
symnn's ``relu`` (``switch(x <= 0, 0, x)``, PyTorch's gradient: 0 at 0, 1 at NaN) and as
``pt.maximum(x, 0)`` (PyTensor's gradient: 1 at 0, 0 at NaN), in interleaved rounds of one
process (medians, samples/s, one pass over 20,000 rows per round).

    python benchmarks/relu_forms.py [--rounds 9] [--batch 100 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import fashion_or_random, interleaved, machine, median

SIZES = [784, 100, 100, 10]
LR = np.float32(0.05)


def step(activation):
    import pytensor.tensor as pt

    import symnn
    from symnn.layers import mlp

    net = mlp(SIZES, hidden=activation, output="linear", rng=0)
    x, y = pt.matrix("x", dtype="float32"), pt.ivector("y")
    z = net(x)
    cost = -pt.mean(pt.special.log_softmax(z, axis=-1)[pt.arange(z.shape[0]), y])
    grads = pt.grad(cost, net.params)
    return symnn.function([x, y], cost, updates=[(p, p - LR * g) for p, g in
                                                 zip(net.params, grads)])  # fmt: skip


def main(argv=None):
    import pytensor.tensor as pt

    from symnn.nonlinearities import relu

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, nargs="+", default=[100, 1000])
    args = ap.parse_args(argv)
    X, y, source = fashion_or_random(20_000, "float32")
    y = y.astype("int32")
    steps = {"symnn relu": step(relu), "pt.maximum(x, 0)": step(lambda h: pt.maximum(h, 0))}
    print(f"machine: {machine()}; {source}; samples/s, medians of {args.rounds} rounds")
    for batch in args.batch:
        starts = range(0, len(X) - batch + 1, batch)
        batches = [(X[i : i + batch], y[i : i + batch]) for i in starts]

        def epoch(f, batches=batches, batch=batch):
            def run():
                t = time.perf_counter()
                for xb, yb in batches:
                    f(xb, yb)
                return len(batches) * batch / (time.perf_counter() - t)

            return run

        rates = interleaved({k: epoch(f) for k, f in steps.items()}, args.rounds, pause=0.2)
        base = median(rates["pt.maximum(x, 0)"])
        for name, r in rates.items():
            print(f"  batch {batch:5d}  {name:18s} {median(r):10,.0f}  vs maximum "
                  f"{median(r) / base:5.2f}")


if __name__ == "__main__":
    main()
