"""Figures: training curves, decision boundaries, image grids, optimiser comparisons.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot, no display needed,
no global figure state), returns it, and saves a PNG when ``path`` is given. No maths here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .errors import SymnnValueError
from .train.history import History

__all__ = [
    "plot_history",
    "plot_decision_boundary",
    "plot_image_grid",
    "plot_image_rows",
    "plot_comparison",
    "plot_weights",
]


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def plot_history(
    history: History, path: str | os.PathLike | None = None, *, title: str | None = None
) -> Figure:
    """Loss (and accuracy, when recorded) per epoch, training and validation."""
    if not len(history):
        raise SymnnValueError("history is empty; train for at least one epoch first.")
    panels = [m for m in ("loss", "accuracy") if m in history.metrics]
    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    epochs = history["epoch"] if "epoch" in history.metrics else list(range(1, len(history) + 1))
    for i, metric in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.plot(epochs, history[metric], marker="o", ms=3, label=f"training {metric}")
        if f"val_{metric}" in history.metrics:
            ax.plot(
                epochs, history[f"val_{metric}"], marker="s", ms=3, label=f"validation {metric}"
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(metric)
        if metric == "loss" and min(history[metric]) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
    resolution: int = 300,
) -> Figure:
    """Filled class regions of ``predict`` over a grid around 2-D data ``X``, with the points."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise SymnnValueError(f"X must have 2 features to draw a decision boundary; got {X.shape}.")
    pad = 0.5
    (x0, y0), (x1, y1) = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.c_[gx.ravel(), gy.ravel()].astype(X.dtype)
    zz = np.asarray(predict(grid)).reshape(gx.shape)
    fig = ax.figure if ax is not None else Figure(figsize=(5, 4.2), layout="constrained")
    ax = ax or fig.add_subplot(1, 1, 1)
    ax.contourf(gx, gy, zz, alpha=0.35, cmap="Spectral", levels=np.arange(zz.max() + 2) - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="Spectral", s=16, edgecolors="k", linewidths=0.4)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _mosaic(cells: list[list[np.ndarray | None]], gaps: tuple[int, int]) -> np.ndarray:
    """Images tiled in one array with ``gaps`` (rows, columns) blank (NaN) pixels between
    them; a None cell stays blank."""
    h, w = next(c.shape for row in cells for c in row if c is not None)
    (gy, gx), nrows, ncols = gaps, len(cells), len(cells[0])
    out = np.full((nrows * (h + gy) - gy, ncols * (w + gx) - gx), np.nan)
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            if image is not None:
                out[r * (h + gy) : r * (h + gy) + h, c * (w + gx) : c * (w + gx) + w] = image
    return out


def _draw_mosaic(fig: Figure, cells, *, cmap: str, vmin, vmax, rect, titled: bool) -> Any:
    """One axes showing ``cells`` as a mosaic (one image to draw: fast for many cells);
    returns it and the pitch (rows, columns) of the cells in pixels."""
    h, w = next(c.shape for row in cells for c in row if c is not None)
    gap = max(1, round(max(h, w) / 8))
    gaps = (gap + (max(2, round(0.3 * h)) if titled else 0), gap)  # room for a title
    ax = fig.add_axes(rect)
    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(_mosaic(cells, gaps), cmap=colours, vmin=vmin, vmax=vmax,
              interpolation="nearest", aspect="equal")  # fmt: skip
    ax.set_axis_off()
    return ax, (h + gaps[0], w + gaps[1])


def plot_image_grid(
    images: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    title: str | None = None,
) -> Figure:
    """Images ``(n, h, w)`` in a grid, each with an optional title above it.

    The grid is one axes showing one mosaic image (so a grid of hundreds draws as fast as
    one image); ``vmin``/``vmax`` None scale each image alone.

    >>> fig = plot_image_grid(np.zeros((12, 4, 4)), titles=[str(i) for i in range(12)], ncols=5)
    >>> fig.axes[0].images[0].get_array().shape, [t.get_text() for t in fig.axes[0].texts][:3]
    ((18, 24), ['0', '1', '2'])
    """
    images = np.asarray(images, dtype=float)
    if images.ndim != 3:
        raise SymnnValueError(f"images must have shape (n, height, width); got {images.shape}.")
    n = len(images)
    ncols = ncols or min(n, 10)
    nrows = math.ceil(n / ncols)
    if vmin is None or vmax is None:  # each image on its own scale
        lo = images.min(axis=(1, 2), keepdims=True)
        hi = images.max(axis=(1, 2), keepdims=True)
        images, vmin, vmax = (images - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0
    cells = [[images[r * ncols + c] if r * ncols + c < n else None for c in range(ncols)]
             for r in range(nrows)]  # fmt: skip
    h, w = images.shape[1:]
    top = 0.4 if title else 0.1
    fig = Figure(figsize=(1.35 * ncols, 1.55 * nrows + top))
    height = 1.55 * nrows / (1.55 * nrows + top)
    ax, (dy, dx) = _draw_mosaic(fig, cells, cmap=cmap, vmin=vmin, vmax=vmax,
                                rect=(0.01, 0.01, 0.98, height - 0.02),
                                titled=titles is not None)  # fmt: skip
    if titles is not None:
        for i in range(n):
            r, c = divmod(i, ncols)
            ax.text(c * dx + (w - 1) / 2, r * dy - 0.8, str(titles[i]), fontsize=8,
                    ha="center", va="bottom", clip_on=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_image_rows(
    rows: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike | None = None,
    *,
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Rows of images side by side, each row ``(label, images (n, h, w))`` with the same
    ``n`` (e.g. per class: plain and prior activation maximisation and dataset examples),
    ``titles`` over the columns. One mosaic image, as in :func:`plot_image_grid`.

    >>> fig = plot_image_rows([("a", np.zeros((3, 4, 4))), ("b", np.ones((3, 4, 4)))])
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['a', 'b']
    """
    arrays = [np.asarray(images, dtype=float) for _, images in rows]
    if not arrays or any(a.ndim != 3 or len(a) != len(arrays[0]) for a in arrays):
        raise SymnnValueError("rows must be (label, images (n, height, width)) with one n.")
    nrows, ncols = len(arrays), len(arrays[0])
    h, w = arrays[0].shape[1:]
    top = 0.4 if title else 0.15
    fig = Figure(figsize=(1.2 * ncols + 0.8, 1.25 * nrows + top))
    height = 1.25 * nrows / (1.25 * nrows + top)
    left = 0.8 / (1.2 * ncols + 0.8)
    ax, (dy, dx) = _draw_mosaic(fig, [list(a) for a in arrays], cmap="gray", vmin=0.0,
                                vmax=1.0, rect=(left, 0.01, 0.99 - left, height - 0.02),
                                titled=False)  # fmt: skip
    for r, (label, _) in enumerate(rows):
        ax.text(-1.0, r * dy + (h - 1) / 2, label, fontsize=8, ha="right", va="center")
    if titles is not None:
        for c in range(ncols):
            ax.text(c * dx + (w - 1) / 2, -0.8, str(titles[c]), fontsize=8,
                    ha="center", va="bottom", clip_on=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_weights(
    W: np.ndarray,
    image_shape: tuple[int, int],
    path: str | os.PathLike | None = None,
    *,
    n: int = 20,
    title: str | None = "first-layer weights",
) -> Figure:
    """The first ``n`` columns of a first-layer weight matrix as images (each scaled alone)."""
    W = np.asarray(W)
    cols = W[:, :n].T.reshape((-1, *image_shape))
    lo = cols.min(axis=(1, 2), keepdims=True)
    hi = cols.max(axis=(1, 2), keepdims=True)
    scaled = (cols - lo) / np.maximum(hi - lo, 1e-12)
    return plot_image_grid(
        scaled, path, titles=[f"unit {i}" for i in range(len(cols))], cmap="coolwarm", title=title
    )


def plot_comparison(
    results: Sequence[dict[str, Any]], path=None, *, title: str | None = "optimiser comparison"
) -> Figure:
    """Bars of seconds and accuracy per method from ``[{"method", "seconds", "accuracy"}]``."""
    if not results:
        raise SymnnValueError("results is empty.")
    names = [r["method"] for r in results]
    fig = Figure(figsize=(max(7.0, 1.1 * len(names) * 2), 3.8), layout="constrained")
    for i, (key, label) in enumerate((("seconds", "time [s]"), ("accuracy", "test accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        values = [r[key] for r in results]
        bars = ax.bar(range(len(names)), values, color=f"C{i}")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.bar_label(bars, fmt="%.3g" if key == "seconds" else "%.3f", fontsize=8)
        if key == "accuracy":
            ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
