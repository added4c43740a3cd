"""Registering implementations of symnn's ops with PyTensor's numba and JAX backends, in one
place: skipped when a backend is missing or its dispatch API differs from the one this was
written against.

Importing numba and PyTensor's numba dispatch costs about 0.3 s, JAX's several times that; a
process that never compiles with those backends need not pay it (symnn's default is the C
backend). So the implementations are registered when PyTensor's dispatch module of the
backend is imported, which PyTensor does before its linker translates any op (at once when it
is imported already).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable
from types import ModuleType

__all__ = ["register_numba", "register_jax"]

#: the modules whose import brings PyTensor's dispatch of each backend
NUMBA_DISPATCH = "pytensor.link.numba.dispatch.basic"
JAX_DISPATCH = "pytensor.link.jax.dispatch.basic"

#: what each dispatch module defines to register with
_HOOK = {NUMBA_DISPATCH: "register_funcify_default_op_cache_key", JAX_DISPATCH: "jax_funcify"}

_lock = threading.RLock()
_pending: dict[str, list[dict[type, Callable]]] = {NUMBA_DISPATCH: [], JAX_DISPATCH: []}


def register_numba(makers: dict[type, Callable]) -> None:
    """For each op class, ``maker(nb, op, node)`` returns the numba-compiled function that
    computes the op (``nb`` is ``pytensor.link.numba.dispatch.basic``); registered when that
    module is imported, or now if it is."""
    _register_when_imported(NUMBA_DISPATCH, makers)


def register_jax(makers: dict[type, Callable]) -> None:
    """For each op class, ``maker(op, node)`` returns a function of the op's inputs written
    with ``jax.numpy`` (traced and compiled by PyTensor's JAX linker); registered when
    PyTensor's JAX dispatch is imported, or now if it is."""
    _register_when_imported(JAX_DISPATCH, makers)


def _register_when_imported(name: str, makers: dict[type, Callable]) -> None:
    with _lock:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, _HOOK[name]):
            _REGISTER[name](module, makers)
            return
        _pending[name].append(makers)
        if not any(isinstance(f, _AfterDispatchImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterDispatchImport())


def _register_numba(nb: ModuleType, makers: dict[type, Callable]) -> None:
    hook = getattr(nb, _HOOK[NUMBA_DISPATCH], None)
    if hook is None:  # pragma: no cover - another PyTensor version
        return
    for cls, make in makers.items():
        hook(cls)(lambda op, node=None, make=make, **kw: (make(nb, op, node), _salt(make, node)))


@functools.cache
def _source_digest(module_name: str) -> str:
    module = sys.modules[module_name]
    with open(module.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _salt(make: Callable, node) -> int:
    """What PyTensor's numba cache adds to its key of an op (its type and properties): the
    source of the module that made the loop (a changed loop is compiled again) and the node's
    input and output types (the loops are specialised to them)."""
    types = "" if node is None else repr([v.type for v in (*node.inputs, *node.outputs)])
    text = _source_digest(make.__module__) + types
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def _register_jax(jx: ModuleType, makers: dict[type, Callable]) -> None:
    funcify = getattr(jx, _HOOK[JAX_DISPATCH], None)
    if funcify is None:  # pragma: no cover - another PyTensor version
        return
    for cls, make in makers.items():
        funcify.register(cls)(lambda op, node=None, make=make, **kw: make(op, node))


_REGISTER = {NUMBA_DISPATCH: _register_numba, JAX_DISPATCH: _register_jax}


def _flush(name: str, module: ModuleType) -> None:
    with _lock:
        pending, _pending[name][:] = list(_pending[name]), []
        for makers in pending:
            _REGISTER[name](module, makers)


class _AfterDispatchImport(importlib.abc.MetaPathFinder):
    """Finds a dispatch module through the other finders and registers what is pending right
    after the module has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _pending:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:  # pragma: no cover - backend missing
            return None
        spec.loader = _RegisteringLoader(spec.loader, fullname)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader, name: str):
        self.loader = loader
        self.name = name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _flush(self.name, module)
