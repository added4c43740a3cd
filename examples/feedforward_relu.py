"""A [784, 32, 10] relu network with a softmax output, Xavier initialisation and
binarised inputs, trained with minibatch SGD.

    python examples/feedforward_relu.py [--mnist PATH] [--epochs 10]
"""

from __future__ import annotations

from _data import image_data, parser, subset

from symnn import init
from symnn.layers import Dense, Sequential
from symnn.train import Trainer


def main(
    epochs: int = 10, n_train: int | None = None, mnist_path: str | None = None, seed: int = 0
):
    data = subset(image_data(mnist_path, binarize=True, validation_split=0.15, seed=seed), n_train)
    n_in, n_out = data.n_features, data.n_classes
    net = Sequential(
        [
            Dense(n_in, 32, "relu", W=init.GlorotNormal(), rng=seed, name="hidden"),
            Dense(32, n_out, "softmax", W=init.GlorotNormal(), rng=seed + 1, name="output"),
        ]
    )
    trainer = Trainer(net, optimizer="sgd", learning_rate=0.05, seed=seed)
    history = trainer.fit(
        data.X_train,
        data.y_train,
        epochs=epochs,
        batch_size=32,
        validation_data=(data.X_valid, data.y_valid),
    )
    test = trainer.evaluate(data.X_test, data.y_test)
    print(f"{data!r}, binarised; [{n_in}, 32, {n_out}] relu + softmax")
    for e in history.epochs:
        print(
            f"epoch {e['epoch']:>3}: loss {e['loss']:.4f}  validation accuracy "
            f"{e['val_accuracy']:.4f}"
        )
    print(f"test accuracy: {test['accuracy']:.4f}")
    return {"history": history, "test": test}


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--mnist", default=None, help="path to mnist.pkl.gz or a folder of IDX files")
    ap.add_argument("--epochs", type=int, default=10, help="passes over the training data")
    args = ap.parse_args()
    main(epochs=args.epochs, mnist_path=args.mnist)
