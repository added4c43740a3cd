"""A precompiled header for the C modules symnn compiles, and lighter compile flags.

Every C module PyTensor generates starts with the same headers (Python's, numpy's,
PyTensor's helper, ``<vector>``, ``<algorithm>``), and parsing them is most of the
compiler's time on a small module. symnn parses them once per compile directory: it
builds ``pch.h.gch`` from :data:`HEADER` with the flags of an ordinary module and passes
``-include pch.h`` to every module it compiles. It also passes ``-g0``: PyTensor's
``-g`` writes debug information that nobody reads and costs compile time. Neither flag
changes the generated machine code, so steps run as fast as before.

The header lives in ``<base_compiledir>/symnn_pch/<digest>/``, where the digest covers
the header text, the compiler, its flags and include directories, and the versions of
Python, numpy and PyTensor: anything that could make an old header wrong gives a new
directory (and, since the path is among the flags, new cache keys). Files are written to
a temporary name and renamed into place, so processes sharing the directory never see a
half-written header. GCC checks a precompiled header before using it and silently reads
``pch.h`` as text when it cannot (a module with different flags): correct either way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytensor

__all__ = ["HEADER", "compile_flags", "lighter_flags"]

#: the headers every PyTensor C module includes first (``pytensor_mod_helper.h`` and
#: numpy's defines come from the include path and ``-D`` flags of an ordinary module)
HEADER = """\
#include <Python.h>
#include "pytensor_mod_helper.h"
#include <math.h>
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>
#include <numpy/npy_math.h>
#include <vector>
#include <algorithm>
"""

_LIGHT = ["-g0"]  # PyTensor adds ``-g`` before the flags; the last one wins

#: flags that some modules add to the ordinary ones (PyTensor's float32 scalar ops ask for
#: ``-fsingle-precision-constant``); one precompiled header is built for each
VARIANTS: list[list[str]] = [[], ["-fsingle-precision-constant"]]


def _reference_args() -> tuple[list[str], list[str]]:
    """Flags and include directories of an ordinary float32 elemwise module."""
    import pytensor.tensor as pt
    from pytensor.graph.fg import FunctionGraph
    from pytensor.link.c.basic import CLinker
    from pytensor.link.c.cmodule import std_include_dirs

    x = pt.vector("x", dtype="float32")
    linker = CLinker().accept(FunctionGraph([x], [pt.exp(x)]))
    return linker.compile_args(), linker.header_dirs() + std_include_dirs()


def _directory(preargs: list[str], include_dirs: list[str]) -> str:
    digest = hashlib.sha256(
        "\n".join(
            [
                HEADER,
                pytensor.config.cxx,
                str(pytensor.config.gcc_version_str),
                sys.version,
                np.__version__,
                pytensor.__version__,
                *preargs,
                *include_dirs,
            ]
        ).encode()
    ).hexdigest()[:16]
    base = os.path.expanduser(str(pytensor.config.base_compiledir))
    return os.path.join(base, "symnn_pch", digest)


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a rename, so no reader sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _Header:
    """Where the header of the current configuration lives, and how to build it."""

    def __init__(self) -> None:
        user = [f for f in pytensor.config.gcc__cxxflags.split() if f]
        with pytensor.config.change_flags(gcc__cxxflags=" ".join(user + _LIGHT)):
            self.preargs, self.include_dirs = _reference_args()
        self.dir = _directory(self.preargs, self.include_dirs)
        self.header = os.path.join(self.dir, "pch.h")
        self.user = user

    def write_text(self) -> None:
        """Write ``pch.h`` (cheap; GCC reads it when the ``.gch`` is missing or unusable)."""
        if not os.path.exists(self.header):
            os.makedirs(self.dir, exist_ok=True)
            _write_atomically(self.header, HEADER.encode())

    def build(self) -> bool:
        """Build ``pch.h.gch`` unless it exists; False when the compiler refused.

        ``pch.h.gch`` is a directory with one header per flag variant in :data:`VARIANTS`
        (GCC uses the first that fits a module), built side by side and renamed into place.
        """
        gch = self.header + ".gch"
        if not _is_gcc():
            return False
        if os.path.exists(gch):
            return True
        self.write_text()
        staging = tempfile.mkdtemp(dir=self.dir, prefix=".tmp-")
        try:
            procs = [
                subprocess.Popen(
                    self._command(extra, os.path.join(staging, f"{i}.gch")),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i, extra in enumerate(VARIANTS)
            ]
            if any(p.wait() != 0 for p in procs):
                return False  # modules then parse pch.h as text: slower, still correct
            os.chmod(staging, 0o755)
            try:
                os.rename(staging, gch)
            except OSError:  # another process renamed its own first: use that one
                pass
            return True
        except OSError:
            return False
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _command(self, extra: list[str], out: str) -> list[str]:
        cmd = [pytensor.config.cxx, "-g", *self.preargs, *extra]
        cmd += [f"-I{d}" for d in self.include_dirs]
        return cmd + ["-fvisibility=hidden", "-x", "c++-header", self.header, "-o", out]


_headers: dict[tuple, _Header] = {}


def _current() -> _Header:
    conf = (pytensor.config.base_compiledir, pytensor.config.gcc__cxxflags, pytensor.config.cxx)
    if conf not in _headers:
        _headers[conf] = _Header()
    return _headers[conf]


def compile_flags() -> str:
    """The ``gcc__cxxflags`` symnn compiles with: the user's, ``-g0`` and ``-include pch.h``.

    Without the header for a compiler other than GNU g++, or when its path holds a space
    (the flags are split on spaces).

    >>> "-g0" in compile_flags()
    True
    """
    h = _current()
    usable = _is_gcc() and " " not in h.header
    include = ["-include", h.header] if usable else []
    return " ".join([*h.user, *_LIGHT, *include])


def _is_gcc() -> bool:
    """True when the configured compiler is GNU g++ (the ``.gch`` directory of variants is
    GCC's; clang has its own)."""
    return _is_gnu(pytensor.config.cxx)


@functools.cache
def _is_gnu(cxx: str) -> bool:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    except OSError:
        return False
    text = (out.stdout + out.stderr).lower()
    return "free software foundation" in text and "clang" not in text


@contextmanager
def lighter_flags() -> Iterator[_Header | None]:
    """Compile with :func:`compile_flags` inside this block; yields the header to build.

    ``pch.h`` exists on entry; call ``build()`` on the header before compiling modules so
    they use its precompiled form. The caller holds ``symnn.backend.COMPILE_LOCK``: the
    flags are PyTensor's global configuration for the duration. Yields None (and changes
    nothing) without a C++ compiler.
    """
    if not pytensor.config.cxx:
        yield None
        return
    h = _current()
    flags = compile_flags()
    h.write_text()
    with pytensor.config.change_flags(gcc__cxxflags=flags):
        yield h
