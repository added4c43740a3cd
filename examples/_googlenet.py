"""A GoogLeNet-shaped ONNX file written with ``onnx.helper`` (no PyTorch needed): the stem
(7x7/2 convolution, max pooling, LRN, 1x1 and 3x3 convolutions, LRN, max pooling) and the
Inception blocks 3a, 3b, (pool) 4a with GoogLeNet's widths, He-scaled random weights. Node
names are the block names (``mixed4a`` is the Concat of block 4a), so an objective can name
them after :func:`symnn.io.from_onnx` reads the file."""

from __future__ import annotations

import numpy as np

#: GoogLeNet's Inception widths: 1x1; 3x3 reduce, 3x3; 5x5 reduce, 5x5; pool projection
WIDTHS = {"mixed3a": (192, 64, 96, 128, 16, 32, 32), "mixed3b": (256, 128, 128, 192, 32, 96, 64),
          "mixed4a": (480, 192, 96, 208, 16, 48, 64)}  # fmt: skip


class _Builder:
    """Nodes and initializers of one graph; each method adds nodes and returns the output."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.weights = [], []

    def conv_relu(self, name: str, x: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
        from onnx import helper, numpy_helper

        w = self.rng.normal(0, np.sqrt(2 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        b = np.full(cout, 0.01, np.float32)
        self.weights += [numpy_helper.from_array(w, f"{name}.weight"),
                         numpy_helper.from_array(b, f"{name}.bias")]  # fmt: skip
        self.nodes += [
            helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [f"{name}.conv"],
                             name=name, kernel_shape=[k, k], strides=[stride] * 2,
                             pads=[k // 2] * 4),  # fmt: skip
            helper.make_node("Relu", [f"{name}.conv"], [f"{name}.out"], name=f"{name}.relu"),
        ]
        return f"{name}.out"

    def max_pool(self, name: str, x: str, stride: int) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node("MaxPool", [x], [name], name=name,
                                           kernel_shape=[3, 3], strides=[stride] * 2,
                                           pads=[1, 1, 1, 1]))  # fmt: skip
        return name

    def lrn(self, name: str, x: str) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node("LRN", [x], [name], name=name, size=5, alpha=1e-4,
                                           beta=0.75, bias=1.0))  # fmt: skip
        return name

    def inception(self, name: str, x: str, cin, a, b0, b1, c0, c1, d) -> str:
        from onnx import helper

        branches = [
            self.conv_relu(f"{name}.1x1", x, cin, a, 1),
            self.conv_relu(f"{name}.3x3", self.conv_relu(f"{name}.3x3r", x, cin, b0, 1), b0, b1, 3),
            self.conv_relu(f"{name}.5x5", self.conv_relu(f"{name}.5x5r", x, cin, c0, 1), c0, c1, 5),
            self.conv_relu(f"{name}.proj", self.max_pool(f"{name}.pool", x, 1), cin, d, 1),
        ]
        self.nodes.append(helper.make_node("Concat", branches, [name], name=name, axis=1))
        return name


def googlenet_onnx(size: int = 224, seed: int = 0) -> bytes:
    """The serialised ONNX model of GoogLeNet up to block 4a on ``3 x size x size`` images
    (batch axis ``N``), random weights drawn from ``seed``."""
    from onnx import TensorProto, helper

    g = _Builder(seed)
    x = g.conv_relu("conv1", "image", 3, 64, 7, stride=2)
    x = g.lrn("lrn1", g.max_pool("pool1", x, 2))
    x = g.conv_relu("conv2", g.conv_relu("conv2r", x, 64, 64, 1), 64, 192, 3)
    x = g.max_pool("pool2", g.lrn("lrn2", x), 2)
    x = g.inception("mixed3b", g.inception("mixed3a", x, *WIDTHS["mixed3a"]), *WIDTHS["mixed3b"])
    x = g.inception("mixed4a", g.max_pool("pool3", x, 2), *WIDTHS["mixed4a"])
    side = size
    for _ in range(4):  # the stride-2 convolution and three stride-2 poolings
        side = -(-side // 2)
    graph = helper.make_graph(
        g.nodes, "googlenet_to_4a",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 512, side, side])], g.weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()
