"""Keeping freed memory for the next call: PyTensor's backends allocate a step's intermediates
on every call (numba always; the C backend's ``cvm`` linker frees each node's output once it
has been read, PyTensor's ``allow_gc``, so the next call allocates it again).

glibc returns freed blocks of the heap's top to the system once more than
``M_TRIM_THRESHOLD`` bytes are free there, and serves blocks larger than
``M_MMAP_THRESHOLD`` with ``mmap`` (unmapped when freed). A numba training step allocates
tens of megabytes of intermediates (patch matrices, their gradients) and frees them before
the next step, so with glibc's defaults every step faults its pages in again: a convolutional
step here faulted 3,500 pages and spent a third of its time in the kernel
(``docs/performance.md``), and a C-backend CNN step at batch 128 faulted 5,700 pages and ran
1.5x slower; when a large array comes from ``mmap`` also depends on what the process freed
before (glibc moves its threshold), so the same step's speed varied from process to process.
:func:`keep_freed_memory` raises both thresholds once per process,
so freed blocks are reused: up to ``TRIM_BYTES`` of free memory stays with the process.
``SYMNN_KEEP_FREED_MEMORY=0`` leaves glibc's settings alone; other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

__all__ = ["keep_freed_memory", "TRIM_BYTES", "MMAP_BYTES"]

#: free memory at the top of the heap kept for reuse
TRIM_BYTES = 256 << 20
#: blocks up to this size come from the heap (and are reused) rather than from mmap
MMAP_BYTES = 64 << 20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_lock = threading.Lock()
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds (once per process); True when they are set.

    >>> isinstance(keep_freed_memory(), bool)
    True
    """
    global _done
    with _lock:
        if _done is None:
            _done = _set_thresholds()
        return _done


def _set_thresholds() -> bool:
    if os.environ.get("SYMNN_KEEP_FREED_MEMORY", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt  # glibc (and compatible) only
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)
    )
