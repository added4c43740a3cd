"""Where a training step's time goes: symnn's compiled step under PyTensor's profiler and the
hand-written numpy network with a timer per phase, alternating in one process so that both are
measured at the same moments of a noisy machine.

784-100-10, relu, plain SGD, float32, Fashion-MNIST (or random data of that shape). Run:

    python benchmarks/step_profile.py --batch 1000
    python benchmarks/step_profile.py --batch 100 --rounds 8

The profiler adds a little per operation, which matters only for the smallest operations.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import fashion_or_random, machine

SIZES = [784, 100, 10]
LR = 0.05


def symnn_step(X, y, batch):
    """The same graph as ``Trainer``'s step (fused cost, checked gather), profiled."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.debug.profiling import ProfileStats

    from symnn import costs, updates
    from symnn.backend import resolve_mode
    from symnn.layers import mlp
    from symnn.ops import take_rows

    net = mlp(SIZES, hidden="relu", rng=0, dtype="float32")
    x = pt.matrix("x", dtype="float32", shape=(None, SIZES[0]))
    t = pt.ivector("y")
    loss = costs.categorical_crossentropy(net(x), t).mean()
    ups = list(updates.sgd(loss, net.get_params(trainable=True), LR).items())
    Xs = pytensor.shared(X, shape=(None, SIZES[0]))
    ys = pytensor.shared(y)
    idx = pt.lvector("i")
    prof = ProfileStats(atexit_print=False)
    givens = {x: take_rows(Xs, idx, check_finite=True), t: take_rows(ys, idx)}
    fn = pytensor.function(
        [idx], loss, updates=ups, givens=givens, mode=resolve_mode(None), profile=prof
    )
    fn.trust_input = True
    return fn, prof


def numpy_epoch(W, X, y, batch, phases):
    """One epoch of the numpy network, adding each phase's seconds to ``phases``."""
    lr = np.float32(LR)

    def lap(name, t0):
        t1 = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + t1 - t0
        return t1

    for s in range(0, len(X) - batch + 1, batch):
        t = time.perf_counter()
        rows = np.arange(s, s + batch)
        xb, yb = X[rows], y[rows]
        t = lap("gather", t)
        a0 = xb @ W[0]
        t = lap("matrix product, forward", t)
        h = np.maximum(a0 + W[1], 0)
        z = h @ W[2] + W[3]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z[np.arange(batch), yb] -= 1
        delta = z / np.float32(batch)
        g_w1, g_b1 = h.T @ delta, delta.sum(0)
        d0 = (delta @ W[2].T) * (h > 0)
        t = lap("small operations", t)
        g_w0 = xb.T @ d0
        t = lap("matrix product, weight gradient", t)
        W[0] -= lr * g_w0
        W[1] -= lr * d0.sum(0)
        W[2] -= lr * g_w1
        W[3] -= lr * g_b1
        lap("updates", t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--samples", type=int, default=30000)
    args = ap.parse_args(argv)
    X, y, source = fashion_or_random(args.samples, "float32")
    y = y.astype("int32")
    fn, prof = symnn_step(X, y, args.batch)
    batches = [np.arange(s, s + args.batch) for s in range(0, len(X) - args.batch + 1, args.batch)]
    rng = np.random.default_rng(0)
    W = [
        rng.uniform(-0.08, 0.08, (784, 100)).astype("float32"),
        np.zeros(100, "float32"),
        rng.uniform(-0.2, 0.2, (100, 10)).astype("float32"),
        np.zeros(10, "float32"),
    ]
    for rows in batches[:3]:  # warm-up
        fn(rows)
    phases: dict[str, float] = {}
    spent = {"symnn": 0.0, "numpy": 0.0}
    calls = 0
    for _ in range(args.rounds):
        time.sleep(0.3)
        t0 = time.perf_counter()
        for rows in batches:
            fn(rows)
        spent["symnn"] += time.perf_counter() - t0
        time.sleep(0.3)
        t0 = time.perf_counter()
        numpy_epoch(W, X, y, args.batch, phases)
        spent["numpy"] += time.perf_counter() - t0
        calls += len(batches)
    print(f"machine: {machine()}")
    print(
        f"784-100-10, batch {args.batch}, float32, {source}, {args.rounds} alternating rounds; "
        "microseconds per step"
    )
    print(f"  symnn step (profiled) {spent['symnn'] / calls * 1e6:9.1f}")
    print(f"  numpy step            {spent['numpy'] / calls * 1e6:9.1f}")
    print("  numpy, by phase:")
    for name, seconds in phases.items():
        print(f"    {name:<34}{seconds / calls * 1e6:9.1f}")
    print("  symnn, by operation (PyTensor's profiler; warm-up calls included):")
    counts = prof.apply_callcount
    for (fgraph, node), seconds in sorted(prof.apply_time.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {str(node)[:60]:<62}{seconds / counts[(fgraph, node)] * 1e6:9.1f}")


if __name__ == "__main__":
    main()
