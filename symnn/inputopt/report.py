"""What activation maximisation returns: one row per unit and start, the inputs, the
settings, as a table or JSON."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import SymnnValueError
from .maximize import MaximizeResult


def _subset(result: MaximizeResult, keep: np.ndarray) -> MaximizeResult:
    """``result`` restricted to the rows ``keep``."""
    return replace(
        result,
        x=result.x[keep],
        value=result.value[keep],
        history=result.history[:, keep] if result.history.ndim == 2 else result.history,
        at_bounds=result.at_bounds[keep],
        x_last=None if result.x_last is None else result.x_last[keep],
    )


@dataclass
class ActivationReport:
    """Inputs found per (unit, start) and a per-row report (:class:`UnitResult` rows)."""

    units: np.ndarray
    x: np.ndarray
    rows: list[UnitResult]
    result: MaximizeResult
    image_shape: tuple[int, ...] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def images(self) -> np.ndarray:
        """The inputs reshaped to ``image_shape`` (for plotting)."""
        if self.image_shape is None:
            raise SymnnValueError("no image_shape was given; the inputs are not images.")
        return self.x.reshape((len(self.x), *self.image_shape))

    def to_json(self) -> dict[str, Any]:
        """Plain numbers and lists for ``json.dump``."""
        return {
            "settings": self.settings,
            "units": [r.as_dict() for r in self.rows],
            "seconds": self.result.seconds,
            "steps": self.result.n_steps,
            "method": self.result.method,
        }

    def to_table(self) -> str:
        """The per-row report as a fixed-width text table."""
        cols = [
            ("unit", "unit", "{:>4d}"),
            ("start", "start", "{:>5d}"),
            ("final", "final", "{:>9.3f}"),
            ("best", "best", "{:>9.3f}"),
            ("reference_max", "ref max", "{:>9.3f}"),
            ("top_corr", "top corr", "{:>8.2f}"),
            ("nn_ratio", "nn ratio", "{:>8.2f}"),
            ("class_corr", "class corr", "{:>10.2f}"),
            ("knn_label", "5-NN", "{!s:>5}"),
            ("judge_label", "judge", "{!s:>5}"),
            ("prior_weight", "prior w", "{:>7.1f}"),
            ("probability", "p(class)", "{:>8.4f}"),
            ("at_bounds", "at bounds", "{:>9.1%}"),
            ("steps", "steps", "{:>5d}"),
            ("seconds", "seconds", "{:>7.2f}"),
        ]
        cols = [c for c in cols if any(r.get(c[0]) is not None for r in self.rows)]
        widths = [max(len(h), len(f.format(0 if "d}" in f else 0.0))) for _, h, f in cols]
        lines = ["  ".join(h.rjust(w) for (_, h, _), w in zip(cols, widths))]
        for r in self.rows:
            cells = []
            for (k, _, f), w in zip(cols, widths):
                v = r.get(k)
                cells.append(("-" if v is None else f.format(v)).rjust(w))
            lines.append("  ".join(cells))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_table()

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


@dataclass
class UnitResult:
    """One row of an :class:`ActivationReport`: one start of one unit. Also reads like a
    dict (``row["best"]``)."""

    unit: int
    start: int
    final: float  #: the unit's activation at the last iterate
    best: float  #: its activation at the returned (best) input
    reference_max: float | None  #: its highest activation on the reference inputs
    exceeds_reference: bool | None
    probability: float | None  #: the class probability (softmax output layers)
    at_bounds: float  #: fraction of the input's coordinates on a bound
    steps: int
    seconds: float
    moved: bool = True  #: False when the objective never changed (no gradient reached it)
    top_examples: list[int] | None = None  #: the unit's top reference inputs (indices)
    top_corr: float | None = None  #: Pearson correlation with the mean of those inputs
    nn_ratio: float | None = None  #: nearest reference distance / typical NN distance
    prior_weight: float | None = None  #: the relative weight of the density prior used
    class_corr: float | None = None  #: correlation with the mean reference input of its class
    knn_label: Any = None  #: the majority label of its 5 nearest reference inputs
    judge_label: Any = None  #: the label the ``judge`` gives it
    #: per layer up to the target, the correlation of its activations with its top reference
    #: inputs' mean (:func:`~symnn.inputopt.checks.path_similarity`)
    path_corr: list[float] | None = None
    #: the first layer where it leaves its top reference inputs' path (-1: it never does)
    path_leaves_at: int | None = None
    #: mean cosine of its penultimate features with its class's (else its top) reference inputs
    plausibility: float | None = None
    #: 1 - its largest correlation with the typical reference input and with the other units'
    #: inputs (near 0: the prior's picture or another unit's, not its own)
    distinctness: float | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _warn_if_stuck(rows: list[UnitResult]) -> None:
    stuck = sorted({r.unit for r in rows if not r.moved})
    if stuck:
        warnings.warn(
            f"symnn: the objective of unit(s) {stuck[:20]}{' ...' if len(stuck) > 20 else ''} "
            "never changed during the ascent (no gradient reached the input; e.g. a unit that "
            "is off everywhere near its start). Their rows are marked moved=False; try "
            "preactivation=True, other starts (x0) or more steps.",
            RuntimeWarning,
            stacklevel=3,
        )
