"""The building blocks of real CNNs, written as small ``torch.nn`` modules (random weights;
torchvision's wheels here are CUDA builds, so none of it is used), exported with both of
PyTorch's exporters (TorchScript, and dynamo when onnxscript is installed), read with
``from_onnx``: outputs equal PyTorch's; written back with ``to_onnx`` and equal under onnx's
reference evaluator (and onnxruntime when installed)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

pytest.importorskip("onnx")
from onnx.reference import ReferenceEvaluator  # noqa: E402

from symnn.errors import SymnnValueError  # noqa: E402
from symnn.io import from_onnx, load_state_dict, to_onnx  # noqa: E402

SHAPE = (3, 16, 16)


def _blocks(torch):
    nn = torch.nn

    def cbr(cin, cout, k=3, stride=1, groups=1):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())  # fmt: skip

    class Basic(nn.Module):  # ResNet's basic block with a projection
        def __init__(self):
            super().__init__()
            self.a, self.b = cbr(3, 8, stride=2), nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1),
                                                               nn.BatchNorm2d(8))  # fmt: skip
            self.down = nn.Sequential(nn.Conv2d(3, 8, 1, 2), nn.BatchNorm2d(8))

        def forward(self, x):
            return torch.relu(self.b(self.a(x)) + self.down(x))

    class Bottleneck(nn.Module):  # ResNet-50's block
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(cbr(3, 4, 1), cbr(4, 4, 3), nn.Conv2d(4, 3, 1),
                                   nn.BatchNorm2d(3))  # fmt: skip

        def forward(self, x):
            return torch.relu(self.f(x) + x)

    class Inception(nn.Module):  # GoogLeNet: LRN stem, four branches
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, ceil_mode=True),
                                      nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0))  # fmt: skip
            self.b1 = nn.Conv2d(6, 4, 1)
            self.b3 = nn.Sequential(nn.Conv2d(6, 3, 1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1))
            self.b5 = nn.Sequential(nn.Conv2d(6, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2))
            self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(6, 2, 1))

        def forward(self, x):
            h = self.stem(x)
            return torch.relu(torch.cat([self.b1(h), self.b3(h), self.b5(h), self.bp(h)], 1))

    class Fire(nn.Module):  # SqueezeNet
        def __init__(self):
            super().__init__()
            self.squeeze = nn.Conv2d(3, 4, 1)
            self.e1, self.e3 = nn.Conv2d(4, 5, 1), nn.Conv2d(4, 5, 3, padding=1)

        def forward(self, x):
            s = torch.relu(self.squeeze(x))
            return torch.cat([torch.relu(self.e1(s)), torch.relu(self.e3(s))], 1)

    class Dense(nn.Module):  # DenseNet: a dense block of two layers, then a transition
        def __init__(self):
            super().__init__()
            self.l1 = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1))
            self.l2 = nn.Sequential(nn.BatchNorm2d(7), nn.ReLU(), nn.Conv2d(7, 4, 3, padding=1))
            self.trans = nn.Sequential(nn.BatchNorm2d(11), nn.ReLU(), nn.Conv2d(11, 6, 1),
                                       nn.AvgPool2d(2))  # fmt: skip

        def forward(self, x):
            h = torch.cat([x, self.l1(x)], 1)
            return self.trans(torch.cat([h, self.l2(h)], 1))

    class Shuffle(nn.Module):  # ShuffleNet's unit: grouped 1x1, shuffle, depthwise 3x3
        def __init__(self):
            super().__init__()
            self.g1, self.dw = cbr(3, 6, 1, groups=3), nn.Conv2d(6, 6, 3, 1, 1, groups=6)
            self.g2 = nn.Conv2d(6, 3, 1, groups=3)

        def forward(self, x):
            h = self.g1(x)
            n, c, hh, ww = h.shape
            h = h.view(n, 3, c // 3, hh, ww).transpose(1, 2).reshape(n, c, hh, ww)
            return torch.relu(self.g2(self.dw(h)) + x)

    class Inverted(nn.Module):  # MobileNetV2: expand, depthwise, project, ReLU6
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.Conv2d(3, 12, 1), nn.BatchNorm2d(12), nn.ReLU6(),
                                   nn.Conv2d(12, 12, 3, 1, 1, groups=12), nn.BatchNorm2d(12),
                                   nn.ReLU6(), nn.Conv2d(12, 3, 1), nn.BatchNorm2d(3))  # fmt: skip

        def forward(self, x):
            return x + self.f(x)

    class Vgg(nn.Module):  # VGG/AlexNet: conv stacks, pooling, an adaptive-pool head
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2),
            )  # fmt: skip
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5),
                                      nn.Linear(16, 10), nn.Softmax(dim=1))  # fmt: skip

        def forward(self, x):
            return self.head(self.features(x))

    return {"resnet_basic": Basic, "resnet_bottleneck": Bottleneck, "googlenet": Inception,
            "squeezenet": Fire, "densenet": Dense, "shufflenet": Shuffle,
            "mobilenet_v2": Inverted, "vgg": Vgg}  # fmt: skip


NAMES = ["resnet_basic", "resnet_bottleneck", "googlenet", "squeezenet", "densenet",
         "shufflenet", "mobilenet_v2", "vgg"]  # fmt: skip


def _module(torch, name, seed=0):
    torch.manual_seed(seed)
    module = _blocks(torch)[name]()
    for m in module.modules():  # statistics and affine terms that are not 0 and 1
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.5, 0.5)
    return module.eval()


def _export(torch, module, path, dynamo: bool, fold: bool = True):
    """``fold=False``: the settings that keep BatchNorm apart from the convolutions."""
    x = torch.zeros(2, *SHAPE)
    if dynamo:
        pytest.importorskip("onnxscript")
        torch.onnx.export(module, (x,), str(path), dynamo=True, optimize=fold,
                          dynamic_shapes={"x": {0: torch.export.Dim("N")}})  # fmt: skip
    else:
        keep = {} if fold else {"training": torch.onnx.TrainingMode.PRESERVE}
        torch.onnx.export(module, x, str(path), dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}}, **keep)  # fmt: skip


def _symnn(net, X):
    x = pt.matrix("x", dtype="float32")
    return pytensor.function([x], net(x, deterministic=True), mode="FAST_COMPILE")(X)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", NAMES)
def test_a_real_block_round_trips_through_onnx(name, dynamo, tmp_path):
    torch = import_torch()
    module = _module(torch, name)
    path = tmp_path / f"{name}.onnx"
    _export(torch, module, path, dynamo)
    X = np.random.default_rng(3).random((4, int(np.prod(SHAPE)))).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(X).reshape(4, *SHAPE)).numpy()
    net = from_onnx(path)
    got = _symnn(net, X)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-5)
    again = to_onnx(net, tmp_path / "again.onnx")
    (ref,) = ReferenceEvaluator(str(again)).run(None, {net.input_specs[0].name
                                                       if hasattr(net, "input_specs")
                                                       else "input": X})  # fmt: skip
    np.testing.assert_allclose(ref.reshape(want.shape), want, rtol=1e-4, atol=1e-5)
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(again), providers=["CPUExecutionProvider"])
    (ort,) = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(ort.reshape(want.shape), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", NAMES)
def test_a_state_dict_loads_by_name_into_the_imported_graph(name, dynamo, tmp_path):
    """Another module's weights (other seed) into the graph read from the file: its outputs
    become that module's, whatever order the graph holds the layers in."""
    torch = import_torch()
    path = tmp_path / f"{name}.onnx"
    _export(torch, _module(torch, name), path, dynamo, fold=False)
    net = from_onnx(path)
    other = _module(torch, name, seed=5)
    report = load_state_dict(net, {k: v.numpy() for k, v in other.state_dict().items()})
    assert not report.missing and not report.unexpected
    X = np.random.default_rng(4).random((3, int(np.prod(SHAPE)))).astype("float32")
    with torch.no_grad():
        want = other(torch.from_numpy(X).reshape(3, *SHAPE)).numpy()
    np.testing.assert_allclose(_symnn(net, X).reshape(want.shape), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_weights_an_exporter_folded_are_not_loaded_by_name(dynamo, tmp_path):
    """Both exporters fold BatchNorm into the convolution by default (dynamo keeps the
    convolution's key names for the folded values): loading would be wrong, so refused."""
    torch = import_torch()
    module = _module(torch, "resnet_basic")
    path = tmp_path / "folded.onnx"
    _export(torch, module, path, dynamo)
    net = from_onnx(path)
    before = [p.get_value() for p in net.get_params()]
    weights = {k: v.numpy() for k, v in module.state_dict().items()}
    for strict in (True, False):
        with pytest.raises(SymnnValueError, match=r"BatchNorm weights \['a.1', 'b.1', 'down.1'\]"
                                                  r".*folded.*TrainingMode.PRESERVE"):
            load_state_dict(net, weights, strict=strict)
    for p, value in zip(net.get_params(), before):
        np.testing.assert_array_equal(p.get_value(), value)
