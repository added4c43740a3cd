"""symnn on every PyTensor backend (C, NUMBA, JAX on the CPU) against PyTorch CPU eager:
``Trainer.fit`` epochs of a dense and a convolutional network, interleaved in one run.

Same initial weights, same data, float32, plain SGD, shuffled minibatches (each backend's
``Trainer.fit``, one epoch per round; PyTorch: the same loop written by hand, an index gather
per minibatch). Prints samples/s (median over rounds, after one untimed round; the order
changes every round), the ratio of each backend's epoch time to the C backend's (the target
for NUMBA is at most 1.5) and each one's rate relative to PyTorch, and the time of each
backend's first compile in this process: ``Trainer.compile()`` and the first update (numba and
XLA compile at the first call); whether PyTensor's caches were warm is printed, ``--cold``
runs in empty compile directories.

    python benchmarks/backend_speed.py [--rounds 5] [--cold] [--backends C,NUMBA,JAX]

PyTorch (``pip install torch==2.13.0``) and JAX (``pip install 'symnn[jax]'``) are optional:
a missing one is left out of the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

CONFIGS = {  # name: (architecture, image shape, batch size, training rows)
    "MLP 784-100-10, batch 100": ("100,10", None, 100, 30000),
    "MLP 784-100-10, batch 1000": ("100,10", None, 1000, 30000),
    "CNN conv16x5,pool2,conv32x5,pool2,128,10, batch 64": (
        "conv16x5,pool2,conv32x5,pool2,128,10", (28, 28), 64, 3200,
    ),
}
LR = 0.01


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--backends", default="C,NUMBA,JAX", help="default C,NUMBA,JAX")
    p.add_argument("--configs", default="0,1,2", help="which rows of CONFIGS (default all)")
    p.add_argument("--cold", action="store_true", help="empty PyTensor and numba caches")
    return p.parse_args()


def _cold_caches() -> str:
    """Fresh compile directories for this process (before PyTensor is imported)."""
    where = tempfile.mkdtemp(prefix="symnn-backend-speed-")
    os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={where}"
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(where, "numba")
    return where


class SymnnBackend:
    def __init__(self, backend, arch, shape, weights, batch, data):
        from symnn.layers import from_arch
        from symnn.train import Trainer

        net = from_arch(arch, shape or (784,), rng=0)
        net.set_values(weights)
        self.name, self.batch = backend, batch
        self.trainer = Trainer(net, optimizer="sgd", learning_rate=LR, seed=0, mode=backend)
        # numba and XLA compile at the first call: the compile time includes one update
        X, y = data
        t0 = time.perf_counter()
        self.trainer.compile()
        self.trainer.fit(X[:batch], y[:batch], epochs=1, batch_size=batch, progress=False)
        self.compile_seconds = time.perf_counter() - t0

    def epoch(self, X, y) -> float:
        t0 = time.perf_counter()
        self.trainer.fit(X, y, epochs=1, batch_size=self.batch, progress=False)
        return len(X) / (time.perf_counter() - t0)


class TorchBackend:
    name = "PyTorch"
    compile_seconds = 0.0

    def __init__(self, arch, shape, weights, batch):
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        self.torch, self.batch, self.shape = torch, batch, shape
        nn = torch.nn
        layers, n_in, channels = [], 784, 1
        if shape is not None:
            size = shape[0]
        for part in arch.split(","):
            if part.startswith("conv"):
                c, k = (int(v) for v in part[4:].split("x"))
                layers += [nn.Conv2d(channels, c, k), nn.ReLU()]
                channels, size = c, size - k + 1
            elif part.startswith("pool"):
                layers.append(nn.MaxPool2d(int(part[4:])))
                size //= int(part[4:])
            else:
                if shape is not None and not any(isinstance(m, nn.Flatten) for m in layers):
                    layers.append(nn.Flatten())
                    n_in = channels * size * size
                layers += [nn.Linear(n_in, int(part)), nn.ReLU()]
                n_in = int(part)
        self.model = nn.Sequential(*layers[:-1])  # scores; the loss applies the softmax
        params = [m for m in self.model if isinstance(m, nn.Conv2d | nn.Linear)]
        with torch.no_grad():
            for k, m in enumerate(params):
                w = weights[2 * k]
                m.weight.copy_(torch.from_numpy(w if w.ndim == 4 else w.T.copy()))
                m.bias.copy_(torch.from_numpy(weights[2 * k + 1]))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss = nn.CrossEntropyLoss()
        self.rng = np.random.default_rng(0)

    def epoch(self, X, y) -> float:
        torch = self.torch
        Xt = torch.from_numpy(X if self.shape is None else X.reshape(-1, 1, *self.shape))
        yt = torch.from_numpy(y.astype(np.int64))
        t0 = time.perf_counter()
        order = torch.from_numpy(self.rng.permutation(len(X)))
        for i in range(0, len(X), self.batch):
            idx = order[i : i + self.batch]
            self.opt.zero_grad()
            self.loss(self.model(Xt[idx]), yt[idx]).backward()
            self.opt.step()
        return len(X) / (time.perf_counter() - t0)


def _available(backend: str) -> bool:
    import importlib.util

    return backend == "C" or importlib.util.find_spec(backend.lower()) is not None


def main() -> None:
    args = _args()
    cold = _cold_caches() if args.cold else None
    sys.path.insert(0, os.path.dirname(__file__))
    import pytensor
    from _common import fashion_or_random, interleaved, machine, median

    from symnn.layers import from_arch

    backends = [b for b in args.backends.upper().split(",") if _available(b)]
    print(f"machine: {machine()}; PyTensor {pytensor.__version__}; "
          f"compile caches: {'empty (--cold)' if cold else 'as found (warm after a first run)'}")
    names = list(CONFIGS)
    for row in (int(c) for c in args.configs.split(",")):
        title = names[row]
        arch, shape, batch, n = CONFIGS[title]
        X, y, source = fashion_or_random(n, "float32")
        weights = from_arch(arch, shape or (784,), rng=0).get_values()
        impls = {b: SymnnBackend(b, arch, shape, weights, batch, (X, y)) for b in backends}
        if _available("torch"):
            impls["PyTorch"] = TorchBackend(arch, shape, weights, batch)
        runs = interleaved({k: (lambda m=m, X=X, y=y: m.epoch(X, y)) for k, m in impls.items()},
                           args.rounds, pause=1.0)
        print(f"\n{title} ({n} rows of {source}), samples/s, median of {args.rounds} rounds")
        header = ("backend", "samples/s", "time / C", "vs PyTorch", "compile s")
        print("{:<10}{:>12}{:>10}{:>12}{:>11}".format(*header))
        for k, m in impls.items():
            rate = median(runs[k])
            vs_c = median(runs["C"]) / rate if "C" in runs else float("nan")
            vs_torch = rate / median(runs["PyTorch"]) if "PyTorch" in runs else float("nan")
            torch_col = "-" if np.isnan(vs_torch) else f"{vs_torch:.2f}x"
            print(f"{k:<10}{rate:>12,.0f}{vs_c:>10.2f}{torch_col:>12}{m.compile_seconds:>11.1f}")


if __name__ == "__main__":
    main()
