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
from ..utils import check_array, check_labels, check_positive, describe
from .heads import Head, make_heads
from .inputs import Inputs, InputSignature, arrays_of

__all__ = ["Objective", "Evaluator", "run_in_blocks", "PREDICT_BLOCK", "check_sample_weight"]

_EVAL_CHUNK = 4096
#: rows per call of the prediction function (every call has exactly this shape)
PREDICT_BLOCK = 64
_CATEGORICAL = (costs.categorical_crossentropy, costs.categorical_crossentropy_from_logits)


@dataclass
class Objective:
    """A network, a per-example loss for each of its outputs (its :class:`Head` s: a name
    from :data:`symnn.costs.LOSSES` or a callable, and a weight) and the penalties
    ``l1 * sum|W| + l2 / 2 * sum W**2`` on its regularisable weights, divided by the rows of
    each batch when ``per_row`` (scikit-learn's ``alpha``)."""

    network: Layer
    heads: tuple[Head, ...]
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
        cls, network: Layer, loss: Any, l1: float, l2: float, per_row: bool = False,
        loss_weights: Any = None,
    ) -> Objective:  # fmt: skip
        """Check the arguments (naming each) and build the objective (``loss`` and
        ``loss_weights`` as :func:`~symnn.train.heads.make_heads` takes them)."""
        if not isinstance(network, Layer):
            raise SymnnTypeError(
                f"network must be a symnn Layer (e.g. symnn.layers.mlp); got {describe(network)}."
            )
        InputSignature.of(network)  # a known input width, or a Graph's Inputs
        heads = make_heads(network, loss, loss_weights)
        l1 = float(check_positive(l1, "l1", allow_zero=True))
        l2 = float(check_positive(l2, "l2", allow_zero=True))
        return cls(network, heads, l1, l2, bool(per_row))

    @property
    def single(self) -> bool:
        """Whether the network has one output (one head)."""
        return len(self.heads) == 1

    @property
    def loss_name(self) -> str | list[str]:
        """The loss's name; a list of one per output for several outputs."""
        return self.heads[0].loss_name if self.single else [h.loss_name for h in self.heads]

    @property
    def loss_fn(self) -> Callable | list[Callable]:
        """The per-example loss; a list of one per output for several outputs."""
        return self.heads[0].loss_fn if self.single else [h.loss_fn for h in self.heads]

    @property
    def loss_weights(self) -> list[float] | None:
        """Each output's weight in the objective (None: all 1)."""
        weights = [h.weight for h in self.heads]
        return None if all(w == 1.0 for w in weights) else weights

    @property
    def dtype(self) -> str:
        return self.network.dtype

    @property
    def signature(self) -> InputSignature:
        """What the network takes (one matrix, or a Graph's inputs)."""
        return InputSignature.of(self.network)

    @staticmethod
    def targets_kind(y: Any) -> str:
        """``"labels"`` for integer class labels, ``"values"`` for float targets; for the
        targets of several outputs one kind per output joined by commas."""
        if isinstance(y, Inputs):
            return ",".join(Objective.targets_kind(a) for a in y.arrays)
        return "labels" if y.dtype.kind in "biu" else "values"

    def symbols(self, kind: str) -> tuple[list, list]:
        """Symbolic inputs ``(xs, ys)`` for targets of ``kind``: one tensor per network
        input, and one per output."""
        ys = []
        for head, part in zip(self.heads, kind.split(","), strict=True):
            name = "y" if self.single else f"y_{head.name}"
            ys.append(pt.ivector(name) if part == "labels"
                      else pt.matrix(name, dtype=self.dtype))  # fmt: skip
        return self.signature.symbols(), ys

    def weight_symbol(self):
        """The symbolic per-row weights of a weighted objective (see :meth:`build`)."""
        return pt.vector("sample_weight", dtype=self.dtype)

    def build(
        self, x, ys, kind: str, *, deterministic: bool, w=None
    ) -> tuple[Any, Any, dict[str, Any]]:
        """``(objective, network output, metrics)`` as symbolic expressions: the weighted sum
        of the outputs' losses and the penalties. With row weights ``w`` a data term is
        ``sum(w * loss) / sum(w)`` and a per-row penalty is divided by ``sum(w)``
        (scikit-learn's ``sample_weight``). ``x`` and ``ys`` are the lists :meth:`symbols`
        gives. Several outputs add each output's loss ``<name>_loss`` (unweighted) and, for
        labels, ``<name>_accuracy`` to the metrics."""
        out = self.network(self.signature.network_input(x), deterministic=deterministic)
        outs = [out] if self.single else list(out)
        rows = pt.cast(x[0].shape[0], self.dtype) if w is None else pt.sum(w)
        total, metrics = 0, {}
        for head, o, y, part in zip(self.heads, outs, ys, kind.split(","), strict=True):
            data_loss = self._data_loss(head, o, y, part, w, rows)
            total = total + (data_loss if head.weight == 1.0 else head.weight * data_loss)
            prefix = "" if self.single else f"{head.name}_"
            if not self.single:
                metrics[f"{prefix}loss"] = data_loss
            if part == "labels":
                metrics[f"{prefix}accuracy"] = costs.accuracy(o, y)
        penalty = self._penalty()
        if self.per_row and not isinstance(penalty, int):
            penalty = penalty / rows
        return pt.cast(total + penalty, self.dtype), out, metrics

    def _data_loss(self, head: Head, out, y, kind: str, w, rows):
        target = y
        if kind == "labels" and head.loss_fn in (costs.squared_error, costs.binary_crossentropy):
            n_out = out.type.shape[-1]
            target = (
                pt.eye(n_out, dtype=self.dtype)[y]
                if n_out and n_out > 1
                else pt.cast(y, self.dtype).dimshuffle(0, "x")
            )
        per_example = head.loss_fn(out, target)
        data_loss = costs.aggregate(per_example) if w is None else pt.sum(per_example * w) / rows
        if data_loss.type.ndim != 0:
            raise SymnnValueError(f"loss {head.loss_name!r} did not reduce to a scalar.")
        return pt.cast(data_loss, self.dtype)

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
        their labels (the same objective, with accuracy and the fused C op). The targets of
        several outputs are a list of one array per output (or a dict by output name),
        returned as :class:`~symnn.train.inputs.Inputs`."""
        X = self.signature.check(X, xname, finite=finite_x)
        if self.single:
            return X, self._check_targets(self.heads[0], y, yname, (xname, len(X)))
        names = ", ".join(h.name for h in self.heads)
        if isinstance(y, Inputs):
            y = list(y.arrays)
        elif isinstance(y, dict) and set(y) == {h.name for h in self.heads}:
            y = [y[h.name] for h in self.heads]
        if not isinstance(y, list | tuple) or len(y) != len(self.heads):
            raise SymnnTypeError(
                f"{yname} must be a list of {len(self.heads)} arrays, one per output "
                f"({names}), or a dict by output name; got {describe(y)}."
            )
        arrays = [
            self._check_targets(head, t, f"{yname}[{i}] (output {head.name!r})", (xname, len(X)))
            for i, (head, t) in enumerate(zip(self.heads, y))
        ]
        return X, Inputs(arrays)

    def _check_targets(self, head: Head, y: Any, yname: str, rows: tuple[str, int]):
        y_arr = _one_hot_to_labels(np.asarray(y), head.loss_fn)
        if y_arr.dtype.kind in "biu" or (y_arr.ndim == 1 and head.loss_fn in _CATEGORICAL):
            return check_labels(y_arr, yname, max(head.width or 2, 2), n_samples=rows[1])
        y_arr = check_array(y_arr, yname, ndim=(1, 2), dtype=self.dtype)
        if y_arr.ndim == 1:
            y_arr = y_arr[:, None]
        if len(y_arr) != rows[1]:
            raise SymnnValueError(
                f"{yname} has {len(y_arr)} rows but {rows[0]} has {rows[1]} "
                "samples; expected equal lengths."
            )
        return y_arr


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


def run_in_blocks(fn: Callable, X: np.ndarray, block: int) -> np.ndarray | list[np.ndarray]:
    """``fn`` over ``X`` in calls of exactly ``block`` rows (the last block padded with
    zeros), concatenated: each row's result is independent of the rest of ``X``. When ``fn``
    returns a list (a network of several outputs), each of its arrays is concatenated.

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
        last = fn(padded)
        parts.append([a[: n - full] for a in last] if isinstance(last, list) else last[: n - full])
    if isinstance(parts[0], list):
        return [np.concatenate(arrays) for arrays in zip(*parts)]
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
        """Loss (the objective) and accuracy over ``(X, y)``, in chunks (and each output's
        loss and accuracy for several outputs, see :meth:`Objective.build`)."""
        X, y = self.objective.check_xy(X, y)
        with self._lock:
            fn, names = self._evaluation(self.objective.targets_kind(y))
            totals = np.zeros(len(names))
            for start in range(0, len(X), _EVAL_CHUNK):
                xb, yb = X[start : start + _EVAL_CHUNK], y[start : start + _EVAL_CHUNK]
                totals += len(xb) * np.array([float(v) for v in fn(*arrays_of(xb), *arrays_of(yb))])
        return dict(zip(names, (totals / len(X)).tolist()))

    def _evaluation(self, kind: str):
        if kind not in self._evaluate:
            x, ys = self.objective.symbols(kind)
            loss, _, metrics = self.objective.build(x, ys, kind, deterministic=True)
            fn = function([*x, *ys], [loss, *metrics.values()], mode=self.mode)
            self._evaluate[kind] = (fn, ["loss", *metrics])
        return self._evaluate[kind]

    def predict_proba(self, X) -> np.ndarray | list[np.ndarray]:
        """The network's output (inference mode; a list of one array per output for several
        outputs); a row's output does not depend on the other rows of the call (blocks of
        exactly :data:`PREDICT_BLOCK` rows: BLAS libraries pick kernels and summation order by
        matrix shape)."""
        network, signature = self.objective.network, self.objective.signature
        X = signature.check(X, "X")
        with self._lock:
            if self._predict is None:
                xs = signature.symbols()
                out = network(signature.network_input(xs), deterministic=True)
                self._predict = function(xs, out, mode=self.mode)
            return run_in_blocks(lambda b: self._predict(*arrays_of(b)), X, PREDICT_BLOCK)

    def predict(self, X) -> np.ndarray | list[np.ndarray]:
        """Classes for a classification loss (argmax of the output; ``> 0.5`` for a single
        output), else the output's values (a regression or a custom loss); a list of one
        array per output for several outputs."""
        out = self.predict_proba(X)
        if self.objective.single:
            return _decided(out, self.objective.heads[0])
        return [_decided(o, head) for o, head in zip(out, self.objective.heads)]


def _decided(out: np.ndarray, head: Head) -> np.ndarray:
    if head.loss_name not in costs.CLASSIFICATION_LOSSES:
        return out
    return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
