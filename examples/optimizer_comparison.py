"""GD, GD with momentum, RMSprop, Adam, CG and L-BFGS-B compared.

A 784-25-10 sigmoid network, 100 updates on minibatches of 100 examples, the same initial
weights for every method; CG and L-BFGS-B take 10 scipy iterations per minibatch. RMSprop
has a learning rate (without one it cannot be tuned). Uses Fashion-MNIST
when installed, digits otherwise, MNIST when you pass a path.

    python examples/optimizer_comparison.py [--mnist mnist.pkl.gz] [--full-cost]
"""

from __future__ import annotations

import json
from pathlib import Path

from _data import image_data, parser, wrote

from symnn import plot
from symnn.train.compare import compare_optimizers


def main(
    n_updates: int = 100,
    batch_size: int = 100,
    mnist_path: str | None = None,
    full_cost: bool = False,
    out: str = "out/optimizer_comparison",
    seed: int = 1234,
):
    data = image_data(mnist_path)
    results = compare_optimizers(
        data, n_updates=n_updates, batch_size=batch_size, full_cost=full_cost, seed=seed
    )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{data!r}: {data.n_features}-25-{data.n_classes} sigmoid, {n_updates} updates of "
        f"{batch_size}"
    )
    print(f"{'method':>14}  {'seconds':>8}  {'accuracy':>8}  {'train loss':>10}")
    for r in results:
        print(f"{r['method']:>14}  {r['seconds']:>8.3f}  {r['accuracy']:>8.4f}  {r['loss']:>10.4f}")
    plot.plot_comparison(results, out_dir / "comparison.png", title=f"optimisers on {data.name}")
    (out_dir / "comparison.json").write_text(json.dumps(results, indent=2))
    wrote(out_dir / "comparison.png", out_dir / "comparison.json")
    return results


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--mnist", default=None, help="path to mnist.pkl.gz or a folder of IDX files")
    ap.add_argument("--full-cost", action="store_true", help="full training cost every update")
    ap.add_argument("--updates", type=int, default=100, help="updates per method")
    ap.add_argument("--batch-size", type=int, default=100, help="minibatch size")
    ap.add_argument("--out", default="out/optimizer_comparison", help="output folder")
    args = ap.parse_args()
    main(
        n_updates=args.updates,
        batch_size=args.batch_size,
        mnist_path=args.mnist,
        full_cost=args.full_cost,
        out=args.out,
    )
