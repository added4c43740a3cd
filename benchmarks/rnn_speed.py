"""Recurrent layers' speed: an LSTM and a GRU of 128 units reading 28 steps of 28 features
(Fashion-MNIST rows, or random rows without it), batch 64, a 10-class softmax on the last
state; a training step with Adam (symnn's ``Trainer.fit`` on its default C backend and on
Numba, against ``torch.nn.LSTM``/``GRU`` in PyTorch eager with the same weights) and
inference on 1024 rows, interleaved in one run. Prints medians and the symnn/PyTorch ratios.
``--profile`` instead runs symnn's LSTM training step (C backend, plain SGD, batch 64) under
PyTensor's profiler, scans included, and prints where one step's time goes, with numpy's
``tanh`` on the same gate block for scale.

    python benchmarks/rnn_speed.py [--rounds 5] [--rows 2048]
    python benchmarks/rnn_speed.py --profile
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import (
    SymnnClassifier,
    TorchClassifier,
    fashion_or_random,
    interleaved,
    machine,
    median,
)

BATCH, UNITS, STEPS, FEATURES, LR = 64, 128, 28, 28, 1e-3


def symnn_net(kind: str):
    from symnn.layers import GRU, LSTM, Dense, Reshape, Sequential

    cell = {"lstm": LSTM, "gru": GRU}[kind]
    return Sequential([Reshape((STEPS, FEATURES)),
                       cell(FEATURES, UNITS, only_return_final=True, rng=0),
                       Dense(UNITS, 10, "softmax", rng=1)])  # fmt: skip


def symnn_side(kind: str, mode):
    """symnn's side: ``Trainer.fit`` with Adam on the C backend (``mode=None``) or Numba."""
    from symnn.train import Trainer

    trainer = Trainer(symnn_net(kind), learning_rate=LR, seed=0, mode=mode)
    return SymnnClassifier(trainer, BATCH, f"symnn {mode or 'C'}")


def torch_side(kind: str, net):
    """PyTorch's side: ``torch.nn.LSTM``/``GRU`` and a linear layer with ``net``'s weights
    (PyTorch's layout: transposed), trained with Adam."""
    import torch

    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    rnn, dense = net.layers[1], net.layers[2]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cls(FEATURES, UNITS, batch_first=True)
            self.fc = torch.nn.Linear(UNITS, 10)

        def forward(self, x):
            out, _ = self.rnn(x.view(-1, STEPS, FEATURES))
            return self.fc(out[:, -1])

    model = Model()
    with torch.no_grad():
        for name, var, transpose in rnn.torch_keys():
            value = var.get_value()
            getattr(model.rnn, name).copy_(torch.from_numpy(value.T.copy() if transpose
                                                            else value))  # fmt: skip
        model.fc.weight.copy_(torch.from_numpy(dense.W.get_value().T.copy()))
        model.fc.bias.copy_(torch.from_numpy(dense.b.get_value()))
    return TorchClassifier(torch, model, torch.optim.Adam(model.parameters(), lr=LR), BATCH)


def profile_step(kind: str = "lstm", calls: int = 50) -> None:
    """Print the shares of one training step's ops, inside and outside the scans."""
    import time

    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.debug.profiling import ProfileStats

    from symnn.backend import resolve_mode

    pytensor.config.profile = True  # the scans' inner functions profile only with the flag
    net = symnn_net(kind)
    x, y = pt.matrix("x", dtype="float32", shape=(None, STEPS * FEATURES)), pt.ivector("y")
    cost = -pt.mean(pt.log(net(x)[pt.arange(y.shape[0]), y]))
    updates = [(p, p - np.float32(LR) * g) for p, g in zip(net.params, pt.grad(cost, net.params))]
    prof = ProfileStats(atexit_print=False)
    step = pytensor.function([x, y], cost, updates=updates, mode=resolve_mode("C"), profile=prof)
    rng = np.random.default_rng(0)
    X = rng.random((BATCH, STEPS * FEATURES), dtype="float32")
    Y = rng.integers(0, 10, BATCH).astype("int32")
    step(X, Y)
    t0 = time.perf_counter()
    for _ in range(calls):
        step(X, Y)
    print(f"{kind} step: {(time.perf_counter() - t0) / calls * 1e3:.2f} ms (profiled)")
    prof.summary(n_ops_to_print=6, n_apply_to_print=6)
    gates = rng.random((BATCH, 4 * UNITS), dtype="float32")[:, :UNITS]
    t0 = time.perf_counter()
    for _ in range(1000):
        np.tanh(gates)
    per = (time.perf_counter() - t0) / 1000 / gates.size * 1e9
    print(f"numpy tanh on a ({BATCH}, {UNITS}) gate block: {per:.2f} ns per element")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=2048, help="training rows per round")
    ap.add_argument("--profile", action="store_true", help="where the LSTM step's time goes")
    args = ap.parse_args(argv)
    if args.profile:
        return profile_step()
    import torch

    torch.set_num_threads(2)
    X, y, source = fashion_or_random(max(args.rows, 1024), "float32")
    print(f"machine: {machine()}; PyTorch {torch.__version__}, 2 threads\ndata: {source}")
    for kind in ("lstm", "gru"):
        impls = [symnn_side(kind, None), symnn_side(kind, "NUMBA")]
        impls.append(torch_side(kind, impls[0].trainer.network))
        with torch.no_grad():
            theirs = torch.softmax(impls[-1].model(torch.from_numpy(X[:8])), 1).numpy()
        gap = np.abs(impls[0].trainer.predict_proba(X[:8]) - theirs).max()
        print(f"\n{kind.upper()}: same network, outputs differ by at most {gap:.1e}")
        tasks = {
            f"train b{BATCH} (samples/s)": lambda m: m.train(X[: args.rows], y[: args.rows]),
            "infer 1024 rows (samples/s)": lambda m: m.infer(X[:1024]),
        }
        print(f"{'task':<30}" + "".join(f"{m.name:>13}" for m in impls) + "   C/pytorch")
        for task, run in tasks.items():
            runners = {m.name: (lambda m=m, run=run: run(m)) for m in impls}
            med = {k: median(v) for k, v in interleaved(runners, args.rounds).items()}
            cells = "".join(f"{med[m.name]:>13.0f}" for m in impls)
            print(f"{task:<30}{cells}   {med['symnn C'] / med['pytorch']:.2f}x")


if __name__ == "__main__":
    main()
