"""Every example's ``main`` on a tiny budget (as Lasagne's test_examples does), on the backend
a user running the example gets (symnn's default C mode, not the suite's FAST_COMPILE)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from _torch import import_torch

from symnn.layers import Graph

# every example's main on a small budget, compiled as `python examples/<name>.py` compiles it
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("users_backend")]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


def test_optimizer_comparison(tmp_path, capsys):
    results = load("optimizer_comparison").main(n_updates=3, batch_size=20, out=str(tmp_path))
    assert [r["method"] for r in results] == [
        "GD",
        "GD + momentum",
        "RMSprop",
        "Adam",
        "CG",
        "L-BFGS-B",
    ]
    assert (tmp_path / "comparison.png").is_file()
    assert "L-BFGS-B" in capsys.readouterr().out


def test_feedforward_relu():
    out = load("feedforward_relu").main(epochs=5)  # digits (conftest hides Fashion-MNIST)
    assert len(out["history"]) == 5
    assert out["test"]["accuracy"] >= 0.6  # chance is 0.1; measured 0.76
    assert out["history"].epochs[-1]["val_accuracy"] >= 0.6


def test_moons_decision_boundary(tmp_path, capsys):
    out = load("moons_decision_boundary").main(
        hidden_sizes=(1, 3, 50), maxiter=300, out=str(tmp_path)
    )
    acc = out["accuracies"]
    # what the example claims: one hidden unit draws a line, three or more bend around the moons
    assert acc[1] <= 0.9 and acc[3] >= 0.97 and acc[50] >= 0.97
    assert out["three_class_accuracy"] >= 0.9
    assert (tmp_path / "moons_hidden_sizes.png").is_file()
    assert (tmp_path / "moons_three_classes.png").is_file()
    assert f"wrote {tmp_path / 'moons_hidden_sizes.png'}" in capsys.readouterr().out


def test_matrix_network_on_digits_when_fashion_mnist_is_absent():
    out = load("matrix_network").main(epochs=5)
    assert set(out) == {"categorical_crossentropy", "squared_error"}
    last = out["categorical_crossentropy"].epochs[-1]
    assert last["val_accuracy"] >= 0.3 and last["test_accuracy"] >= 0.3  # chance 0.1
    assert out["squared_error"].epochs[-1]["test_accuracy"] >= 0.15


def test_matrix_network_on_fashion_mnist_when_present(tmp_path, monkeypatch):
    from test_datasets import _write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 50)):
        labels = np.arange(n) % 10
        images = (rng.random((n, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images, gz=True)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8), gz=True)
    monkeypatch.setenv("SYMNN_FASHION_MNIST", str(tmp_path))
    out = load("matrix_network").main(epochs=1)
    first = out["categorical_crossentropy"].epochs[0]
    assert {"val_accuracy", "test_accuracy"} <= set(first)


@pytest.mark.parametrize(
    "name",
    [
        "optimizer_comparison",
        "feedforward_relu",
        "moons_decision_boundary",
        "matrix_network",
        "input_optimization",
        "activation_maximization",
        "convnet",
        "resnet",
        "import_model",
        "pixel_rows",
        "char_lm",
        "feature_visualisation",
    ],
)
def test_every_example_has_help_with_defaults_and_data(name, monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    text = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "default:" in text and "Data:" in text


def test_input_optimization():
    out = load("input_optimization").main(budget=0.05)
    assert np.all((out["toy"]["clipped"].x >= 0) & (out["toy"]["clipped"].x <= 1))
    np.testing.assert_array_equal(out["toy"]["exact"].x, [0.0, 1.0])


@pytest.mark.slow
def test_input_optimization_full_budget_fixes_seed_004():
    out = load("input_optimization").toy()
    np.testing.assert_allclose(out["clipped"].x, np.tile([0.0, 1.0], (5, 1)), atol=1e-3)
    assert out["free"].x.min() < 0 or out["free"].x.max() > 1


def test_activation_maximization(tmp_path):
    out = load("activation_maximization").main(epochs=15, steps=100, out=str(tmp_path))
    assert out["digits"]["accuracy"] >= 0.9  # measured 0.956
    probabilities = [row.probability for row in out["digits"]["report"].rows]
    assert min(probabilities) >= 0.5, probabilities  # each its class; measured 0.75-1.0
    assert (tmp_path / "digits_classes.png").is_file()
    assert (tmp_path / "digits_report.json").is_file()


def test_convnet_learns_digits_and_maximises_channels_and_classes(tmp_path):
    out = load("convnet").main(epochs=5, steps=20, n_ref=500, out=str(tmp_path))
    assert out["accuracy"] > 0.85  # digits (conftest hides Fashion-MNIST)
    assert [type(la).__name__ for la in out["network"].layers][:3] == [
        "Reshape", "Conv2D", "MaxPool2D"
    ]  # fmt: skip
    assert out["beats_reference"]["classes"] >= 8
    assert (tmp_path / "digits_convnet_am.png").is_file()


@pytest.mark.slow
def test_resnet_learns_digits_and_maximises_a_block_and_the_classes_by_name(tmp_path):
    out = load("resnet").main(epochs=5, steps=20, n_ref=500, out=str(tmp_path))
    assert out["accuracy"] > 0.9  # digits (conftest hides Fashion-MNIST); measured 0.978
    assert out["beats_reference"]["classes"] >= 8  # measured 10
    assert isinstance(out["network"], Graph)
    assert (tmp_path / "digits_resnet_am.png").is_file()


def test_pixel_rows_reads_images_row_by_row_and_maximises_the_classes():
    out = load("pixel_rows").main(epochs=20, units=64, steps=10)
    assert out["accuracy"] > 0.9  # digits as 8 rows of 8 (conftest hides Fashion-MNIST); 0.956
    assert len(out["report"].rows) == 10
    x = out["report"].x
    assert x.shape == (10, 64) and x.min() >= 0 and x.max() <= 1  # the sequences in [0, 1]
    assert sum(bool(r.exceeds_reference) for r in out["report"].rows) >= 8


def test_char_lm_learns_the_licence_and_writes_from_it():
    text = load("char_lm").licence_text()[:6000]
    out = load("char_lm").main(epochs=4, units=32, n_chars=40, text=text)
    assert out["loss"] < 0.8 * np.log(len(out["alphabet"]))  # better than uniform guessing
    assert len(out["text"]) == 40 and set(out["text"]) <= set(out["alphabet"])


@pytest.mark.parametrize("torch_installed", [True, False])
def test_import_model_keeps_the_accuracy_it_had_elsewhere(torch_installed, tmp_path, monkeypatch):
    if torch_installed:
        import_torch()
    else:  # scikit-learn imported first: scipy's array-API check trips on torch = None
        import sklearn.neural_network  # noqa: F401

        monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails: the ONNX path
    out = load("import_model").main(epochs=3, steps=10, out=str(tmp_path))
    assert out["ours"] == pytest.approx(out["theirs"], abs=0.006)  # float32 vs float64 ties
    assert (tmp_path / "imported_am.png").is_file()
    assert len(out["classes"].rows) == 10 and len(out["units"].rows) == 8


def test_feature_visualisation_renders_classes_and_channels_under_three_parametrisations(
    tmp_path,
):
    out = load("feature_visualisation").main(epochs=10, steps=60, out=str(tmp_path))
    assert out["accuracy"] > 0.9  # digits (conftest hides Fashion-MNIST); measured 0.938
    assert set(out["scores"]) == {"pixel", "fourier", "maco"}
    for scores in out["scores"].values():
        assert 0 < scores["plausibility"] <= 1 and 0 <= scores["knn_correct"] <= 10
    assert all(v.shape == (10, 64) for v in out["channels"].values())
    assert (tmp_path / "feature_visualisation.png").is_file()
    for layer in ("conv0", "conv2"):  # each channel beside its dataset examples
        assert (tmp_path / f"feature_visualisation_{layer}.png").stat().st_size > 1000


@pytest.mark.slow
def test_feature_visualisation_of_an_imported_googlenet_shaped_onnx_graph(tmp_path):
    pytest.importorskip("onnx")
    vis = load("feature_visualisation").googlenet_channels(size=32, steps=3, n=2,
                                                           out=str(tmp_path))  # fmt: skip
    images = vis.images
    assert images.shape == (2, 3 * 32 * 32) and np.all(vis.values > 0)  # live channels
    assert 0 <= images.min() < images.max() <= 1 and not np.allclose(images[0], images[1])
    assert (tmp_path / "feature_visualisation_googlenet.png").stat().st_size > 1000
