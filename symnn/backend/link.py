"""The BLAS link and PyTensor's configuration: what symnn sets up once per process.

A plain ``pip install pytensor`` links no BLAS, so PyTensor's C backend computes matrix
products through slow fallbacks. scipy's wheel, however, ships an LP64 OpenBLAS
(``scipy.libs/libscipy_openblas-<hash>.so``, symbols prefixed ``scipy_``). On import symnn
points ``pytensor.config.blas__ldflags`` at that library, renaming the Fortran symbols with
``-D`` defines, unless the user has set ``blas__ldflags`` already. Before the first compile it
checks the link once (a tiny C program multiplies two matrices with ``sgemm_``/``dgemm_`` and
checks the answer); without a compiler, or when the check fails, symnn falls back to the NUMBA
backend with one warning. numpy's bundled OpenBLAS is ILP64 (64-bit integers) and is never
used here. The only global PyTensor setting symnn changes is ``blas__ldflags``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import textwrap
import threading
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import pytensor

__all__ = ["BlasStatus", "blas_status", "COMPILE_LOCK"]


#: BLAS routines renamed to scipy's prefixed symbols (single and double precision; every
#: routine PyTensor's C code declares). A define for an unused routine costs nothing.
_BLAS_ROUTINES = [
    p + r
    for p in "sd"
    for r in (
        "gemm symm syrk syr2k trmm trsm gemv gbmv symv sbmv spmv trmv tbmv tpmv trsv tbsv "
        "tpsv ger syr spr syr2 spr2 rotg rotmg rot rotm swap scal copy axpy dot nrm2 asum"
    ).split()
] + ["isamax", "idamax"]

_CHECK_PROGRAM = textwrap.dedent(
    """\
    extern "C" void sgemm_(char*, char*, int*, int*, int*, float*, float*, int*, float*, int*,
                           float*, float*, int*);
    extern "C" void dgemm_(char*, char*, int*, int*, int*, double*, double*, int*, double*,
                           int*, double*, double*, int*);
    int main() {
        char n = 'N'; int two = 2; float one = 1, zero = 0; double done = 1, dzero = 0;
        float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {0, 0, 0, 0};
        double da[4] = {1, 2, 3, 4}, db[4] = {5, 6, 7, 8}, dc[4] = {0, 0, 0, 0};
        sgemm_(&n, &n, &two, &two, &two, &one, a, &two, b, &two, &zero, c, &two);
        dgemm_(&n, &n, &two, &two, &two, &done, da, &two, db, &two, &dzero, dc, &two);
        /* column-major: C = A B with A = [[1,3],[2,4]], B = [[5,7],[6,8]] */
        float want[4] = {23, 34, 31, 46};
        for (int i = 0; i < 4; i++)
            if (c[i] != want[i] || dc[i] != want[i]) return 1;
        return 0;
    }
    """
)


@dataclass(frozen=True)
class BlasStatus:
    """What symnn found and chose for BLAS and the default backend."""

    backend: str  #: "C" (C backend, BLAS linked), "NUMBA", or a mode set by the user
    library: str | None  #: path of the BLAS library PyTensor links to, if known
    ldflags: str  #: ``pytensor.config.blas__ldflags`` as used
    source: str  #: "scipy wheel OpenBLAS", "user", or "none"
    verified: bool  #: the link check compiled, ran and gave the right product
    reason: str  #: why this backend was chosen

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_lock = threading.Lock()

#: Held while symnn compiles: PyTensor's graph rewriting, its lazily initialised
#: configuration (``gcc_version_str`` and friends) and its module cache are process-wide
#: state, so two threads compiling at once can fail inside PyTensor. Re-entrant, so a
#: compile that triggers another (symnn's BLAS check) does not wait for itself. Between
#: processes PyTensor's own lock on the compile directory takes over.
COMPILE_LOCK = threading.RLock()
_status: BlasStatus | None = None
_blas_library: str | None = None


def _find_scipy_openblas() -> str | None:
    """Path of the LP64 OpenBLAS inside scipy's wheel (or the scipy-openblas32 package)."""
    try:
        import scipy
    except ImportError:  # pragma: no cover - scipy is a dependency
        return None
    site = os.path.dirname(os.path.dirname(scipy.__file__))
    hits = sorted(glob.glob(os.path.join(site, "scipy.libs", "libscipy_openblas*.so*")))
    if not hits:
        try:
            import scipy_openblas32  # type: ignore[import-not-found]

            hits = sorted(glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "*.so*")))
        except ImportError:
            pass
    hits = [h for h in hits if "64_" not in os.path.basename(h)]  # never an ILP64 build
    return hits[0] if hits else None


def _flags_for(library: str) -> str:
    libdir, fname = os.path.split(library)
    defines = " ".join(f"-D{r}_=scipy_{r}_" for r in _BLAS_ROUTINES)
    # ``-lNAME`` for ``libNAME.so`` (PyTensor's library check understands it); ``-l:FILE``
    # for any other file name (a versioned ``.so.0``).
    if fname.startswith("lib") and fname.endswith(".so"):
        lib = f"-l{fname[3:-3]}"
    else:
        lib = f"-l:{fname}"
    return f"-L{libdir} {lib} -Wl,-rpath,{libdir} {defines}"


def _user_set_ldflags() -> bool:
    """True when the user set ``blas__ldflags`` (flags, config file, or in code)."""
    cfg = pytensor.config
    try:
        cfg.fetch_val_for_key("blas__ldflags")
        return True
    except KeyError:
        pass
    param = cfg._config_var_dict["blas__ldflags"]
    return hasattr(param, "val") and bool(param.val)


def _install_ldflags() -> None:
    """Point PyTensor at scipy's OpenBLAS; called on import, before any compile."""
    global _blas_library
    if _user_set_ldflags():
        return
    library = _find_scipy_openblas()
    if library is None or not pytensor.config.cxx:
        return
    pytensor.config.blas__ldflags = _flags_for(library)
    _blas_library = library


def _passed_marker(ldflags: str) -> str:
    """A file in the compile directory that records a passed link check of this setup.

    Its name covers the flags, the library file (path, size, modification time) and the
    compiler, so any change there checks again; saves compiling the check program (about
    0.3 s) in every new process.
    """
    stamp = ""
    if _blas_library and os.path.exists(_blas_library):
        st = os.stat(_blas_library)
        stamp = f"{_blas_library}:{st.st_size}:{st.st_mtime_ns}"
    text = "\n".join([ldflags, stamp, pytensor.config.cxx, _CHECK_PROGRAM])
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return os.path.join(str(pytensor.config.compiledir), f"symnn_blas_check_{digest}.passed")


def _check_link(ldflags: str) -> tuple[bool, str]:
    """Compile and run a tiny sgemm/dgemm program against ``ldflags`` (once per setup)."""
    marker = _passed_marker(ldflags)
    if os.path.exists(marker):
        return True, "link check passed (2x2 sgemm and dgemm gave the right product; cached)"
    ok, reason = _run_link_check(ldflags)
    if ok:
        try:
            with open(marker, "w") as f:
                f.write(reason + "\n")
        except OSError:  # a read-only compile directory: check again next time
            pass
    return ok, reason


def _run_link_check(ldflags: str) -> tuple[bool, str]:
    from pytensor.link.c.cmodule import GCC_compiler

    try:
        res = GCC_compiler.try_compile_tmp(
            _CHECK_PROGRAM,
            tmp_prefix="symnn_blas_",
            flags=ldflags.split(),
            try_run=True,
            output=True,
        )
    except Exception as exc:  # pragma: no cover - compiler missing or broken
        return False, f"link check could not run: {exc}"
    if res and res[0] and res[1]:
        return True, "link check passed (2x2 sgemm and dgemm gave the right product)"
    detail = (res[3] if res and len(res) > 3 else b"") or b""
    if isinstance(detail, bytes):
        detail = detail.decode(errors="replace")
    return False, f"link check failed: {detail.strip()[:300]}"


def _initialise_config() -> None:
    """Read every PyTensor setting once, so that the ones computed on first use
    (``gcc_version_str``, ``compiledir``, ...) are set here, under the lock, and never by
    two threads at once (PyTensor raises "Can't change the value of gcc_version_str config
    parameter after initialization!" when they race)."""
    config = pytensor.config
    for name in list(config._config_var_dict):
        try:
            getattr(config, name)
        except Exception:  # pragma: no cover - a setting this platform cannot compute
            pass


def blas_status() -> BlasStatus:
    """Decide (once per process) which backend symnn compiles with, and why.

    >>> blas_status().backend in ("C", "NUMBA")
    True
    """
    global _status
    with COMPILE_LOCK, _lock:
        if _status is not None:
            return _status
        _initialise_config()
        ldflags = pytensor.config.blas__ldflags
        source = "scipy wheel OpenBLAS" if _blas_library else ("user" if ldflags else "none")
        if not pytensor.config.cxx:
            ok, reason = False, "no C++ compiler found (pytensor.config.cxx is empty)"
        elif not ldflags:
            ok, reason = False, "no BLAS library found to link the C backend to"
        else:
            ok, reason = _check_link(ldflags)
        library = _blas_library if ok else None
        _status = BlasStatus("C" if ok else "NUMBA", library, ldflags, source, ok, reason)
        if _status.backend == "NUMBA":
            warnings.warn(
                f"symnn: compiling with the NUMBA backend because the C backend with BLAS is "
                f"unavailable ({_status.reason}). Training is slower; see `python -m symnn info`.",
                RuntimeWarning,
                stacklevel=3,
            )
        return _status




_install_ldflags()
