"""Weights in PyTorch's layout into symnn networks: numpy fixtures (no torch needed), one test
with real torch modules (skipped without torch), the safetensors reader, bad input."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

from symnn import nonlinearities
from symnn.errors import SymnnValueError
from symnn.io import load_state_dict, read_safetensors, write_safetensors
from symnn.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    Reshape,
    Sequential,
    from_arch,
)  # fmt: skip


def cnn(flip=False):
    return Sequential([
        Reshape((1, 6, 6)),
        Conv2D(1, 3, 3, pad=1, activation="relu", rng=0, dtype="float64", flip_filters=flip),
        BatchNorm(3, epsilon=1e-5, dtype="float64"), MaxPool2D(2), Flatten(),
        Dense(27, 4, "softmax", rng=1, dtype="float64"),
    ])  # fmt: skip


def torch_layout(seed=0):
    """A state_dict of nn.Sequential(Conv2d(1,3,3,padding=1), ReLU, BatchNorm2d(3),
    MaxPool2d(2), Flatten, Linear(27, 4)) as numpy arrays."""
    rng = np.random.default_rng(seed)
    return {
        "0.weight": rng.normal(size=(3, 1, 3, 3)), "0.bias": rng.normal(size=3),
        "2.weight": rng.uniform(0.5, 2, 3), "2.bias": rng.normal(size=3),
        "2.running_mean": rng.normal(size=3), "2.running_var": rng.uniform(0.5, 2, 3),
        "2.num_batches_tracked": np.array(7),
        "5.weight": rng.normal(size=(4, 27)), "5.bias": rng.normal(size=4),
    }  # fmt: skip


def numpy_forward(sd, X):
    """PyTorch's computation of that network in eval mode, by numpy."""
    x = X.reshape(-1, 1, 6, 6)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    z = np.zeros((len(x), 3, 6, 6))
    for i in range(3):
        for j in range(3):
            z += np.einsum(
                "nhw,f->nfhw", xp[:, 0, i : i + 6, j : j + 6], sd["0.weight"][:, 0, i, j]
            )
    z = np.maximum(z + sd["0.bias"][None, :, None, None], 0)
    c = lambda v: v[None, :, None, None]  # noqa: E731
    z = (z - c(sd["2.running_mean"])) / np.sqrt(c(sd["2.running_var"]) + 1e-5)
    z = z * c(sd["2.weight"]) + c(sd["2.bias"])
    z = z.reshape(len(x), 3, 3, 2, 3, 2).max(axis=(3, 5)).reshape(len(x), -1)
    logits = z @ sd["5.weight"].T + sd["5.bias"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def outputs(net, X):
    x = pt.matrix("x", dtype="float64")
    return pytensor.function([x], net(x, deterministic=True), mode="FAST_COMPILE")(X)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("form", ["dict", "npz", "safetensors"])
def test_a_pytorch_state_dict_gives_pytorchs_outputs(form, flip, tmp_path):
    sd = torch_layout()
    source = sd
    if form == "npz":
        source = tmp_path / "w.npz"
        np.savez(source, **sd)
    elif form == "safetensors":
        source = tmp_path / "w.safetensors"
        write_safetensors({k: v for k, v in reversed(sd.items())}, source)  # any key order
    net = cnn(flip)
    report = load_state_dict(net, source)
    assert report.missing == [] and report.unexpected == []
    assert len(report.loaded) == 8
    X = np.random.default_rng(1).uniform(size=(5, 36))
    np.testing.assert_allclose(outputs(net, X), numpy_forward(sd, X), atol=1e-10)


def test_key_map_strict_and_a_partial_load():
    sd = torch_layout()
    renamed = {k.replace("5.", "head.").replace("0.", "features.0."): v for k, v in sd.items()}
    net = cnn()
    load_state_dict(net, renamed, key_map={5: "head", 1: "features.0"})
    np.testing.assert_allclose(net.layers[5].W.get_value(), sd["5.weight"].T)
    extra = {**sd, "6.weight": np.ones((2, 2))}
    with pytest.raises(SymnnValueError, match=r"keys not used \['6.weight'\]"):
        load_state_dict(cnn(), extra)
    partial = {k: v for k, v in sd.items() if k.startswith("0.")}
    net = cnn()
    before = net.layers[5].W.get_value()
    report = load_state_dict(net, partial, strict=False)
    assert report.missing == ["BatchNorm", "Dense"]
    np.testing.assert_array_equal(net.layers[5].W.get_value(), before)


def test_bad_sources_are_named_and_leave_the_network_untouched(tmp_path):
    net = cnn()
    before = [v.copy() for v in net.get_values()]
    sd = torch_layout()
    bad_shape = {**sd, "5.weight": np.ones((4, 26))}
    with pytest.raises(SymnnValueError, match=r"5.weight has shape \(4, 26\).*needs \(4, 27\)"):
        load_state_dict(net, bad_shape)
    missing = {k: v for k, v in sd.items() if k != "2.running_var"}
    with pytest.raises(SymnnValueError, match="2.running_var is missing"):
        load_state_dict(net, missing)
    with pytest.raises(SymnnValueError, match="finite"):
        load_state_dict(net, {**sd, "0.bias": np.array([np.nan, 0, 0])})
    pt_file = tmp_path / "model.pt"
    pt_file.write_bytes(b"PK\x03\x04")
    with pytest.raises(SymnnValueError, match="safetensors.torch.save_file"):
        load_state_dict(net, pt_file)
    with pytest.raises(SymnnValueError, match="key_map names 'nope'"):
        load_state_dict(net, sd, key_map={5: "nope"})
    for got, want in zip(net.get_values(), before):
        np.testing.assert_array_equal(got, want)


def test_safetensors_reader_against_the_format_and_bad_files(tmp_path):
    arrays = {"a": np.arange(6, dtype="float32").reshape(2, 3), "b": np.array([1, -2], "int64"),
              "c": np.zeros((0, 4), "float64")}  # fmt: skip
    path = tmp_path / "x.safetensors"
    write_safetensors(arrays, path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert raw[8 : 8 + n].startswith(b'{"a":{"dtype":"F32","shape":[2,3]')
    got = read_safetensors(path)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype
    # bfloat16: the top 16 bits of a float32
    bf = tmp_path / "bf.safetensors"
    header = b'{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}'
    bits = (np.array([1.5, -2.0], "float32").view(np.uint32) >> 16).astype("<u2").tobytes()
    bf.write_bytes(len(header).to_bytes(8, "little") + header + bits)
    np.testing.assert_array_equal(read_safetensors(bf)["w"], [1.5, -2.0])
    for broken, match in [
        (raw[:-5], "does not fit its byte range"),
        (raw[:6], "too short"),
        ((10**9).to_bytes(8, "little") + raw[8:], "truncated"),
        (raw[:8] + b"x" + raw[9:], "not valid JSON"),
    ]:
        path.write_bytes(broken)
        with pytest.raises(SymnnValueError, match=match):
            read_safetensors(path)


def test_real_torch_modules():
    torch = import_torch()
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(3), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(27, 4), nn.Softmax(1),
    )  # fmt: skip
    with torch.no_grad():
        model[2].running_mean.uniform_(-1, 1)
        model[2].running_var.uniform_(0.5, 2)
    model.eval()
    net = cnn()
    load_state_dict(net, {k: v.numpy() for k, v in model.state_dict().items()})
    X = np.random.default_rng(2).uniform(size=(4, 36))
    with torch.no_grad():
        want = model(torch.from_numpy(X).float().reshape(-1, 1, 6, 6)).double().numpy()
    np.testing.assert_allclose(outputs(net, X), want, atol=1e-5)


def test_the_report_pairs_each_source_key_with_a_parameter_and_notes_the_softmax():
    """A from_arch network ends with softmax, a PyTorch classifier with scores: the report
    says so (the weights load, the outputs differ by the softmax)."""
    torch = import_torch()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(36, 10),
    )  # fmt: skip
    net = from_arch("conv4x3,pool2,10", (8, 8), rng=0)
    report = load_state_dict(net, {k: v.numpy() for k, v in model.state_dict().items()})
    assert report.pairs == {
        "0.weight": "conv0.W", "0.bias": "conv0.b", "4.weight": "dense2.W", "4.bias": "dense2.b"
    }  # fmt: skip
    assert len(report.notes) == 1 and "applies softmax" in report.notes[0]
    X = np.random.default_rng(0).uniform(size=(5, 64))
    with torch.no_grad():
        scores = model(torch.from_numpy(X).float().reshape(-1, 1, 8, 8)).double()
    x = pt.matrix("x", dtype="float32")
    got = pytensor.function([x], net(x), mode="FAST_COMPILE")(X.astype("float32"))
    np.testing.assert_allclose(got, torch.softmax(scores, 1).numpy(), atol=1e-5)
    plain = from_arch("conv4x3,pool2,10", (8, 8), rng=0)
    plain.layers[-1].activation = nonlinearities.get(None)
    assert load_state_dict(plain, {k: v.numpy() for k, v in model.state_dict().items()}).notes == []


def test_onnx_without_the_onnx_package_says_how_to_install_it(monkeypatch, tmp_path):
    import sys

    from symnn.io import from_onnx

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(SymnnValueError, match=r"pip install 'symnn\[onnx\]'"):
        from_onnx(tmp_path / "m.onnx")
