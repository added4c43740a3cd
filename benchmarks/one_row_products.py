"""Products of few rows: PyTensor's ``Dot22`` (``gemm``) against symnn's ``RowAwareDot22``
(one ``gemv`` per row), numpy and PyTorch, on AlexNet's dense layers (9216-4096-4096-1000,
relu between), one 784x100 layer and an LSTM's 256x1024 recurrent product, at 1 to 8 rows.
``--gemv-rows`` sets the most rows the ``gemv`` op takes in this run, for every matrix size
(symnn's defaults: ``GEMV_ROWS`` and, for large matrices, ``GEMV_ROWS_LARGE`` of
``symnn.ops.dot_rows``; above them both symnn rows call ``gemm``). Medians of
interleaved rounds, 0.5 s pause between implementations. Run:

    python benchmarks/one_row_products.py [--rounds 7] [--repeat 20] [--gemv-rows 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, median

NETS = {"alexnet dense": (9216, 4096, 4096, 1000), "784-100": (784, 100), "256-1024": (256, 1024)}


def symnn_forward(widths, weights, row_aware: bool):
    import pytensor
    import pytensor.tensor as pt

    from symnn.backend import function, resolve_mode

    mode = resolve_mode("C")
    if not row_aware:
        mode = mode.excluding("symnn_row_aware_dot22")
    x = pt.matrix("x", dtype="float32", shape=(None, widths[0]))
    h = x
    for i, w in enumerate(weights):
        h = h @ pytensor.shared(w)
        if i < len(weights) - 1:
            h = pt.maximum(h, 0)
    return function([x], h, mode=mode)


def numpy_forward(weights):
    def run(x):
        for i, w in enumerate(weights):
            x = x @ w
            if i < len(weights) - 1:
                x = np.maximum(x, 0)
        return x

    return run


def torch_forward(weights):
    import torch

    ws = [torch.from_numpy(w) for w in weights]

    def run(x):
        with torch.no_grad():
            h = torch.from_numpy(x)
            for i, w in enumerate(ws):
                h = h @ w
                if i < len(ws) - 1:
                    h = torch.relu(h)
            return h.numpy()

    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--gemv-rows", type=int, default=None)
    ap.add_argument("--rows", default="1,2")
    args = ap.parse_args(argv)
    from symnn.ops import dot_rows

    if args.gemv_rows is not None:
        dot_rows.GEMV_ROWS = dot_rows.GEMV_ROWS_LARGE = args.gemv_rows
    print(f"machine: {machine()}; gemv for up to {dot_rows.GEMV_ROWS} rows, "
          f"{dot_rows.GEMV_ROWS_LARGE} for matrices of {dot_rows.LARGE} elements or more")
    rng = np.random.default_rng(0)
    for name, widths in NETS.items():
        weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
                   for a, b in zip(widths[:-1], widths[1:])]  # fmt: skip
        impls = {"symnn Dot22 (gemm)": symnn_forward(widths, weights, False),
                 "symnn RowAwareDot22": symnn_forward(widths, weights, True),
                 "numpy": numpy_forward(weights)}  # fmt: skip
        try:
            import torch

            torch.set_num_threads(2)
            impls["PyTorch"] = torch_forward(weights)
        except ImportError:
            pass
        for rows in map(int, args.rows.split(",")):
            x = rng.random((rows, widths[0]), dtype=np.float32)
            want = impls["numpy"](x)
            times = {k: [] for k in impls}
            for k, f in impls.items():  # warm up, and the same answer
                got = f(x)
                assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max()), k
            for _ in range(args.rounds):
                for k, f in impls.items():
                    time.sleep(0.5)
                    t0 = time.perf_counter()
                    for _ in range(args.repeat):
                        f(x)
                    times[k].append((time.perf_counter() - t0) / args.repeat * 1e3)
            base = median(times["symnn Dot22 (gemm)"])
            print(f"\n{name}, {rows} row(s): ms per forward (median of {args.rounds} rounds), "
                  "time relative to symnn's Dot22")  # fmt: skip
            for k, ts in times.items():
                print(f"  {k:>22}: {median(ts):8.3f} ms  ({median(ts) / base:.2f}x)")


if __name__ == "__main__":
    main()
