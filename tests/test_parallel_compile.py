"""symnn's C linker: modules compiled in parallel, filed in PyTensor's cache, safe when other
processes compile into the same directory; the precompiled header is really used."""

import json
import os
import subprocess
import sys

import numpy as np
import pytensor
import pytest

from symnn.backend import pch
from symnn.backend.parallel import compile_jobs
from symnn.errors import SymnnValueError

pytestmark = pytest.mark.skipif(not pytensor.config.cxx, reason="no C compiler")

#: a small network's loss and gradient on symnn's C backend: about twenty distinct modules
#: (dense layers, softmax cross-entropy, elemwise fusions, reductions, BLAS products)
SCRIPT = r"""
import json, sys
import numpy as np, pytensor, pytensor.tensor as pt
import symnn
from symnn.backend import function, python_nodes

rng = np.random.default_rng(0)
X = rng.normal(size=(16, 5)).astype("float32")
y = rng.integers(0, 3, 16).astype("int32")
W1 = pytensor.shared(rng.normal(size=(5, 7)).astype("float32"), name="W1")
W2 = pytensor.shared(rng.normal(size=(7, 3)).astype("float32"), name="W2")
x, t = pt.matrix("x", dtype="float32"), pt.vector("t", dtype="int32")
h = pt.tanh(x @ W1)
loss = symnn.costs.categorical_crossentropy(pt.special.softmax(h @ W2, axis=-1), t).mean()
f = function([x, t], [loss, *pytensor.grad(loss, [W1, W2])], mode="C")
out = f(X, y)
print(json.dumps({
    "values": [np.asarray(o).tolist() for o in out],
    "python_nodes": len(python_nodes(f)),
    "precompiled": f.maker.linker.precompiled,
}))
"""


def _reference():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 5))
    y = rng.integers(0, 3, 16)
    W1, W2 = rng.normal(size=(5, 7)), rng.normal(size=(7, 3))
    h = np.tanh(X @ W1)
    z = h @ W2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(16), y]).mean()
    dz = p.copy()
    dz[np.arange(16), y] -= 1
    dz /= 16
    gW2 = h.T @ dz
    gW1 = X.T @ ((dz @ W2.T) * (1 - h**2))
    return [loss, gW1, gW2]


def _start(compiledir, **env):
    full = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={compiledir}", **env)
    full.pop("SYMNN_MODE", None)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=full,
    )  # fmt: skip


def _result(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _check(res):
    assert res["python_nodes"] == 0
    for got, want in zip(res["values"], _reference()):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)


@pytest.mark.slow
def test_two_processes_compiling_one_graph_into_one_empty_directory(tmp_path):
    """Both get a working function; the cache they leave is whole and serves a third."""
    first, second = _start(tmp_path), _start(tmp_path)
    results = [_result(first), _result(second)]
    for res in results:
        _check(res)
    # the modules were compiled by this linker, and by at least one process in parallel
    assert max(r["precompiled"] for r in results) >= 10, results
    (compiledir,) = tmp_path.glob("compiledir_*")
    modules = [d for d in compiledir.iterdir() if d.is_dir() and d.name.startswith("tmp")]
    for d in modules:  # no half-filed module: every directory has its key and its library
        names = {p.name for p in d.iterdir()}
        assert "key.pkl" in names and any(n.endswith(".so") for n in names), (d, names)
    third = _result(_start(tmp_path))
    _check(third)
    assert third["precompiled"] == 0  # everything found in the cache PyTensor's way


@pytest.mark.slow
def test_one_compiler_at_a_time_gives_the_same_function(tmp_path):
    res = _result(_start(tmp_path, SYMNN_COMPILE_JOBS="1"))
    _check(res)
    assert res["precompiled"] >= 10


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_compile_jobs_must_be_a_positive_integer(monkeypatch, value):
    monkeypatch.setenv("SYMNN_COMPILE_JOBS", value)
    with pytest.raises(SymnnValueError, match="SYMNN_COMPILE_JOBS"):
        compile_jobs()


def test_compile_jobs_defaults_to_the_cores(monkeypatch):
    monkeypatch.delenv("SYMNN_COMPILE_JOBS", raising=False)
    assert compile_jobs() == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("SYMNN_COMPILE_JOBS", "3")
    assert compile_jobs() == 3


@pytest.mark.slow
@pytest.mark.skipif(not pch._is_gcc(), reason="the precompiled header is built for GNU g++")
@pytest.mark.parametrize("extra", pch.VARIANTS)
def test_the_precompiled_header_is_used_by_a_module_with_symnns_flags(tmp_path, extra):
    """GCC skips an unusable precompiled header silently; ``-H`` marks a used one with '!'."""
    from symnn.backend import COMPILE_LOCK

    with COMPILE_LOCK, pch.lighter_flags() as header:
        assert header.build()
        source = tmp_path / "mod.cpp"
        source.write_text(pch.HEADER + "int f() { return (int) npy_sqrt(4.0); }\n")
        cmd = header._command(extra, str(tmp_path / "mod.o"))
        cmd = [c for c in cmd if c not in ("-x", "c++-header", header.header)]
        cmd += ["-include", header.header, "-H", "-c", str(source)]
        out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    used = [line for line in out.stderr.splitlines() if line.startswith("! ")]
    assert used and used[0].endswith(f"{pch.VARIANTS.index(extra)}.gch"), out.stderr[:2000]


@pytest.mark.slow
def test_a_module_that_fails_to_compile_is_left_to_pytensor_and_leaves_nothing(monkeypatch):
    """The parallel step keeps a compile error to itself (PyTensor's own pass compiles the
    module again and reports it), files nothing and removes the directories it made."""
    from pytensor.link.c.cmodule import GCC_compiler

    from symnn.backend import parallel

    made = []

    def broken(node):
        args = {"compile_str": GCC_compiler.compile_str, "include_dirs": [], "lib_dirs": [],
                "libs": [], "preargs": []}  # fmt: skip
        name = f"mbroken{len(made)}"
        made.append(parallel._Module(("broken", name), name, name, "not C++ {", args))
        return made[-1]

    monkeypatch.setattr(parallel, "_describe", broken)
    assert parallel.precompile(["node a", "node b"], jobs=2) == 0
    assert len(made) == 2
    for mod in made:
        assert mod.error is not None and not mod.filed and mod.location
        assert not os.path.exists(mod.location)
