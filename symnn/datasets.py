"""Offline datasets: scikit-learn's digits and iris, toy sets, MNIST and Fashion-MNIST files.

Nothing is downloaded. Fashion-MNIST is read from where Debian's ``dataset-fashion-mnist``
package installs it, or from the folder named by the environment variable
``SYMNN_FASHION_MNIST``; MNIST from the user's own ``mnist.pkl.gz`` or IDX files.

>>> data = load_digits()
>>> data.X_train.shape, data.X_test.shape, data.X_train.dtype, float(data.X_train.max())
((1347, 64), (450, 64), dtype('float32'), 1.0)
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SymnnValueError
from .utils import as_float_dtype, as_rng, split_validation

__all__ = [
    "Dataset",
    "load_digits",
    "load_iris",
    "make_moons",
    "xor",
    "load_mnist",
    "load_fashion_mnist",
    "read_idx",
    "FASHION_MNIST_PATH",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ENV",
    "fashion_mnist_path",
    "fashion_mnist_available",
    "load_image_data",
    "load_dataset",
    "DATASET_NAMES",
]

#: The names :func:`load_dataset` knows (the command line's ``--data``, the examples'
#: and the benchmarks' data sets); ``mnist:PATH`` reads MNIST from PATH.
DATASET_NAMES = ("digits", "iris", "moons", "fashion-mnist", "mnist:PATH")

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_PATH = "/usr/share/datasets/fashion-mnist"
#: The environment variable that overrides :data:`FASHION_MNIST_PATH` (a folder of IDX files).
FASHION_MNIST_ENV = "SYMNN_FASHION_MNIST"
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass
class Dataset:
    """Train/test (and optional validation) arrays with a little metadata.

    ``X`` arrays are float (float32 by default) scaled to [0, 1], flattened unless
    ``flatten=False``; ``y`` arrays are int32 labels, or one-hot floats with ``one_hot=True``.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None
    classes: list[str] | None = None
    image_shape: tuple[int, ...] | None = None

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X_train.shape[1:]))

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.y_train.max()) + 1

    def __repr__(self) -> str:
        valid = f", valid={len(self.X_valid)}" if self.X_valid is not None else ""
        return (
            f"Dataset({self.name!r}, train={len(self.X_train)}, test={len(self.X_test)}"
            f"{valid}, features={self.n_features}, classes={self.n_classes})"
        )


def _finish(
    ds: Dataset,
    *,
    dtype,
    binarize: bool | float,
    flatten: bool,
    one_hot: bool,
    validation_split: float,
    seed: Any,
) -> Dataset:
    """Apply the common options to raw [0, 1] float64 arrays."""
    dtype = as_float_dtype(dtype)
    threshold = 0.5 if binarize is True else (float(binarize) if binarize else None)

    def xs(a):
        if a is None:
            return None
        a = np.asarray(a, dtype=np.float64)
        if threshold is not None:
            a = (a > threshold).astype(np.float64)
        if flatten:
            a = a.reshape(len(a), -1)
        elif ds.image_shape is not None:
            a = a.reshape((len(a), *ds.image_shape))
        return np.ascontiguousarray(a, dtype=dtype)

    n_classes = ds.n_classes

    def ys(a):
        if a is None:
            return None
        a = np.asarray(a).astype(np.int32)
        return np.eye(n_classes, dtype=dtype)[a] if one_hot else a

    out = replace(
        ds,
        X_train=xs(ds.X_train),
        y_train=ys(ds.y_train),
        X_test=xs(ds.X_test),
        y_test=ys(ds.y_test),
        X_valid=xs(ds.X_valid),
        y_valid=ys(ds.y_valid),
    )
    if validation_split:
        rng = as_rng(seed, name="seed")
        (Xt, yt, _), (Xv, yv) = split_validation(out.X_train, out.y_train, validation_split, rng)
        out = replace(out, X_valid=Xv, y_valid=yv, X_train=Xt, y_train=yt)
    return out


def _sklearn_split(name, X, y, classes, image_shape, test_size, seed, **options) -> Dataset:
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    ds = Dataset(name, Xtr, ytr, Xte, yte, classes=classes, image_shape=image_shape)
    return _finish(ds, seed=seed, **options)


def load_digits(
    *,
    test_size: float = 0.25,
    seed: int = 0,
    dtype: str | None = None,
    binarize: bool | float = False,
    flatten: bool = True,
    one_hot: bool = False,
    validation_split: float = 0.0,
) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images), pixels scaled to [0, 1], split
    stratified into train and test (75/25 with seed 0 by default)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return _sklearn_split(
        "digits",
        d.data / 16.0,
        d.target,
        [str(i) for i in range(10)],
        (8, 8),
        test_size,
        seed,
        dtype=dtype,
        binarize=binarize,
        flatten=flatten,
        one_hot=one_hot,
        validation_split=validation_split,
    )


def load_iris(
    *,
    test_size: float = 0.25,
    seed: int = 0,
    dtype: str | None = None,
    one_hot: bool = False,
    validation_split: float = 0.0,
) -> Dataset:
    """scikit-learn's iris (150 flowers, 4 features min-max scaled to [0, 1], 3 classes)."""
    from sklearn.datasets import load_iris as sk_iris

    d = sk_iris()
    X = (d.data - d.data.min(axis=0)) / np.ptp(d.data, axis=0)
    return _sklearn_split(
        "iris",
        X,
        d.target,
        list(d.target_names),
        None,
        test_size,
        seed,
        dtype=dtype,
        binarize=False,
        flatten=True,
        one_hot=one_hot,
        validation_split=validation_split,
    )


def make_moons(
    n_samples: int = 200, noise: float = 0.2, *, seed: int = 0, n_classes: int = 2, dtype=None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles ; ``n_classes=3`` adds a third blob class.

    >>> X, y = make_moons(10)
    >>> X.shape, sorted(set(y.tolist()))
    ((10, 2), [0, 1])
    """
    from sklearn.datasets import make_moons as sk_moons

    if n_classes not in (2, 3):
        raise SymnnValueError(f"n_classes={n_classes!r} is not supported; expected 2 or 3.")
    if n_classes == 2:
        X, y = sk_moons(n_samples, noise=noise, random_state=seed)
    else:
        n2 = n_samples * 2 // 3
        X2, y2 = sk_moons(n2, noise=noise, random_state=seed)
        rng = as_rng(seed)
        X3 = rng.normal([0.5, -1.0], 0.25 + noise / 2, size=(n_samples - n2, 2))
        X, y = np.vstack([X2, X3]), np.concatenate([y2, np.full(n_samples - n2, 2)])
    return X.astype(as_float_dtype(dtype)), y.astype(np.int32)


def xor(dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """The four XOR patterns and their labels.

    >>> xor()[1].tolist()
    [0, 1, 1, 0]
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=as_float_dtype(dtype))
    return X, np.array([0, 1, 1, 0], dtype=np.int32)


# -- IDX files ----------------------------------------------------------------------------
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise SymnnValueError(f"{path} is a damaged gzip file: {exc}") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain), checking its magic number and length."""
    path = Path(path)
    if not path.is_file():
        raise SymnnValueError(f"path={str(path)!r} is not a file; expected an IDX file.")
    data = _open(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise SymnnValueError(
            f"{path} is not an IDX file: bad magic number "
            f"{data[:4].hex() or '(empty)'}; expected 0000 08 01 or 0000 08 03."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SymnnValueError(
            f"{path} is truncated: its header needs {header} bytes, the file has {len(data)}."
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    need = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) < need:
        raise SymnnValueError(
            f"{path} is truncated: shape {dims} needs {need} bytes, the file has {len(data)}."
        )
    return np.frombuffer(data, dtype=dtype, count=int(np.prod(dims)), offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    lab_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    if img_path is None or lab_path is None:
        raise SymnnValueError(
            f"{folder} has no {prefix}-images-idx3-ubyte[.gz] and "
            f"{prefix}-labels-idx1-ubyte[.gz] files."
        )
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise SymnnValueError(
            f"{img_path.name} must hold 3-D images and {lab_path.name} 1-D "
            f"labels; got shapes {images.shape} and {labels.shape}."
        )
    if len(images) != len(labels):
        raise SymnnValueError(
            f"{img_path.name} has {len(images)} images but {lab_path.name} has "
            f"{len(labels)} labels; expected equal counts."
        )
    return images.astype(np.float64) / 255.0, labels.astype(np.int32)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and tuples only: anything else in the file is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise SymnnValueError(
            f"the pickle refers to {module}.{name}; only numpy arrays are "
            "accepted in an MNIST pickle (nothing in it is executed)."
        )


def _read_mnist_pickle(path: Path):
    raw = _open(path)
    try:
        parts = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    except SymnnValueError:
        raise
    except Exception as exc:
        raise SymnnValueError(f"{path} is not a readable mnist.pkl.gz: {exc}") from None
    if not (
        isinstance(parts, tuple | list)
        and len(parts) == 3
        and all(isinstance(p, tuple | list) and len(p) == 2 for p in parts)
    ):
        raise SymnnValueError(
            f"{path} must hold ((train_x, train_y), (valid_x, valid_y), "
            "(test_x, test_y)) as in deeplearning.net's mnist.pkl.gz."
        )
    out = []
    for (x, y), part in zip(parts, ("train", "valid", "test")):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
        if len(x) != len(y):
            raise SymnnValueError(
                f"{path}: the {part} part has {len(x)} images but {len(y)} labels."
            )
        out += [x.reshape(len(x), -1), y.astype(np.int32)]
    return out


def load_mnist(
    path: str | os.PathLike,
    *,
    dtype: str | None = None,
    binarize: bool | float = False,
    flatten: bool = True,
    one_hot: bool = False,
    validation_split: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """MNIST from the user's own files: ``mnist.pkl.gz`` (train/valid/test, as the Theano
    tutorials ship it) or a folder of IDX files (``train-images-idx3-ubyte[.gz]``, ...),
    detected automatically."""
    options = dict(
        dtype=dtype,
        binarize=binarize,
        flatten=flatten,
        one_hot=one_hot,
        validation_split=validation_split,
        seed=seed,
    )
    return _finish(_read_mnist_files(path, "mnist", [str(i) for i in range(10)]), **options)


def _read_mnist_files(path: str | os.PathLike, name: str, classes: list[str]) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise SymnnValueError(
            f"path={str(path)!r} does not exist; expected mnist.pkl.gz or a folder of IDX files."
        )
    if path.is_dir():
        Xtr, ytr = _read_idx_pair(path, "train")
        Xte, yte = _read_idx_pair(path, "t10k")
        Xva = yva = None
        shape = Xtr.shape[1:]
    else:
        Xtr, ytr, Xva, yva, Xte, yte = _read_mnist_pickle(path)
        side = int(round(np.sqrt(Xtr.shape[1])))
        shape = (side, side) if side * side == Xtr.shape[1] else None
    return Dataset(name, Xtr, ytr, Xte, yte, Xva, yva, image_shape=shape, classes=classes)


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """The loaders' options with their defaults (as :func:`load_mnist` takes them)."""
    defaults = dict(
        dtype=None, binarize=False, flatten=True, one_hot=False, validation_split=0.0, seed=0
    )
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise SymnnValueError(f"unknown option {unknown[0]!r}; expected {', '.join(defaults)}.")
    return {**defaults, **options}


def fashion_mnist_path() -> Path:
    """Where Fashion-MNIST is looked for: ``$SYMNN_FASHION_MNIST`` when set (and not empty),
    else :data:`FASHION_MNIST_PATH`. Setting it to a folder that does not exist hides an
    installed copy (the project's CI does, to see what a fresh machine sees).
    """
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_PATH)


def fashion_mnist_available(path: str | os.PathLike | None = None) -> bool:
    """Whether ``path`` (default :func:`fashion_mnist_path`) holds Fashion-MNIST's IDX files."""
    folder = Path(path) if path is not None else fashion_mnist_path()
    return folder.is_dir() and _find(folder, "train-images-idx3-ubyte") is not None


def load_image_data(mnist_path: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """The image data set the examples and the command line use: MNIST from ``mnist_path``
    when given, else Fashion-MNIST when :func:`fashion_mnist_available`, else scikit-learn's
    digits (always there). Options (``validation_split``, ``binarize``, ...) apply to each,
    so every branch gives the same kind of :class:`Dataset`.
    """
    if mnist_path:
        return load_mnist(mnist_path, **options)
    if fashion_mnist_available():
        return load_fashion_mnist(**options)
    return load_digits(**options)


def load_fashion_mnist(path: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """The real Fashion-MNIST (70,000 28x28 images, 10 classes) from IDX files.

    The default ``path`` is :func:`fashion_mnist_path`: ``$SYMNN_FASHION_MNIST``, else where
    Debian's ``dataset-fashion-mnist`` package installs it. Options are those of
    :func:`load_mnist`.
    """
    folder = Path(path) if path is not None else fashion_mnist_path()
    if not fashion_mnist_available(folder):
        raise SymnnValueError(
            f"Fashion-MNIST not found in {folder}. Install it with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or point "
            f"{FASHION_MNIST_ENV} (or path=) at a folder holding train-images-idx3-ubyte.gz "
            "and the other IDX files."
        )
    return _finish(
        _read_mnist_files(folder, "fashion-mnist", FASHION_MNIST_CLASSES), **_options(options)
    )


def load_dataset(name: str, *, seed: int = 0, dtype: Any = None) -> Dataset:
    """The data set ``name`` selects (:data:`DATASET_NAMES`): scikit-learn's ``"digits"`` and
    ``"iris"``, 1,000 two-moons points (``"moons"``, a stratified quarter for testing),
    ``"fashion-mnist"`` or ``"mnist:PATH"``; ``seed`` splits the first three.

    >>> load_dataset("iris").n_classes
    3
    >>> try:
    ...     load_dataset("cifar")
    ... except ValueError as exc:
    ...     print(exc.parameter, "|", str(exc)[:26])
    data | data='cifar' is not known;
    """
    if name == "digits":
        return load_digits(seed=seed, dtype=dtype)
    if name == "iris":
        return load_iris(seed=seed, dtype=dtype)
    if name == "moons":
        from sklearn.model_selection import train_test_split

        X, y = make_moons(1000, noise=0.2, seed=seed, dtype=dtype)
        split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        return Dataset("moons", split[0], split[2], split[1], split[3], classes=["0", "1"])
    if name == "fashion-mnist":
        return load_fashion_mnist(dtype=dtype)
    if isinstance(name, str) and name.startswith("mnist:"):
        return load_mnist(name.split(":", 1)[1], dtype=dtype)
    known = ", ".join(DATASET_NAMES[:-1]) + f" or {DATASET_NAMES[-1]}"
    raise SymnnValueError(f"data={name!r} is not known; expected {known}", parameter="data")
