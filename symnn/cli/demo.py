"""``symnn demo``: the Quick-start job (train on digits, maximise the ten classes, figures)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..inputopt import Reference
from ._common import (
    _POSITIVE_INT,
    _compile_note,
    _compiled,
    _epoch_printer,
    _modules,
    _new_modules,
    _out_dir,
)
from .maximize import _report_am


def _cmd_demo(args: argparse.Namespace) -> int:
    from .. import io, plot
    from ..backend import blas_status
    from ..datasets import load_digits

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
    from ..layers import mlp
    from ..train import Trainer

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
    """The ten class units maximised in one compiled call, under the default density prior (a
    Gaussian mixture fitted to the training images, its weight chosen per unit), from their
    class means."""
    from ..inputopt import activation_maximization

    _compile_note("the activation-maximisation step", "about 7 s")
    t0, before = time.perf_counter(), _modules()
    report = activation_maximization(
        trainer.network,
        range(10),
        steps=args.steps,
        learning_rate=0.05,
        image_shape=(8, 8),
        reference=Reference(data.X_train, labels=data.y_train),
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
        reference=Reference(data.X_train, labels=data.y_train), prior_weight=0.0,
    )  # fmt: skip
    return report, plain


def _plot_comparison(report, plain, data, path: Path) -> None:
    """Per class: plain activation maximisation, with the prior, and the top real inputs."""
    from .. import plot

    rows = [("plain", plain.images()), ("with prior", report.images())]
    for k in range(3):
        picks = [r.top_examples[k] for r in report.rows]
        rows.append((f"real #{k + 1}", data.X_train[picks].reshape(-1, 8, 8)))
    plot.plot_image_rows(rows, path, titles=[str(c) for c in data.classes])
    print(f"wrote {path} (plain, with the prior, the top real inputs)")
    print(f"plain activation maximisation, for comparison:\n{plain.to_table()}")


# -- parser ---------------------------------------------------------------------------------


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_POSITIVE_INT, default=30, help="training epochs")
    p.add_argument("--steps", type=_POSITIVE_INT, default=300, help="ascent steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and shuffling")
    p.add_argument("--out", default="symnn-demo", help="output folder")
    p.add_argument("--verbose", action="store_true", help="print a row per epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
