"""Registering numba implementations of symnn's ops with PyTensor's numba backend (its
default mode), in one place: skipped when numba is missing or PyTensor's dispatch API differs
from the one this was written against."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["register_numba"]


def register_numba(makers: dict[type, Callable]) -> None:
    """For each op class, ``maker(nb, op, node)`` returns the numba-compiled function that
    computes the op (``nb`` is ``pytensor.link.numba.dispatch.basic``)."""
    try:
        import numba  # noqa: F401
        from pytensor.link.numba.dispatch import basic as nb
    except ImportError:  # pragma: no cover - numba is optional
        return
    hook = getattr(nb, "register_funcify_default_op_cache_key", None)
    if hook is None:  # pragma: no cover - another PyTensor version
        return
    for cls, make in makers.items():
        hook(cls)(lambda op, node=None, make=make, **kw: make(nb, op, node))
