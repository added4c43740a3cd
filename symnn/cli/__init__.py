"""The ``symnn`` command line: the only part of symnn that prints.

Commands, one module each: ``train``, ``maximize``, ``compare``, ``demo``, ``info``. Bad
arguments give a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._common import _Parser, _UsageError, usage_message
from .compare import _compare_arguments
from .demo import _demo_arguments
from .info import _cmd_info
from .maximize import _maximize_arguments, add_batch_axis
from .train import _train_arguments

__all__ = ["main", "build_parser"]


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
    add_batch_axis(p)
    p.set_defaults(func=_cmd_info)
    _train_arguments(command("train", "train an MLP and write the model, history and plots"))
    _maximize_arguments(command("maximize", "activation maximisation on a saved model"))
    _compare_arguments(
        command("compare", "compare GD, momentum, RMSprop, Adam, CG and L-BFGS-B (time, accuracy)")
    )
    _demo_arguments(command("demo", "train on digits, maximise the ten class units, write figures"))
    return parser


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
        from ..datasets import fashion_mnist_available

        args.data = "fashion-mnist" if fashion_mnist_available() else "digits"
    try:
        return int(args.func(args) or 0)
    except _UsageError as exc:
        sys.stderr.write(f"symnn {args.command}: error: {exc}\n")
        return 2
    except (ValueError, TypeError) as exc:
        message = usage_message(exc)
        if message is None:
            raise
        sys.stderr.write(f"symnn {args.command}: error: {message}\n")
        return 2
