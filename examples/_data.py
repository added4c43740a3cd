"""Which data an example uses: MNIST from a path the user gives, else Fashion-MNIST when
it is installed (``$SYMNN_FASHION_MNIST`` or Debian's package), else scikit-learn's digits
(always there, offline). See :func:`symnn.datasets.load_image_data`."""

from __future__ import annotations

from symnn import datasets

DATA_HELP = (
    "MNIST from --mnist PATH (mnist.pkl.gz or IDX files); else Fashion-MNIST when installed "
    f"(${datasets.FASHION_MNIST_ENV} or {datasets.FASHION_MNIST_PATH}); else scikit-learn's digits"
)


def image_data(mnist_path: str | None = None, **options):
    return datasets.load_image_data(mnist_path, **options)


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


def parser(doc: str, *, data: bool = True):
    """An argument parser that shows every default in ``--help`` and says which data the
    example uses."""
    import argparse

    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=f"Data: {DATA_HELP}." if data else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def wrote(*paths) -> None:
    """Tell the user where the example wrote its files."""
    for path in paths:
        print(f"wrote {path}")
