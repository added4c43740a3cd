"""Costs: per-example losses, the accuracy, and ``aggregate`` to reduce them to a scalar.

Every loss returns one value per example (per row for matrices, element-wise for
``binary_crossentropy`` and ``squared_error``); :func:`aggregate` turns them into the scalar
a training function minimises.

>>> import numpy as np, pytensor.tensor as pt
>>> p = pt.matrix("p", dtype="float64"); t = pt.ivector("t")
>>> loss = aggregate(categorical_crossentropy(p, t))
>>> round(float(loss.eval({p: np.array([[0.5, 0.5]]), t: np.array([0], dtype="int32")})), 4)
0.6931
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.scalar.math import Sigmoid
from pytensor.tensor import TensorLike, TensorVariable
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.special import Softmax, xlogy

from .errors import SymnnTypeError, SymnnValueError
from .nonlinearities import SOFTMAX_TAG, log_softmax
from .ops import softmax_cross_entropy
from .utils import check_choice

__all__ = [
    "LOSSES",
    "CLASSIFICATION_LOSSES",
    "categorical_crossentropy",
    "categorical_crossentropy_from_logits",
    "binary_crossentropy",
    "binary_crossentropy_sum",
    "squared_error",
    "half_squared_error",
    "half_poisson_deviance",
    "nll",
    "accuracy",
    "aggregate",
]


def _pick(matrix, targets):
    """``matrix[i, targets[i]]`` for integer targets, or the row-wise dot with one-hot rows.

    Integer targets select through a mask, ``sum(switch(targets[:, None] == arange(k), m, 0))``:
    element-wise operations with C code whose gradient is element-wise too, where
    ``matrix[arange(n), targets]`` compiles to advanced indexing that PyTensor runs in Python.
    A label outside ``[0, k)`` selects
    nothing (the row's value is 0); :class:`symnn.train.Trainer` checks labels beforehand.
    """
    if targets.type.dtype.startswith(("int", "uint")):
        if targets.type.ndim != 1:
            raise SymnnValueError(f"integer targets must be a vector; got {targets.type}.")
        mask = pt.eq(targets[:, None], pt.arange(matrix.shape[-1], dtype=targets.dtype)[None, :])
        return pt.sum(pt.switch(mask, matrix, 0), axis=-1)
    if targets.type.ndim != matrix.type.ndim:
        raise SymnnValueError(
            f"targets {targets.type} do not match predictions {matrix.type}; expected integer "
            "labels (vector) or one-hot rows of the same shape."
        )
    return pt.sum(matrix * targets, axis=-1)


def _check_matrix(x, name: str):
    if not isinstance(x, pt.TensorVariable):
        x = pt.as_tensor_variable(x)
    if x.type.ndim != 2:
        raise SymnnValueError(f"{name} must be a matrix (n_examples, n_classes); got {x.type}.")
    return x


def _softmax_input(predictions):
    """The logits when ``predictions`` is ``softmax(logits)`` over the last axis, else None."""
    logits = getattr(predictions.tag, SOFTMAX_TAG, None)
    if logits is not None:
        return logits
    node = predictions.owner
    if node is not None and isinstance(node.op, Softmax):
        axis = node.op.axis
        last = predictions.type.ndim - 1
        axes = (
            tuple(a % predictions.type.ndim for a in axis)
            if isinstance(axis, tuple)
            else ((axis % predictions.type.ndim,) if axis is not None else None)
        )
        if axes is None and predictions.type.ndim == 1 or axes == (last,):
            return node.inputs[0]
    return None


def _sigmoid_input(predictions):
    """The logits when ``predictions`` is ``sigmoid(logits)``, else None."""
    node = predictions.owner
    if (
        node is not None
        and isinstance(node.op, Elemwise)
        and isinstance(node.op.scalar_op, Sigmoid)
    ):
        return node.inputs[0]
    return None


def categorical_crossentropy(predictions: TensorLike, targets: TensorLike) -> TensorVariable:
    r"""Cross-entropy :math:`-\log p_{i, t_i}` between predicted probabilities and targets.

    ``targets`` are integer class labels (vector) or one-hot/soft rows (matrix). When
    ``predictions`` is the output of :func:`symnn.nonlinearities.softmax`, the cost is computed
    from the logits with a stable ``log_softmax``, so value and gradient stay finite for any
    logits (``log(softmax(z))`` taken literally gives ``-inf`` and NaN gradients once a
    probability underflows).
    """
    predictions = _check_matrix(predictions, "predictions")
    targets = pt.as_tensor_variable(targets)
    logits = _softmax_input(predictions)
    if logits is not None:
        return categorical_crossentropy_from_logits(logits, targets)
    if targets.type.dtype.startswith(("int", "uint")):
        return -pt.log(_pick(predictions, targets))
    return -pt.sum(targets * pt.log(predictions), axis=-1)


def categorical_crossentropy_from_logits(logits: TensorLike, targets: TensorLike) -> TensorVariable:
    """Cross-entropy computed from unnormalised logits with a stable ``log_softmax``.

    With integer labels this is one fused op (:func:`symnn.ops.softmax_cross_entropy`: one
    pass per row forward and backward, and a label outside ``[0, n_classes)`` raises).
    """
    logits = _check_matrix(logits, "logits")
    targets = pt.as_tensor_variable(targets)
    if targets.type.dtype.startswith(("int", "uint")):
        if targets.type.ndim != 1:
            raise SymnnValueError(f"integer targets must be a vector; got {targets.type}.")
        return softmax_cross_entropy(logits, targets)
    return -_pick(log_softmax(logits), targets)


def nll(probs: TensorLike, labels: TensorLike) -> TensorVariable:
    """Negative log-likelihood ``-log probs[i, labels[i]]`` for integer labels (per example),
    as in the Theano tutorial's logistic regression; use :func:`aggregate` for the mean."""
    labels = pt.as_tensor_variable(labels)
    if not labels.type.dtype.startswith(("int", "uint")):
        raise SymnnTypeError(f"labels must be integer class labels; got {labels.type}.")
    return categorical_crossentropy(probs, labels)


def binary_crossentropy(predictions: TensorLike, targets: TensorLike) -> TensorVariable:
    r"""Element-wise :math:`-t \log p - (1 - t) \log(1 - p)` for probabilities ``p``.

    When ``predictions`` is ``sigmoid(z)`` the cost is computed from ``z`` as
    ``t * softplus(-z) + (1 - t) * softplus(z)``, finite for any ``z``.
    """
    predictions = pt.as_tensor_variable(predictions)
    targets = pt.as_tensor_variable(targets)
    z = _sigmoid_input(predictions)
    if z is not None:
        return targets * pt.softplus(-z) + (1.0 - targets) * pt.softplus(z)
    return -(targets * pt.log(predictions) + (1.0 - targets) * pt.log1p(-predictions))


def squared_error(a: TensorLike, b: TensorLike) -> TensorVariable:
    """Element-wise ``(a - b) ** 2`` (the quadratic cost, before ``aggregate``)."""
    return pt.square(pt.as_tensor_variable(a) - pt.as_tensor_variable(b))


def half_squared_error(predictions: TensorLike, targets: TensorLike) -> TensorVariable:
    """Per example ``sum((p - t) ** 2) / 2`` over the outputs (scikit-learn's MLPRegressor
    objective, whose gradient is ``p - t``).

    >>> import numpy as np, pytensor.tensor as pt
    >>> p = pt.matrix("p", dtype="float64")
    >>> half_squared_error(p, pt.zeros_like(p)).eval({p: np.array([[1.0, 2.0]])})
    array([2.5])
    """
    return 0.5 * pt.sum(squared_error(predictions, targets), axis=-1)


def half_poisson_deviance(predictions: TensorLike, targets: TensorLike) -> TensorVariable:
    """Per example ``sum(t * log(t / p) - t + p)`` over the outputs (half the Poisson
    deviance: scikit-learn's ``MLPRegressor(loss="poisson")`` objective, with an exponential
    output whose gradient is ``p - t``).

    >>> import numpy as np, pytensor.tensor as pt
    >>> p = pt.matrix("p", dtype="float64")
    >>> half_poisson_deviance(p, pt.ones_like(p)).eval({p: np.array([[1.0, np.e]])})
    array([0.71828183])
    """
    predictions = pt.as_tensor_variable(predictions)
    targets = pt.as_tensor_variable(targets)
    terms = xlogy(targets, targets) - targets * pt.log(predictions) - targets + predictions
    return pt.sum(terms, axis=-1)


def binary_crossentropy_sum(predictions: TensorLike, targets: TensorLike) -> TensorVariable:
    """Per example :func:`binary_crossentropy` summed over the outputs (scikit-learn's loss
    for binary and multilabel MLPClassifier: one logistic output per label)."""
    return pt.sum(binary_crossentropy(predictions, targets), axis=-1)


def accuracy(predictions: TensorLike, targets: TensorLike) -> TensorVariable:
    """Fraction of correct predictions (a scalar).

    For a matrix of class scores the prediction is the row's argmax and ``targets`` are
    integer labels or one-hot rows; for a single column or a vector of probabilities the
    prediction is ``p > 0.5`` against 0/1 targets.
    """
    predictions = pt.as_tensor_variable(predictions)
    targets = pt.as_tensor_variable(targets)
    logits = _softmax_input(predictions)
    if logits is not None:  # same argmax, without computing the softmax
        predictions = logits
    if predictions.type.ndim == 2 and predictions.type.shape[-1] != 1:
        predicted = pt.argmax(predictions, axis=-1)
        if targets.type.ndim == 2:
            targets = pt.argmax(targets, axis=-1)
        return pt.mean(pt.eq(predicted, targets))
    predicted = pt.gt(predictions.flatten(), 0.5)
    return pt.mean(pt.eq(predicted, pt.round(targets.flatten())))


def aggregate(
    values: TensorLike, mode: str = "mean", weights: TensorLike | None = None
) -> TensorVariable:
    """Reduce per-example losses to a scalar: ``"mean"`` or ``"sum"``, optionally weighted.

    >>> import numpy as np, pytensor.tensor as pt
    >>> v = pt.vector("v", dtype="float64")
    >>> float(aggregate(v, "sum").eval({v: np.array([1.0, 2.0])}))
    3.0
    """
    mode = check_choice(mode, "mode", ["mean", "sum"])
    values = pt.as_tensor_variable(values)
    if weights is not None:
        values = values * weights
    return pt.mean(values) if mode == "mean" else pt.sum(values)


#: The losses whose targets are classes: a network trained with one predicts classes
#: (``Trainer.predict``); with any other loss it predicts values.
CLASSIFICATION_LOSSES = (
    "categorical_crossentropy", "crossentropy", "categorical_crossentropy_from_logits",
    "binary_crossentropy", "binary_crossentropy_sum",
)  # fmt: skip

#: Per-example losses by name: ``loss(predictions, targets) -> per-example values`` (the names
#: a ``Trainer``, the estimators and a saved file use).
LOSSES = {
    "categorical_crossentropy": categorical_crossentropy,
    "crossentropy": categorical_crossentropy,
    "categorical_crossentropy_from_logits": categorical_crossentropy_from_logits,
    "binary_crossentropy": binary_crossentropy,
    "binary_crossentropy_sum": binary_crossentropy_sum,
    "squared_error": squared_error,
    "half_squared_error": half_squared_error,
    "poisson": half_poisson_deviance,
}
