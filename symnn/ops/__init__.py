"""PyTensor ops that symnn adds, each with C code for the default backend.

- :mod:`~symnn.ops.softmax_xent`: fused softmax cross-entropy with integer labels and its
  gradient.
- :mod:`~symnn.ops.gather`: the minibatch gather of a training step, checking for NaN and
  infinity as it copies.
"""

from .gather import TakeRows, take_rows
from .softmax_xent import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad, softmax_cross_entropy

__all__ = [
    "SoftmaxCrossEntropy",
    "SoftmaxCrossEntropyGrad",
    "TakeRows",
    "softmax_cross_entropy",
    "take_rows",
]
