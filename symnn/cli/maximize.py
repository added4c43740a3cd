"""``symnn maximize``: the inputs that maximise a saved or imported model's units, their
report and figure."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ._common import (
    _COUNT,
    _NONNEGATIVE,
    _POSITIVE,
    _POSITIVE_INT,
    _blas_threads_option,
    _compile_note,
    _layer,
    _load_data,
    _out_dir,
    _shape,
    _UsageError,
    usage_message,
)


def _report_am(report, out: Path, classes: list[str] | None, title: str) -> None:
    from .. import plot

    print(report.to_table())
    (out / "report.json").write_text(report.dumps())
    if report.image_shape is not None and len(report.image_shape) == 2:
        names = [
            classes[r["unit"]] if classes and r["unit"] < len(classes) else f"unit {r['unit']}"
            for r in report.rows
        ]
        titles = [
            f"{n}\n{r['best']:.1f}"
            + (f" p={r['probability']:.2f}" if r["probability"] is not None else "")
            for n, r in zip(names, report.rows)
        ]
        plot.plot_image_grid(report.images(), out / "maximized.png", titles=titles, title=title)
        print(f"wrote {out / 'maximized.png'} and {out / 'report.json'}")
    else:
        print(f"wrote {out / 'report.json'}")


def _load_network(model: str, arch: str | None, image_shape: str | None) -> Any:
    """The network in ``model``: a symnn file, an ONNX graph, or a ``.safetensors`` of
    PyTorch-layout weights for the network ``arch`` describes (on ``image_shape`` inputs)."""
    from .. import io
    from ..layers import Layer, from_arch

    suffix = Path(model).suffix
    if arch is not None and suffix != ".safetensors":
        raise _UsageError("--arch has no effect: it describes the network of a .safetensors file")
    try:
        if suffix == ".onnx":
            return io.from_onnx(model)
        if suffix == ".safetensors":
            shape = _shape(image_shape)
            if arch is None or shape is None:
                raise _UsageError(f"{model}: weights alone need --arch and --image-shape")
            network = from_arch(arch, shape)
            io.load_state_dict(network, model)
            return network
        obj = io.load(model)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    return obj if isinstance(obj, Layer) else obj.network


def _cmd_maximize(args: argparse.Namespace) -> int:
    from ..inputopt import activation_maximization
    from ..inputopt.activation import layer_width, parse_units

    out = _out_dir(args.out)
    network = _load_network(args.model, args.arch, args.image_shape)
    shape = _image_shape(args, network)
    try:  # the units, before anything is compiled
        width = layer_width(network, args.layer)
        if width is not None:
            parse_units(args.units, width)
    except ValueError as exc:
        raise _UsageError(f"--units/--layer: {exc}") from None
    reference, prior = _reference_for(args, network.n_in)
    _compile_note("the ascent step")
    report = activation_maximization(
        network,
        args.units,
        layer=args.layer,
        reference=reference,
        prior=prior,
        prior_weight=args.prior_weight,
        x0=None if args.x0 == "random" else args.x0,
        top_k=args.top_k,
        steps=args.steps,
        method=args.method,
        learning_rate=args.lr,
        n_starts=args.starts,
        seed=args.seed,
        l2=args.l2,
        tv=args.tv,
        jitter=args.jitter,
        scale=args.scale,
        rotate=args.rotate,
        precondition=args.precondition,
        blur_every=args.blur_every,
        image_shape=shape,
        probability=args.probability,
        blas_threads=args.blas_threads,
    )
    is_output = args.layer in (-1, len(getattr(network, "layers", [network])) - 1)
    names = getattr(network, "class_names", None) if is_output else None
    _report_am(report, out, names, f"units {args.units} of layer {args.layer}")
    return 0


def _reference_for(args: argparse.Namespace, n_in: int) -> tuple[Any, Any]:
    """``(reference, prior)`` for ``symnn maximize``, every combination checked before
    anything compiles."""
    spec = args.reference
    if spec == "auto":
        from ..datasets import fashion_mnist_available

        spec = {64: "digits", 784: "fashion-mnist" if fashion_mnist_available() else None}.get(n_in)
    if spec in (None, "none"):
        if args.prior in ("gaussian", "gmm") or args.x0 != "random":
            what = f"--prior {args.prior}" if args.prior != "auto" else f"--x0 {args.x0}"
            raise _UsageError(f"{what} needs --reference (a data set of the model's inputs)")
        if args.prior_weight is not None:
            raise _UsageError("--prior-weight has no effect without a reference and a prior")
        return None, None
    try:
        data = _load_data(spec, 0)
    except ValueError as exc:
        raise _UsageError(usage_message(exc, {"data": "--reference"}) or str(exc)) from None
    if data.X_train.shape[1] != n_in:
        raise _UsageError(
            f"--reference {spec}: its inputs have {data.X_train.shape[1]} features; the model "
            f"takes {n_in}"
        )
    if args.prior == "none" and args.prior_weight is not None:
        raise _UsageError("--prior-weight has no effect with --prior none")
    prior = None if args.prior == "none" else args.prior
    return (data.X_train, data.y_train), prior


def _image_shape(args: argparse.Namespace, network: Any) -> tuple[int, ...] | None:
    """``--image-shape`` checked against the network's inputs (default: the image its first
    ``Reshape`` makes, else square inputs)."""
    n_in = network.n_in
    shape = _shape(args.image_shape)
    first = network.layers[0] if hasattr(network, "layers") else None
    if shape is None and getattr(first, "shape", None) is not None and first.shape[0] == 1:
        shape = tuple(first.shape[1:])
    if shape is not None and math.prod(shape) != n_in:
        raise _UsageError(
            f"--image-shape {args.image_shape} has {math.prod(shape)} pixels; "
            f"the network takes {n_in} inputs"
        )
    if shape is None:
        side = int(round(n_in**0.5))
        shape = (side, side) if side * side == n_in else None
    image_flags = (("--jitter", args.jitter), ("--blur-every", args.blur_every),
                   ("--scale", args.scale), ("--rotate", args.rotate),
                   ("--precondition", args.precondition))  # fmt: skip
    for flag, value in image_flags:
        if value and shape is None:
            raise _UsageError(
                f"{flag} {value} needs an image: the network's {n_in} inputs are not square, "
                "so pass --image-shape HxW"
            )
    if args.method in ("l-bfgs-b", "tnc"):
        for flag, value in (
            ("--jitter", args.jitter),
            ("--scale", args.scale),
            ("--rotate", args.rotate),
            ("--precondition", args.precondition),
            ("--blur-every", args.blur_every),
            ("--lr", args.lr),
        ):
            if value:
                raise _UsageError(
                    f"{flag} has no effect with --method {args.method} (scipy picks its own "
                    "steps); leave it out or use adam"
                )
    return shape


def _maximize_arguments(p: argparse.ArgumentParser) -> None:
    from ..inputopt.maximize import METHODS
    from ..layers.arch import ARCH_HELP

    p.add_argument(
        "model",
        help="a model file written by `symnn train` or symnn.save, an ONNX graph (.onnx), or "
        "PyTorch-layout weights (.safetensors, with --arch and --image-shape)",
    )
    p.add_argument("--arch", default=None, help="the network of a .safetensors file: " + ARCH_HELP)
    p.add_argument("--units", default="0-9", help="units, e.g. 0-9, 1,3,5 or all")
    p.add_argument(
        "--layer",
        type=_layer,
        default=-1,
        help="a layer's name, or its position in the network's layers (every layer counts, "
        "dropout and batch normalisation included; -1: the output layer)",
    )
    p.add_argument("--steps", type=_POSITIVE_INT, default=200, help="ascent steps")
    p.add_argument(
        "--method",
        default="adam",
        choices=list(METHODS),
        metavar="NAME",
        help=f"ascent method: {', '.join(METHODS)}",
    )
    p.add_argument(
        "--lr",
        type=_POSITIVE,
        default=None,
        help="step size of the projected methods (default 0.05; not for scipy's)",
    )
    p.add_argument("--starts", type=_POSITIVE_INT, default=1, help="starts per unit")
    p.add_argument("--l2", type=_NONNEGATIVE, default=0.0, help="L2 penalty on the input")
    p.add_argument("--tv", type=_NONNEGATIVE, default=0.0, help="total-variation penalty (images)")
    p.add_argument("--jitter", type=_COUNT, default=0, help="random shifts in pixels (images)")
    p.add_argument(
        "--scale", type=_NONNEGATIVE, default=0.0, help="random rescaling by up to this fraction"
    )
    p.add_argument(
        "--rotate", type=_NONNEGATIVE, default=0.0, help="random rotation by up to these degrees"
    )
    p.add_argument(
        "--precondition", action="store_true", help="1/f filter of the gradient (images)"
    )
    p.add_argument("--blur-every", type=_COUNT, default=0, help="blur every k steps (images)")
    p.add_argument("--image-shape", default=None, help="e.g. 28x28 (default: square inputs)")
    p.add_argument(
        "--probability",
        action="store_true",
        help="maximise the class probability instead of the logit",
    )
    _reference_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts")
    _blas_threads_option(p)
    p.add_argument("--out", default="symnn-maximize", help="output folder")
    p.set_defaults(func=_cmd_maximize)


def _reference_arguments(p: argparse.ArgumentParser) -> None:
    """``symnn maximize``'s options for real inputs: prior, starts and dataset examples."""
    p.add_argument(
        "--reference",
        default="auto",
        help="real inputs for the prior, the starts from data and the report's dataset "
        "examples: digits, fashion-mnist, mnist:PATH, none, or auto (the data set whose "
        "input width matches the model: Fashion-MNIST when installed for 784, digits for 64)",
    )
    p.add_argument(
        "--prior",
        default="auto",
        choices=["auto", "gaussian", "gmm", "none"],
        help="density prior on the input: a Gaussian or a Gaussian mixture fitted to the "
        "reference (auto: gaussian when there is a reference)",
    )
    p.add_argument(
        "--prior-weight",
        type=_NONNEGATIVE,
        default=None,
        help="relative prior weight (default: chosen per unit, the strongest of 0.5/1/2/4 "
        "under which the unit still beats its best reference input)",
    )
    p.add_argument(
        "--x0",
        default="random",
        choices=["random", "mean", "class-mean", "facets"],
        help="starts: uniform random, the reference mean, the unit's class mean, or the "
        "centres of its most activating reference inputs (one facet per start)",
    )
    p.add_argument("--top-k", type=_POSITIVE_INT, default=5, help="dataset examples per unit")
