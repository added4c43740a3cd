"""What each of the convolution step's C-code choices is worth: Lasagne's MNIST CNN (conv 32
5x5 relu, max pool 2, conv 32 5x5 relu, max pool 2, dense 256 relu, dense 10) compiled three
ways in one process and timed in interleaved rounds (float32 cost and gradients, random
inputs; medians, ms per step):

- ``default``: symnn's C mode on a network whose image sizes the types know;
- ``no chunked input gradient``: the same without the rewrite to
  :class:`symnn.ops.corr.Col2ImGemm` (``Col2Im`` of one ``Dot22`` over the whole batch);
- ``unknown image sizes``: an input of unknown height and width (the C loops read the sizes
  at run time instead of having them compiled in);
- ``rectify before pooling``: the convolutions' relu written as ``pt.maximum(h, 0)``, which
  the pooling layer does not recognise: relu over the whole convolution output, then max
  pooling (the default pools first and rectifies the pooled values, see
  :class:`symnn.layers.MaxPool2D`).

Each row also gives the minor page faults per step (``getrusage``): with
``SYMNN_KEEP_FREED_MEMORY=0`` glibc's default allocator settings are kept, and the step's
large intermediates are faulted in again on every call.

    python benchmarks/conv_step_variants.py [--rounds 40] [--batch 32 128]
    SYMNN_KEEP_FREED_MEMORY=0 python benchmarks/conv_step_variants.py
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import machine, median

ARCH = "conv32x5,pool2,conv32x5,pool2,256,10"


def step(variant: str):
    import pytensor
    import pytensor.tensor as pt

    from symnn.backend import resolve_mode
    from symnn.layers import from_arch

    net = from_arch(ARCH, (28, 28), rng=0)
    if variant == "rectify before pooling":
        for layer in net.layers:
            if type(layer).__name__ == "Conv2D":
                layer.activation = lambda h: pt.maximum(h, 0)
    shape = (None, None, None, None) if variant == "unknown image sizes" else (None, 1, 28, 28)
    x, y = pt.tensor("x", dtype="float32", shape=shape), pt.ivector("y")
    h = x
    for layer in net.layers[1:]:  # past the input's reshape: images in
        h = layer(h)
    cost = -pt.mean(pt.log(h[pt.arange(y.shape[0]), y]))
    mode = resolve_mode("C")
    if variant == "no chunked input gradient":
        mode = mode.excluding("symnn_col2im_gemm")
    return pytensor.function([x, y], [cost, *pytensor.grad(cost, net.params)], mode=mode)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    args = ap.parse_args(argv)
    variants = ["default", "no chunked input gradient", "unknown image sizes",
                "rectify before pooling"]
    fns = {v: step(v) for v in variants}
    print(f"machine: {machine()}; ms per step, medians of {args.rounds} interleaved rounds")
    rng = np.random.default_rng(0)
    for batch in args.batch:
        X = rng.random((batch, 1, 28, 28), dtype=np.float32)
        Y = rng.integers(0, 10, batch).astype("int32")
        ref = fns["default"](X, Y)
        for v in variants[1:]:
            for a, b in zip(fns[v](X, Y), ref):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=v)
        times, faults = {v: [] for v in variants}, dict.fromkeys(variants, 0)
        for r in range(args.rounds):
            for v in variants if r % 2 else variants[::-1]:
                f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
                fns[v](X, Y)
                times[v].append(time.perf_counter() - t0)
                faults[v] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        base = median(times["default"])
        for v in variants:
            t = median(times[v])
            print(f"  batch {batch:4d}  {v:28s} {t * 1e3:8.2f}  default / this {base / t:5.2f}"
                  f"  page faults per step {faults[v] / args.rounds:7.0f}")


if __name__ == "__main__":
    main()
