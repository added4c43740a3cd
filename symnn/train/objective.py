"""What a training run minimises, and how a model is evaluated: one object that the minibatch
:class:`~symnn.train.Trainer` and the full-batch :class:`~symnn.train.ScipyTrainer` both
compose (network, per-example loss, weight penalties; inference-mode evaluation)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt

from .. import costs
from .. import regularization as reg
from ..backend import function
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer
from ..utils import check_array, check_choice, check_labels, check_positive, describe
from .inputs import Inputs, InputSignature, arrays_of

__all__ = ["Objective", "Evaluator", "run_in_blocks", "PREDICT_BLOCK", "check_sample_weight"]

_EVAL_CHUNK = 4096
#: rows per call of the prediction function (every call has exactly this shape)
PREDICT_BLOCK = 64
_CATEGORICAL = (costs.categorical_crossentropy, costs.categorical_crossentropy_from_logits)


@dataclass
class Objective:
    """A network, a per-example loss (a name from :data:`symnn.costs.LOSSES` or a callable)
    and the penalties ``l1 * sum|W| + l2 / 2 * sum W**2`` on its regularisable weights, divided
    by the rows of each batch when ``per_row`` (scikit-learn's ``alpha``)."""

    network: Layer
    loss_name: str
    loss_fn: Callable
    l1: float = 0.0
    l2: float = 0.0
    per_row: bool = False
    #: the graph reads ``l1`` and ``l2 / 2`` from these shared scalars (not constants), so
    #: models that differ only in their penalties share compiled code (a search over alpha)
    coefficients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.coefficients:
            values = {"l1": self.l1, "l2_half": self.l2 / 2}
            self.coefficients = {
                name: pytensor.shared(np.asarray(value, dtype=self.dtype), name=name)
                for name, value in values.items()
            }

    @classmethod
    def create(
        cls, network: Layer, loss: str | Callable, l1: float, l2: float, per_row: bool = False
    ) -> Objective:
        """Check the arguments (naming each) and build the objective."""
        if not isinstance(network, Layer):
            raise SymnnTypeError(
                f"network must be a symnn Layer (e.g. symnn.layers.mlp); got {describe(network)}."
            )
        InputSignature.of(network)  # a known input width, or a Graph's Inputs
        refs = getattr(network, "output_refs", [None])
        if len(refs) != 1:
            raise SymnnValueError(
                f"network is a Graph of {len(refs)} outputs; Trainer trains networks of one "
                "output (several outputs, each with its loss, are not implemented yet)."
            )
        if isinstance(loss, str):
            name = check_choice(loss, "loss", costs.LOSSES)
            fn = costs.LOSSES[name]
        elif callable(loss):
            name, fn = getattr(loss, "__name__", "custom"), loss
        else:
            raise SymnnTypeError(f"loss must be a name or a callable; got {describe(loss)}.")
        l1 = float(check_positive(l1, "l1", allow_zero=True))
        l2 = float(check_positive(l2, "l2", allow_zero=True))
        return cls(network, name, fn, l1, l2, bool(per_row))

    @property
    def dtype(self) -> str:
        return self.network.dtype

    @property
    def signature(self) -> InputSignature:
        """What the network takes (one matrix, or a Graph's inputs)."""
        return InputSignature.of(self.network)

    @staticmethod
    def targets_kind(y: np.ndarray) -> str:
        """``"labels"`` for integer class labels, ``"values"`` for float targets."""
        return "labels" if y.dtype.kind in "biu" else "values"

    def symbols(self, kind: str) -> tuple[list, Any]:
        """Symbolic inputs ``(xs, y)`` for targets of ``kind``: one tensor per network
        input, and the targets."""
        y = pt.ivector("y") if kind == "labels" else pt.matrix("y", dtype=self.dtype)
        return self.signature.symbols(), y

    def weight_symbol(self):
        """The symbolic per-row weights of a weighted objective (see :meth:`build`)."""
        return pt.vector("sample_weight", dtype=self.dtype)

    def build(
        self, x, y, kind: str, *, deterministic: bool, w=None
    ) -> tuple[Any, Any, dict[str, Any]]:
        """``(objective, network output, metrics)`` as symbolic expressions. With row
        weights ``w`` the data term is ``sum(w * loss) / sum(w)`` and a per-row penalty is
        divided by ``sum(w)`` (scikit-learn's ``sample_weight``). ``x`` is the list
        :meth:`symbols` gives."""
        out = self.network(self.signature.network_input(x), deterministic=deterministic)
        target = y
        if kind == "labels" and self.loss_fn in (costs.squared_error, costs.binary_crossentropy):
            n_out = out.type.shape[-1]
            target = (
                pt.eye(n_out, dtype=self.dtype)[y]
                if n_out and n_out > 1
                else pt.cast(y, self.dtype).dimshuffle(0, "x")
            )
        per_example = self.loss_fn(out, target)
        rows = pt.cast(x[0].shape[0], self.dtype) if w is None else pt.sum(w)
        data_loss = costs.aggregate(per_example) if w is None else pt.sum(per_example * w) / rows
        if data_loss.type.ndim != 0:
            raise SymnnValueError(f"loss {self.loss_name!r} did not reduce to a scalar.")
        penalty = self._penalty()
        if self.per_row and not isinstance(penalty, int):
            penalty = penalty / rows
        objective = pt.cast(data_loss + penalty, self.dtype)
        metrics = {"accuracy": costs.accuracy(out, y)} if kind == "labels" else {}
        return objective, out, metrics

    def _penalty(self):
        weights = self.network.regularizable_params
        penalty = 0
        if self.l2 and weights:
            penalty = penalty + self.coefficients["l2_half"] * reg.l2(weights)
        if self.l1 and weights:
            penalty = penalty + self.coefficients["l1"] * reg.l1(weights)
        return penalty

    def penalty_variables(self) -> list:
        """The shared coefficients the objective's graph reads (those of nonzero penalties)."""
        used = [("l1", self.l1), ("l2_half", self.l2)]
        return [self.coefficients[name] for name, value in used if value]

    def check_xy(self, X, y, xname: str = "X", yname: str = "y", finite_x: bool = True):
        """``(X, y)`` checked and converted; one-hot targets of a categorical loss become
        their labels (the same objective, with accuracy and the fused C op)."""
        X = self.signature.check(X, xname, finite=finite_x)
        y_arr = _one_hot_to_labels(np.asarray(y), self.loss_fn)
        if y_arr.dtype.kind in "biu" or (y_arr.ndim == 1 and self.loss_fn in _CATEGORICAL):
            n_out = getattr(self.network, "n_out", None) or 2
            return X, check_labels(y_arr, yname, max(n_out, 2), n_samples=len(X))
        y_arr = check_array(y_arr, yname, ndim=(1, 2), dtype=self.dtype)
        if y_arr.ndim == 1:
            y_arr = y_arr[:, None]
        if len(y_arr) != len(X):
            raise SymnnValueError(
                f"{yname} has {len(y_arr)} rows but {xname} has {len(X)} "
                "samples; expected equal lengths."
            )
        return X, y_arr


def check_sample_weight(w: Any, n: int, dtype: str) -> np.ndarray | None:
    """``sample_weight`` as a float vector of ``n`` finite, non-negative values with a
    positive sum (None stays None)."""
    if w is None:
        return None
    w = check_array(w, "sample_weight", ndim=1, dtype=dtype)
    if len(w) != n:
        raise SymnnValueError(f"sample_weight has {len(w)} values; expected one per row ({n}).")
    if np.any(w < 0) or not w.sum() > 0:
        raise SymnnValueError(
            "sample_weight has negative values or sums to 0; expected non-negative weights "
            "with a positive sum."
        )
    return w


def _one_hot_to_labels(y: np.ndarray, loss_fn: Callable) -> np.ndarray:
    if loss_fn not in _CATEGORICAL or y.ndim != 2 or y.shape[1] < 2 or y.dtype.kind not in "biuf":
        return y
    if np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        return y.argmax(axis=1).astype(np.int32)
    return y


def run_in_blocks(fn: Callable, X: np.ndarray, block: int) -> np.ndarray:
    """``fn`` over ``X`` in calls of exactly ``block`` rows (the last block padded with
    zeros), concatenated: each row's result is independent of the rest of ``X``.

    >>> run_in_blocks(lambda b: b * 2, np.arange(5.0)[:, None], 2).ravel()
    array([0., 2., 4., 6., 8.])
    """
    n = len(X)
    full = n - n % block
    parts = [fn(X[s : s + block]) for s in range(0, full, block)]
    if full < n or n == 0:
        if isinstance(X, Inputs):
            padded = X[full:].padded(block)
        else:
            padded = np.zeros((block, *X.shape[1:]), dtype=X.dtype)
            padded[: n - full] = X[full:]
        parts.append(fn(padded)[: n - full])
    return np.concatenate(parts)


@dataclass
class Evaluator:
    """Inference-mode evaluation and prediction of an :class:`Objective`, each compiled
    once (per kind of targets) and run by one thread at a time."""

    objective: Objective
    mode: Any = None
    _evaluate: dict[str, Any] = field(default_factory=dict)
    _predict: Any = None
    _lock: Any = field(default_factory=threading.RLock)

    def evaluate(self, X, y) -> dict[str, float]:
        """Loss (the objective) and accuracy over ``(X, y)``, in chunks."""
        X, y = self.objective.check_xy(X, y)
        with self._lock:
            fn, names = self._evaluation(self.objective.targets_kind(y))
            totals = np.zeros(len(names))
            for start in range(0, len(X), _EVAL_CHUNK):
                xb, yb = X[start : start + _EVAL_CHUNK], y[start : start + _EVAL_CHUNK]
                totals += len(xb) * np.array([float(v) for v in fn(*arrays_of(xb), yb)])
        return dict(zip(names, (totals / len(X)).tolist()))

    def _evaluation(self, kind: str):
        if kind not in self._evaluate:
            x, y = self.objective.symbols(kind)
            loss, _, metrics = self.objective.build(x, y, kind, deterministic=True)
            fn = function([*x, y], [loss, *metrics.values()], mode=self.mode)
            self._evaluate[kind] = (fn, ["loss", *metrics])
        return self._evaluate[kind]

    def predict_proba(self, X) -> np.ndarray:
        """The network's output (inference mode); a row's output does not depend on the other
        rows of the call (blocks of exactly :data:`PREDICT_BLOCK` rows: BLAS libraries pick
        kernels and summation order by matrix shape)."""
        network, signature = self.objective.network, self.objective.signature
        X = signature.check(X, "X")
        with self._lock:
            if self._predict is None:
                xs = signature.symbols()
                out = network(signature.network_input(xs), deterministic=True)
                self._predict = function(xs, out, mode=self.mode)
            return run_in_blocks(lambda b: self._predict(*arrays_of(b)), X, PREDICT_BLOCK)

    def predict(self, X) -> np.ndarray:
        """Classes for a classification loss (argmax of the output; ``> 0.5`` for a single
        output), else the output's values (a regression or a custom loss)."""
        out = self.predict_proba(X)
        if self.objective.loss_name not in costs.CLASSIFICATION_LOSSES:
            return out
        return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
