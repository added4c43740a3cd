"""``symnn maximize``: the inputs that maximise a saved or imported model's units, their
report and figure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..inputopt import InputPenalties, Reference
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


def _load_network(model: str, arch: str | None, image_shape: str | None,
                  batch_axis: int | None = 0) -> Any:  # fmt: skip
    """The network in ``model``: a symnn file, an ONNX graph (its inputs' batch axis
    ``batch_axis``), or a ``.safetensors`` of PyTorch-layout weights for the network
    ``arch`` describes (on ``image_shape`` inputs)."""
    from .. import io
    from ..layers import Layer, from_arch

    suffix = Path(model).suffix
    if arch is not None and suffix != ".safetensors":
        raise _UsageError("--arch has no effect: it describes the network of a .safetensors file")
    if batch_axis != 0 and suffix != ".onnx":
        raise _UsageError("--batch-axis has no effect: it is the batch axis of an .onnx file")
    try:
        if suffix == ".onnx":
            return io.from_onnx(model, batch_axis=batch_axis)
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


#: the command line's flags for activation_maximization's parameters (the others: --name)
FLAGS = {"learning_rate": "--lr", "n_starts": "--starts", "reference.data": "--reference"}


def _crop_sides(text: str) -> tuple[float, float]:
    """``--crop 0.5,0.9``: two fractions (checked in full by ``visualize``)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (e.g. 0.5,0.9); got {text!r}") from None
    return lo, hi


def _cmd_maximize(args: argparse.Namespace) -> int:
    """Load the model and the reference, then one call: the library checks every option
    before it compiles, and its errors name the parameter, said here with its flag."""
    from ..errors import SymnnError
    from ..inputopt import activation_maximization

    out = _out_dir(args.out)
    network = _load_network(args.model, args.arch, args.image_shape, args.batch_axis)
    if args.objective is not None:
        return _cmd_visualize(args, network, out)
    for flag, value in (("--param", args.param), ("--crop", args.crop), ("--noise", args.noise)):
        if value:
            raise _UsageError(f"{flag} acts on the images of --objective; give --objective")
    penalties = InputPenalties(
        l2=args.l2, tv=args.tv, jitter=args.jitter, scale=args.scale, rotate=args.rotate,
        precondition=args.precondition, blur_every=args.blur_every,
    )  # fmt: skip
    reference = _reference(args.reference, network.n_in)
    _compile_note("the ascent step")
    try:
        report = activation_maximization(
            network, args.units, layer=args.layer, probability=args.probability,
            spatial=args.spatial, n_starts=args.starts,
            x0=None if args.x0 == "random" else args.x0, seed=args.seed,
            image_shape=_default_image_shape(args.image_shape, network), penalties=penalties,
            reference=reference and Reference(*reference, top_k=args.top_k),
            prior={"auto": "auto", "none": None}.get(args.prior, args.prior),
            prior_weight=args.prior_weight, steps=args.steps, method=args.method,
            learning_rate=args.lr, blas_threads=args.blas_threads,
        )  # fmt: skip
    except SymnnError as exc:
        raise _UsageError(usage_message(exc, FLAGS)) from None
    is_output = args.layer in (-1, len(getattr(network, "layers", [network])) - 1)
    names = getattr(network, "class_names", None) if is_output else None
    _report_am(report, out, names, f"units {args.units} of {_layer_title(network, args.layer)}")
    return 0


def _layer_title(network: Any, layer: int | str) -> str:
    """``layer 'conv0'`` by the layer's name when it has one, else by its position."""
    if isinstance(layer, str):
        return f"layer {layer!r}"
    layers = list(getattr(network, "layers", [network]))
    name = layers[layer].name if -len(layers) <= layer < len(layers) else None
    return f"layer {name!r}" if name else f"layer {layer}"


#: ``symnn maximize``'s flags that choose units for activation maximisation: an --objective
#: names its own units, so these are refused beside it (name: default); --jitter, --scale
#: and --rotate transform its images too
_UNIT_FLAGS = {"units": "0-9", "layer": -1, "probability": False, "spatial": None,
               "l2": 0.0, "tv": 0.0, "precondition": False, "blur_every": 0, "prior": "auto",
               "prior_weight": None, "x0": "random", "top_k": 5}  # fmt: skip


def _cmd_visualize(args: argparse.Namespace, network: Any, out: Path) -> int:
    """``--objective``: :func:`symnn.inputopt.visualize` of the objective, ``--starts``
    images under ``--param``; its figure and ``visualized.json``."""
    import json

    from .. import plot
    from ..errors import SymnnError
    from ..inputopt import visualize

    given = [f"--{k.replace('_', '-')}" for k, v in _UNIT_FLAGS.items() if getattr(args, k) != v]
    if given:
        raise _UsageError(f"{', '.join(given)} choose(s) units for activation maximisation and "
                          "have no effect with --objective, which names its own")  # fmt: skip
    reference = _reference(args.reference, network.n_in)
    shape = _default_image_shape(args.image_shape, network)
    if shape is None:
        raise _UsageError("--objective needs --image-shape (e.g. 28x28 or 3x32x32)")
    _compile_note("the visualisation step")
    try:
        vis = visualize(
            network, args.objective, image_shape=shape, n=args.starts,
            param=args.param or "fourier", reference=reference and reference[0],
            seed=args.seed, steps=args.steps, method=args.method,
            learning_rate=args.lr or 0.05, blas_threads=args.blas_threads,
            jitter=args.jitter, scale=args.scale, rotate=args.rotate, crop=args.crop,
            noise=args.noise or 0.0,
        )  # fmt: skip
    except SymnnError as exc:
        flags = {**FLAGS, "n": "--starts", "layer": "--objective's layer"}
        raise _UsageError(usage_message(exc, flags)) from None
    c, h, w = vis.image_shape
    images = vis.images.reshape(-1, c, h, w)
    images = images[:, 0] if c == 1 else images.transpose(0, 2, 3, 1)
    title = f"{vis.objective!r} ({vis.param})"
    plot.plot_image_grid(images, out / "visualized.png",
                         titles=[f"{v:.2f}" for v in vis.values], title=title)  # fmt: skip
    summary = {"objective": repr(vis.objective), "param": vis.param,
               "image_shape": list(vis.image_shape), "values": vis.values.tolist()}  # fmt: skip
    (out / "visualized.json").write_text(json.dumps(summary, indent=1))
    for i, v in enumerate(vis.values):
        print(f"image {i}: {v:.4f}")
    print(f"wrote {out / 'visualized.png'} and {out / 'visualized.json'}")
    return 0


def _reference(spec: str, n_in: int) -> tuple[Any, Any] | None:
    """``(X, labels)`` of ``--reference`` (``auto``: the data set whose input width is the
    model's: Fashion-MNIST when installed for 784, digits for 64), or None."""
    if spec == "auto":
        from ..datasets import fashion_mnist_available

        spec = {64: "digits", 784: "fashion-mnist" if fashion_mnist_available() else None}.get(n_in)
    if spec in (None, "none"):
        return None
    try:
        data = _load_data(spec, 0)
    except ValueError as exc:
        raise _UsageError(usage_message(exc, {"data": "--reference"}) or str(exc)) from None
    return data.X_train, data.y_train


def _default_image_shape(flag: str | None, network: Any) -> tuple[int, ...] | None:
    """``--image-shape``, else the image the network's first ``Reshape`` makes, else square
    inputs, else None (the library checks the shape against the network)."""
    shape = _shape(flag)
    first = network.layers[0] if hasattr(network, "layers") else None
    if shape is None and getattr(first, "shape", None) is not None and first.shape[0] == 1:
        shape = tuple(first.shape[1:])
    side = int(round(network.n_in**0.5))
    if shape is None and side * side == network.n_in:
        shape = (side, side)
    return shape


def _spatial(text: str) -> str | tuple[int, int]:
    """``--spatial``: ``mean``, ``center`` or ``Y,X``."""
    if text in ("mean", "center"):
        return text
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not mean, center or a position Y,X (e.g. 4,4)"
        ) from None
    return (y, x)


def _batch_axis(text: str) -> int | None:
    values = {"0": 0, "1": 1, "none": None}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(f"expected 0, 1 or none; got {text!r}")
    return values[text.lower()]


def add_batch_axis(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-axis", type=_batch_axis, default=0, metavar="{0,1,none}",
        help="the batch axis of an .onnx file's inputs: 1 for time-major sequences, none for a "
        "graph of one sample (symnn.io.from_onnx's batch_axis)",
    )  # fmt: skip


def _maximize_arguments(p: argparse.ArgumentParser) -> None:
    from ..inputopt.maximize import METHODS
    from ..layers.arch import ARCH_HELP

    p.add_argument(
        "model",
        help="a model file written by `symnn train` or symnn.save, an ONNX graph (.onnx), or "
        "PyTorch-layout weights (.safetensors, with --arch and --image-shape)",
    )
    p.add_argument("--arch", default=None, help="the network of a .safetensors file: " + ARCH_HELP)
    add_batch_axis(p)
    p.add_argument("--units", default="0-9", help="units, e.g. 0-9, 1,3,5 or all")
    p.add_argument(
        "--layer",
        type=_layer,
        default=-1,
        help="a layer's name, or its position in the network's layers (every layer counts, "
        "dropout and batch normalisation included; -1: the output layer)",
    )
    _objective_arguments(p)
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


def _objective_arguments(p: argparse.ArgumentParser) -> None:
    """``symnn maximize``'s options for what is maximised beyond a layer's units."""
    p.add_argument(
        "--spatial",
        type=_spatial,
        default=None,
        help="how a convolutional layer's channel becomes one value: mean (default), center, "
        "or a position Y,X",
    )
    p.add_argument(
        "--objective",
        default=None,
        help="feature visualisation of an objective instead of units: terms such as "
        "channel:LAYER:C, neuron:LAYER:C[:Y:X], class_logit:K, deepdream:LAYER, "
        "diversity:LAYER joined by + and -, each with an optional weight W*; e.g. "
        "'channel:conv0:3 - 0.5*diversity:conv0' (--starts images)",
    )
    p.add_argument(
        "--param",
        default=None,
        choices=["fourier", "maco", "pixel"],
        help="with --objective, the images' parametrisation: fourier (default; Lucid's 1/f "
        "spectrum), maco (phase only, magnitude from --reference) or pixel",
    )
    p.add_argument("--crop", type=_crop_sides, default=None, metavar="LO,HI",
                   help="--objective: random square crops of these sides (fractions), MaCo's")
    p.add_argument("--noise", type=_NONNEGATIVE, default=None,
                   help="--objective: noise of this spread added each step, MaCo's")


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
        "reference (auto: gmm when there is a reference)",
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
