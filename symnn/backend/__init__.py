"""How symnn compiles: ``symnn.function``, the backends and the BLAS link, in one place.

:mod:`~symnn.backend.link` links PyTensor's C backend to the OpenBLAS inside scipy's wheel
and checks the link once; :mod:`~symnn.backend.modes` names the backends (``"C"``,
``"NUMBA"``, ``"JAX"``) and resolves ``mode=``; this module compiles (:func:`function`, one
compile at a time: PyTensor's rewriting and linking are process-wide state) and answers what
a compiled function runs (:func:`python_nodes`, :func:`info`).
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

import numpy as np
import pytensor

from .link import COMPILE_LOCK, BlasStatus, blas_status
from .modes import (
    BACKENDS,
    REWRITE_TAG,
    default_mode,
    mode_name,
    resolve_mode,
    set_default_mode,
    usable_backends,
)  # fmt: skip

__all__ = [
    "BlasStatus",
    "blas_status",
    "default_mode",
    "set_default_mode",
    "resolve_mode",
    "mode_name",
    "usable_backends",
    "BACKENDS",
    "REWRITE_TAG",
    "COMPILE_LOCK",
    "LockedFunction",
    "function",
    "python_nodes",
    "info",
]


def function(
    inputs, outputs=None, updates=None, *, mode=None, **kwargs
) -> pytensor.compile.Function:
    """Compile a PyTensor function with symnn's mode: a thin wrapper over ``pytensor.function``.

    Parameters
    ----------
    inputs, outputs, updates
        As for :func:`pytensor.function`; ``updates`` may be a dict ``shared -> expression``.
    mode
        A PyTensor mode (name or ``Mode``); ``None`` uses :func:`default_mode`.
    **kwargs
        Passed on to :func:`pytensor.function` (``givens``, ``on_unused_input``, ...).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> x = pt.vector("x", dtype="float32")
    >>> f = function([x], 2 * x, mode="FAST_COMPILE")
    >>> f(np.ones(2, dtype="float32"))
    array([2., 2.], dtype=float32)
    """
    if updates is not None and isinstance(updates, dict):
        updates = list(updates.items())
    mode = resolve_mode(mode)  # also checks the BLAS link once, under its own lock
    with COMPILE_LOCK:  # PyTensor's rewriting, configuration and linking are not thread-safe
        return pytensor.function(inputs, outputs, updates=updates, mode=mode, **kwargs)


def python_nodes(fn: Any) -> list:
    """The nodes of a compiled function that run as Python code rather than compiled code.

    With symnn's C and NUMBA modes this is empty for the graphs symnn builds and for the
    idioms its rewrites know (:mod:`symnn.ops.rewrites`); a node listed here costs a Python
    call (and usually a numpy round trip) on every call of ``fn``. For the C backend, the
    nodes without a C thunk; for NUMBA, the nodes whose op has no numba implementation (numba
    runs them in object mode); a Python linker lists every node.

    >>> import pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float64")
    >>> python_nodes(function([x], pt.special.softmax(x, axis=-1), mode="C"))
    []
    """
    fn = getattr(fn, "fn", fn)  # a LockedFunction
    if mode_name(fn.maker.mode) == "NUMBA":
        from pytensor.link.numba.dispatch.basic import numba_funcify

        fallback = numba_funcify.dispatch(object)
        nodes = fn.maker.fgraph.toposort()
        return [node for node in nodes if numba_funcify.dispatch(type(node.op)) is fallback]
    vm = getattr(fn, "vm", None)
    thunks = getattr(vm, "thunks", None)
    if thunks is None:
        return list(fn.maker.fgraph.toposort())
    return [node for node, thunk in zip(vm.nodes, thunks) if not hasattr(thunk, "cthunk")]


class LockedFunction:
    """A compiled function that one thread at a time runs.

    A PyTensor function keeps its inputs, outputs and intermediate results in storage of its
    own, shared by every caller: two threads calling it at once can read each other's
    values. symnn hands out compiled functions only behind such a lock (or holds the lock
    of the object that owns them for a whole run).

    >>> import pytensor.tensor as pt
    >>> x = pt.vector("x", dtype="float64")
    >>> f = LockedFunction(function([x], x + 1, mode="FAST_COMPILE"))
    >>> f(np.zeros(2))
    array([1., 1.])
    """

    def __init__(self, fn: Any):
        self.fn = fn
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return self.fn(*args, **kwargs)


def info() -> dict[str, Any]:
    """Backend, BLAS library, float type, compile directory and versions, as a dict."""
    import scipy

    from ..utils import DEFAULT_FLOAT
    from ..version import __version__

    status = blas_status()
    mode = default_mode()
    return {
        "symnn": __version__,
        "pytensor": pytensor.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "backend": status.backend,
        "default_mode": mode_name(mode),
        "backends": usable_backends(),
        "blas_library": status.library or "(none)",
        "blas_source": status.source,
        "blas_check": status.reason,
        "blas_ldflags": status.ldflags or "(empty)",
        "float_type": DEFAULT_FLOAT,
        "pytensor_floatX": pytensor.config.floatX,
        "compiledir": str(pytensor.config.compiledir),
        "cxx": pytensor.config.cxx or "(none)",
    }

