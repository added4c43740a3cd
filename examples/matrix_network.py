"""A [784, 100, 10] network trained on minibatches of 100, with the cross-entropy
and the quadratic cost, L2 regularisation, and per-epoch training, validation and test
accuracy.

    python examples/matrix_network.py [--mnist mnist.pkl.gz] [--epochs 10]
"""

from __future__ import annotations

from _data import image_data, parser, subset

from symnn.layers import mlp
from symnn.train import Callback, Trainer


class TestAccuracy(Callback):
    """Add the test accuracy to each epoch's record (training, validation and test side by side)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def on_epoch_end(self, trainer, epoch, logs):
        logs["test_accuracy"] = trainer.evaluate(self.X, self.y)["accuracy"]


def main(
    epochs: int = 10, n_train: int | None = None, mnist_path: str | None = None, seed: int = 0
):
    data = subset(image_data(mnist_path, validation_split=0.1, seed=seed), n_train)
    sizes = [data.n_features, 100, data.n_classes]
    results = {}
    for cost, output, lr in (
        ("categorical_crossentropy", "softmax", 0.5),
        ("squared_error", "sigmoid", 3.0),
    ):
        trainer = Trainer(
            mlp(sizes, hidden="sigmoid", output=output, rng=seed),
            loss=cost,
            optimizer="sgd",
            learning_rate=lr,
            l2=5e-5,
            seed=seed,
        )
        history = trainer.fit(
            data.X_train,
            data.y_train,
            epochs=epochs,
            batch_size=100,
            validation_data=(data.X_valid, data.y_valid),
            callbacks=[TestAccuracy(data.X_test, data.y_test)],
        )
        print(f"\n{data!r}, {sizes} sigmoid, {cost} (+ L2), minibatch 100")
        print(f"{'epoch':>5}  {'train acc':>9}  {'valid acc':>9}  {'test acc':>9}")
        for e in history.epochs:
            print(
                f"{e['epoch']:>5}  {e['accuracy']:>9.4f}  {e['val_accuracy']:>9.4f}  "
                f"{e['test_accuracy']:>9.4f}"
            )
        results[cost] = history
    return results


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--mnist", default=None, help="path to mnist.pkl.gz or a folder of IDX files")
    ap.add_argument("--epochs", type=int, default=10, help="passes over the training data")
    args = ap.parse_args()
    main(epochs=args.epochs, mnist_path=args.mnist)
