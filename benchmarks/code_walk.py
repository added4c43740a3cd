"""Follow ``network`` through ``activation_maximization`` (cold caches, two units): the symnn
functions called with it as an argument, in call order; prints the files visited, the file
changes and the returns to a file already left (issue 29's measure of how the code reads).

    python benchmarks/code_walk.py
"""

import os
import sys

os.environ["SYMNN_MODE"] = "FAST_COMPILE"

import symnn  # noqa: E402
from symnn.datasets import load_digits  # noqa: E402
from symnn.inputopt import activation_maximization  # noqa: E402
from symnn.layers import mlp  # noqa: E402

symnn.set_default_mode("FAST_COMPILE")

net = mlp([64, 16, 10], rng=0)
X = load_digits().X_train[:200]
root = os.path.dirname(symnn.__file__)
seq = []

def prof(frame, event, arg):
    if event != "call":
        return
    f = frame.f_code.co_filename
    if not f.startswith(root):
        return
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    args = [frame.f_locals.get(n) for n in names]
    if any(a is net for a in args):
        seq.append(os.path.relpath(f, root))

sys.setprofile(prof)
activation_maximization(net, [0, 1], steps=2, image_shape=(8, 8), reference=X)
sys.setprofile(None)
files = []
for f in seq:
    if not files or files[-1] != f:
        files.append(f)
left, returns = set(), 0
for prev, cur in zip(files, files[1:]):
    left.add(prev)
    if cur in left:
        returns += 1
print(
    f"calls with network: {len(seq)}; files: {len(set(seq))}; file changes: {len(files) - 1}; "
    f"returns to a file already left: {returns}"
)
print(" -> ".join(files))
