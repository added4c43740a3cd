"""``symnn train``: a network trained on a named data set, its history, curves and weights."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ._common import (
    _COUNT,
    _FRACTION,
    _NONNEGATIVE,
    _POSITIVE,
    _POSITIVE_INT,
    _blas_threads_option,
    _compile_note,
    _compiled,
    _epoch_printer,
    _int_list,
    _load_data,
    _modules,
    _out_dir,
    _UsageError,
)


def _cmd_train(args: argparse.Namespace) -> int:
    from .. import io, plot
    from ..train import EarlyStopping, Trainer

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


def _train_network(args: argparse.Namespace, data: Any) -> tuple[Any, Any]:
    """The network ``--layers`` (a perceptron) or ``--arch`` (any, e.g. convolutional)
    describes, checked against the data; and its description for the messages."""
    from ..errors import SymnnValueError
    from ..layers import from_arch, mlp

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
    from ..layers.arch import ARCH_HELP
    from ..train.trainer import DEFAULTS
    from ..updates import RULES

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
