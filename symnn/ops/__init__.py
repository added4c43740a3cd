"""PyTensor ops that symnn adds, each with C code for the default backend, and the rewrites
that put them into users' graphs.

- :mod:`~symnn.ops.softmax_xent`: fused softmax cross-entropy with integer labels and its
  gradient.
- :mod:`~symnn.ops.softmax`: softmax and log-softmax over the rows of a matrix.
- :mod:`~symnn.ops.indexing`: the ``m[arange(n), y]`` pick, its scatter, row increments.
- :mod:`~symnn.ops.gather`: the minibatch gather of a training step, checking for NaN and
  infinity as it copies.
- :mod:`~symnn.ops.conv`: convolution as im2col + GEMM and 2-D pooling (with numba versions
  in :mod:`~symnn.ops.conv_numba`); :mod:`~symnn.ops.corr`: a convolution's input gradient a
  cache-sized chunk of images at a time (symnn's C mode); :mod:`~symnn.ops.rowcorr`: one
  output channel per image, each image with its own kernel (an ascent of many channels).
- :mod:`~symnn.ops.cells`: the elementwise half of an LSTM or GRU step and its gradient.
- :mod:`~symnn.ops.dot_rows`: matrix products of one row by ``gemv``.
- :mod:`~symnn.ops.rewrites`: symnn's compile mode rewrites the idioms users write
  (``log_softmax(z)[arange(n), y]``, PyTensor's ``Softmax``, ...) into these ops.
"""

from . import cells, cells_numba, conv_numba, dot_rows, jax_ops, rewrites, rows_numba  # noqa: F401  (rewrites: registered for symnn's mode)
from .conv import Col2Im, Im2Col, Pool2D, Pool2DGrad, col2im, im2col, pool_2d
from .gather import TakeRows, take_rows
from .indexing import IncPick, IncRows, PickRows, inc_pick, inc_rows, pick_rows
from .rowcorr import RowCorr, RowCorrT, row_corr
from .softmax import LogSoftmaxRows, SoftmaxRows, log_softmax_rows, softmax_rows
from .softmax_xent import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad, softmax_cross_entropy

__all__ = [
    "Col2Im",
    "Im2Col",
    "Pool2D",
    "Pool2DGrad",
    "col2im",
    "im2col",
    "pool_2d",
    "IncPick",
    "IncRows",
    "LogSoftmaxRows",
    "PickRows",
    "RowCorr",
    "RowCorrT",
    "SoftmaxCrossEntropy",
    "SoftmaxCrossEntropyGrad",
    "SoftmaxRows",
    "TakeRows",
    "inc_pick",
    "inc_rows",
    "log_softmax_rows",
    "pick_rows",
    "row_corr",
    "softmax_cross_entropy",
    "softmax_rows",
    "take_rows",
]

cells_numba.register()
conv_numba.register()
rows_numba.register()
jax_ops.register()
