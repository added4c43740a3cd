"""A graph network's speed: the small ResNet of ``symnn.layers.resnet`` (3x3 stem of 16
channels, a basic block of 16 and one of 32 with stride 2, batch norm, global average pooling,
10 classes; 28x28 inputs) trained with ``Trainer.fit`` (what users run; SGD, batch 64, its
default C backend) against the same network in PyTorch CPU eager (built from the symnn graph
node by node, same initial weights), interleaved in one run; and inference on 1000 rows
(``Trainer.predict_proba`` against one PyTorch call in eval mode). Prints the medians and the
symnn/PyTorch ratios.

    python benchmarks/resnet_speed.py [--rounds 5] [--rows 2048]
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

LR, BATCH = 0.01, 64


def torch_twin(graph, torch):
    """The symnn ``graph`` as a PyTorch module computing the same (logits out: the final
    softmax is left to the loss), node by node, with the graph's current weights."""
    from symnn.nonlinearities import name_of

    nn = torch.nn
    mods = nn.ModuleList()
    for layer in graph.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                          layer.stride, layer._pad, layer.dilation, layer.groups,
                          bias=layer.b is not None)  # fmt: skip
        elif kind == "BatchNorm":
            m = nn.BatchNorm2d(layer.n_in, eps=layer.epsilon, momentum=layer.momentum)
            inv = layer.inv_std.get_value().astype(np.float64)
            m.running_var.copy_(torch.from_numpy((1 / inv**2 - layer.epsilon).astype("float32")))
            m.running_mean.copy_(torch.from_numpy(layer.mean.get_value()))
        elif kind == "Dense":
            m = nn.Linear(layer.n_in, layer.n_out)
        else:
            m = nn.Identity()
        if kind in ("Conv2D", "Dense") and name_of(layer.activation) not in ("linear", "softmax"):
            raise ValueError(f"the twin has no {name_of(layer.activation)} after {kind}")
        params = {"Conv2D": ("W", "b"), "Dense": ("W", "b"), "BatchNorm": ("gamma", "beta")}
        with torch.no_grad():
            for ours, theirs in zip(params.get(kind, ()), ("weight", "bias")):
                if getattr(layer, ours) is None:  # a convolution without bias
                    continue
                value = getattr(layer, ours).get_value()
                getattr(m, theirs).copy_(torch.from_numpy(value.T.copy() if kind == "Dense"
                                                          and ours == "W" else value))  # fmt: skip
        mods.append(m)

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = mods

        def forward(self, x):
            results = []
            for node in graph.nodes:
                args = [x if r[0] == "input" else results[r[1]] for r in node.inbound]
                layer, mod = graph.layers[node.layer], self.mods[node.layer]
                kind = type(layer).__name__
                if kind == "Reshape":
                    out = args[0].reshape(-1, *layer.shape)
                elif kind == "Add":
                    out = args[0] + args[1]
                elif kind == "Activation":
                    out = torch.relu(args[0])
                elif kind == "GlobalAvgPool2D":
                    out = args[0].mean(dim=(2, 3))
                else:  # Conv2D and BatchNorm as they are, Dense: the classifier's logits
                    out = mod(args[0])
                results.append(out)
            return results[-1]

    return Twin()


def symnn_side(net):
    """symnn's side: ``Trainer.fit`` with SGD on its default C backend."""
    from symnn.train import Trainer

    return SymnnClassifier(Trainer(net, optimizer="sgd", learning_rate=LR, seed=0), BATCH)


def torch_side(net):
    """PyTorch's side: the twin of ``net`` trained with SGD."""
    import torch

    model = torch_twin(net, torch)
    return TorchClassifier(torch, model, torch.optim.SGD(model.parameters(), lr=LR), BATCH)


def main(argv=None):
    import torch

    from symnn.layers import resnet

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=2048, help="training rows per round")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    X, y, source = fashion_or_random(max(args.rows, 1000), "float32")
    print(f"machine: {machine()}; PyTorch {torch.__version__}, 2 threads\ndata: {source}")
    net = resnet((1, 28, 28), 10, rng=0)
    twin = torch_twin(net, torch).eval()
    with torch.no_grad():
        theirs = torch.softmax(twin(torch.from_numpy(X[:8])), 1).numpy()
    impls = [symnn_side(net), torch_side(net)]
    ours = impls[0].trainer.predict_proba(X[:8])
    print(f"same network: outputs differ by at most {np.abs(ours - theirs).max():.1e}")
    tasks = {
        f"train b{BATCH} (samples/s)": lambda m: m.train(X[: args.rows], y[: args.rows]),
        "infer 1000 rows (samples/s)": lambda m: m.infer(X[:1000]),
    }
    print(f"\n{'task':<30}" + "".join(f"{m.name:>12}" for m in impls) + "   symnn/pytorch")
    for task, run in tasks.items():
        runners = {m.name: (lambda m=m, run=run: run(m)) for m in impls}
        results = interleaved(runners, args.rounds)
        med = {k: median(v) for k, v in results.items()}
        cells = "".join(f"{med[m.name]:>12.0f}" for m in impls)
        print(f"{task:<30}{cells}   {med['symnn'] / med['pytorch']:.2f}x")


if __name__ == "__main__":
    main()
