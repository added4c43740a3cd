import numpy as np
import pytest

from symnn import plot
from symnn.errors import SymnnValueError
from symnn.train import History


def _labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


def test_history_plot_has_labelled_axes_and_saves(tmp_path):
    h = History(
        [
            {
                "epoch": i,
                "loss": 1.0 / i,
                "accuracy": 0.5 + i / 10,
                "val_loss": 1.2 / i,
                "val_accuracy": 0.4 + i / 10,
            }
            for i in range(1, 4)
        ]
    )
    fig = plot.plot_history(h, tmp_path / "h.png", title="t")
    assert _labels(fig) == [("epoch", "loss"), ("epoch", "accuracy")]
    assert len(fig.axes[0].lines) == 2
    assert (tmp_path / "h.png").stat().st_size > 1000
    with pytest.raises(SymnnValueError, match="history is empty"):
        plot.plot_history(History())


def test_decision_boundary(tmp_path, rng):
    X = rng.standard_normal((30, 2))
    y = (X[:, 0] > 0).astype(int)
    fig = plot.plot_decision_boundary(
        lambda g: (g[:, 0] > 0).astype(int), X, y, tmp_path / "d.png", resolution=50
    )
    assert _labels(fig) == [("$x_1$", "$x_2$")]
    with pytest.raises(SymnnValueError, match="2 features"):
        plot.plot_decision_boundary(lambda g: g, np.zeros((3, 3)), np.zeros(3))


def test_image_grid_weights_and_comparison(tmp_path, rng):
    fig = plot.plot_image_grid(
        rng.random((12, 8, 8)), tmp_path / "g.png", titles=[str(i) for i in range(12)], ncols=5
    )
    ax = fig.axes[0]  # one mosaic: 3 rows, 5 columns of 8x8 images, room for the titles
    assert ax.images[0].get_array().shape == (3 * 11 - 3, 5 * 9 - 1)
    assert [t.get_text() for t in ax.texts] == [str(i) for i in range(12)]
    assert np.ma.is_masked(ax.images[0].get_array()[-1, -1])  # the empty cells stay blank
    fig = plot.plot_weights(rng.standard_normal((64, 30)), (8, 8), n=10)
    assert len(fig.axes[0].texts) == 10
    fig = plot.plot_comparison(
        [
            {"method": "GD", "seconds": 1.0, "accuracy": 0.8},
            {"method": "CG", "seconds": 2.0, "accuracy": 0.9},
        ],
        tmp_path / "c.png",
    )
    assert [ax.get_ylabel() for ax in fig.axes] == ["time [s]", "test accuracy"]
    with pytest.raises(SymnnValueError, match=r"shape \(n, height, width\)"):
        plot.plot_image_grid(np.zeros((3, 3)))


def test_history_plot_ticks_whole_epochs():
    h = History([{"epoch": i, "loss": 1.0 / i} for i in range(1, 4)])
    fig = plot.plot_history(h)
    ticks = fig.axes[0].get_xticks()
    visible = [t for t in ticks if 1 <= t <= 3]
    assert visible and all(float(t).is_integer() for t in visible), ticks
