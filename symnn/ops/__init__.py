"""PyTensor ops that symnn adds, each with C code for the default backend.

- :mod:`~symnn.ops.softmax_xent`: fused softmax cross-entropy with integer labels and its
  gradient.
"""

from .softmax_xent import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad, softmax_cross_entropy

__all__ = ["SoftmaxCrossEntropy", "SoftmaxCrossEntropyGrad", "softmax_cross_entropy"]
