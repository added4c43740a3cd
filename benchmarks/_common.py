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
    from symnn.datasets import fashion_mnist_available, load_fashion_mnist

    if fashion_mnist_available():
        d = load_fashion_mnist(dtype=dtype)
        return d.X_train[:n], d.y_train[:n], "Fashion-MNIST"
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784)).astype(dtype)
    y = rng.integers(0, 10, n).astype(np.int32)
    return X, y, "random (Fashion-MNIST not installed)"


def balanced_orders(n: int) -> list[list[int]]:
    """Orders of ``n`` items for successive rounds (a Williams design): over the returned
    rounds every item runs at every position equally often and runs right after every other
    item equally often (``n`` rounds for even ``n``, ``2n`` for odd ``n``).

    >>> balanced_orders(4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(x + r) % n for x in first] for r in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def interleaved(
    runners: dict[str, Callable[[], float]], rounds: int, pause: float = 0.5, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every runner once per round and collect the results, after ``warmup`` untimed
    rounds (first-call costs: allocations, symnn's BLAS thread tuning).

    The order changes from round to round (:func:`balanced_orders`): on this machine both the
    position in a round and the implementation that ran just before moved a ratio by up to
    20 %. With a fixed cyclic order rotated each round, every implementation always followed
    the same one: "symnn" followed scikit-learn (the largest memory user) and "symnn
    guard=False", the same compiled step, followed "symnn"; at batch 1000 the two read 0.95x
    and 1.21x numpy in one run. Each run waits ``pause`` seconds first: the BLAS threads of
    the library that ran before (numpy's OpenBLAS, scipy's, PyTorch's) keep spinning for up to
    ~0.2 s after their last call, and on a 2-core machine they would slow whichever
    implementation runs next.
    """
    import time

    names = list(runners)
    orders = balanced_orders(len(names))
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + rounds):
        for i in orders[(r - warmup) % len(orders)]:
            time.sleep(pause)
            value = runners[names[i]]()
            if r >= warmup:
                out[names[i]].append(value)
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


class SymnnClassifier:
    """A symnn ``Trainer``: one epoch of ``fit`` (shuffled minibatches of ``batch``) and
    ``predict_proba``, each timed in samples/s; the symnn column of the benchmarks."""

    def __init__(self, trainer, batch: int, name: str = "symnn"):
        self.trainer, self.batch, self.name = trainer, batch, name

    def train(self, X: np.ndarray, y: np.ndarray) -> float:
        import time

        t0 = time.perf_counter()
        self.trainer.fit(X, y, epochs=1, batch_size=self.batch, progress=False)
        return len(X) / (time.perf_counter() - t0)

    def infer(self, X: np.ndarray) -> float:
        import time

        t0 = time.perf_counter()
        self.trainer.predict_proba(X)
        return len(X) / (time.perf_counter() - t0)


class TorchClassifier:
    """A PyTorch module ending in class scores, trained (one shuffled epoch of ``batch``
    rows, cross-entropy, the optimiser given) and run for probabilities, each timed in
    samples/s; the side every benchmark's PyTorch column shares."""

    name = "pytorch"

    def __init__(self, torch, model, optimizer, batch: int, seed: int = 0):
        self.torch, self.model, self.opt, self.batch = torch, model, optimizer, batch
        self.loss = torch.nn.CrossEntropyLoss()
        self.order = np.random.default_rng(seed)

    def train(self, X: np.ndarray, y: np.ndarray) -> float:
        import time

        torch = self.torch
        self.model.train()
        order = torch.from_numpy(self.order.permutation(len(X)))
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
        t0 = time.perf_counter()
        for s in range(0, len(X), self.batch):
            idx = order[s : s + self.batch]
            self.opt.zero_grad()
            self.loss(self.model(Xt[idx]), yt[idx]).backward()
            self.opt.step()
        return len(X) / (time.perf_counter() - t0)

    def infer(self, X: np.ndarray) -> float:
        import time

        torch = self.torch
        self.model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            torch.softmax(self.model(torch.from_numpy(X)), 1)
        return len(X) / (time.perf_counter() - t0)
