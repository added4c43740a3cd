"""How the code reads, measured: follow ``network`` through ``activation_maximization`` and
``args`` (the parsed command line) through ``symnn maximize`` (cold caches), listing the
symnn functions called with it as an argument, in call order; prints the files visited, the
file changes and the returns to a file already left (issue 29's measure).

    python benchmarks/code_walk.py
"""

import argparse
import os
import sys
import tempfile

os.environ["SYMNN_MODE"] = "FAST_COMPILE"

import symnn  # noqa: E402
from symnn import cli  # noqa: E402
from symnn.datasets import load_digits  # noqa: E402
from symnn.inputopt import activation_maximization  # noqa: E402
from symnn.layers import mlp  # noqa: E402

symnn.set_default_mode("FAST_COMPILE")
ROOT = os.path.dirname(symnn.__file__)


def walk(run, carries) -> list[str]:
    """The symnn files of the calls that receive an argument ``carries(arg)`` is true of."""
    seq = []

    def prof(frame, event, arg):
        code = frame.f_code
        if event != "call" or not code.co_filename.startswith(ROOT):
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if any(carries(frame.f_locals.get(n)) for n in names):
            seq.append(os.path.relpath(code.co_filename, ROOT))

    sys.setprofile(prof)
    try:
        run()
    finally:
        sys.setprofile(None)
    return seq


def report(title: str, seq: list[str]) -> None:
    files = [f for i, f in enumerate(seq) if i == 0 or seq[i - 1] != f]
    left, returns = set(), 0
    for prev, cur in zip(files, files[1:]):
        left.add(prev)
        returns += cur in left
    print(f"{title}: calls {len(seq)}; files {len(set(seq))}; file changes {len(files) - 1}; "
          f"returns to a file already left {returns}")  # fmt: skip
    print("  " + " -> ".join(files))


net = mlp([64, 16, 10], rng=0)
X = load_digits().X_train[:200]
report(
    "network through activation_maximization",
    walk(lambda: activation_maximization(net, [0, 1], steps=2, image_shape=(8, 8), reference=X),
         lambda a: a is net),
)  # fmt: skip
with tempfile.TemporaryDirectory() as tmp:
    model = symnn.save(mlp([64, 16, 10], rng=1), os.path.join(tmp, "net.npz"))
    argv = ["maximize", str(model), "--units", "0-1", "--steps", "2", "--out", tmp]
    sys.stdout = open(os.devnull, "w")
    try:
        seq = walk(lambda: cli.main(argv), lambda a: isinstance(a, argparse.Namespace))
    finally:
        sys.stdout = sys.__stdout__
    report("args through symnn maximize", seq)
