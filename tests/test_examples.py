"""Every example's ``main`` on a tiny budget (as Lasagne's test_examples does)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

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
    out = load("feedforward_relu").main(epochs=2, n_train=300)
    assert len(out["history"]) == 2 and 0.0 <= out["test"]["accuracy"] <= 1.0


def test_moons_decision_boundary(tmp_path):
    out = load("moons_decision_boundary").main(hidden_sizes=(1, 5), maxiter=30, out=str(tmp_path))
    assert set(out["accuracies"]) == {1, 5}
    assert (tmp_path / "moons_hidden_sizes.png").is_file()
    assert (tmp_path / "moons_three_classes.png").is_file()


def test_matrix_network():
    out = load("matrix_network").main(epochs=1, n_train=200)
    assert set(out) == {"categorical_crossentropy", "squared_error"}
    assert "test_accuracy" in out["squared_error"].epochs[0]


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
    out = load("activation_maximization").main(epochs=1, steps=5, n_train=200, out=str(tmp_path))
    assert "digits" in out and (tmp_path / "digits_classes.png").is_file()
    assert (tmp_path / "digits_report.json").is_file()
