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
    runners: dict[str, Callable[[], float]], rounds: int, pause: float = 0.5, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every runner once per round and collect the results, after ``warmup`` untimed
    rounds (first-call costs: allocations, symnn's BLAS thread tuning).

    The order rotates from round to round: on this machine the position in a round moved one
    implementation's ratio by up to 20 % (symnn/numpy at 784-100-10 batch 1000: 0.96x when
    first in every round, 1.06x and 1.15x in the two other orders of the same three). Each
    run waits ``pause`` seconds first: the BLAS threads of the library that ran before
    (numpy's OpenBLAS, scipy's, PyTorch's) keep spinning for up to ~0.2 s after their last
    call, and on a 2-core machine they would slow whichever implementation runs next.
    """
    import time

    names = list(runners)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            time.sleep(pause)
            value = runners[name]()
            if r >= warmup:
                out[name].append(value)
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
