"""Training speed: symnn's compiled step vs PyTorch CPU eager vs a hand-written numpy network
vs scikit-learn's MLPClassifier(solver="sgd"), interleaved in one run.

Same network, same data, same initial weights, same minibatch order, plain SGD. Every
implementation selects each minibatch by an index vector (a copy of the rows, as shuffled
training does; symnn's step gathers them on the compiled side). The script prints samples/s
per implementation, the ratios to PyTorch and to the numpy network, and the final training
losses, which must agree. samples/s is the median over rounds (after one untimed round; the
order changes from round to round so that every implementation runs at every position and
right after every other equally often); the ratios are medians of the per-round ratios (both
implementations timed in the same round). "symnn guard=False" runs the same compiled step as
"symnn" (the guard is a snapshot and replay in Python): the gap between the two rows shows the
noise of the run. The "fn: ..." rows are training steps written by hand with
``symnn.function`` (the loss idiom named, SGD updates, a Python loop over numpy minibatches);
"GEMM-only limit" times the step's matrix products alone in numpy, and the "of GEMM" column
is each row's rate as a fraction of it. Run:

    python benchmarks/train_speed.py            # all configurations, 5 rounds
    python benchmarks/train_speed.py --hidden sigmoid --hand-written 1
    python benchmarks/train_speed.py --quick    # 784-100-10 batch 100 float32 only
    python benchmarks/train_speed.py --configs 1 --dtypes float32 --rounds 9

PyTorch is optional (``pip install torch==2.13.0``); without it that column is skipped.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import fashion_or_random, interleaved, machine, median

CONFIGS = [  # (sizes, batch size)
    ([784, 100, 10], 100),
    ([784, 100, 10], 1000),
    ([784, 512, 512, 10], 256),
]
LR = 0.05
HIDDEN = {"name": "relu"}  # set by --hidden: "relu" or "sigmoid", for every implementation


def hidden_np(a):
    return np.maximum(a, 0) if HIDDEN["name"] == "relu" else 1 / (1 + np.exp(-a))


def hidden_grad_np(act):
    """The derivative of the hidden activation, from its output."""
    return (act > 0) if HIDDEN["name"] == "relu" else act * (1 - act)


def init_weights(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / a)
        out += [rng.uniform(-bound, bound, (a, b)).astype(dtype), np.zeros(b, dtype)]
    return out


def loss_of(weights, X, y):
    """Mean cross-entropy of the MLP, evaluated the same way for every implementation."""
    h = X.astype(np.float64)
    for i in range(0, len(weights) - 2, 2):
        h = hidden_np(h @ weights[i] + weights[i + 1])
    z = h @ weights[-2] + weights[-1]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


# -- implementations ---------------------------------------------------------------------
class Symnn:
    name = "symnn"

    def __init__(self, sizes, dtype, init, guard=True):
        from symnn.layers import mlp
        from symnn.train import Trainer

        self.net = mlp(sizes, hidden=HIDDEN["name"], rng=0, dtype=dtype)
        self.trainer = Trainer(self.net, optimizer="sgd", learning_rate=LR, guard=guard)
        self.trainer.compile()
        self.init = init

    def epoch(self, X, y, batch):
        self.net.set_values(self.init)
        t0 = time.perf_counter()
        self.trainer.fit(X, y, epochs=1, batch_size=batch, shuffle=False, progress=False)
        return time.perf_counter() - t0

    def weights(self):
        return self.net.get_values()

    def note(self) -> str:
        return f"BLAS threads chosen by batch size: {self.trainer._threads}"


class SymnnNoGuard(Symnn):
    """symnn with the non-finite guard off (``Trainer(..., guard=False)``): the same compiled
    step, so its row against "symnn" shows how noisy the run was."""

    name = "symnn guard=False"

    def __init__(self, sizes, dtype, init):
        super().__init__(sizes, dtype, init, guard=False)


def _idioms():
    """The losses a user writes by hand (logits ``z``, labels ``y``, one-hot rows ``Y``)."""
    import pytensor.tensor as pt

    from symnn import costs

    def rows(z):
        return pt.arange(z.shape[0])

    return {
        "costs...crossentropy_from_logits": lambda z, y, Y: costs.aggregate(
            costs.categorical_crossentropy_from_logits(z, y)
        ),
        "-log_softmax(z)[r, y]": lambda z, y, Y: (
            -pt.mean(pt.special.log_softmax(z, axis=-1)[rows(z), y])
        ),
        "-log(softmax(z)[r, y])": lambda z, y, Y: (
            -pt.mean(pt.log(pt.special.softmax(z, axis=-1)[rows(z), y]))
        ),
        "-sum(Y * log(softmax(z)))": lambda z, y, Y: (
            -pt.mean(pt.sum(Y * pt.log(pt.special.softmax(z, axis=-1)), axis=1))
        ),
    }


class HandWritten:
    """A training step written by hand with ``symnn.function``, as the README's "The model is
    a graph" section shows: the user's loss idiom, plain SGD updates, a Python loop over
    numpy minibatches (``X[idx]``, no Trainer)."""

    idiom = "-log_softmax(z)[r, y]"

    def __init__(self, sizes, dtype, init):
        import pytensor.tensor as pt

        import symnn
        from symnn.layers import mlp

        self.net = mlp(sizes, hidden=HIDDEN["name"], output="linear", rng=0, dtype=dtype)
        x = pt.matrix("x", dtype=dtype)
        y = pt.ivector("y")
        Y = pt.matrix("Y", dtype=dtype)
        loss = _idioms()[self.idiom](self.net(x), y, Y)
        grads = pt.grad(loss, self.net.params)
        lr = np.asarray(LR, dtype=dtype)
        updates = [(p, p - lr * g) for p, g in zip(self.net.params, grads)]
        inputs = [x, Y] if "Y" in self.idiom else [x, y]
        self.step = symnn.function(inputs, loss, updates=updates)
        self.init, self.dtype = init, dtype

    def epoch(self, X, y, batch):
        self.net.set_values(self.init)
        targets = np.eye(10, dtype=self.dtype)[y] if "Y" in self.idiom else y
        t0 = time.perf_counter()
        for s in range(0, len(X), batch):
            idx = np.arange(s, min(s + batch, len(X)))
            self.step(X[idx], targets[idx])
        return time.perf_counter() - t0

    def weights(self):
        return self.net.get_values()


def _hand_written(idiom):
    return type(f"HandWritten_{idiom}", (HandWritten,), {"idiom": idiom, "name": f"fn: {idiom}"})


class GemmOnly:
    """The matrix products of one step alone, in numpy (forward, and the backward products
    for the weights and, below the first layer, the deltas): the limit a step could reach
    if everything else cost nothing. Not a training run (its loss is not compared)."""

    name = "GEMM-only limit"

    def __init__(self, sizes, dtype, init):
        self.init = init

    def epoch(self, X, y, batch):
        W = self.init[0::2]
        t0 = time.perf_counter()
        for s in range(0, len(X), batch):
            acts = [X[s : s + batch]]
            for w in W:
                acts.append(acts[-1] @ w)
            delta = acts[-1]
            for i in range(len(W) - 1, -1, -1):
                acts[i].T @ delta
                if i:
                    delta = delta @ W[i].T
        return time.perf_counter() - t0

    def weights(self):
        return self.init


class Torch:
    name = "pytorch"

    def __init__(self, sizes, dtype, init):
        import torch

        self.torch = torch
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU() if HIDDEN["name"] == "relu" else torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers).to(getattr(torch, dtype))
        self.linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.lossf = torch.nn.CrossEntropyLoss()
        self.init = init

    def epoch(self, X, y, batch):
        torch = self.torch
        with torch.no_grad():
            for k, lin in enumerate(self.linears):
                lin.weight.copy_(torch.from_numpy(self.init[2 * k].T.copy()))
                lin.bias.copy_(torch.from_numpy(self.init[2 * k + 1]))
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
        t0 = time.perf_counter()
        for s in range(0, len(X), batch):
            idx = torch.arange(s, min(s + batch, len(X)))
            self.opt.zero_grad(set_to_none=True)
            loss = self.lossf(self.model(Xt[idx]), yt[idx])
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0

    def weights(self):
        out = []
        for lin in self.linears:
            out += [lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()]
        return out


class Numpy:
    """A hand-written, vectorised forward/backward pass (seed 003's matrix network, relu)."""

    name = "numpy"

    def __init__(self, sizes, dtype, init):
        self.init, self.dtype = init, dtype

    def epoch(self, X, y, batch):
        W = [w.copy() for w in self.init]
        n_layers = len(W) // 2
        lr = np.asarray(LR, dtype=self.dtype)
        t0 = time.perf_counter()
        for s in range(0, len(X), batch):
            idx = np.arange(s, min(s + batch, len(X)))
            xb, yb = X[idx], y[idx]
            acts = [xb]
            for i in range(n_layers - 1):
                acts.append(hidden_np(acts[-1] @ W[2 * i] + W[2 * i + 1]))
            z = acts[-1] @ W[-2] + W[-1]
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            z[np.arange(len(yb)), yb] -= 1
            delta = z / np.asarray(len(yb), dtype=self.dtype)
            for i in range(n_layers - 1, -1, -1):
                gW = acts[i].T @ delta
                gb = delta.sum(axis=0)
                if i:
                    delta = (delta @ W[2 * i].T) * hidden_grad_np(acts[i])
                W[2 * i] -= lr * gW
                W[2 * i + 1] -= lr * gb
        self.W = W
        return time.perf_counter() - t0

    def weights(self):
        return self.W


class Sklearn:
    name = "sklearn"

    def __init__(self, sizes, dtype, init):
        from sklearn.neural_network import MLPClassifier

        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(sizes[1:-1]),
            activation="relu" if HIDDEN["name"] == "relu" else "logistic",
            solver="sgd",
            learning_rate_init=LR,
            momentum=0.0,
            alpha=0.0,
            shuffle=False,
            max_iter=1,
        )
        self.init, self.sizes = init, sizes

    def epoch(self, X, y, batch):
        self.clf.set_params(batch_size=batch)
        if not hasattr(self.clf, "coefs_"):
            self.clf.partial_fit(X[:batch], y[:batch], classes=np.arange(self.sizes[-1]))
        # back to the initial weights, in place (sklearn's optimiser keeps references)
        for dst, src in zip(
            self.clf.coefs_ + self.clf.intercepts_, self.init[0::2] + self.init[1::2]
        ):
            np.copyto(dst, src)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(X, y)
        return time.perf_counter() - t0

    def weights(self):
        out = []
        for w, b in zip(self.clf.coefs_, self.clf.intercepts_):
            out += [w, b]
        return out


def run_config(sizes, batch, dtype, X, y, rounds, impls):
    """Rates per implementation (samples/s, one per round), final losses, set-up seconds and
    notes (symnn's BLAS thread choice)."""
    init = init_weights(sizes, dtype)
    t0 = time.perf_counter()
    objects = {}
    for cls in impls:
        try:
            objects[cls.name] = cls(sizes, dtype, init)
        except ImportError:
            continue
    setup = time.perf_counter() - t0
    runners = {name: (lambda o=o: len(X) / o.epoch(X, y, batch)) for name, o in objects.items()}
    rates = interleaved(runners, rounds)
    losses = {name: loss_of(o.weights(), X, y) for name, o in objects.items()}
    notes = {name: o.note() for name, o in objects.items() if hasattr(o, "note")}
    return rates, losses, setup, notes


def ratio(rates: dict, name: str, base: str) -> str:
    """Median over rounds of ``name``'s rate over ``base``'s in the same round: a slow spell
    of the machine that spans a round cancels out."""
    if base not in rates or name not in rates:
        return "-"
    return f"{median([a / b for a, b in zip(rates[name], rates[base])]):.2f}x"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=30000, help="training samples per epoch")
    ap.add_argument("--quick", action="store_true", help="784-100-10 batch 100 float32 only")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument(
        "--configs",
        default="0,1,2",
        help="which configurations, by index: 0 = 784-100-10 "
        "batch 100, 1 = batch 1000, 2 = 784-512-512-10 batch 256",
    )
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--hidden", choices=["relu", "sigmoid"], default="relu")
    ap.add_argument(
        "--hand-written",
        default="all",
        help="the hand-written symnn.function steps to time: 'all', 'none', or indices "
        f"into {list(_idioms())}",
    )
    args = ap.parse_args(argv)
    HIDDEN["name"] = args.hidden
    configs = [CONFIGS[int(i)] for i in args.configs.split(",")]
    dtypes = args.dtypes.split(",")
    if args.quick:
        configs, dtypes = CONFIGS[:1], ["float32"]
    idioms = list(_idioms())
    if args.hand_written == "none":
        idioms = []
    elif args.hand_written != "all":
        idioms = [idioms[int(i)] for i in args.hand_written.split(",")]
    impls = [Symnn, SymnnNoGuard, *map(_hand_written, idioms), Torch, Numpy, GemmOnly]
    impls += [] if args.no_sklearn else [Sklearn]
    import symnn

    print(f"machine: {machine()}; symnn backend {symnn.info()['backend']}; hidden {args.hidden}")
    rows = []
    for dtype in dtypes:
        X, y, source = fashion_or_random(args.samples, dtype)
        for sizes, batch in configs:
            rates, losses, setup, notes = run_config(sizes, batch, dtype, X, y, args.rounds, impls)
            rows.append((sizes, batch, dtype, rates, losses))
            print(
                f"\n{'-'.join(map(str, sizes))}, batch {batch}, {dtype}, {source}, "
                f"{len(X)} samples/epoch, {args.rounds} interleaved rounds "
                f"(setup incl. compile {setup:.1f} s)"
            )
            print(
                f"  {'implementation':<36}{'samples/s':>12}{'vs pytorch':>12}{'vs numpy':>10}"
                f"{'of GEMM':>9}{'final loss':>12}"
            )
            for name, values in rates.items():
                loss = "" if name == GemmOnly.name else f"{losses[name]:.5f}"
                print(
                    f"  {name:<36}{median(values):>12,.0f}{ratio(rates, name, 'pytorch'):>12}"
                    f"{ratio(rates, name, 'numpy'):>10}"
                    f"{ratio(rates, name, GemmOnly.name).replace('x', ''):>9}{loss:>12}"
                )
            for name, note in notes.items():
                print(f"  ({name}: {note})")
    return rows


if __name__ == "__main__":
    main()
