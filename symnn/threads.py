"""Choosing the number of BLAS threads for a repeated compiled call, by measuring.

OpenBLAS splits every matrix product over all cores. For the small products of a
784-100-10 step at batch 100, whether that pays depends on the machine and on what else runs
on it: on this 2-core machine one run measured 222k samples/s with one thread against 164k
with two, a later run 276k with two against 200k with one; at batch 1000 two threads won
every time (397k against 249k). So a loop that calls a compiled function many times first
times a few calls with one thread and with all threads, alternating, and keeps the faster
setting for the rest of the loop; the thread count is restored afterwards. Only the BLAS
library that PyTensor links (scipy's OpenBLAS) is touched, through threadpoolctl.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ThreadTuner", "blas_controller"]

_PROBES = 5  # timed calls per setting


def blas_controller() -> Any | None:
    """threadpoolctl's controller of the BLAS library symnn links, if it is loaded."""
    from .backend import blas_status

    library = blas_status().library
    if not library:
        return None
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return None
    for lib in ThreadpoolController().lib_controllers:
        if lib.filepath == library:
            return lib
    return None


class ThreadTuner:
    """Calls ``fn`` and, over its first calls, finds the faster BLAS thread count.

    ``choice`` (1 or the library's default) can be passed in from an earlier tuning of the
    same function and batch size; :meth:`restore` puts the default back.
    """

    def __init__(self, choice: int | None = None):
        self.lib = blas_controller()
        self.default = self.lib.get_num_threads() if self.lib is not None else 1
        self.choice = choice if self.default > 1 else self.default
        self.times: dict[int, list[float]] = {1: [], self.default: []}
        self.calls = 0
        if self.choice is not None and self.lib is not None:
            self.lib.set_num_threads(self.choice)

    def __call__(self, fn: Callable, *args: Any) -> Any:
        if self.choice is not None or self.lib is None:
            return fn(*args)
        self.calls += 1
        if self.calls == 1:  # warm-up, not timed
            return fn(*args)
        n = 1 if self.calls % 2 else self.default
        self.lib.set_num_threads(n)
        t0 = time.perf_counter()
        out = fn(*args)
        self.times[n].append(time.perf_counter() - t0)
        if min(len(v) for v in self.times.values()) >= _PROBES:
            self.choice = min(self.times, key=lambda k: statistics.median(self.times[k]))
            self.lib.set_num_threads(self.choice)
        return out

    @property
    def current(self) -> int:
        """The thread count the last call ran with."""
        return self.lib.get_num_threads() if self.lib is not None else 1

    def set(self, n: int) -> None:
        """Run the next calls with ``n`` threads (used to replay calls exactly)."""
        if self.lib is not None:
            self.lib.set_num_threads(n)

    def restore(self) -> None:
        if self.lib is not None:
            self.lib.set_num_threads(self.default)
