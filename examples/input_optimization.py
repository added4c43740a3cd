"""Gradient ascent over the inputs of a trained network, kept inside the input box.

1. A 2-3-1 sigmoid network learns that only [0, 1] gives 1. Projected ascent from random
   starts in [0, 1]^2 converges to [0, 1]; an ascent with a clip inside the
   differentiated graph (or none) drifts out of the box, to points such as [-0.11, 1.997].
2. XOR: the inputs that maximise the network's "1" output are [0, 1] and [1, 0].
3. A two-hidden-layer sigmoid + softmax MLP trained with TNC (scipy's truncated Newton) on
   digits; its class inputs are maximised in one call.

    python examples/input_optimization.py
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from _data import parser

from symnn.datasets import load_digits, xor
from symnn.inputopt import (
    InputPenalties,
    activation_maximization,
    exhaustive_binary_maximum,
    maximize,
)
from symnn.layers import mlp
from symnn.train import ScipyTrainer, Trainer

PATTERNS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")


def toy(epochs: int = 1500, steps: int = 500, seed: int = 1):
    net = mlp([2, 3, 1], hidden="sigmoid", output="sigmoid", rng=seed)
    Trainer(net, loss="squared_error", optimizer="adam", learning_rate=0.1).fit(
        PATTERNS, np.array([0, 1, 0, 0], dtype="float32"), epochs=epochs, batch_size=4
    )
    x = pt.matrix("x", dtype="float32", shape=(None, 2))
    objective = net(x, deterministic=True)[:, 0]
    clipped = maximize(
        objective, x, n_starts=5, seed=0, steps=steps, learning_rate=0.05, method="adam"
    )
    free = maximize(
        objective, x, x0=np.full((1, 2), 0.5), bounds=(-1e3, 1e3), steps=steps, learning_rate=0.5
    )
    exact = exhaustive_binary_maximum(objective, x)
    print("2-3-1 toy: only [0, 1] -> 1")
    print(
        f"  projected ascent, 5 starts: {np.round(clipped.x, 4).tolist()}  "
        f"output {clipped.value.max():.4f}"
    )
    print(f"  unconstrained ascent:       {np.round(free.x, 3).tolist()}  (leaves [0, 1])")
    print(f"  exhaustive over {{0,1}}^2:   {exact.x.tolist()}  output {exact.value:.4f}")
    return {"clipped": clipped, "free": free, "exact": exact}


def xor_inputs(epochs: int = 400, steps: int = 300, seed: int = 0):
    X, y = xor()
    trainer = Trainer(mlp([2, 8, 2], hidden="tanh", rng=seed), optimizer="adam", learning_rate=0.05)
    trainer.fit(X, y, epochs=epochs, batch_size=4)
    x = pt.matrix("x", dtype="float32", shape=(None, 2))
    objective = trainer.network(x, deterministic=True)[:, 1]
    result = maximize(
        objective, x, n_starts=6, seed=seed, steps=steps, learning_rate=0.05, method="adam"
    )
    print(f"XOR: inputs maximising p(1): {sorted({tuple(r) for r in np.round(result.x, 2)})}")
    return result


def tnc_mlp(maxiter: int = 150, steps: int = 200, seed: int = 0):
    data = load_digits(dtype="float64")
    trainer = ScipyTrainer(
        mlp([64, 25, 25, 10], hidden="sigmoid", rng=seed, dtype="float64"), method="tnc", l2=1e-4
    )
    trainer.fit(data.X_train, data.y_train, maxiter=maxiter)
    accuracy = trainer.evaluate(data.X_test, data.y_test)["accuracy"]
    report = activation_maximization(
        trainer.network,
        range(10),
        steps=steps,
        image_shape=(8, 8),
        penalties=InputPenalties(l2=0.05),
    )
    predicted = trainer.predict(report.x)
    print(
        f"64-25-25-10 sigmoid + softmax trained with TNC: test accuracy {accuracy:.3f}; "
        f"maximised class inputs are classified as {predicted.tolist()}"
    )
    return {"accuracy": accuracy, "report": report, "predicted": predicted}


def main(budget: float = 1.0):
    scale = max(budget, 0.01)
    return {
        "toy": toy(epochs=int(1500 * scale) or 1, steps=int(500 * scale) or 1),
        "xor": xor_inputs(epochs=int(400 * scale) or 1, steps=int(300 * scale) or 1),
        "tnc": tnc_mlp(maxiter=int(150 * scale) or 1, steps=int(200 * scale) or 1),
    }


if __name__ == "__main__":
    ap = parser(__doc__, data=False)
    ap.epilog = "Data: the toy patterns and XOR (built in), scikit-learn's digits."
    ap.add_argument("--budget", type=float, default=1.0, help="fraction of the epochs and steps")
    main(budget=ap.parse_args().budget)
