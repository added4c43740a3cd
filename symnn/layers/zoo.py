"""Blocks and small networks people know, as :class:`Graph` builders: ResNet's basic block and
a small ResNet, GoogLeNet's Inception block. Each block is a function of a tensor returning a
tensor (layers called on layers), so blocks compose into any graph.

The layer order (and PyTorch's batch-norm epsilon, 1e-5) follows ``torchvision``'s
``BasicBlock`` and GoogLeNet's ``Inception``, so a PyTorch twin's ``state_dict`` loads with
:func:`symnn.io.load_state_dict` by order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..utils import as_rng
from .conv import Conv2D, GlobalAvgPool2D, MaxPool2D
from .dense import Activation, Dense
from .graph import Graph, Input
from .merge import Add, Concat
from .normalization import BatchNorm
from .shape import Reshape

__all__ = ["residual_block", "inception_block", "resnet"]

#: PyTorch's batch-norm epsilon (BatchNorm2d's default), so a PyTorch twin computes the same
TORCH_EPSILON = 1e-5


def _conv_bn(x, cin: int, cout: int, kernel: int, stride: int, name: str, rng) -> Any:
    conv = Conv2D(cin, cout, kernel, stride=stride, pad=kernel // 2, b=None, rng=rng,
                  name=f"{name}.conv", dtype=x.dtype)  # fmt: skip
    return BatchNorm(cout, epsilon=TORCH_EPSILON, name=f"{name}.bn", dtype=x.dtype)(conv(x))


def residual_block(x, cin: int, cout: int, *, stride: int = 1, name: str, rng: Any = None):
    """ResNet's basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``, the
    shortcut a strided 1x1 convolution with batch norm when the shape changes (He et al.,
    2016; ``torchvision.models.resnet.BasicBlock``)."""
    rng = as_rng(rng)
    h = _conv_bn(x, cin, cout, 3, stride, f"{name}.a", rng)
    h = Activation(cout, "relu", name=f"{name}.a.relu", dtype=x.dtype)(h)
    h = _conv_bn(h, cout, cout, 3, 1, f"{name}.b", rng)
    shortcut = x if stride == 1 and cin == cout else _conv_bn(x, cin, cout, 1, stride,
                                                              f"{name}.down", rng)  # fmt: skip
    total = Add(name=f"{name}.add")([h, shortcut])
    return Activation(cout, "relu", name=f"{name}.relu", dtype=x.dtype)(total)


def inception_block(x, cin: int, widths: Sequence[int], *, name: str, rng: Any = None):
    """GoogLeNet's Inception block (Szegedy et al., 2015): four branches, 1x1; 1x1 then 3x3;
    1x1 then 5x5; 3x3 max pooling then 1x1, concatenated on channels. ``widths`` is
    ``(c1, c3_reduce, c3, c5_reduce, c5, pool_proj)`` as in the paper's table."""
    c1, c3r, c3, c5r, c5, cp = widths
    rng = as_rng(rng)

    def conv(t, ci, co, k, label):
        return Conv2D(ci, co, k, pad=k // 2, activation="relu", rng=rng, name=f"{name}.{label}",
                      dtype=x.dtype)(t)  # fmt: skip

    b1 = conv(x, cin, c1, 1, "1x1")
    b3 = conv(conv(x, cin, c3r, 1, "3x3_reduce"), c3r, c3, 3, "3x3")
    b5 = conv(conv(x, cin, c5r, 1, "5x5_reduce"), c5r, c5, 5, "5x5")
    pooled = MaxPool2D(3, stride=1, pad=1, name=f"{name}.pool")(x)
    bp = conv(pooled, cin, cp, 1, "pool_proj")
    return Concat(axis=1, name=name)([b1, b3, b5, bp])


def resnet(image_shape: Sequence[int], n_classes: int, widths: Sequence[int] = (16, 32), *,
           rng: Any = None, dtype: Any = None) -> Graph:  # fmt: skip
    """A small ResNet for ``image_shape`` ``(C, H, W)`` inputs given flat: a 3x3 stem, one
    basic block per width (stride 2 from the second on), global average pooling and a
    softmax classifier.

    >>> net = resnet((1, 28, 28), 10, rng=0)
    >>> net.n_in, net.n_out, len(net.params)
    (784, 10, 20)
    """
    rng = as_rng(rng)
    channels = int(image_shape[0])
    n_in = 1
    for s in image_shape:
        n_in *= int(s)
    x = Input((n_in,), name="pixels", dtype=dtype)
    h = Reshape(tuple(image_shape), name="image")(x)
    h = _conv_bn(h, channels, widths[0], 3, 1, "stem", rng)
    h = Activation(widths[0], "relu", name="stem.relu", dtype=x.dtype)(h)
    cin = widths[0]
    for i, width in enumerate(widths):
        h = residual_block(h, cin, width, stride=1 if i == 0 else 2, name=f"block{i}", rng=rng)
        cin = width
    h = GlobalAvgPool2D(name="pool")(h)
    out = Dense(cin, n_classes, "softmax", rng=rng, name="classes", dtype=x.dtype)(h)
    return Graph(x, out, name="resnet")
