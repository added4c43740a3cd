"""The ``symnn`` command line: the only part of symnn that prints.

Commands: ``train``, ``maximize``, ``compare``, ``demo``, ``info``. Bad arguments give a
one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


class _UsageError(Exception):
    """A bad argument found after parsing (reported in one line, exit code 2)."""


# -- helpers -------------------------------------------------------------------------------
def _load_data(spec: str, seed: int, dtype: str = "float32"):
    from . import datasets

    if spec == "digits":
        return datasets.load_digits(seed=seed, dtype=dtype)
    if spec == "iris":
        return datasets.load_iris(seed=seed, dtype=dtype)
    if spec == "moons":
        from sklearn.model_selection import train_test_split

        X, y = datasets.make_moons(1000, noise=0.2, seed=seed, dtype=dtype)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        return datasets.Dataset("moons", Xtr, ytr, Xte, yte, classes=["0", "1"])
    if spec == "fashion-mnist":
        return datasets.load_fashion_mnist(dtype=dtype)
    if spec.startswith("mnist:"):
        return datasets.load_mnist(spec.split(":", 1)[1], dtype=dtype)
    raise _UsageError(
        f"--data {spec!r} is not known; expected digits, iris, moons, fashion-mnist or mnist:PATH"
    )


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _UsageError(
            f"{name} {text!r} must be comma-separated integers, e.g. 64,100,10"
        ) from None
    if not values:
        raise _UsageError(f"{name} is empty")
    return values


def _number(kind: type, low: float, *, low_ok: bool = True, high: float | None = None):
    """An argparse type: a ``kind`` number >= ``low`` (> with ``low_ok=False``), < ``high``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        ok = value is not None and (value >= low if low_ok else value > low)
        if ok and high is not None:
            ok = value < high
        if not ok:
            what = "an integer" if kind is int else "a number"
            bound = f"{'>=' if low_ok else '>'} {low:g}" + (f" and < {high:g}" if high else "")
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what} {bound}")
        return value

    return parse


_POSITIVE_INT = _number(int, 1)
_COUNT = _number(int, 0)
_POSITIVE = _number(float, 0, low_ok=False)
_NONNEGATIVE = _number(float, 0)
_FRACTION = _number(float, 0, high=1)


def _layer(text: str) -> int | str:
    """``--layer``: a position (an integer) or a layer's name."""
    try:
        return int(text)
    except ValueError:
        return text


def _out_dir(text: str) -> Path:
    """The output folder, created now: a bad one is reported before anything is compiled."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {text!r} is a file; expected a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out {text!r} cannot be created: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise _UsageError(f"--out {text!r} is not writable")
    return out


def _shape(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise _UsageError(f"--image-shape {text!r} must look like 28x28") from None


def _print_epoch(write, logs: dict[str, float], header: list[bool]) -> None:
    keys = [
        k for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds") if k in logs
    ]
    if not header[0]:
        write("  ".join(f"{k:>12}" for k in keys))
        header[0] = True
    cells = [f"{int(logs[k]):>12d}" if k == "epoch" else f"{logs[k]:>12.4f}" for k in keys]
    write("  ".join(cells))


def _epoch_printer(progress: bool):
    from .train import LambdaCallback

    header = [False]
    if progress:
        from tqdm.auto import tqdm

        write = tqdm.write
    else:
        write = print
    return LambdaCallback(on_epoch_end=lambda t, e, logs: _print_epoch(write, logs, header))


def _compile_note(what: str, cold: str = "5-10 s") -> None:
    from .backend.parallel import compile_jobs

    print(
        f"compiling {what} (with an empty compile cache: C code, {cold} on 2 cores, "
        f"{compile_jobs()} compilers at once here; cached for later runs)...",
        flush=True,
    )


def _modules() -> int:
    """How many C modules this process has compiled so far (see :func:`_new_modules`)."""
    from .backend.parallel import modules_compiled

    return modules_compiled()


def _new_modules(modules_before: int) -> str:
    """``38 new C modules`` or ``C code cached``: what compiling just cost."""
    n = _modules() - modules_before
    return f"{n} new C module{'s' if n != 1 else ''}" if n else "C code cached"


def _compiled(t0: float, modules_before: int) -> str:
    return f"compiled in {time.perf_counter() - t0:.1f} s ({_new_modules(modules_before)})"


# -- commands ------------------------------------------------------------------------------
def _cmd_info(args: argparse.Namespace) -> int:
    from .backend import info

    if args.model is not None:  # a model's layers instead of the machine
        network = _load_network(args.model, args.arch, args.image_shape)
        print(f"{args.model}: {network.n_in} inputs")
        print(network.summary() if hasattr(network, "summary") else repr(network))
        return 0
    for key, value in info().items():
        if isinstance(value, dict):  # the backends: one line each
            for name, state in value.items():
                print(f"{key + ' ' + name:>16}: {state}")
            continue
        text = str(value)
        if len(text) > 120:  # the BLAS flags rename ~70 symbols: show the start
            text = f"{text[:100]} ... ({len(text)} characters; `--full` shows all)"
            text = str(value) if args.full else text
        print(f"{key:>16}: {text}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from . import io, plot
    from .train import EarlyStopping, Trainer

    out = _out_dir(args.out)
    data = _load_data(args.data, args.seed)
    if args.validation_split and round(len(data.X_train) * args.validation_split) < 1:
        raise _UsageError(f"--validation-split {args.validation_split} holds out no sample")
    net, sizes = _train_network(args, data)
    if data.classes is not None and len(data.classes) == data.n_classes:
        net.class_names = data.classes  # saved with the model: figures name the classes
    trainer = Trainer(
        net,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        l2=args.l2,
        seed=args.seed,
        blas_threads=args.blas_threads,
    )
    print(
        f"data: {data!r}\nnetwork: {sizes} {args.activation} + softmax, optimizer "
        f"{args.optimizer} (lr {args.lr})"
    )
    _compile_note("the training step")
    t0, before = time.perf_counter(), _modules()
    trainer.compile()
    print(_compiled(t0, before))
    progress = sys.stderr.isatty() and not args.no_progress
    callbacks = [_epoch_printer(progress)]
    if args.patience:
        callbacks.append(EarlyStopping(patience=args.patience))
    t0 = time.perf_counter()
    history = trainer.fit(
        data.X_train,
        data.y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        callbacks=callbacks,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    test = trainer.evaluate(data.X_test, data.y_test)
    print(f"stopped: {history.stop_reason} after {seconds:.1f} s ({trainer.n_updates} updates)")
    print(f"test accuracy: {test['accuracy']:.4f}  test loss: {test['loss']:.4f}")
    model = io.save(trainer, out / "model.npz")
    (out / "history.json").write_text(json.dumps(history.as_dict(), indent=2))
    plot.plot_history(history, out / "curves.png", title=f"{data.name}: {sizes}")
    first = net.params[0].get_value()
    if data.image_shape is not None and len(data.image_shape) == 2 and first.ndim == 2:
        plot.plot_weights(first, data.image_shape, out / "weights.png")
    print(f"wrote {model}, {out / 'history.json'}, {out / 'curves.png'}")
    return 0


def _report_am(report, out: Path, classes: list[str] | None, title: str) -> None:
    from . import plot

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
    from . import io
    from .layers import Layer, from_arch

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
    from .inputopt import activation_maximization
    from .inputopt.activation import layer_width, parse_units

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
        from .datasets import fashion_mnist_available

        spec = {64: "digits", 784: "fashion-mnist" if fashion_mnist_available() else None}.get(n_in)
    if spec in (None, "none"):
        if args.prior in ("gaussian", "gmm") or args.x0 != "random":
            what = f"--prior {args.prior}" if args.prior != "auto" else f"--x0 {args.x0}"
            raise _UsageError(f"{what} needs --reference (a data set of the model's inputs)")
        if args.prior_weight is not None:
            raise _UsageError("--prior-weight has no effect without a reference and a prior")
        return None, None
    data = _load_data(spec, 0)
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


def _cmd_compare(args: argparse.Namespace) -> int:
    from . import plot
    from .compare import compare_optimizers

    out = _out_dir(args.out)
    data = _load_data(args.data, args.seed)
    print(
        f"data: {data!r}; network {data.n_features}-{args.hidden}-{data.n_classes} sigmoid, "
        f"{args.updates} updates of {args.batch_size}"
    )
    _compile_note("one training step per method")
    results = compare_optimizers(
        data,
        hidden=_int_list(str(args.hidden), "--hidden"),
        n_updates=args.updates,
        batch_size=args.batch_size,
        full_cost=args.full_cost,
        seed=args.seed,
    )
    print(f"{'method':>14}  {'seconds':>8}  {'compile s':>9}  {'accuracy':>8}  {'loss':>8}")
    for r in results:
        print(
            f"{r['method']:>14}  {r['seconds']:>8.3f}  {r['compile_seconds']:>9.1f}  "
            f"{r['accuracy']:>8.4f}  {r['loss']:>8.4f}"
        )
    (out / "comparison.json").write_text(json.dumps(results, indent=2))
    plot.plot_comparison(results, out / "comparison.png", title=f"optimisers on {data.name}")
    print(f"wrote {out / 'comparison.png'} and {out / 'comparison.json'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import io, plot
    from .backend import blas_status
    from .datasets import load_digits

    t_start = time.perf_counter()
    out = _out_dir(args.out)
    status = blas_status()
    print(
        f"symnn demo: backend {status.backend}"
        + (" (C with scipy's OpenBLAS)" if status.backend == "C" else f" ({status.reason})")
    )
    data = load_digits(seed=args.seed)
    print(f"data: {data!r}")
    trainer, history = _demo_train(args, data)
    report, plain = _demo_maximize(args, trainer, data)
    _report_am(report, out, data.classes, "digits: inputs that maximise each class logit")
    _plot_comparison(report, plain, data, out / "compared.png")
    io.save(trainer, out / "model.npz")
    plot.plot_history(history, out / "curves.png", title="digits 64-100-10")
    plot.plot_weights(trainer.network.params[0].get_value(), (8, 8), out / "weights.png")
    print(f"wrote {out / 'model.npz'}, {out / 'curves.png'}, {out / 'weights.png'}")
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return 0


def _demo_train(args: argparse.Namespace, data):
    """The demo's 64-100-10 network, trained and tested, with what it says on the way."""
    from .layers import mlp
    from .train import Trainer

    trainer = Trainer(mlp([64, 100, 10], hidden="relu", rng=args.seed), seed=args.seed)
    _compile_note("the training step, evaluation and prediction", "about 5 s")
    t0, before = time.perf_counter(), _modules()
    trainer.compile()
    print(_compiled(t0, before))
    progress = sys.stderr.isatty() and not args.no_progress
    t0 = time.perf_counter()
    history = trainer.fit(
        data.X_train,
        data.y_train,
        epochs=args.epochs,
        batch_size=32,
        validation_data=(data.X_test, data.y_test),
        callbacks=[_epoch_printer(progress)] if args.verbose else [],
        progress=progress,
    )
    train_s = time.perf_counter() - t0
    test = trainer.evaluate(data.X_test, data.y_test)
    print(
        f"trained 64-100-10 relu on digits: {len(history)} epochs, {trainer.n_updates} updates "
        f"in {train_s:.2f} s"
    )
    print(f"test accuracy: {test['accuracy']:.4f}")
    return trainer, history


def _demo_maximize(args: argparse.Namespace, trainer, data):
    """The ten class units maximised in one compiled call, under a Gaussian prior fitted to
    the training images (its weight chosen per unit), from their class means."""
    from .inputopt import activation_maximization

    _compile_note("the activation-maximisation step", "about 7 s")
    t0, before = time.perf_counter(), _modules()
    report = activation_maximization(
        trainer.network,
        range(10),
        steps=args.steps,
        learning_rate=0.05,
        image_shape=(8, 8),
        reference=(data.X_train, data.y_train),  # a Gaussian prior fitted to them, by default
        x0="class-mean",
    )
    print(
        f"maximised all ten class units in one compiled call: {report.result.n_steps} steps "
        f"in {report.result.seconds:.3f} s ({time.perf_counter() - t0:.1f} s with compiling: "
        f"{_new_modules(before)})"
    )
    print(f"predicted classes of the maximised inputs: {trainer.predict(report.x).tolist()}")
    # plain activation maximisation (random starts, no prior) through the same compiled step
    plain = activation_maximization(
        trainer.network, range(10), steps=args.steps, learning_rate=0.05, image_shape=(8, 8),
        reference=(data.X_train, data.y_train), prior_weight=0.0,
    )  # fmt: skip
    return report, plain


def _plot_comparison(report, plain, data, path: Path) -> None:
    """Per class: plain activation maximisation, with the prior, and the top real inputs."""
    from . import plot

    rows = [("plain", plain.images()), ("with prior", report.images())]
    for k in range(3):
        picks = [r.top_examples[k] for r in report.rows]
        rows.append((f"real #{k + 1}", data.X_train[picks].reshape(-1, 8, 8)))
    plot.plot_image_rows(rows, path, titles=[str(c) for c in data.classes])
    print(f"wrote {path} (plain, with the prior, the top real inputs)")
    print(f"plain activation maximisation, for comparison:\n{plain.to_table()}")


# -- parser ---------------------------------------------------------------------------------
def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or a positive integer")
    return value


def _blas_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--blas-threads",
        type=_threads,
        default="auto",
        help="BLAS threads: 'auto' (chosen by timing, default) or a number, for runs that are "
        "bit-identical from one run to the next",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symnn", description="Neural networks as symbolic PyTensor graphs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )

    p = command("info", "print backend, BLAS library, float type, compile dir, versions")
    p.add_argument("--full", action="store_true", help="print long values (BLAS flags) whole")
    p.add_argument("model", nargs="?", default=None, help="a model file: print its layers")
    p.add_argument("--arch", default=None, help="the network of a .safetensors file")
    p.add_argument("--image-shape", default=None, help="its input image, e.g. 28x28")
    p.set_defaults(func=_cmd_info)
    _train_arguments(command("train", "train an MLP and write the model, history and plots"))
    _maximize_arguments(command("maximize", "activation maximisation on a saved model"))
    _compare_arguments(
        command("compare", "compare GD, momentum, RMSprop, Adam, CG and L-BFGS-B (time, accuracy)")
    )
    _demo_arguments(command("demo", "train on digits, maximise the ten class units, write figures"))
    return parser


def _train_network(args: argparse.Namespace, data: Any) -> tuple[Any, Any]:
    """The network ``--layers`` (a perceptron) or ``--arch`` (any, e.g. convolutional)
    describes, checked against the data; and its description for the messages."""
    from .errors import SymnnValueError
    from .layers import from_arch, mlp

    if args.arch is not None:
        if args.layers is not None or args.dropout:
            flag = "--layers" if args.layers is not None else "--dropout"
            raise _UsageError(f"{flag} has no effect with --arch (write drop0.5 in --arch)")
        if data.image_shape is None:
            raise _UsageError(f"--arch needs image data; {data.name} has no image shape")
        try:
            net = from_arch(args.arch, data.image_shape, activation=args.activation, rng=args.seed)
        except SymnnValueError as exc:
            raise _UsageError(f"--arch {args.arch}: {exc}") from None
        if net.n_out != data.n_classes:
            raise _UsageError(f"--arch ends with {net.n_out} units; {data.name} has "
                              f"{data.n_classes} classes")  # fmt: skip
        return net, args.arch
    layers = args.layers or f"{data.n_features},100,{data.n_classes}"
    sizes = _int_list(layers, "--layers")
    if len(sizes) < 2 or sizes[0] != data.n_features or sizes[-1] != data.n_classes:
        raise _UsageError(
            f"--layers {layers} does not fit {data.name}: it has "
            f"{data.n_features} features and {data.n_classes} classes "
            f"(e.g. --layers {data.n_features},100,{data.n_classes})"
        )
    return mlp(sizes, hidden=args.activation, rng=args.seed, dropout=args.dropout), sizes


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from .layers.arch import ARCH_HELP
    from .train.trainer import DEFAULTS
    from .updates import RULES

    p.add_argument(
        "--data", default="digits", help="digits, iris, moons, fashion-mnist or mnist:PATH"
    )
    p.add_argument(
        "--layers",
        default=None,
        help="layer sizes, e.g. 784,100,10 (default: FEATURES,100,CLASSES)",
    )
    p.add_argument(
        "--arch",
        default=None,
        help="instead of --layers, e.g. conv32x5,pool2,conv32x5,pool2,256,10: " + ARCH_HELP,
    )
    p.add_argument("--activation", default="relu", help="hidden activation")
    p.add_argument(
        "--optimizer",
        default=DEFAULTS["optimizer"],
        choices=list(RULES),
        metavar="NAME",
        help=f"update rule: {', '.join(RULES)}",
    )
    p.add_argument("--lr", type=_POSITIVE, default=DEFAULTS["learning_rate"], help="learning rate")
    p.add_argument("--epochs", type=_POSITIVE_INT, default=20, help="passes over the data")
    p.add_argument(
        "--batch-size", type=_POSITIVE_INT, default=DEFAULTS["batch_size"], help="minibatch size"
    )
    p.add_argument("--l2", type=_NONNEGATIVE, default=0.0, help="L2 penalty on the weights")
    p.add_argument("--dropout", type=_FRACTION, default=0.0, help="dropout after hidden layers")
    p.add_argument(
        "--validation-split",
        type=_FRACTION,
        default=0.1,
        help="fraction of the training data held out",
    )
    p.add_argument("--patience", type=_COUNT, default=0, help="early-stopping patience (0: off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the shuffling")
    _blas_threads_option(p)
    p.add_argument("--out", default="symnn-train", help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _maximize_arguments(p: argparse.ArgumentParser) -> None:
    from .inputopt.maximize import METHODS
    from .layers.arch import ARCH_HELP

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


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="fashion-mnist-or-digits",
        help="fashion-mnist (when installed, else digits), digits, iris or mnist:PATH",
    )
    p.add_argument("--hidden", type=_POSITIVE_INT, default=25, help="hidden units")
    p.add_argument("--updates", type=_POSITIVE_INT, default=100, help="updates per method")
    p.add_argument("--batch-size", type=_POSITIVE_INT, default=100, help="minibatch size")
    p.add_argument(
        "--full-cost",
        action="store_true",
        help="evaluate the full training cost after every update",
    )
    p.add_argument("--seed", type=int, default=1234, help="seed of the weights and minibatches")
    p.add_argument("--out", default="symnn-compare", help="output folder")
    p.set_defaults(func=_cmd_compare)


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_POSITIVE_INT, default=30, help="training epochs")
    p.add_argument("--steps", type=_POSITIVE_INT, default=300, help="ascent steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and shuffling")
    p.add_argument("--out", default="symnn-demo", help="output folder")
    p.add_argument("--verbose", action="store_true", help="print a row per epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2, already reported)
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "data", None) == "fashion-mnist-or-digits":
        from .datasets import fashion_mnist_available

        args.data = "fashion-mnist" if fashion_mnist_available() else "digits"
    try:
        return int(args.func(args) or 0)
    except _UsageError as exc:
        sys.stderr.write(f"symnn {args.command}: error: {exc}\n")
        return 2
    except (ValueError, TypeError) as exc:
        from .errors import SymnnError

        if isinstance(exc, SymnnError):
            sys.stderr.write(f"symnn {args.command}: error: {exc}\n")
            return 2
        raise
