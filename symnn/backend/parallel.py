"""Compile the C modules a new function needs on every core, then link it as PyTensor does.

PyTensor's ``cvm`` linker makes one thunk per node and compiles each node's C module when
the thunk is made, one ``g++`` after another. :class:`ParallelCVMLinker` is that linker
with one step in front: it generates the source of every module the function lacks, runs
the compilers side by side (each ``g++`` is a process of its own), and registers the
results in PyTensor's module cache. The linker's own pass then finds every module cached.

The cache's rules are kept. A module is compiled into a fresh directory of the compile
directory; it is registered, as PyTensor registers it, under the compile directory's
lock, after re-reading the cache: when another process registered the same module
meanwhile, that one is used and ours is deleted. Anything the step cannot handle (a node
without C code, a key PyTensor cannot compute, a compile error) is left to the linker's
own pass, which compiles or reports it as it always did.

The number of compilers is :func:`compile_jobs`: the environment variable
``SYMNN_COMPILE_JOBS`` when set (``1`` compiles one module at a time), else the number of
cores.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pytensor.compile.compilelock import lock_ctx
from pytensor.graph.fg import FunctionGraph
from pytensor.link.c.basic import CLinker, get_module_cache
from pytensor.link.c.cmodule import dlimport, dlimport_workdir, get_module_hash
from pytensor.link.c.op import COp
from pytensor.link.vm import VMLinker

from ..errors import SymnnValueError
from .pch import lighter_flags

__all__ = ["ParallelCVMLinker", "compile_jobs", "modules_compiled"]

_count_lock = threading.Lock()
_modules_compiled = 0


def modules_compiled() -> int:
    """How many C modules this process has compiled in the parallel step so far.

    >>> modules_compiled() >= 0
    True
    """
    return _modules_compiled


def compile_jobs() -> int:
    """How many C modules symnn compiles at once: ``SYMNN_COMPILE_JOBS``, else the cores.

    >>> compile_jobs() >= 1
    True
    """
    raw = os.environ.get("SYMNN_COMPILE_JOBS", "").strip()
    if not raw:
        return max(1, os.cpu_count() or 1)
    if not raw.isdigit() or int(raw) < 1:
        raise SymnnValueError(
            f"SYMNN_COMPILE_JOBS={raw!r} is not a positive integer; expected e.g. 2 "
            "(compilers run at once) or 1 (one at a time)."
        )
    return int(raw)


@dataclass
class _Module:
    """One C module to compile: what the cache files it under and how to build it."""

    key: Any
    module_hash: str
    name: str
    src: str = field(repr=False)
    args: dict[str, Any] = field(repr=False)
    location: str = ""
    error: BaseException | None = field(default=None, repr=False)
    filed: bool = False  #: registered in PyTensor's cache

    @property
    def library(self) -> str:
        from pytensor.link.c.cmodule import get_lib_extension

        return os.path.join(self.location, f"{self.name}.{get_lib_extension()}")


def _describe(node) -> _Module | None:
    """The module ``node``'s C thunk will need, or None when the linker's pass decides.

    The C linker is built exactly as ``COp.make_c_thunk`` builds it (one node, no
    ``no_recycling``), so the key and source are the ones the linker's pass looks up.
    """
    if not isinstance(node.op, COp):
        return None
    try:
        linker = CLinker().accept(FunctionGraph(node.inputs, node.outputs), no_recycling=[])
        key = linker.cmodule_key()
        if key is None:
            return None
        cache = get_module_cache()
        if cache._get_from_key(key) is not None:
            return None
        for inner in linker.node_order:
            inner.op.prepare_node(inner, None, None, "c")
        module = linker.get_dynamic_module()
        src = module.code()
        module_hash = get_module_hash(src, key)
        if cache._get_from_hash(module_hash, key) is not None:
            return None
        args = {
            "include_dirs": linker.header_dirs(),
            "lib_dirs": linker.lib_dirs(),
            "libs": linker.libraries(),
            "preargs": linker.compile_args(),
        }
        compiler = linker.c_compiler()
    except Exception:  # no C code, no key, float16, ...: the linker's own pass decides
        return None
    args["compile_str"] = compiler.compile_str
    return _Module(key, module_hash, module.code_hash, src, args)


def _compile(mod: _Module) -> None:
    """Run the compiler for ``mod`` (in a worker thread; the compiler is a subprocess)."""
    args = dict(mod.args)
    compile_str = args.pop("compile_str")
    try:
        compile_str(
            module_name=mod.name, src_code=mod.src, location=mod.location, py_module=False, **args
        )
    except BaseException as exc:  # reported by the linker's pass, which compiles it again
        mod.error = exc


def _register(mods: list[_Module]) -> None:
    """File the compiled modules in PyTensor's cache, as ``ModuleCache.module_from_key`` does."""
    cache = get_module_cache()
    with lock_ctx():
        cache.refresh(cleanup=False)  # another process may have filed some meanwhile
        for mod in mods:
            taken = mod.error is not None or cache._get_from_key(mod.key) is not None
            if not taken:
                taken = cache._get_from_hash(mod.module_hash, mod.key) is not None
            if taken:
                continue
            try:
                module = dlimport(mod.library)
            except Exception as exc:  # the linker's pass compiles it again and reports
                mod.error = exc
                continue
            cache.module_from_name[module.__file__] = module
            key_data = cache._add_to_cache(module, mod.key, mod.module_hash)
            cache.module_hash_to_key_data[mod.module_hash] = key_data
            mod.filed = True


def precompile(nodes, jobs: int | None = None, before: Callable[[], Any] | None = None) -> int:
    """Compile, ``jobs`` at a time, the C modules of ``nodes`` missing from PyTensor's cache.

    ``before`` runs first when there is anything to compile (symnn builds its precompiled
    header there). Returns how many modules this call filed (not one that failed to
    compile, nor one another process filed first: its directory is removed); nodes whose
    modules are cached, or that have no C code, are skipped.
    """
    jobs = compile_jobs() if jobs is None else jobs
    mods: dict[str, _Module] = {}
    for node in nodes:
        mod = _describe(node)
        if mod is not None:
            mods.setdefault(mod.module_hash, mod)
    todo = list(mods.values())
    if not todo:
        return 0
    if before is not None:
        before()
    cache = get_module_cache()
    with lock_ctx():  # made and filled under the lock, so no cleanup takes an empty directory
        for mod in todo:
            mod.location = dlimport_workdir(cache.dirname)
            with open(os.path.join(mod.location, "mod.cpp"), "w") as f:
                f.write(mod.src)
    try:
        if jobs == 1 or len(todo) == 1:
            for mod in todo:
                _compile(mod)
        else:
            with ThreadPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
                list(pool.map(_compile, todo))
        _register(todo)
    finally:  # nothing half-filed stays behind (a failed compile, a copy filed elsewhere, Ctrl-C)
        for mod in todo:
            if not mod.filed:
                shutil.rmtree(mod.location, ignore_errors=True)
    done = sum(mod.filed for mod in todo)
    global _modules_compiled
    with _count_lock:
        _modules_compiled += done
    return done


class ParallelCVMLinker(VMLinker):
    """PyTensor's ``cvm`` linker that first compiles the missing C modules in parallel.

    Everything else (thunks, storage, garbage collection, the C virtual machine) is
    :class:`pytensor.link.vm.VMLinker` with ``use_cloop=True``, i.e. ``linker="cvm"``.

    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from pytensor.compile.mode import Mode
    >>> x = pt.vector("x", dtype="float64")
    >>> f = pytensor.function([x], pt.exp(x) + 1, mode=Mode(ParallelCVMLinker(), "fast_run"))
    >>> f(np.zeros(2))
    array([2., 2.])
    """

    #: how many C modules the last ``make_all`` compiled in its parallel step
    precompiled: int = 0

    def __init__(self, allow_gc=None, use_cloop=True, **kwargs: Any):
        super().__init__(allow_gc=allow_gc, use_cloop=use_cloop, **kwargs)

    def make_all(self, profiler=None, input_storage=None, output_storage=None, storage_map=None):
        from . import COMPILE_LOCK  # the flags below are PyTensor's global configuration

        with COMPILE_LOCK, lighter_flags() as header:
            if self.c_thunks:
                order = self.schedule(self.fgraph)
                self.precompiled = precompile(order, before=header and header.build)
            return super().make_all(profiler, input_storage, output_storage, storage_map)
