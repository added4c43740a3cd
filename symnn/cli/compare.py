"""``symnn compare``: the optimisers of the seeds compared on one network."""

from __future__ import annotations

import argparse
import json

from ._common import _POSITIVE_INT, _compile_note, _int_list, _load_data, _out_dir


def _cmd_compare(args: argparse.Namespace) -> int:
    from .. import plot
    from ..train.compare import compare_optimizers

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
