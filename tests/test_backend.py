import os
import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symnn
from symnn import backend
from symnn.errors import SymnnTypeError, SymnnValueError

HAS_CXX = bool(pytensor.config.cxx)


@pytest.mark.skipif(not HAS_CXX, reason="no C compiler: symnn falls back to NUMBA")
def test_c_backend_is_linked_to_scipys_openblas():
    status = backend.blas_status()
    assert status.backend == "C", status.reason
    assert status.verified
    assert "libscipy_openblas" in status.library
    assert "-Dsgemm_=scipy_sgemm_" in pytensor.config.blas__ldflags


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CXX, reason="no C compiler")
def test_c_mode_compiles_a_gemm_that_calls_blas(rng):
    x = pt.matrix("x", dtype="float32")
    w = pytensor.shared(rng.standard_normal((30, 20)).astype("float32"))
    b = pytensor.shared(np.zeros(20, dtype="float32"))
    f = symnn.function([x], pt.dot(x, w) + b, mode="C")
    xv = rng.standard_normal((10, 30)).astype("float32")
    np.testing.assert_allclose(f(xv), xv @ w.get_value(), rtol=1e-5, atol=1e-5)
    ops = {type(node.op).__name__ for node in f.maker.fgraph.toposort()}
    assert ops & {"Gemm", "CGemv", "Dot22", "RowAwareDot22", "Dot22Scalar", "Gemv"}, ops


def test_function_applies_the_default_mode_and_updates_dict():
    w = pytensor.shared(np.float32(1.0))
    f = symnn.function([], w, updates={w: w * 2})
    assert f() == 1.0 and w.get_value() == 2.0
    assert symnn.default_mode() == "FAST_COMPILE"  # set by the test configuration


def test_resolve_mode_names_and_errors():
    assert backend.mode_name(backend.resolve_mode("numba")) == "NUMBA"
    linker = backend.resolve_mode("C").linker  # cvm, with the modules compiled in parallel
    assert isinstance(linker, pytensor.link.vm.VMLinker) and linker.use_cloop
    with pytest.raises(SymnnValueError, match="mode='TURBO' is not a PyTensor mode"):
        backend.resolve_mode("TURBO")
    with pytest.raises(SymnnTypeError, match="mode must be a string"):
        backend.resolve_mode(3)


def test_info_reports_backend_blas_float_type_and_versions():
    data = symnn.info()
    for key in ("backend", "blas_library", "float_type", "compiledir", "pytensor", "symnn"):
        assert key in data
    assert data["float_type"] == "float32"
    assert data["pytensor_floatX"] == pytensor.config.floatX  # global setting left alone


def _run(code, **env):
    full = {**os.environ, **env}
    full.pop("SYMNN_MODE", None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300
    )


@pytest.mark.slow  # subprocesses compiling C
@pytest.mark.skipif(not HAS_CXX, reason="no C compiler: symnn falls back to NUMBA")
def test_a_passed_link_check_is_remembered_in_the_compile_directory(tmp_path):
    code = "import symnn; print(symnn.backend.blas_status().reason)"
    flags = {"PYTENSOR_FLAGS": f"base_compiledir={tmp_path}"}
    first, second = _run(code, **flags), _run(code, **flags)
    assert "passed" in first.stdout and "cached" not in first.stdout, first.stderr
    assert "passed" in second.stdout and "cached" in second.stdout, second.stderr
    (marker,) = tmp_path.glob("compiledir_*/symnn_blas_check_*.passed")
    marker.unlink()  # gone (or a changed library or flags): checked again
    assert "cached" not in _run(code, **flags).stdout


def test_python_m_symnn_info_prints_the_backend():
    out = subprocess.run(
        [sys.executable, "-m", "symnn", "info"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "backend: C" in out.stdout or "backend: NUMBA" in out.stdout
    assert "blas_library" in out.stdout and "compiledir" in out.stdout


def test_user_blas_flags_are_respected():
    code = "import symnn, pytensor; print(repr(pytensor.config.blas__ldflags))"
    out = _run(code, PYTENSOR_FLAGS="blas__ldflags=-lmyblas")
    assert out.stdout.strip() == "'-lmyblas'", out.stderr


def test_failed_link_check_falls_back_to_numba_with_one_warning():
    code = (
        "import warnings, pytensor\n"
        "pytensor.config.blas__ldflags = '-lthis_blas_does_not_exist'\n"
        "import symnn\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    s = symnn.backend.blas_status(); symnn.backend.blas_status()\n"
        "print(s.backend, len([x for x in w if 'NUMBA' in str(x.message)]))\n"
    )
    out = _run(code)
    assert out.stdout.strip() == "NUMBA 1", out.stderr


def test_cli_rejects_unknown_command():
    out = subprocess.run(
        [sys.executable, "-m", "symnn", "fly"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "invalid choice" in out.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator and getrusage page faults")
def test_a_c_mode_step_reuses_the_memory_its_last_call_freed():
    """The cvm linker frees a step's intermediates after each call (allow_gc); with glibc's
    default thresholds the next call faulted its pages in again (5,700 pages per call for a
    CNN step at batch 128, 1.5x slower). In symnn's C mode the freed memory is reused."""
    import resource

    from symnn.backend.memory import keep_freed_memory
    from symnn.layers import from_arch

    net = from_arch("conv8x5,pool2,16", (28, 28), rng=0)
    x, y = pt.matrix("x", dtype="float32"), pt.ivector("y")
    out = net(x)
    cost = -pt.mean(pt.log(out[pt.arange(y.shape[0]), y]))
    mode = backend.resolve_mode("C")
    step = pytensor.function([x, y], pytensor.grad(cost, net.params), mode=mode)
    if not keep_freed_memory():
        pytest.skip("not glibc, or SYMNN_KEEP_FREED_MEMORY=0")
    X = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    Y = np.zeros(256, dtype="int32")
    for _ in range(3):
        step(X, Y)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step(X, Y)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
    # the step's intermediates are ~5 MB (1,200 pages): faulted in anew, they would show here
    assert faults < 100
