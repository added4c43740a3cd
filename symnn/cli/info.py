"""``symnn info``: the machine (backend, BLAS, compile directory, versions) or a model's layers."""

from __future__ import annotations

import argparse

from .maximize import _load_network


def _cmd_info(args: argparse.Namespace) -> int:
    from ..backend import info

    if args.model is not None:  # a model's layers instead of the machine
        network = _load_network(args.model, args.arch, args.image_shape, args.batch_axis)
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
