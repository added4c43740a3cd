"""The GEMM limit: float32 ``sgemm`` rates of BLAS libraries on the products symnn's training
steps run, side by side in one process (interleaved rounds, medians, 2 threads each).

The library symnn links by default (the OpenBLAS of scipy's wheel) is always measured; others
are given as ``PATH:SYMBOL`` (a Fortran ``sgemm`` entry point), e.g. Intel's MKL from PyPI
(``pip install mkl`` puts ``libmkl_rt.so.3`` in the environment's ``lib``)::

    python benchmarks/blas_libraries.py [--rounds 5] [--lib /venv/lib/libmkl_rt.so.3:sgemm_]

Shapes (row-major ``C = op(A) op(B)``, ``M x K`` times ``K x N``): the three products of each
convolution of Lasagne's MNIST network at batch 128 (forward, weight gradient, input
gradient), its dense layer, the 784-100-10 MLP at batch 1000, and a 3x3 convolution of
GoogLeNet's Inception 3a at batch 4. Prints GFLOP/s per library and the ratio to symnn's.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time

import numpy as np
from _common import interleaved, machine, median

#: (label, M, K, N, A transposed, B transposed)
SHAPES = [
    ("conv1 forward", 32, 26, 73728, False, False),
    ("conv1 weight grad", 32, 73728, 26, False, True),
    ("conv2 forward", 32, 801, 8192, False, False),
    ("conv2 weight grad", 32, 8192, 801, False, True),
    ("conv2 input grad", 800, 32, 8192, True, False),
    ("dense 512->256, batch 128", 128, 512, 256, False, False),
    ("MLP 784->100, batch 1000", 1000, 784, 100, False, False),
    ("Inception 3x3, batch 4", 128, 864, 3136 * 4, False, False),
]


class Sgemm:
    """A library's Fortran ``sgemm`` called on row-major numpy arrays."""

    def __init__(self, path: str, symbol: str):
        self.fn = getattr(ctypes.CDLL(path), symbol)
        self.name = f"{os.path.basename(path)}:{symbol}"

    def __call__(self, A, B, C, ta: bool, tb: bool) -> None:
        # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
        m, n = C.shape
        k = A.shape[0] if ta else A.shape[1]
        i, f = ctypes.c_int, ctypes.c_float
        ref = ctypes.byref
        self.fn(ref(ctypes.c_char(b"T" if tb else b"N")), ref(ctypes.c_char(b"T" if ta else b"N")),
                ref(i(n)), ref(i(m)), ref(i(k)), ref(f(1.0)), B.ctypes.data_as(ctypes.c_void_p),
                ref(i(B.shape[1])), A.ctypes.data_as(ctypes.c_void_p), ref(i(A.shape[1])),
                ref(f(0.0)), C.ctypes.data_as(ctypes.c_void_p), ref(i(n)))  # fmt: skip


def symnn_blas() -> Sgemm:
    """The library and symbol symnn links PyTensor's C code to."""
    import pytensor

    import symnn.backend  # noqa: F401  (sets PyTensor's BLAS flags)

    flags = pytensor.config.blas__ldflags.split()
    libdir = next(f[2:] for f in flags if f.startswith("-L"))
    lib = next(f[2:] for f in flags if f.startswith("-l"))
    path = os.path.join(libdir, lib[1:] if lib.startswith(":") else f"lib{lib}.so")
    symbol = next((f.split("=")[1] for f in flags if f.startswith("-Dsgemm_=")), "sgemm_")
    return Sgemm(path, symbol)


def runner(gemm: Sgemm, shape, rng):
    _, m, k, n, ta, tb = shape
    A = rng.random((k, m) if ta else (m, k), dtype=np.float32)
    B = rng.random((n, k) if tb else (k, n), dtype=np.float32)
    C = np.empty((m, n), np.float32)
    gemm(A, B, C, ta, tb)
    expected = (A.T if ta else A) @ (B.T if tb else B)
    np.testing.assert_allclose(C, expected, rtol=1e-3, err_msg=gemm.name)
    reps = max(5, int(2e9 / (2 * m * k * n)))

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            gemm(A, B, C, ta, tb)
        return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lib", action="append", default=[], help="PATH:SYMBOL of another BLAS")
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "2")
    libs = [symnn_blas()] + [Sgemm(*spec.rsplit(":", 1)) for spec in args.lib]
    print(f"machine: {machine()}; 2 threads per library; GFLOP/s, medians of {args.rounds} rounds")
    rng = np.random.default_rng(0)
    header = "".join(f"{lib.name[:28]:>30}" for lib in libs)
    print(f"{'product (M x K x N)':44}{header}")
    for shape in SHAPES:
        runners = {lib.name: runner(lib, shape, rng) for lib in libs}
        got = interleaved(runners, args.rounds, pause=0.5)
        base = median(got[libs[0].name])
        cells = [f"{base:30.1f}"] + [
            f"{median(got[lib.name]):21.1f} ({median(got[lib.name]) / base:4.2f}x)"
            for lib in libs[1:]
        ]
        label = f"{shape[0]} ({shape[1]}x{shape[2]}x{shape[3]})"
        print(f"{label:44}{''.join(cells)}")


if __name__ == "__main__":
    main()
