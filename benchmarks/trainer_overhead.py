"""What the Trainer costs on top of its compiled step, and whether a CNN step's speed depends on
its data: interleaved rounds in one process, medians, samples/s.

MLP 784-100-10 (relu, plain SGD, float32, no shuffling so every row sees the same batches):
``Trainer.fit`` (its non-finite guard on, as by default), the Trainer's own compiled step called
in a bare Python loop, and a step written by hand with ``symnn.function`` (``X[idx]`` gathered
in numpy) built while the Trainer is alive in the process. CNN (Lasagne's MNIST network:
conv 32 5x5, pool 2, conv 32 5x5, pool 2, dense 256, 10; batch 64): the same hand-written
step on Fashion-MNIST images (or digits-sized random rows without them) and on uniform random
inputs of the same shape.

    python benchmarks/trainer_overhead.py [--rounds 7] [--batch 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import fashion_or_random, interleaved, machine, median

LR = np.float32(0.05)


def _sgd_step(net, x, loss):
    import pytensor.tensor as pt

    import symnn

    y = pt.ivector("y")
    cost = loss(net(x), y)
    grads = pt.grad(cost, net.params)
    updates = [(p, p - LR * g) for p, g in zip(net.params, grads)]
    return symnn.function([x, y], cost, updates=updates)


def _xent_logits(z, y):
    import pytensor.tensor as pt

    return -pt.mean(pt.special.log_softmax(z, axis=-1)[pt.arange(z.shape[0]), y])


def _xent_probs(p, y):
    import pytensor.tensor as pt

    return -pt.mean(pt.log(p[pt.arange(y.shape[0]), y]))


def mlp_runners(X, y, batch):
    """``{name: run}``: one epoch each, returning samples/s."""
    import pytensor.tensor as pt

    from symnn.layers import mlp
    from symnn.train import Trainer

    trainer = Trainer(mlp([784, 100, 10], rng=0), optimizer="sgd", learning_rate=float(LR))
    trainer.compile()
    step = trainer.compiled(trainer.objective.targets_kind(y), weighted=False).step
    hand = _sgd_step(mlp([784, 100, 10], output="linear", rng=0), pt.matrix("x", dtype="float32"),
                     _xent_logits)  # fmt: skip
    starts = range(0, len(X), batch)

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return len(X) / (time.perf_counter() - t0)

    def bare_step():
        step.set_data(X, y)
        for s in starts:
            step(np.arange(s, min(s + batch, len(X))))

    def handwritten():
        for s in starts:
            idx = np.arange(s, min(s + batch, len(X)))
            hand(X[idx], y[idx])

    return {
        "Trainer.fit": lambda: timed(lambda: trainer.fit(X, y, epochs=1, batch_size=batch,
                                                         shuffle=False, progress=False)),
        "its step, bare loop": lambda: timed(bare_step),
        "hand-written step": lambda: timed(handwritten),
    }  # fmt: skip


def cnn_runners(X, y, batch=64, steps=20):
    import pytensor.tensor as pt

    from symnn.layers import from_arch

    net = from_arch("conv32x5,pool2,conv32x5,pool2,256,10", (28, 28), rng=0)
    step = _sgd_step(net, pt.matrix("x", dtype="float32", shape=(None, 784)), _xent_probs)
    init = net.get_values()
    noise = np.random.default_rng(0).random(X.shape, dtype="float32")

    def run(data):
        net.set_values(init)
        t0 = time.perf_counter()
        for i in range(steps):
            s = i * batch % (len(data) - batch)
            step(data[s : s + batch], y[s : s + batch])
        return steps * batch / (time.perf_counter() - t0)

    return {"CNN step, images": lambda: run(X), "CNN step, uniform noise": lambda: run(noise)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=100, help="the MLP's batch size")
    ap.add_argument("--samples", type=int, default=30000)
    args = ap.parse_args(argv)
    X, y, source = fashion_or_random(args.samples, "float32")
    print(f"machine: {machine()}\ndata: {source}, {len(X)} rows")
    for title, runners in (
        (f"MLP 784-100-10, batch {args.batch}", mlp_runners(X, y, args.batch)),
        ("CNN, batch 64", cnn_runners(X, y)),
    ):
        rates = interleaved(runners, args.rounds)
        first = next(iter(rates))
        print(f"\n{title}: samples/s, median of {args.rounds} interleaved rounds")
        for name, values in rates.items():
            ratio = median(rates[first]) / median(values)
            print(f"  {name:<26}{median(values):>12,.0f}   {first} / this: {ratio:.2f}")


if __name__ == "__main__":
    main()
