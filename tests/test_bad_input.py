"""A table of wrong calls across the public API. Each must raise a symnn exception (a
subclass of ValueError or TypeError) whose message names the argument; no PyTensor, numba
or scipy exception may reach the user first."""

import re

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symnn
from symnn import costs, datasets, init, regularization, updates
from symnn.errors import SymnnError
from symnn.inputopt import activation_maximization, maximize
from symnn.layers import BatchNorm, Dense, Dropout, Sequential, mlp
from symnn.nonlinearities import grouped_softmax
from symnn.train import ScipyTrainer, Trainer

X = np.random.default_rng(0).random((40, 4)).astype("float32")
Y = np.arange(40) % 3
XV = pt.matrix("xv", dtype="float64", shape=(None, 2))
W = pytensor.shared(np.ones(3))


def net():
    return mlp([4, 5, 3], rng=0)


def fit(**kw):
    args = {"X": X, "y": Y, "epochs": 1, "batch_size": 10, **kw}
    return Trainer(net()).fit(args.pop("X"), args.pop("y"), **args)


def mx(**kw):
    return maximize(pt.sum(XV, axis=1), XV, **{"steps": 2, **kw})


def _file(tmp, content: bytes, name="f.npz"):
    path = tmp / name
    path.write_bytes(content)
    return path


CASES = [
    # layers, initialisers, networks
    ("Dense n_in=0", lambda t: Dense(0, 3), "n_in=0"),
    (
        "Dense wrong width",
        lambda t: Dense(5, 2)(pt.matrix("x", dtype="float32", shape=(None, 4))),
        "expects 5 input features",
    ),
    ("Dense integer input", lambda t: Dense(2, 2)(pt.lmatrix("x")), "dtype int64"),
    (
        "float64 input into float32 layer",
        lambda t: Dense(2, 2)(pt.dmatrix("x")),
        "dtype float64; expected float32",
    ),
    (
        "float32 input into float64 layer",
        lambda t: Dense(2, 2, dtype="float64")(pt.fmatrix("x")),
        "dtype float32; expected float64",
    ),
    ("Dense W of wrong shape", lambda t: Dense(3, 2, W=np.zeros((2, 3))), "W has shape"),
    ("Dense W with NaN", lambda t: Dense(1, 1, W=[[np.nan]]), "W contains NaN"),
    ("unknown activation", lambda t: Dense(2, 2, "swish"), "activation='swish'"),
    ("dropout p >= 1", lambda t: Dropout(1.5), "p=1.5"),
    ("batch-norm momentum 0", lambda t: BatchNorm(2, momentum=0), "momentum=0"),
    ("mlp one size", lambda t: mlp([784]), r"sizes=\[784\]"),
    ("mlp unknown hidden", lambda t: mlp([2, 2], hidden="rectify"), "hidden='rectify'"),
    (
        "Sequential mismatched sizes",
        lambda t: Sequential([Dense(3, 4), Dense(5, 2)]),
        "expects 5 inputs",
    ),
    (
        "initialiser without a Generator",
        lambda t: init.GlorotUniform()((2, 2), 42),
        "rng must be a numpy.random.Generator",
    ),
    ("set_values wrong count", lambda t: net().set_values([np.zeros(1)]), "values has 1 arrays"),
    ("unknown float type", lambda t: mlp([2, 2], dtype="float16"), "dtype='float16'"),
    (
        "grouped softmax sizes",
        lambda t: grouped_softmax(pt.matrix("x", shape=(None, 3)), [2, 2]),
        "add up to 4 columns but x has 3",
    ),
    # costs, regularisation, update rules, gradient check
    ("aggregate mode", lambda t: costs.aggregate(pt.vector("v"), "median"), "mode='median'"),
    (
        "crossentropy of a vector",
        lambda t: costs.categorical_crossentropy(pt.vector("p"), pt.ivector("t")),
        "predictions must be a matrix",
    ),
    (
        "nll with float labels",
        lambda t: costs.nll(pt.matrix("p"), pt.vector("t")),
        "labels must be integer",
    ),
    ("l2 of nothing", lambda t: regularization.l2([]), "params is empty"),
    (
        "update a symbolic input",
        lambda t: updates.sgd(pt.sum(XV), [XV], 0.1),
        "params must contain shared variables",
    ),
    ("learning rate 0", lambda t: updates.sgd(pt.sum(W), [W], 0), "learning_rate=0"),
    ("negative learning rate", lambda t: updates.adam(pt.sum(W), [W], -1.0), "learning_rate=-1.0"),
    (
        "momentum >= 1",
        lambda t: updates.momentum(pt.sum(W), [W], 0.1, momentum=1.5),
        "momentum=1.5",
    ),
    ("beta1 = 1", lambda t: updates.adam(pt.sum(W), [W], beta1=1.0), "beta1=1.0"),
    ("non-scalar loss", lambda t: updates.sgd(W * 2, [W], 0.1), "loss must be a scalar"),
    ("decay > 1", lambda t: updates.ExponentialDecay(0.1, 2.0), "decay=2.0"),
    ("check_grad of a vector", lambda t: symnn.check_grad(W * 2, [W]), "cost must be a scalar"),
    ("unknown mode", lambda t: symnn.function([], W, mode="TURBO"), "mode='TURBO'"),
    # training
    ("trainer of a non-network", lambda t: Trainer("mlp"), "network must be a symnn Layer"),
    ("unknown optimiser", lambda t: Trainer(net(), optimizer="adamw"), "optimizer='adamw'"),
    ("unknown loss", lambda t: Trainer(net(), loss="hinge"), "loss='hinge'"),
    ("trainer learning rate 0", lambda t: Trainer(net(), learning_rate=0), "learning_rate=0"),
    ("trainer blas threads 0", lambda t: Trainer(net(), blas_threads=0), "blas_threads=0"),
    ("trainer blas threads word", lambda t: Trainer(net(), blas_threads="max"), "'auto' or a"),
    ("X/y lengths differ", lambda t: fit(y=Y[:5]), "y has 5 labels but X has 40"),
    ("wrong feature count", lambda t: fit(X=np.zeros((40, 7))), "X has 7 features"),
    ("batch size 0", lambda t: fit(batch_size=0), "batch_size=0"),
    ("labels out of range", lambda t: fit(y=Y + 1), r"labels outside \[0, 3\)"),
    ("negative labels", lambda t: fit(y=Y - 1), r"labels outside \[0, 3\)"),
    ("string labels", lambda t: fit(y=np.array(["a"] * 40)), "y must hold integer class labels"),
    ("NaN in X", lambda t: fit(X=np.where(X > 0.9, np.nan, X)), "X contains NaN"),
    ("inf in X", lambda t: fit(X=np.where(X > 0.9, np.inf, X)), "X contains NaN or infinity"),
    ("empty X", lambda t: fit(X=np.zeros((0, 4)), y=Y[:0]), "X is empty"),
    ("1-D X", lambda t: fit(X=np.zeros(40)), "X must have 2 dimension"),
    ("epochs 0", lambda t: fit(epochs=0), "epochs=0"),
    ("validation split 1", lambda t: fit(validation_split=1.0), "validation_split=1.0"),
    ("unknown scipy method", lambda t: ScipyTrainer(net(), method="newton"), "method='newton'"),
    # input optimisation
    ("bounds lo >= hi", lambda t: mx(bounds=(1.0, 0.0)), "lo >= hi"),
    ("starts outside the bounds", lambda t: mx(x0=np.array([[0.5, 1.5]])), "outside the bounds"),
    ("starts of the wrong shape", lambda t: mx(x0=np.zeros((1, 3))), "x0 has 3 columns"),
    ("NaN in starts", lambda t: mx(x0=np.array([[np.nan, 0.5]])), "x0 contains NaN"),
    ("inf in starts", lambda t: mx(x0=np.array([[np.inf, 0.5]])), "x0 contains NaN"),
    ("unknown ascent method", lambda t: mx(method="newton"), "method='newton'"),
    ("ascent blas threads 1.5", lambda t: mx(blas_threads=1.5), "blas_threads=1.5"),
    ("zero steps", lambda t: mx(steps=0), "steps=0"),
    (
        "objective without x",
        lambda t: maximize(pt.stack([pt.sum(W)]), XV),
        "objective does not depend on x",
    ),
    ("objective not one per row", lambda t: maximize(pt.sum(XV), XV), "one value per row"),
    ("unit out of range", lambda t: activation_maximization(net(), [0, 3]), "index 3 out of range"),
    (
        "layer out of range",
        lambda t: activation_maximization(net(), [0], layer=7),
        "layer=7 is out of range",
    ),
    # files
    ("load a missing file", lambda t: symnn.load(t / "missing.npz"), "is not a file"),
    ("load a text file", lambda t: symnn.load(_file(t, b"hello")), "not a .npz archive"),
    (
        "load a PNG renamed",
        lambda t: symnn.load(_file(t, b"\x89PNG\r\n\x1a\n" + b"0" * 64)),
        "not a .npz archive",
    ),
    ("save a dict", lambda t: symnn.save({}, t / "x"), "obj must be a symnn network"),
    ("mnist file missing", lambda t: datasets.load_mnist(t / "none.pkl.gz"), "does not exist"),
    (
        "IDX with bad magic",
        lambda t: datasets.read_idx(_file(t, b"\x01\x02\x03\x04", "i")),
        "bad magic number",
    ),
    # estimator hyperparameters (checked at fit, as scikit-learn does)
    (
        "estimator activation",
        lambda t: symnn.MLPClassifier(activation="swish").fit(X, Y),
        "activation='swish'",
    ),
    ("estimator batch size", lambda t: symnn.MLPClassifier(batch_size=0).fit(X, Y), "batch_size=0"),
    (
        "estimator blas threads",
        lambda t: symnn.MLPClassifier(blas_threads=-1).fit(X, Y),
        "blas_threads=-1",
    ),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name, call, match", CASES, ids=[c[0] for c in CASES])
def test_wrong_call_raises_a_clear_symnn_error(name, call, match, tmp_path):
    with pytest.raises((ValueError, TypeError)) as info:
        call(tmp_path)
    assert isinstance(info.value, SymnnError), (
        f"{type(info.value).__module__}.{type(info.value).__name__} reached the user: {info.value}"
    )
    assert re.search(match, str(info.value)), str(info.value)


def test_an_error_names_its_parameter_also_after_pickling():
    """The command line points at its flag for it; a Dask worker sends it back pickled."""
    import pickle

    from symnn.datasets import load_dataset
    from symnn.errors import SymnnValueError

    with pytest.raises(SymnnValueError) as info:
        load_dataset("cifar")
    again = pickle.loads(pickle.dumps(info.value))
    assert (type(again), again.parameter, str(again)) == (
        SymnnValueError, "data", str(info.value)
    )  # fmt: skip
