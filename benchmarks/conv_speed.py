"""Convolutional network speed: Lasagne's MNIST CNN without dropout (conv 32 5x5 relu, max pool
2, conv 32 5x5 relu, max pool 2, dense 256 relu, dense 10 softmax) with the same initial
weights, float32, plain SGD; symnn (one compiled step on its default C backend) against
PyTorch CPU eager and a hand-written numpy network (im2col + GEMM), interleaved in one run.

Prints, per configuration, the median of interleaved rounds and the ratio to PyTorch:
training samples/s at batch 32, 64 and 128, inference samples/s on 1000 rows (symnn: what users run,
``Trainer.predict_proba``, blocks of 64 rows; PyTorch: one call), and the time per
step of projected gradient ascent on 32 inputs, each maximising the mean activation of one
channel of the second convolution (activation maximisation of channels): with symnn's
``channel`` objective, which computes only the channel each row reads, and with the layer's
whole output read as PyTorch does (``AM, whole layer``; PyTorch's row is the same
computation twice). Also the share of
each op in symnn's training step and in its ascent step (PyTensor's profiler, separate runs).

    python benchmarks/conv_speed.py [--rounds 5] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor
import pytensor.tensor as pt
from _common import fashion_or_random, interleaved, machine, median

ARCH = "conv32x5,pool2,conv32x5,pool2,256,10"
LR = 0.01


def symnn_net(seed=0):
    from symnn.layers import from_arch

    return from_arch(ARCH, (28, 28), rng=seed)


def ascent_objective(net, x, whole_layer=False):
    """Row ``i`` maximises the mean of channel ``i`` of the second convolution (after relu):
    symnn's ``channel`` objective (which computes only the channel each row reads), or with
    ``whole_layer`` the layer's output read as a whole, as PyTorch does."""
    from symnn.inputopt.objectives import channel

    if not whole_layer:
        return channel(3, range(32), preactivation=False)(net, x)
    channels = net.get_outputs(x, deterministic=True)[3].mean(axis=(2, 3))
    return channels[pt.arange(x.shape[0]), np.arange(32)]


class Symnn:
    name = "symnn"

    def __init__(self, weights):
        from symnn.backend import resolve_mode
        from symnn.inputopt import maximize

        self.net = symnn_net()
        self.net.set_values(weights)
        mode = resolve_mode("C")
        x = pt.matrix("x", dtype="float32", shape=(None, 784))
        y = pt.ivector("y")
        probs = self.net(x)
        cost = -pt.mean(pt.log(probs[pt.arange(y.shape[0]), y]))
        grads = pytensor.grad(cost, self.net.params)
        lr = np.float32(LR)
        updates = {p: p - lr * g for p, g in zip(self.net.params, grads)}
        self.step = pytensor.function([x, y], cost, updates=updates, mode=mode)
        from symnn.train import Trainer

        # what users run: Trainer.predict_proba (blocks of 64 rows, symnn's C mode)
        self.trainer = Trainer(self.net, optimizer="sgd", learning_rate=LR, blas_threads=2)
        self.trainer.predict_proba(np.zeros((2, 784), dtype="float32"))  # compile
        self.objectives = [ascent_objective(self.net, x, whole) for whole in (False, True)]
        self.x, self.maximize = x, maximize

    def train(self, X, y, batch, steps):
        t0 = time.perf_counter()
        for s in range(steps):
            i = (s * batch) % (len(X) - batch)
            self.step(X[i : i + batch], y[i : i + batch])
        return steps * batch / (time.perf_counter() - t0)

    def infer(self, X):
        t0 = time.perf_counter()
        self.trainer.predict_proba(X)
        return len(X) / (time.perf_counter() - t0)

    def ascend(self, x0, steps, whole_layer=False):
        objective = self.objectives[whole_layer]
        r = self.maximize(objective, self.x, x0=x0, steps=steps, learning_rate=LR)
        self.final = float(r.value.mean())
        return r.seconds / steps * 1e6


class Torch:
    name = "pytorch"

    def __init__(self, weights):
        import torch

        self.torch = torch
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 32, 5), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10),
        )  # fmt: skip
        params = [m for m in self.model if isinstance(m, nn.Conv2d | nn.Linear)]
        with torch.no_grad():
            for k, m in enumerate(params):
                w = weights[2 * k]
                m.weight.copy_(torch.from_numpy(w if w.ndim == 4 else w.T.copy()))
                m.bias.copy_(torch.from_numpy(weights[2 * k + 1]))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss = nn.CrossEntropyLoss()
        self.features = self.model[:5]  # up to the second convolution's relu

    def train(self, X, y, batch, steps):
        torch = self.torch
        Xt = torch.from_numpy(X).reshape(-1, 1, 28, 28)
        yt = torch.from_numpy(y.astype(np.int64))
        t0 = time.perf_counter()
        for s in range(steps):
            i = (s * batch) % (len(X) - batch)
            self.opt.zero_grad()
            self.loss(self.model(Xt[i : i + batch]), yt[i : i + batch]).backward()
            self.opt.step()
        return steps * batch / (time.perf_counter() - t0)

    def infer(self, X):
        torch = self.torch
        t0 = time.perf_counter()
        with torch.no_grad():
            torch.softmax(self.model(torch.from_numpy(X).reshape(-1, 1, 28, 28)), 1)
        return len(X) / (time.perf_counter() - t0)

    def ascend(self, x0, steps, whole_layer=False):  # PyTorch computes the whole layer
        torch = self.torch
        for p in self.model.parameters():
            p.requires_grad_(False)
        x = torch.from_numpy(x0.copy()).reshape(-1, 1, 28, 28)
        rows = torch.arange(len(x0))
        t0 = time.perf_counter()
        for _ in range(steps):
            x.requires_grad_(True)
            objective = self.features(x).mean(dim=(2, 3))[rows, rows % 32]
            (g,) = torch.autograd.grad(objective.sum(), x)
            with torch.no_grad():
                x = (x + LR * g).clamp_(0.0, 1.0)
        seconds = time.perf_counter() - t0
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.final = float(objective.detach().mean())
        return seconds / steps * 1e6


class Numpy:
    """The network written by hand: im2col by strided views, GEMMs, 2x2 pooling by reshape."""

    name = "numpy"

    def __init__(self, weights):
        self.w = [w.copy() for w in weights]

    @staticmethod
    def _cols(x, k):
        n, c, h, w = x.shape
        v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
        return v.transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, n * (h - k + 1) * (w - k + 1))

    def _conv(self, x, W, b):
        f, k = W.shape[0], W.shape[2]
        n, h, w = x.shape[0], x.shape[2] - k + 1, x.shape[3] - k + 1
        cols = self._cols(x, k)
        z = (W.reshape(f, -1) @ cols + b[:, None]).reshape(f, n, h, w).transpose(1, 0, 2, 3)
        return np.maximum(z, 0), cols

    @staticmethod
    def _pool(a):
        n, c, h, w = a.shape
        return a.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    @staticmethod
    def _unpool(a, p, g):
        n, c, h, w = a.shape
        m = a.reshape(n, c, h // 2, 2, w // 2, 2) == p[:, :, :, None, :, None]
        return (m * g[:, :, :, None, :, None]).reshape(a.shape)  # ties share (noted)

    def _col2im(self, g_cols, shape, k):
        n, c, h, w = shape
        oh, ow = h - k + 1, w - k + 1
        g = g_cols.reshape(c, k, k, n, oh, ow)
        out = np.zeros((n, c, h, w), dtype=g_cols.dtype)
        for i in range(k):
            for j in range(k):
                out[:, :, i : i + oh, j : j + ow] += g[:, i, j].transpose(1, 0, 2, 3)
        return out

    def forward(self, X):
        W1, b1, W2, b2, W3, b3, W4, b4 = self.w
        x0 = X.reshape(-1, 1, 28, 28)
        a1, c1 = self._conv(x0, W1, b1)
        p1 = self._pool(a1)
        a2, c2 = self._conv(p1, W2, b2)
        p2 = self._pool(a2)
        f = p2.reshape(len(X), -1)
        h = np.maximum(f @ W3 + b3, 0)
        z = h @ W4 + b4
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), (x0, a1, c1, p1, a2, c2, p2, f, h)

    def train(self, X, y, batch, steps):
        t0 = time.perf_counter()
        for s in range(steps):
            i = (s * batch) % (len(X) - batch)
            self._step(X[i : i + batch], y[i : i + batch])
        return steps * batch / (time.perf_counter() - t0)

    def _step(self, X, y):
        W1, b1, W2, b2, W3, b3, W4, b4 = self.w
        probs, (x0, a1, c1, p1, a2, c2, p2, f, h) = self.forward(X)
        n = len(X)
        dz = probs
        dz[np.arange(n), y] -= 1
        dz /= n
        grads = [None] * 8
        grads[6], grads[7] = h.T @ dz, dz.sum(axis=0)
        dh = (dz @ W4.T) * (h > 0)
        grads[4], grads[5] = f.T @ dh, dh.sum(axis=0)
        dp2 = (dh @ W3.T).reshape(p2.shape)
        da2 = self._unpool(a2, p2, dp2) * (a2 > 0)
        g2 = da2.transpose(1, 0, 2, 3).reshape(32, -1)
        grads[2], grads[3] = (g2 @ c2.T).reshape(W2.shape), g2.sum(axis=1)
        dp1 = self._col2im(W2.reshape(32, -1).T @ g2, p1.shape, 5)
        da1 = self._unpool(a1, p1, dp1) * (a1 > 0)
        g1 = da1.transpose(1, 0, 2, 3).reshape(32, -1)
        grads[0], grads[1] = (g1 @ c1.T).reshape(W1.shape), g1.sum(axis=1)
        lr = np.float32(LR)
        for w, g in zip(self.w, grads):
            w -= lr * g

    def infer(self, X):
        t0 = time.perf_counter()
        self.forward(X)
        return len(X) / (time.perf_counter() - t0)


def profile_shares(weights, X, y, batch=128, steps=20):
    from symnn.backend import resolve_mode

    net = symnn_net()
    net.set_values(weights)
    x = pt.matrix("x", dtype="float32", shape=(None, 784))
    t = pt.ivector("y")
    probs = net(x)
    cost = -pt.mean(pt.log(probs[pt.arange(t.shape[0]), t]))
    grads = pytensor.grad(cost, net.params)
    ups = {p: p - np.float32(LR) * g for p, g in zip(net.params, grads)}
    fn = pytensor.function([x, t], cost, updates=ups, mode=resolve_mode("C"), profile=True)
    for s in range(steps):
        fn(X[s * batch : (s + 1) * batch], y[s * batch : (s + 1) * batch])
    return _shares(fn)


def profile_ascent_shares(weights, x0, steps=50):
    """Op shares of the ascent's step with symnn's ``channel`` objective: the objective and
    its gradient with respect to the input (what ``maximize`` compiles, without the
    projection)."""
    from symnn.backend import resolve_mode

    net = symnn_net()
    net.set_values(weights)
    x = pt.matrix("x", dtype="float32", shape=(None, 784))
    objective = ascent_objective(net, x)
    grad = pytensor.grad(objective.sum(), x)
    fn = pytensor.function([x], [objective, grad], mode=resolve_mode("C"), profile=True)
    for _ in range(steps):
        fn(x0)
    return _shares(fn)


def _shares(fn):
    """``[(share, op class name)]`` of a profiled function, largest first."""
    times: dict[str, float] = {}
    for node, seconds in fn.profile.apply_time.items():
        name = type(node[1].op).__name__ if isinstance(node, tuple) else type(node.op).__name__
        times[name] = times.get(name, 0.0) + seconds
    total = sum(times.values())
    return sorted(((v / total, k) for k, v in times.items()), reverse=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="training steps per round")
    ap.add_argument("--ascent-steps", type=int, default=50)
    ap.add_argument("--no-numpy", action="store_true")
    args = ap.parse_args(argv)
    X, y, source = fashion_or_random(4096, "float32")
    y = y.astype(np.int32)
    print(f"machine: {machine()}\ndata: {source}; network {ARCH} (no dropout), float32, SGD")
    weights = symnn_net().get_values()
    t0 = time.perf_counter()
    impls = [Symnn(weights), Torch(weights)] + ([] if args.no_numpy else [Numpy(weights)])
    print(f"set up (symnn compiles here) in {time.perf_counter() - t0:.1f} s")
    x0 = np.random.default_rng(1).random((32, 784)).astype("float32")
    tasks = {
        "train b32 (samples/s)": lambda m: m.train(X, y, 32, args.steps),
        "train b64 (samples/s)": lambda m: m.train(X, y, 64, args.steps),
        "train b128 (samples/s)": lambda m: m.train(X, y, 128, args.steps),
        "infer b1000 (samples/s)": lambda m: m.infer(X[:1000]),
        "AM 32 channels (us/step)": lambda m: m.ascend(x0, args.ascent_steps),
        "AM, whole layer (us/step)": lambda m: m.ascend(x0, args.ascent_steps, True),
    }
    print(f"\n{'task':<26}" + "".join(f"{m.name:>12}" for m in impls) + "   symnn/pytorch")
    for task, run in tasks.items():
        needs = "ascend" if task.startswith("AM") else "train"
        runners = {m.name: (lambda m=m, run=run: run(m)) for m in impls if hasattr(m, needs)}
        results = interleaved(runners, args.rounds)
        med = {k: median(v) for k, v in results.items()}
        ratio = med["symnn"] / med["pytorch"]  # samples/s: higher is better; us: lower
        cells = "".join(f"{med[m.name]:>12.0f}" if m.name in med else f"{'-':>12}" for m in impls)
        note = "  (time ratio)" if task.startswith("AM") else ""
        print(f"{task:<26}{cells}   {ratio:.2f}x{note}")
    print(f"\nAM final objective: symnn {impls[0].final:.4f}, pytorch {impls[1].final:.4f}")
    shares = {b: dict((k, v) for v, k in profile_shares(weights, X, y, b)) for b in (32, 64, 128)}
    names = sorted(shares[128], key=shares[128].get, reverse=True)[:10]
    print("\nshare of symnn's training step (PyTensor profiler), batch 32 / 64 / 128:")
    for name in names:
        cells = " ".join(f"{shares[b].get(name, 0.0):6.1%}" for b in (32, 64, 128))
        print(f"  {cells}  {name}")
    print("\nshare of symnn's ascent step (objective and input gradient, 32 rows):")
    for share, name in profile_ascent_shares(weights, x0)[:8]:
        print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
