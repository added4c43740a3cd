"""Which data an example uses: MNIST from a path the user gives, else Fashion-MNIST when
Debian's package is installed, else scikit-learn's digits (always there, offline)."""

from __future__ import annotations

import os

from symnn import datasets


def image_data(mnist_path: str | None = None, *, prefer: str = "fashion-mnist", **options):
    if mnist_path:
        return datasets.load_mnist(mnist_path, **options)
    if prefer == "fashion-mnist" and os.path.isdir(datasets.FASHION_MNIST_PATH):
        return datasets.load_fashion_mnist(**options)
    options.pop("validation_split", None)
    return datasets.load_digits(**options)


def subset(data, n_train: int | None, n_test: int | None = None):
    """The first ``n_train`` training and ``n_test`` test examples (None: all)."""
    from dataclasses import replace

    return replace(
        data,
        X_train=data.X_train[:n_train],
        y_train=data.y_train[:n_train],
        X_test=data.X_test[:n_test],
        y_test=data.y_test[:n_test],
        X_valid=None if data.X_valid is None else data.X_valid[:n_test],
        y_valid=None if data.y_valid is None else data.y_valid[:n_test],
    )
