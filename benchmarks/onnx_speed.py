"""Speed of imported models: ResNet-18, MobileNetV2, SqueezeNet 1.1, and AlexNet,
GoogLeNet, DenseNet-121 and ShuffleNet (``_more_models.py``; written as ``torch.nn``
modules with torchvision's or their papers' layer shapes, random weights, eval mode), exported by
PyTorch's TorchScript exporter and read with ``symnn.io.from_onnx``. Per architecture, on
224x224 RGB inputs: inference at batch 1 and 16 (images/s) and one activation-maximisation
step of a channel of an inner layer at batch 1 (ms/step: forward, gradient to the input,
Adam update and the [0, 1] projection; symnn's compiled ascent step, the one
``symnn.inputopt.maximize`` runs), against PyTorch eager (2 threads) and onnxruntime (2
threads, inference only), interleaved rounds; prints medians, the ratios to PyTorch and
symnn's compile times (a user cost too).

    python benchmarks/onnx_speed.py [--rounds 3] [--arch resnet18,mobilenet_v2,...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import interleaved, machine, median
from _more_models import INNER as MORE
from _more_models import more_model

SIZE = 224
#: per architecture: the inner module whose output the AM step maximises (channel 0), and
#: the prefix of the ONNX node names of that module (the last such node is its output)
INNER = {"resnet18": ("layer3", "/layer3/"),
         "mobilenet_v2": ("features.10", "/features/features.10/"),
         "squeezenet": ("features.7", "/features/features.7/"), **MORE}  # fmt: skip


def torch_model(name: str, torch):
    nn = torch.nn

    def cbr(cin, cout, k, stride=1, groups=1, act=nn.ReLU):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), act())  # fmt: skip

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a = cbr(cin, cout, 3, stride)
            self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())  # fmt: skip

        def forward(self, x):
            return torch.relu(self.b(self.a(x)) + self.down(x))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hidden = cin * t
            layers = [cbr(cin, hidden, 1, act=nn.ReLU6)] if t != 1 else []
            layers += [cbr(hidden, hidden, 3, stride, hidden, act=nn.ReLU6),
                       nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.conv, self.skip = nn.Sequential(*layers), stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.skip else self.conv(x)

    class Fire(nn.Module):
        def __init__(self, cin, s, e):
            super().__init__()
            self.squeeze = nn.Sequential(nn.Conv2d(cin, s, 1), nn.ReLU())
            self.e1 = nn.Sequential(nn.Conv2d(s, e, 1), nn.ReLU())
            self.e3 = nn.Sequential(nn.Conv2d(s, e, 3, padding=1), nn.ReLU())

        def forward(self, x):
            s = self.squeeze(x)
            return torch.cat([self.e1(s), self.e3(s)], 1)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(cbr(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
            widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
            for i, (cin, cout, s) in enumerate(widths, 1):
                setattr(self, f"layer{i}", nn.Sequential(Basic(cin, cout, s),
                                                         Basic(cout, cout, 1)))  # fmt: skip
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            blocks, cin = [cbr(3, 32, 3, 2, act=nn.ReLU6)], 32
            for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:  # fmt: skip
                for i in range(n):
                    blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            blocks.append(cbr(cin, 1280, 1, act=nn.ReLU6))
            self.features, self.fc = nn.Sequential(*blocks), nn.Linear(1280, 1000)

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.fc(torch.flatten(x, 1))

    class SqueezeNet11(nn.Module):
        def __init__(self):
            super().__init__()
            pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(), Fire(64, 16, 64), Fire(128, 16, 64),
                pool(), Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192),
                Fire(384, 48, 192), Fire(384, 64, 256), Fire(512, 64, 256))  # fmt: skip
            self.head = nn.Sequential(nn.Conv2d(512, 1000, 1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip

        def forward(self, x):
            return self.head(self.features(x))

    torch.manual_seed(0)
    own = {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "squeezenet": SqueezeNet11}
    model = own[name]() if name in own else more_model(name, torch)
    for m in model.modules():  # running statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


class Side:
    """One implementation: ``infer(X)`` and ``step()`` each timed, in seconds."""

    def __init__(self, name, infer, step=None):
        self.name, self.infer, self.step = name, infer, step


def symnn_side(path: Path, prefix: str) -> tuple[Side, dict]:
    import pytensor.tensor as pt

    from symnn import backend
    from symnn.inputopt.engine import compiled_ascent
    from symnn.inputopt.objectives import channel
    from symnn.io import from_onnx

    net = from_onnx(path)
    x = pt.matrix("x", dtype="float32", shape=(None, 3 * SIZE * SIZE))
    t0 = time.perf_counter()
    forward = backend.function([x], net(x, deterministic=True))
    compile_infer = time.perf_counter() - t0
    inner = [la.name for la in net.layers if (la.name or "").startswith(prefix)][-1]
    values = channel(inner, 0, preactivation=False)(net, x)
    t0 = time.perf_counter()
    fns = compiled_ascent(values, x, "adam", 3 * SIZE * SIZE)
    fns.step.trust_input = True
    compile_am = time.perf_counter() - t0
    width = 3 * SIZE * SIZE
    fns.reset(np.full((1, width), 0.5, np.float32), np.zeros(width), np.ones(width), 0.05)
    fns.step()

    def infer(X):
        t0 = time.perf_counter()
        forward(X.reshape(len(X), -1))
        return time.perf_counter() - t0

    def step():
        t0 = time.perf_counter()
        fns.step()
        return time.perf_counter() - t0

    side = Side("symnn", infer, step)
    side.forward = forward
    return side, {"inference": compile_infer, "AM step": compile_am, "inner": inner}


def torch_side(model, module: str, torch) -> Side:
    inner = model.get_submodule(module)
    x = torch.full((1, 3, SIZE, SIZE), 0.5, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    seen = {}
    inner.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o))

    def infer(X):
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(torch.from_numpy(X))
        return time.perf_counter() - t0

    def step():
        t0 = time.perf_counter()
        opt.zero_grad()
        model(x)
        (-seen["out"][:, 0].mean()).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        return time.perf_counter() - t0

    return Side("pytorch", infer, step)


def ort_side(path: Path) -> Side:
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    session = onnxruntime.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def infer(X):
        t0 = time.perf_counter()
        session.run(None, {"x": X})
        return time.perf_counter() - t0

    return Side("onnxruntime", infer)


def run_arch(name: str, rounds: int, torch, folder: Path) -> None:
    model = torch_model(name, torch)
    path = folder / f"{name}.onnx"
    example = torch.rand(1, 3, SIZE, SIZE)
    torch.onnx.export(model, example, str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False)  # fmt: skip
    mine, compiled = symnn_side(path, INNER[name][1])
    sides = [mine, torch_side(model, INNER[name][0], torch), ort_side(path)]
    X = {b: np.random.default_rng(b).random((b, 3, SIZE, SIZE), dtype=np.float32) for b in (1, 16)}
    with torch.inference_mode():
        want = model(torch.from_numpy(X[16])).numpy()
    gap = np.abs(mine.forward(X[16].reshape(16, -1)) - want).max() / np.abs(want).max()
    print(f"\n{name}: symnn vs PyTorch outputs, largest difference / largest output: {gap:.1e}; "
          f"symnn compile: inference {compiled['inference']:.1f} s, AM step "
          f"{compiled['AM step']:.1f} s (inner layer {compiled['inner']})")  # fmt: skip
    header = f"{'task':<28}" + "".join(f"{s.name:>13}" for s in sides) + "  symnn/pytorch"
    print(header)
    for batch in (1, 16):
        runners = {s.name: (lambda s=s, b=batch: b / s.infer(X[b])) for s in sides}
        med = {k: median(v) for k, v in interleaved(runners, rounds).items()}
        cells = "".join(f"{med[s.name]:>13.1f}" for s in sides)
        print(f"{f'infer b{batch} (images/s)':<28}{cells}  {med['symnn'] / med['pytorch']:.2f}x")
    runners = {s.name: (lambda s=s: s.step() * 1e3) for s in sides if s.step}
    med = {k: median(v) for k, v in interleaved(runners, rounds).items()}
    cells = "".join(f"{med[s.name]:>13.1f}" if s.step else f"{'-':>13}" for s in sides)
    print(f"{'AM step b1 (ms/step)':<28}{cells}  {med['symnn'] / med['pytorch']:.2f}x (time)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arch", default=",".join(INNER))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    print(f"machine: {machine()}; PyTorch {torch.__version__}, 2 threads")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.arch.split(","):
            run_arch(name, args.rounds, torch, Path(folder))


if __name__ == "__main__":
    main()
