"""Where a numba training step spends its time, against the C backend: each of symnn's
convolution ops alone on the shapes of ``benchmarks/backend_speed.py``'s CNN at batch 64
(median microseconds of 30 calls, same inputs), and the page faults and kernel time of a whole
CNN step (``getrusage`` around ``Trainer.fit``: numba allocates every intermediate on every
call; see ``symnn/backend/memory.py``).

    python benchmarks/numba_profile.py
    SYMNN_KEEP_FREED_MEMORY=0 python benchmarks/numba_profile.py   # glibc's defaults
"""

from __future__ import annotations

import resource
import time
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt

ARCH = "conv16x5,pool2,conv32x5,pool2,128,10"


def _median_us(fn, *args, n: int = 30) -> float:
    fn(*args)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def op_cases() -> dict:
    from symnn.ops import col2im, im2col, pool_2d
    from symnn.ops.conv import Pool2DGrad

    rng = np.random.default_rng(0)
    x = pt.tensor4("x", dtype="float32")
    g = pt.tensor4("g", dtype="float32")
    c = pt.matrix("c", dtype="float32")

    def r(*shape):
        return rng.random(shape, dtype="float32")

    return {
        "im2col, conv 1": ([x], im2col(x, 5, ones_row=True), [r(64, 1, 28, 28)]),
        "im2col, conv 2": ([x], im2col(x, 5, ones_row=True), [r(64, 16, 12, 12)]),
        "col2im, conv 2": (
            [c, x], col2im(c, x, 5, ones_row=True), [r(401, 4096), r(64, 16, 12, 12)]
        ),
        "max pool, conv 1": ([x], pool_2d(x, 2), [r(64, 16, 24, 24)]),
        "its gradient": (
            [x, g], Pool2DGrad("max", 2)(x, g), [r(64, 16, 24, 24), r(64, 16, 12, 12)]
        ),
        "max pool, conv 2": ([x], pool_2d(x, 2), [r(64, 32, 8, 8)]),
        "its gradient ": ([x, g], Pool2DGrad("max", 2)(x, g), [r(64, 32, 8, 8), r(64, 32, 4, 4)]),
    }


def step_faults(mode: str) -> tuple[float, float, float]:
    """(ms per step, minor page faults per step, kernel seconds per step) of a warm CNN step."""
    from symnn.layers import from_arch
    from symnn.train import Trainer

    rng = np.random.default_rng(0)
    X = rng.random((1280, 784), dtype="float32")
    y = rng.integers(0, 10, 1280).astype("int32")
    t = Trainer(from_arch(ARCH, (28, 28), rng=0), optimizer="sgd", learning_rate=0.01,
                mode=mode, seed=0, blas_threads=2)
    t.fit(X, y, epochs=1, batch_size=64, progress=False)
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    t.fit(X, y, epochs=3, batch_size=64, progress=False)
    after, seconds = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
    steps = 3 * 1280 // 64
    return (seconds / steps * 1e3, (after.ru_minflt - before.ru_minflt) / steps,
            (after.ru_stime - before.ru_stime) / steps)


def main() -> None:
    warnings.simplefilter("ignore")
    from symnn.backend import resolve_mode

    print(f"PyTensor {pytensor.__version__}")
    print(f"{'op (CNN, batch 64)':<20}{'C us':>10}{'NUMBA us':>10}{'NUMBA/C':>9}")
    for name, (inputs, out, values) in op_cases().items():
        us = {m: _median_us(pytensor.function(inputs, out, mode=resolve_mode(m)), *values)
              for m in ("C", "NUMBA")}
        print(f"{name:<20}{us['C']:>10.0f}{us['NUMBA']:>10.0f}{us['NUMBA'] / us['C']:>9.2f}")
    print(f"\n{'whole step':<12}{'ms/step':>9}{'faults/step':>13}{'kernel ms/step':>16}")
    for mode in ("C", "NUMBA"):
        ms, faults, kernel = step_faults(mode)
        print(f"{mode:<12}{ms:>9.2f}{faults:>13.0f}{kernel * 1e3:>16.2f}")


if __name__ == "__main__":
    main()
