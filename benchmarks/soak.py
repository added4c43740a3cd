"""Soak run: many threads making mixed symnn calls at once, next to the same calls made
serially in a separate process: throughput, errors (must be 0) and peak memory.

Each worker makes ``--calls`` calls, cycling through: one epoch of ``Trainer.fit`` on its
own trainer, ``predict_proba`` of one shared fitted estimator, ``maximize`` on one shared
objective, and ``symnn.save`` + ``symnn.load`` of its trainer's network to its own file. The results
of the threaded run are compared with the serial run's (fixed BLAS count: they must be equal).

    python benchmarks/soak.py --threads 8 --calls 200
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def setup():
    import pytensor.tensor as pt

    from symnn import MLPClassifier
    from symnn.datasets import load_digits

    d = load_digits()
    X, y = d.X_train[:600], d.y_train[:600]
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0, blas_threads=1)
    clf.fit(X, y)
    x = pt.matrix("x", dtype="float32", shape=(None, 64))
    objective = clf.network_(x, deterministic=True)[:, 3]
    return X, y, clf, (objective, x)


def worker(k, calls, shared, folder, out):
    import symnn
    from symnn.inputopt import maximize
    from symnn.layers import mlp
    from symnn.train import Trainer

    X, y, clf, (objective, x) = shared
    trainer = Trainer(mlp([64, 32, 10], rng=k), seed=k, blas_threads=1)
    digest = []
    for i in range(calls):
        kind = i % 4
        if kind == 0:
            h = trainer.fit(X, y, epochs=1, batch_size=64, progress=False)
            digest.append(h.batch_loss[-1])
        elif kind == 1:
            digest.append(float(clf.predict_proba(X[k::8]).sum()))
        elif kind == 2:
            r = maximize(objective, x, n_starts=2, seed=k * 1000 + i, steps=30, blas_threads=1)
            digest.append(float(r.value.sum()))
        else:
            # the network and its weights (a loaded Trainer would compile its step again)
            net = symnn.load(symnn.save(trainer.network, Path(folder) / f"worker{k}.npz"))
            digest.append(float(net.get_values()[0].sum()))
    out[k] = digest


def run(threads: int, calls: int, serial: bool) -> dict:
    shared = setup()
    out, errors = {}, []
    with tempfile.TemporaryDirectory() as folder:
        # one untimed call of each kind compiles what the run uses
        worker(99, 4, shared, folder, {})
        t0 = time.perf_counter()
        if serial:
            for k in range(threads):
                worker(k, calls, shared, folder, out)
        else:

            def guarded(k):
                try:
                    worker(k, calls, shared, folder, out)
                except BaseException as exc:  # noqa: BLE001 - counted and reported
                    errors.append(repr(exc))

            pool = [threading.Thread(target=guarded, args=(k,)) for k in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    return {
        "seconds": seconds,
        "calls": threads * calls,
        "errors": errors,
        "peak_mib": peak,
        "digest": {str(k): v for k, v in out.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--threads", type=int, default=8, help="worker threads")
    ap.add_argument("--calls", type=int, default=200, help="calls per worker")
    ap.add_argument("--child", choices=["serial", "threads"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run(args.threads, args.calls, serial=args.child == "serial")
        print(json.dumps(result))
        return
    from _common import machine

    print(machine())
    results = {}
    for how in ("serial", "threads"):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                how,
                "--threads",
                str(args.threads),
                "--calls",
                str(args.calls),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[how] = json.loads(proc.stdout.strip().splitlines()[-1])
        time.sleep(1.0)
    print(
        f"{'run':>8}  {'calls':>6}  {'seconds':>8}  {'calls/s':>8}  {'errors':>6}  {'peak MiB':>8}"
    )
    for how, r in results.items():
        print(
            f"{how:>8}  {r['calls']:>6}  {r['seconds']:>8.1f}  {r['calls'] / r['seconds']:>8.1f}  "
            f"{len(r['errors']):>6}  {r['peak_mib']:>8.0f}"
        )
    for e in results["threads"]["errors"][:5]:
        print("error:", e)
    same = all(
        np.array_equal(results["serial"]["digest"][k], results["threads"]["digest"].get(k))
        for k in results["serial"]["digest"]
    )
    print(f"threaded results equal the serial ones: {same}")


if __name__ == "__main__":
    main()
