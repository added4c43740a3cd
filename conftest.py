"""Test configuration: graph-logic tests compile with PyTensor's cheap FAST_COMPILE mode
(no C compilation, as PyTensor's own CI does); tests marked ``slow`` pass ``mode="C"`` to
exercise the real backend."""

import os

os.environ.setdefault("SYMNN_MODE", "FAST_COMPILE")
# no test may depend on data a fresh machine lacks: hide any installed Fashion-MNIST (tests
# that need it point SYMNN_FASHION_MNIST at a folder of small IDX files they write)
os.environ["SYMNN_FASHION_MNIST"] = os.path.join(os.sep, "nonexistent", "symnn-tests")

import numpy as np  # noqa: E402
import pytensor  # noqa: E402
import pytest  # noqa: E402

pytensor.config.mode = "FAST_COMPILE"  # for .eval() in tests and doctests

import symnn  # noqa: E402

symnn.set_default_mode("FAST_COMPILE")


@pytest.hookimpl(optionalhook=True)  # pytest -p no:xdist still runs
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject.toml): a worker per core, at most 4 (each imports JAX and holds
    its own compiled functions, about 3 GB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 4))


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


#: deprecated module paths warn on import: their tests import them on purpose (tests/test_io.py)
DEPRECATED = ["symnn/compare.py", "symnn/threads.py", "symnn/fullbatch.py", "symnn/state_dict.py",
              "symnn/safetensors.py", "symnn/onnx_io.py", "symnn/layers/registry.py"]  # fmt: skip
collect_ignore = ["symnn/__main__.py", *DEPRECATED, "benchmarks", "examples"]


@pytest.fixture(scope="module")
def users_backend():
    """symnn's own choice of mode, as a user gets it (the suite's default is FAST_COMPILE);
    also what worker processes started meanwhile inherit."""
    from symnn.backend import blas_status

    saved = os.environ.pop("SYMNN_MODE", None)
    symnn.set_default_mode(None)
    status = blas_status()
    assert status.backend == "C", f"the default backend is {status.backend}: {status.reason}"
    yield
    if saved is not None:
        os.environ["SYMNN_MODE"] = saved
    symnn.set_default_mode("FAST_COMPILE")
