"""Choosing the number of BLAS threads for a repeated compiled call, by measuring.

Whether OpenBLAS's threads pay for the small products of a training or ascent step depends
on the machine, the shapes and what else runs on it. A :class:`ThreadTuner` therefore times
a loop's first calls with one thread and with all of them, in blocks (the first call after
a switch is not timed: OpenBLAS wakes or parks its threads), and keeps the setting with the
fastest call, all threads unless one thread is clearly faster (``_MARGIN``). Once chosen,
every call is timed and every ``_RECHECK`` calls one block of the other setting runs, so the
choice follows the machine as its load changes.

The thread count can change the last bits of a matrix product (OpenBLAS's single- and
multi-threaded drivers split the sum differently), so two runs from the same seed give
bit-identical results only with the same counts: a fixed count (``blas_threads=2`` on
:class:`~symnn.train.Trainer` and :func:`~symnn.inputopt.maximize`) turns the tuning off.

OpenBLAS has one thread count per process: :class:`BlasGate` shares it between threads (see
``docs/concurrency.md``). Only the BLAS library that PyTensor links (scipy's OpenBLAS) is
touched, through threadpoolctl. Measurements behind these choices are in
``docs/performance.md``.
"""

from __future__ import annotations

import numbers
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from ..errors import SymnnValueError

__all__ = ["ThreadTuner", "BlasGate", "blas_controller", "check_blas_threads"]

_PROBES = 8  # timed calls per setting
_BLOCK = 3  # calls per block of one setting (the first is not timed)
_MARGIN = 0.9  # one thread is kept only when its fastest call is 10 % faster
_RECHECK = 200  # calls of the chosen setting between two blocks of the other one


_found: list = []  # the controller, once found


def check_blas_threads(value: Any, name: str = "blas_threads") -> int | None:
    """``"auto"`` (tune by timing: None) or a positive number of threads."""
    if isinstance(value, str) and value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SymnnValueError(
            f"{name}={value!r} is not valid; expected 'auto' or a positive number of threads."
        )
    return int(value)


def blas_controller() -> Any | None:
    """threadpoolctl's controller of the BLAS library symnn links, if it is loaded.

    Kept once found: building a ``ThreadpoolController`` scans every loaded library.
    """
    if _found:
        return _found[0]
    from . import blas_status

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


class BlasGate:
    """The process-wide owner of the BLAS thread count.

    OpenBLAS has one thread count per process, so two runs in two threads that each set
    their own count would change it under each other's feet. A run *holds* the gate at a
    count for as long as it runs: runs that need the same count share it; a run that needs
    a fixed other count (``blas_threads=2``, for bit-identical results) waits until the
    holders are done; a tuned run (``blas_threads="auto"``) joins at whatever count is in
    force and switches only while it holds the gate alone (nested holds of the same thread
    count as alone). When the last holder leaves, the library's default count is restored.
    """

    def __init__(self, lib: Any):
        self.lib = lib
        self.default = lib.get_num_threads()
        self.count = self.default
        self._holders: Counter[int] = Counter()  # thread id -> holds
        self._cond = threading.Condition()

    def _alone(self) -> bool:
        return set(self._holders) <= {threading.get_ident()}

    def hold(self, n: int, *, wait: bool) -> int:
        """Hold the gate at ``n`` threads (``wait``) or at the count in force when others
        hold another one (not ``wait``); returns the count held."""
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._alone() or self.count == n)
            if self._alone():
                self._apply(n)
            self._holders[threading.get_ident()] += 1
            return self.count

    def switch(self, n: int) -> int:
        """Change the count of a held gate when no other thread holds it; returns the
        count in force."""
        with self._cond:
            if self._alone():
                self._apply(n)
            return self.count

    def release(self) -> None:
        with self._cond:
            me = threading.get_ident()
            self._holders[me] -= 1
            if self._holders[me] <= 0:
                del self._holders[me]
            if not self._holders:
                self._apply(self.default)
                self._cond.notify_all()

    def _apply(self, n: int) -> None:
        if n != self.count:
            self.lib.set_num_threads(n)
            self.count = n


_gates: list[BlasGate] = []
_gates_lock = threading.Lock()


def blas_gate() -> BlasGate | None:
    """The :class:`BlasGate` of symnn's BLAS library (None when threadpoolctl cannot
    control it)."""
    with _gates_lock:
        if not _gates:
            lib = blas_controller()
            if lib is None:
                return None
            _gates.append(BlasGate(lib))
        return _gates[0]


class ThreadTuner:
    """Calls ``fn`` with the faster BLAS thread count, found by timing its calls.

    Over the first calls the two settings (one thread, the library's default) alternate in
    blocks until each has ``_PROBES`` timed calls; the faster becomes :attr:`choice`. After
    that, every ``_RECHECK`` calls, one block of the other setting is timed and the choice
    switches if that setting is now the faster (see the module docstring).

    ``choice`` (1 or the library's default) can be passed in from an earlier tuning of the
    same function and batch size: it is used at once, and re-checked like any choice.
    ``fixed`` runs every call with that many threads and measures nothing (bit-reproducible
    runs). The tuner holds the process's :class:`BlasGate` from construction to
    :meth:`restore`, which every tuner must reach (use ``try``/``finally``).
    """

    def __init__(self, choice: int | None = None, fixed: int | None = None):
        self.gate = blas_gate()
        self.lib = self.gate.lib if self.gate is not None else None
        self.default = self.gate.default if self.gate is not None else 1
        self.fixed = fixed
        if fixed is not None:
            choice = fixed
        elif self.default <= 1:
            choice = self.default  # nothing to choose
        self.choice = choice
        self.times: dict[int, list[float]] = {1: [], self.default: []}  # first probes
        self.calls = 0  # calls made while probing
        self.switches = 0  # changes of choice after the first probes
        self._recent: deque[float] = deque(maxlen=_PROBES)  # the chosen setting's calls
        self._trial: list[float] = []  # the other setting's calls in a re-check
        self._since = 0  # calls since the last re-check
        self._current: int | None = None  # the count the last call ran with
        self._held = False
        if self.gate is not None:
            want = self.choice if self.choice is not None else self.default
            self._current = self.gate.hold(want, wait=fixed is not None)
            self._held = True

    def __call__(self, fn: Callable, *args: Any) -> Any:
        if self.lib is None or self.default <= 1 or self.fixed is not None:
            return fn(*args)
        if self.choice is None:
            return self._probe(fn, args)
        return self._recheck(fn, args)

    def _probe(self, fn: Callable, args: tuple) -> Any:
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
            self.choice = self._faster(min(self.times[1]), min(self.times[self.default]))
            self._set(self.choice)
        return out

    def _recheck(self, fn: Callable, args: tuple) -> Any:
        pos = self._since - _RECHECK  # >= 0 during a block of the other setting
        self._since += 1
        other = 1 if self.choice != 1 else self.default
        self._set(other if pos >= 0 else self.choice)
        t0 = time.perf_counter()
        out = fn(*args)
        seconds = time.perf_counter() - t0
        if pos < 0:
            self._recent.append(seconds)
        elif pos > 0:  # the first call after a switch is not timed
            self._trial.append(seconds)
        if pos == _BLOCK - 1:
            if self._recent:
                mine, theirs = min(self._recent), min(self._trial)
                one, default = (theirs, mine) if other == 1 else (mine, theirs)
                if self._faster(one, default) != self.choice:
                    self.choice = other
                    self.switches += 1
                    self._recent.clear()
            self._trial = []
            self._since = 0
            self._set(self.choice)
        return out

    def _faster(self, one: float, default: float) -> int:
        """The fastest call of each setting decides (a busy machine slows calls, never speeds
        them up); one thread must win clearly to replace the library's default."""
        return 1 if one < _MARGIN * default else self.default

    @property
    def current(self) -> int:
        """The thread count the last call ran with."""
        return self._current if self._current is not None else 1

    def _set(self, n: int) -> None:
        if self._held and n != self._current:
            self._current = self.gate.switch(n)  # stays put while other threads hold it

    def set(self, n: int) -> None:
        """Run the next direct calls of the function with ``n`` threads (used to replay calls
        exactly; a call through the tuner picks its own count)."""
        self._set(n)

    def restore(self) -> None:
        """Let go of the gate (the library's default count returns when no run holds it)."""
        if self._held:
            self._held = False
            self.gate.release()
