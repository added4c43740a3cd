import gzip
import pickle
import struct

import numpy as np
import pytest

from symnn import datasets
from symnn.errors import SymnnValueError


def _write_idx(path, array, code=0x08, gz=False):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(">u1" if code == 0x08 else ">f4").tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def idx_folder(tmp_path, rng):
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 4, 4)).astype(np.uint8),
            gz=True,
        )
        _write_idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte.gz",
            (np.arange(n) % 10).astype(np.uint8),
            gz=True,
        )
    return tmp_path


def test_digits_and_iris_are_scaled_split_and_stratified():
    d = datasets.load_digits()
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert d.X_train.dtype == np.float32 and d.X_train.min() >= 0 and d.X_train.max() <= 1
    assert np.bincount(d.y_test).min() >= 43  # stratified: 25 % of each class (class 8 has 174)
    iris = datasets.load_iris(dtype="float64", one_hot=True)
    assert iris.X_train.dtype == np.float64 and iris.y_train.shape[1] == 3
    assert iris.X_train.max() <= 1 and iris.X_train.min() >= 0


def test_options_binarize_flatten_validation_split():
    d = datasets.load_digits(binarize=True, flatten=False, validation_split=0.2, seed=1)
    assert d.X_train.shape[1:] == (8, 8)
    assert set(np.unique(d.X_train)) <= {0.0, 1.0}
    assert len(d.X_valid) == round(1347 * 0.2) and len(d.X_train) == 1347 - len(d.X_valid)


def test_moons_and_xor():
    X, y = datasets.make_moons(300, n_classes=3)
    assert X.shape == (300, 2) and set(y.tolist()) == {0, 1, 2}
    X, y = datasets.xor()
    assert X.dtype == np.float32 and y.tolist() == [0, 1, 1, 0]


def test_mnist_idx_folder(idx_folder):
    d = datasets.load_mnist(idx_folder)
    assert d.X_train.shape == (12, 16) and d.X_test.shape == (5, 16)
    assert d.image_shape == (4, 4) and d.X_train.max() <= 1
    assert d.y_train.dtype == np.int32


def test_fashion_mnist_from_a_folder_and_missing_path_says_how_to_install(idx_folder, tmp_path):
    d = datasets.load_fashion_mnist(idx_folder)
    assert d.name == "fashion-mnist" and d.classes[9] == "Ankle boot"
    with pytest.raises(SymnnValueError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(tmp_path / "nowhere")


def test_mnist_pickle(tmp_path, rng):
    parts = tuple((rng.random((n, 4)).astype(np.float32), np.arange(n) % 10) for n in (6, 2, 3))
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(parts)))
    d = datasets.load_mnist(path)
    assert d.X_train.shape == (6, 4) and d.X_valid.shape == (2, 4) and d.X_test.shape == (3, 4)
    assert d.image_shape == (2, 2)


def test_mnist_pickle_with_code_is_refused_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((Evil(), [0]), ([], []), ([], [])))))
    with pytest.raises(SymnnValueError, match="only numpy arrays are accepted"):
        datasets.load_mnist(path)
    assert not (tmp_path / "pwned").exists()


def test_malformed_idx_files_are_named(tmp_path, idx_folder):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(SymnnValueError, match="bad magic number"):
        datasets.read_idx(bad / "x")
    raw = gzip.decompress((idx_folder / "train-images-idx3-ubyte.gz").read_bytes())
    (bad / "y").write_bytes(raw[:-5])
    with pytest.raises(SymnnValueError, match="truncated"):
        datasets.read_idx(bad / "y")
    _write_idx(idx_folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), gz=True)
    with pytest.raises(SymnnValueError, match="has 5 images but .* has 4 labels"):
        datasets.load_mnist(idx_folder)
    with pytest.raises(SymnnValueError, match="does not exist"):
        datasets.load_mnist(tmp_path / "missing.pkl.gz")


@pytest.fixture
def fashion_folder(tmp_path, rng):
    """A tiny Fashion-MNIST stand-in: IDX files of 40 training and 20 test 28x28 images."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    for prefix, n in (("train", 40), ("t10k", 20)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, gz=True)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, gz=True)
    return folder


def test_data_selection_user_mnist_path_comes_first(idx_folder, fashion_folder, monkeypatch):
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(fashion_folder))
    d = datasets.load_image_data(idx_folder, validation_split=0.25)
    assert d.name == "mnist" and d.X_train.shape[1] == 16 and len(d.X_valid) == 3


def test_data_selection_fashion_mnist_when_present(fashion_folder, monkeypatch):
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(fashion_folder))
    assert datasets.fashion_mnist_path() == fashion_folder
    assert datasets.fashion_mnist_available()
    d = datasets.load_image_data(validation_split=0.25)
    assert d.name == "fashion-mnist" and d.X_train.shape == (30, 784) and len(d.X_valid) == 10
    assert datasets.load_fashion_mnist().classes == datasets.FASHION_MNIST_CLASSES


@pytest.mark.parametrize("state", ["missing folder", "empty folder"])
def test_data_selection_digits_when_fashion_mnist_absent(state, tmp_path, monkeypatch):
    folder = tmp_path / "empty"
    if state == "empty folder":
        folder.mkdir()
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(folder))
    assert not datasets.fashion_mnist_available()
    d = datasets.load_image_data(validation_split=0.1, seed=0)
    # the fallback keeps the options: a real validation split, not (None, None)
    assert d.name == "digits" and len(d.X_valid) == round(1347 * 0.1)
    with pytest.raises(SymnnValueError, match="SYMNN_FASHION_MNIST"):
        datasets.load_fashion_mnist()


def test_fashion_mnist_path_defaults_to_debian_location(monkeypatch):
    monkeypatch.delenv(datasets.FASHION_MNIST_ENV, raising=False)
    assert str(datasets.fashion_mnist_path()) == datasets.FASHION_MNIST_PATH
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, "")
    assert str(datasets.fashion_mnist_path()) == datasets.FASHION_MNIST_PATH
