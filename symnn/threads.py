"""Choosing the number of BLAS threads for a repeated compiled call, by measuring.

OpenBLAS splits every matrix product over all cores. For the small products of a
784-100-10 step at batch 100, whether that pays depends on the machine and on what else runs
on it: on this 2-core machine one run measured 222k samples/s with one thread against 164k
with two, a later run 276k with two against 200k with one; at batch 1000 two threads won
every time (397k against 249k). So a loop that calls a compiled function many times first
times a few calls with one thread and with all threads, alternating, and keeps the faster
setting for the rest of the loop; the thread count is restored afterwards. The settings are
timed in blocks (the first call after a switch is not timed: OpenBLAS has to wake or park
its threads, and alternating every call made all threads look slower than they are), the
comparison uses each setting's fastest call, and all threads stay unless one thread is
clearly faster: with medians over alternating calls, a burst of load during the probes once
chose one thread at batch 1000, which then ran 30 % slower for the rest of the benchmark.
Only the BLAS library that PyTensor links (scipy's OpenBLAS) is touched, through
threadpoolctl.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["ThreadTuner", "blas_controller"]

_PROBES = 8  # timed calls per setting
_BLOCK = 3  # calls per block of one setting (the first is not timed)
_MARGIN = 0.9  # one thread is kept only when its fastest call is 10 % faster


_found: list = []  # the controller, once found


def blas_controller() -> Any | None:
    """threadpoolctl's controller of the BLAS library symnn links, if it is loaded.

    Kept once found: building a ``ThreadpoolController`` scans every loaded library
    (measured 3 ms, paid by every ``fit`` call before it was kept).
    """
    if _found:
        return _found[0]
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
            _found.append(lib)
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
        self._current: int | None = None  # the count last set through this tuner
        if self.choice is not None:
            self._set(self.choice)

    def __call__(self, fn: Callable, *args: Any) -> Any:
        if self.choice is not None or self.lib is None:
            return fn(*args)
        # blocks of _BLOCK calls per setting, alternating, starting with the default; the
        # first call of a block is not timed (after a switch OpenBLAS wakes or parks threads)
        block, pos = divmod(self.calls, _BLOCK)
        self.calls += 1
        n = self.default if block % 2 == 0 else 1
        self._set(n)
        if pos == 0:
            return fn(*args)
        t0 = time.perf_counter()
        out = fn(*args)
        self.times[n].append(time.perf_counter() - t0)
        if min(len(v) for v in self.times.values()) >= _PROBES:
            # the fastest call of each setting (a busy machine slows calls, never speeds
            # them up); one thread must win clearly to replace the library's default
            one, default = min(self.times[1]), min(self.times[self.default])
            self.choice = 1 if one < _MARGIN * default else self.default
            self._set(self.choice)
        return out

    @property
    def current(self) -> int:
        """The thread count the last call ran with."""
        if self._current is None:
            self._current = self.lib.get_num_threads() if self.lib is not None else 1
        return self._current

    def _set(self, n: int) -> None:
        if self.lib is not None and n != self._current:
            self.lib.set_num_threads(n)
            self._current = n

    def set(self, n: int) -> None:
        """Run the next calls with ``n`` threads (used to replay calls exactly)."""
        self._set(n)

    def restore(self) -> None:
        self._set(self.default)
