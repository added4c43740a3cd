"""PyTensor ops that symnn adds, each with C code for the default backend, and the rewrites
that put them into users' graphs.

- :mod:`~symnn.ops.softmax_xent`: fused softmax cross-entropy with integer labels and its
  gradient.
- :mod:`~symnn.ops.softmax`: softmax and log-softmax over the rows of a matrix.
- :mod:`~symnn.ops.indexing`: the ``m[arange(n), y]`` pick, its scatter, row increments.
- :mod:`~symnn.ops.gather`: the minibatch gather of a training step, checking for NaN and
  infinity as it copies.
- :mod:`~symnn.ops.rewrites`: symnn's compile mode rewrites the idioms users write
  (``log_softmax(z)[arange(n), y]``, PyTensor's ``Softmax``, ...) into these ops.
"""

from . import rewrites  # noqa: F401  (registers the rewrites of symnn's compile mode)
from .gather import TakeRows, take_rows
from .indexing import IncPick, IncRows, PickRows, inc_pick, inc_rows, pick_rows
from .softmax import LogSoftmaxRows, SoftmaxRows, log_softmax_rows, softmax_rows
from .softmax_xent import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad, softmax_cross_entropy

__all__ = [
    "IncPick",
    "IncRows",
    "LogSoftmaxRows",
    "PickRows",
    "SoftmaxCrossEntropy",
    "SoftmaxCrossEntropyGrad",
    "SoftmaxRows",
    "TakeRows",
    "inc_pick",
    "inc_rows",
    "log_softmax_rows",
    "pick_rows",
    "softmax_cross_entropy",
    "softmax_rows",
    "take_rows",
]
