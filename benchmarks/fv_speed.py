"""Speed of feature visualisation on a GoogLeNet-shaped network: one Fourier-parametrised
step of ``channel("mixed4a", 97)`` on 4 images of 224x224x3 with Lucid's transformation
robustness, symnn's ``visualize`` (the network written in PyTorch, exported by its TorchScript
exporter and read with ``symnn.io.from_onnx``) against the same loop written with lucent's
recipe in PyTorch eager (``fft_image`` with its 1/f scale, the colour decorrelation and
sigmoid of ``to_valid_rgb``, pad, jitter, random scale and rotation, Adam at 0.05), 2 threads
each, interleaved rounds; prints medians of ms per step and the ratio, and symnn's compile
time (a user cost too).

The network: GoogLeNet's stem (7x7/2 convolution, max pooling, LRN, 1x1 and 3x3
convolutions, LRN, max pooling) and Inception blocks 3a, 3b, (pool) 4a with GoogLeNet's
widths, random weights (the speed and the mechanics do not depend on them).

    python benchmarks/fv_speed.py [--rounds 3] [--steps 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import interleaved, machine, median

SIZE, BATCH, CHANNEL = 224, 4, 97
#: GoogLeNet's Inception widths: 1x1; 3x3 reduce, 3x3; 5x5 reduce, 5x5; pool projection
WIDTHS = {"mixed3a": (192, 64, 96, 128, 16, 32, 32), "mixed3b": (256, 128, 128, 192, 32, 96, 64),
          "mixed4a": (480, 192, 96, 208, 16, 48, 64)}  # fmt: skip


def googlenet_to_4a(torch):
    nn = torch.nn

    def conv(cin, cout, k, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.ReLU())

    class Inception(nn.Module):
        def __init__(self, cin, a, b0, b1, c0, c1, d):
            super().__init__()
            self.a = conv(cin, a, 1)
            self.b = nn.Sequential(conv(cin, b0, 1), conv(b0, b1, 3))
            self.c = nn.Sequential(conv(cin, c0, 1), conv(c0, c1, 5))
            self.d = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, d, 1))

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x), self.c(x), self.d(x)], 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                conv(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1), nn.LocalResponseNorm(5),
                conv(64, 64, 1), conv(64, 192, 3), nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2, 1),
            )  # fmt: skip
            self.mixed3a = Inception(*WIDTHS["mixed3a"])
            self.mixed3b = Inception(*WIDTHS["mixed3b"])
            self.pool = nn.MaxPool2d(3, 2, 1)
            self.mixed4a = Inception(*WIDTHS["mixed4a"])

        def forward(self, x):
            return self.mixed4a(self.pool(self.mixed3b(self.mixed3a(self.stem(x)))))

    torch.manual_seed(0)
    return Net().eval()


def symnn_side(path: Path, steps: int):
    from symnn.inputopt import objectives, visualize
    from symnn.io import from_onnx

    net = from_onnx(path)
    layer = net.layers[-1].name  # the Concat of mixed4a
    objective = objectives.channel(layer, CHANNEL)
    opts = dict(image_shape=(3, SIZE, SIZE), n=BATCH, param="fourier", jitter=8, scale=0.1,
                rotate=10, blas_threads=2)  # fmt: skip
    t0 = time.perf_counter()
    visualize(net, objective, steps=1, **opts)
    compile_time = time.perf_counter() - t0
    seeds = iter(range(1, 10**6))

    def run(n):
        t0 = time.perf_counter()
        visualize(net, objective, steps=n, seed=next(seeds), **opts)
        return time.perf_counter() - t0

    def step():
        """``(marginal seconds per step, seconds per step of the longer call)``: calls of
        ``steps`` and ``2 * steps`` steps; each call also draws its warp tables, probes the
        BLAS thread count and may replay to its best iterate."""
        short, long = run(steps), run(2 * steps)
        return (long - short) / steps, long / (2 * steps)

    return step, compile_time


def lucent_side(model, torch, steps: int):
    """lucent's ``render_vis`` loop, written out: its ``fft_image``, ``to_valid_rgb`` and
    ``standard_transforms`` (pad 12, jitter 8, scale 0.9-1.1, rotate -10..10, jitter 4)."""
    F = torch.nn.functional
    for p in model.parameters():
        p.requires_grad_(False)
    h = w = SIZE
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fx * fx + fy * fy), 1.0 / max(w, h))
    scale = torch.tensor(scale, dtype=torch.float32)[None, None, ..., None]
    spectrum = (torch.randn(BATCH, 3, h, w // 2 + 1, 2) * 0.01).requires_grad_(True)
    colour = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    colour = colour / colour.norm(dim=0).max()
    opt = torch.optim.Adam([spectrum], lr=0.05)
    gen = torch.Generator().manual_seed(0)

    def image():
        img = torch.fft.irfftn(torch.view_as_complex(scale * spectrum), s=(h, w), norm="ortho")
        img = (img / 4.0).permute(0, 2, 3, 1) @ colour.T
        return torch.sigmoid(img.permute(0, 3, 1, 2))

    def jitter(x, d):
        dy, dx = torch.randint(0, d, (2,), generator=gen).tolist()
        return x[:, :, dy : dy + x.shape[2] - d, dx : dx + x.shape[3] - d]

    def warp(x):
        s = 0.9 + 0.2 * torch.rand(BATCH, generator=gen)
        a = torch.deg2rad(20 * torch.rand(BATCH, generator=gen) - 10)
        theta = torch.stack([torch.stack([a.cos() / s, -a.sin() / s, 0 * a], 1),
                             torch.stack([a.sin() / s, a.cos() / s, 0 * a], 1)], 1)  # fmt: skip
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", align_corners=False)

    def one():
        opt.zero_grad()
        x = F.pad(image(), (12,) * 4, value=0.5)
        x = jitter(warp(jitter(x, 8)), 4)
        loss = -model(x)[:, CHANNEL].mean()
        loss.backward()
        opt.step()

    def step():
        t0 = time.perf_counter()
        for _ in range(steps):
            one()
        return (time.perf_counter() - t0) / steps

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="steps per timed run")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    print(f"machine: {machine()}; PyTorch {torch.__version__}, 2 threads")
    model = googlenet_to_4a(torch)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "googlenet_4a.onnx"
        torch.onnx.export(model, torch.rand(1, 3, SIZE, SIZE), str(path), input_names=["x"],
                          dynamic_axes={"x": {0: "N"}}, dynamo=False)  # fmt: skip
        mine, compile_time = symnn_side(path, args.steps)
    print(f"symnn: from_onnx and the visualisation step compiled in {compile_time:.1f} s")
    theirs = lucent_side(model, torch, args.steps)
    runners = {"symnn": mine, "lucent recipe": theirs}
    got = interleaved(runners, args.rounds, pause=2.0)
    marginal = median([m for m, _ in got["symnn"]]) * 1e3
    whole = median([w for _, w in got["symnn"]]) * 1e3
    lucent = median(got["lucent recipe"]) * 1e3
    print(f"ms per step: channel mixed4a:97 of 4 images 224x224x3, Fourier, jitter/scale/rotate "
          f"({args.rounds} rounds, medians)")
    print(f"  symnn, marginal (calls of {args.steps} and {2 * args.steps} steps) {marginal:8.0f}"
          f"  {marginal / lucent:.2f}x lucent")
    print(f"  symnn, a call of {2 * args.steps} steps / {2 * args.steps:<22} {whole:8.0f}"
          f"  {whole / lucent:.2f}x lucent")
    print(f"  lucent's recipe in PyTorch eager {'':<25}{lucent:8.0f}")


if __name__ == "__main__":
    main()
