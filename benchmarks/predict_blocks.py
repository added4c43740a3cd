"""What row-invariant prediction costs: ``Trainer.predict_proba`` runs blocks of exactly 64
rows (so a row's output does not depend on the other rows of the call) against the same
compiled function called once on all the rows, for a 784-100-10 float32 network. Medians of
interleaved rounds, milliseconds per call.

    python benchmarks/predict_blocks.py --rounds 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor.tensor as pt
from _common import interleaved, machine, median

import symnn
from symnn.layers import mlp
from symnn.train import Trainer


def main(rounds: int = 20) -> dict[str, float]:
    trainer = Trainer(mlp([784, 100, 10], rng=0), blas_threads=2)
    x = pt.matrix("x", dtype="float32", shape=(None, 784))
    whole = symnn.function([x], trainer.network(x, deterministic=True))
    X = np.random.default_rng(0).random((10_000, 784)).astype("float32")
    trainer.predict_proba(X[:1])

    def timed(fn, rows) -> float:
        t0 = time.perf_counter()
        for _ in range(10 if len(rows) > 1 else 1000):
            fn(rows)
        return (time.perf_counter() - t0) / (10 if len(rows) > 1 else 1000) * 1e3

    runners = {
        "10,000 rows, blocks of 64": lambda: timed(trainer.predict_proba, X),
        "10,000 rows, one call": lambda: timed(whole, X),
        "1 row, predict_proba": lambda: timed(trainer.predict_proba, X[:1]),
        "1 row, the function": lambda: timed(whole, X[:1]),
    }
    results = {k: median(v) for k, v in interleaved(runners, rounds, pause=0.2).items()}
    print(f"{machine()}; medians of {rounds} interleaved rounds, ms per call")
    for name, ms in results.items():
        print(f"{name:>28}: {ms:8.3f} ms")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default: 20)")
    main(parser.parse_args().rounds)
