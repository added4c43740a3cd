"""The backends and their modes: ``"C"`` (PyTensor's ``cvm`` linker with ``fast_run`` and
symnn's rewrites, C modules compiled on every core), ``"NUMBA"`` and ``"JAX"``; the default
mode and how a ``mode=`` argument resolves. Modes are passed per function, so other PyTensor
users (PyMC, ...) are unaffected.
"""

from __future__ import annotations

import os
from typing import Any

from pytensor.compile.mode import Mode, get_mode

from ..errors import SymnnTypeError, SymnnValueError
from .link import blas_status

__all__ = [
    "BACKENDS", "REWRITE_TAG", "default_mode", "set_default_mode", "resolve_mode", "mode_name",
    "usable_backends",
]  # fmt: skip

_user_default_mode: Any = None

#: the tag of symnn's graph rewrites (:mod:`symnn.ops.rewrites`): only symnn's C mode runs them
REWRITE_TAG = "symnn"


def _c_mode() -> Mode:
    # fast_run plus symnn's rewrites, which turn PyTensor's Softmax/LogSoftmax (graphs that
    # the C backend would run from Python) and the integer-indexing idioms into C ops
    # ``cvm`` whose C modules are compiled on every core (:mod:`symnn.backend.parallel`);
    # the linker frees each intermediate once it is read (allow_gc), so a step allocates its
    # large intermediates anew on every call: keep freed memory for the next
    from .memory import keep_freed_memory
    from .parallel import ParallelCVMLinker

    keep_freed_memory()
    return Mode(linker=ParallelCVMLinker(), optimizer="fast_run").including(REWRITE_TAG)


#: symnn's rewrites that only pay off with C code (a flat loop for fused elementwise nodes, a
#: convolution's input gradient by chunks, one-row products by gemv)
_C_ONLY_REWRITES = ("symnn_flat_elemwise", "symnn_col2im_gemm", "symnn_row_aware_dot22")

#: the backends ``mode=`` and ``SYMNN_MODE`` name with one word
BACKENDS = ("C", "NUMBA", "JAX")


def _numba_mode() -> Mode:
    # PyTensor's NUMBA mode plus symnn's rewrites (whose ops all have numba implementations);
    # numba allocates every intermediate anew on each call: keep freed memory for the next
    from .memory import keep_freed_memory

    keep_freed_memory()
    return get_mode("NUMBA").including(REWRITE_TAG).excluding(*_C_ONLY_REWRITES)


def _jax_mode() -> Mode:
    try:
        import jax  # noqa: F401
    except ImportError:
        raise SymnnValueError(
            "mode='JAX' needs JAX: pip install 'symnn[jax]' (or 'jax[cuda]' for a GPU)."
        ) from None
    # without PyTensor's elementwise fusion, as PyTensor >= 3.3 has it: XLA fuses on its own,
    # and a fused node of shape arithmetic would make a reshape's shape a traced value
    mode = get_mode("JAX").including(REWRITE_TAG, "symnn_jax")
    return mode.excluding(*_C_ONLY_REWRITES, "fusion")


_BACKEND_MODES = {"C": _c_mode, "NUMBA": _numba_mode, "JAX": _jax_mode}


def mode_name(mode: str | Mode | None = None) -> str:
    """The backend a mode compiles for: ``"C"``, ``"NUMBA"``, ``"JAX"``, or the mode's own name.

    >>> mode_name("numba"), mode_name(resolve_mode("C")), mode_name("FAST_COMPILE")
    ('NUMBA', 'C', 'FAST_COMPILE')
    """
    mode = default_mode() if mode is None else mode
    if isinstance(mode, str):
        return mode.upper()
    linker = type(mode.linker).__name__
    for name, prefix in (("NUMBA", "Numba"), ("JAX", "JAX"), ("C", "ParallelCVM")):
        if linker.startswith(prefix):
            return name
    return linker


def usable_backends() -> dict[str, str]:
    """For each of :data:`BACKENDS`, ``"usable"`` or why it is not usable here."""
    import importlib.util

    status = blas_status()
    found = {name: importlib.util.find_spec(name) is not None for name in ("numba", "jax")}
    return {
        "C": "usable" if status.backend == "C" else f"not usable: {status.reason}",
        "NUMBA": "usable" if found["numba"] else "not usable: numba is not installed",
        "JAX": "usable" if found["jax"] else "not usable: pip install 'symnn[jax]'",
    }


def set_default_mode(mode: str | Mode | None) -> None:
    """Set the mode every symnn compile uses when no ``mode=`` is passed.

    ``None`` restores symnn's choice (C backend with BLAS, else NUMBA). The environment
    variable ``SYMNN_MODE`` (``C``, ``NUMBA``, ``JAX`` or any PyTensor mode name such as
    ``FAST_COMPILE``) sets it for a whole process.
    """
    global _user_default_mode
    if mode is not None:
        resolve_mode(mode)  # validate now, not at the first compile
    _user_default_mode = mode


def default_mode() -> str | Mode:
    """The mode symnn compiles with when no ``mode=`` is given."""
    if _user_default_mode is not None:
        return _user_default_mode
    env = os.environ.get("SYMNN_MODE")
    if env:
        return env
    return _c_mode() if blas_status().backend == "C" else _numba_mode()


def resolve_mode(mode: str | Mode | None = None) -> str | Mode:
    """Return ``mode`` checked, or symnn's default mode when ``mode`` is None.

    ``"C"``, ``"NUMBA"`` and ``"JAX"`` (any case) are PyTensor's backends with symnn's graph
    rewrites (:mod:`symnn.ops.rewrites`): ``"C"`` the ``cvm`` linker with symnn's BLAS and
    ``fast_run`` rewrites, ``"NUMBA"`` and ``"JAX"`` PyTensor's modes of those names. Any
    other PyTensor mode name, or a ``Mode``, is used as it is.
    """
    if mode is None:
        mode = default_mode()
    if isinstance(mode, Mode):
        return mode
    if not isinstance(mode, str):
        raise SymnnTypeError(
            f"mode must be a string or a pytensor Mode; got {type(mode).__name__}."
        )
    if mode.upper() in _BACKEND_MODES:
        return _BACKEND_MODES[mode.upper()]()
    try:
        get_mode(mode)
    except Exception:
        from pytensor.compile.mode import predefined_modes

        names = ", ".join(sorted({*BACKENDS, *predefined_modes}))
        raise SymnnValueError(
            f"mode={mode!r} is not a PyTensor mode; expected one of {names}."
        ) from None
    return mode

