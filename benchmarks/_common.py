"""Shared pieces of the benchmarks: data, timing rounds, medians, tables."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable

import numpy as np


def fashion_or_random(n: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Fashion-MNIST training images when Debian's package is installed, else random data of
    the same shape (784 features in [0, 1], 10 classes)."""
    from symnn.datasets import FASHION_MNIST_PATH, load_fashion_mnist

    if os.path.isdir(FASHION_MNIST_PATH):
        d = load_fashion_mnist(dtype=dtype)
        return d.X_train[:n], d.y_train[:n], "Fashion-MNIST"
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784)).astype(dtype)
    y = rng.integers(0, 10, n).astype(np.int32)
    return X, y, "random (Fashion-MNIST not installed)"


def interleaved(
    runners: dict[str, Callable[[], float]], rounds: int, pause: float = 0.5
) -> dict[str, list[float]]:
    """Run every runner once per round, in the same order each round; collect the results.

    Each run waits ``pause`` seconds first: the BLAS threads of the library that ran before
    (numpy's OpenBLAS, scipy's, PyTorch's) keep spinning for a while after their last call,
    and on a 2-core machine they would slow whichever implementation runs next.
    """
    import time

    out: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            time.sleep(pause)
            out[name].append(run())
    return out


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> str:
    try:
        import threadpoolctl

        blas = {
            i["filepath"].split("/")[-1]: i.get("architecture")
            for i in threadpoolctl.threadpool_info()
            if i["internal_api"] == "openblas"
        }
    except ImportError:  # pragma: no cover
        blas = {}
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"OpenBLAS kernels {sorted(set(blas.values()))}"
    )
