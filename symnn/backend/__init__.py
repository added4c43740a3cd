"""How symnn compiles: BLAS linking, the default mode, ``symnn.function``.

A plain ``pip install pytensor`` links no BLAS, so PyTensor's C backend computes matrix
products through slow fallbacks. scipy's wheel, however, ships an LP64 OpenBLAS
(``scipy.libs/libscipy_openblas-<hash>.so``, symbols prefixed ``scipy_``). On import symnn
points ``pytensor.config.blas__ldflags`` at that library, renaming the Fortran symbols with
``-D`` defines, unless the user has set ``blas__ldflags`` already. Before the first compile it
checks the link once (a tiny C program multiplies two matrices with ``sgemm_``/``dgemm_`` and
checks the answer). symnn then compiles with the C backend (``cvm`` linker, ``fast_run``
rewrites); without a compiler, or when the check fails, it falls back to the NUMBA backend
with one warning.

numpy's bundled OpenBLAS is ILP64 (64-bit integers) and is never used here.

The only global PyTensor setting symnn changes is ``blas__ldflags``; modes are passed per
function, so other PyTensor users (PyMC, ...) are unaffected.
"""

from __future__ import annotations

import glob
import hashlib
import os
import platform
import textwrap
import threading
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pytensor
from pytensor.compile.mode import Mode, get_mode

from ..errors import SymnnTypeError, SymnnValueError

__all__ = [
    "BlasStatus",
    "blas_status",
    "default_mode",
    "set_default_mode",
    "resolve_mode",
    "mode_name",
    "usable_backends",
    "BACKENDS",
    "function",
    "python_nodes",
    "info",
]

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
_user_default_mode: Any = None
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


#: the tag of symnn's graph rewrites (:mod:`symnn.ops.rewrites`): only symnn's C mode runs them
REWRITE_TAG = "symnn"


def _c_mode() -> Mode:
    # fast_run plus symnn's rewrites, which turn PyTensor's Softmax/LogSoftmax (graphs that
    # the C backend would run from Python) and the integer-indexing idioms into C ops
    # ``cvm`` whose C modules are compiled on every core (:mod:`symnn.backend.parallel`)
    from .parallel import ParallelCVMLinker

    return Mode(linker=ParallelCVMLinker(), optimizer="fast_run").including(REWRITE_TAG)


#: symnn's rewrites that only pay off with C code (a flat loop for fused elementwise nodes)
_C_ONLY_REWRITES = ("symnn_flat_elemwise",)

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


_install_ldflags()
