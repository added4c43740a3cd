"""Registering numba implementations of symnn's ops with PyTensor's numba backend, in one
place: skipped when numba is missing or PyTensor's dispatch API differs from the one this was
written against.

Importing numba and PyTensor's numba dispatch costs about 0.3 s, which a process that never
compiles with the NUMBA backend need not pay (symnn's default is the C backend). So the
implementations are registered when PyTensor's dispatch module is imported, which PyTensor
does before its numba linker translates any op (at once when it is imported already).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable
from types import ModuleType

__all__ = ["register_numba"]

#: the module whose import brings PyTensor's numba dispatch (``numba_funcify`` and friends)
DISPATCH = "pytensor.link.numba.dispatch.basic"

_lock = threading.RLock()
_pending: list[dict[type, Callable]] = []


def register_numba(makers: dict[type, Callable]) -> None:
    """For each op class, ``maker(nb, op, node)`` returns the numba-compiled function that
    computes the op (``nb`` is ``pytensor.link.numba.dispatch.basic``); registered when that
    module is imported, or now if it is."""
    with _lock:
        module = sys.modules.get(DISPATCH)
        if module is not None and hasattr(module, "register_funcify_default_op_cache_key"):
            _register(module, makers)
            return
        _pending.append(makers)
        if not any(isinstance(f, _AfterDispatchImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterDispatchImport())


def _register(nb: ModuleType, makers: dict[type, Callable]) -> None:
    hook = getattr(nb, "register_funcify_default_op_cache_key", None)
    if hook is None:  # pragma: no cover - another PyTensor version
        return
    for cls, make in makers.items():
        hook(cls)(lambda op, node=None, make=make, **kw: make(nb, op, node))


def _flush(nb: ModuleType) -> None:
    with _lock:
        pending, _pending[:] = list(_pending), []
        for makers in pending:
            _register(nb, makers)


class _AfterDispatchImport(importlib.abc.MetaPathFinder):
    """Finds :data:`DISPATCH` through the other finders and registers what is pending right
    after the module has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != DISPATCH:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:  # pragma: no cover - numba backend missing
            return None
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _flush(module)
