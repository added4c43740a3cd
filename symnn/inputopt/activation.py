"""Activation maximisation: the input that most excites a unit, for many units at once.

Row ``k`` of one compiled batch maximises unit ``units[k]`` (repeated ``n_starts`` times), so
all ten class units of a classifier take one compiled call. Regularisers (L2 decay, L1, total
variation, jitter, a diversity penalty across starts of the same unit) are part of the
objective; Gaussian blur is applied to the inputs every ``blur_every`` steps.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer
from ..utils import check_positive, describe
from .checks import annotate_rows
from .engine import SCIPY
from .maximize import check_ascent_options, maximize
from .objective import InputPenalties, _Graph, _graph, _penalties, _Rows
from .priors import PRIORS, GaussianPrior, MixturePrior, fitted_prior
from .realism import _realism
from .reference import Reference, as_reference
from .report import ActivationReport, UnitResult, _subset, _warn_if_stuck
from .starts import _Reference, _starts, check_starts
from .units import Target, layer_width, parse_units, unit_activations

__all__ = [
    "activation_maximization",
    "ActivationReport",
    "InputPenalties",
    "Reference",
    "UnitResult",
    "unit_activations",
    "parse_units",
    "layer_width",
    "AUTO_PRIOR_WEIGHTS",
    "DEFAULT_PRIOR_WEIGHT",
    "DISTINCT_MIN",
    "ASCENT_DEFAULTS",
    "ASCENT_OPTIONS",
]


#: the relative prior weights tried per unit when none is given (one compiled call): each
#: unit keeps the strongest under which it still beats its best reference input (measured:
#: docs/performance.md, "The same checks on a CNN")
AUTO_PRIOR_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


#: the least distinctness a chosen weight's picture keeps: its correlation with the typical
#: reference input and with every other unit's picture stays at most 1 - this (measured:
#: docs/performance.md, "Readable activation maximisation")
DISTINCT_MIN = 0.1


def _distinctness(x: np.ndarray, rows: _Rows, typical: np.ndarray | None) -> np.ndarray:
    """Per row, ``1 -`` its largest Pearson correlation with the typical reference input (the
    reference's mean) and with the pictures of the other units under the same weight: near
    0 for a picture the prior or another unit already shows, about 1 or more for its own."""
    z = x - x.mean(axis=1, keepdims=True)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    worst = np.full(len(x), -1.0)
    if typical is not None:
        t = typical - typical.mean()
        worst = np.maximum(worst, z @ (t / max(float(np.linalg.norm(t)), 1e-12)))
    for i in range(len(rows.weights_of)):
        same = np.flatnonzero(rows.weight_index == i)
        corr = z[same] @ z[same].T
        corr[rows.units[same][:, None] == rows.units[same][None, :]] = -1.0
        worst[same] = np.maximum(worst[same], corr.max(axis=1) if len(same) > 1 else -1.0)
    return 1.0 - worst


def _choose_weights(reached: np.ndarray, distinct: np.ndarray, rows: _Rows) -> np.ndarray:
    """Per (unit, start), the row of the strongest weight whose input still activates the
    unit beyond its best reference input and stays distinct (:data:`DISTINCT_MIN`); else
    the most distinct of those that activate it; else the weakest weight's row."""
    k = len(rows.weights_of)
    chosen = []
    for start in range(0, len(rows.units), k):
        ok = [i for i in range(start, start + k) if reached[i]]
        own = [i for i in ok if distinct[i] >= DISTINCT_MIN]
        if own:
            chosen.append(max(own, key=lambda i: rows.weight_index[i]))
        else:
            chosen.append(max(ok, key=lambda i: distinct[i]) if ok else start)
    return np.asarray(chosen)


def _keep_chosen_weights(graph: _Graph, result, rows: _Rows, acts, reference):
    """``(result, weights, distinctness)``: one row per unit and start, run with the prior
    weight chosen among its candidates (all rows when there was one candidate), and its
    distinctness among the kept rows (against the mean ``reference`` input too, if given)."""
    typical = None if reference is None else reference.data.mean(axis=0)
    distinct = _distinctness(np.asarray(result.x, dtype=np.float64), rows, typical)
    if len(rows.weights_of) == 1:
        return result, np.full(len(rows.weight_index), rows.weights_of[0]), distinct
    n = len(rows.units)
    activation = np.asarray(graph.measure(result.x.astype(graph.x.type.dtype))[0])
    reached = activation[np.arange(n), rows.units] > acts.max(axis=0)[rows.units]
    keep = _choose_weights(reached, distinct, rows)
    weights = np.asarray(rows.weights_of)[rows.weight_index[keep]]
    kept = _Rows(rows.units[keep], np.zeros(len(keep), dtype=int), (0.0,))
    final = _distinctness(np.asarray(result.x, dtype=np.float64)[keep], kept, typical)
    return _subset(result, keep), weights, final


def _prior_settings(density) -> dict[str, Any]:
    if density is None:
        return {"prior": None, "prior_weight": None}
    return {"prior": density[0].kind, "prior_weight": density[1] or "auto"}


#: activation maximisation's own defaults for :func:`maximize`'s options (the projected
#: methods also start from ``learning_rate=0.05``)
ASCENT_DEFAULTS = {"method": "adam", "steps": 200}

#: :func:`maximize`'s options that ``activation_maximization`` forwards unchanged (the others
#: it sets itself from the units, starts and penalties)
ASCENT_OPTIONS = tuple(
    name for name, p in inspect.signature(maximize).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name not in ("x0", "n_starts", "seed", "bounds", "mode",
                                                 "every")
)  # fmt: skip


def activation_maximization(
    network: Layer,
    units: Any = "all",
    *,
    layer: int | str = -1,
    preactivation: bool | None = None,
    probability: bool = False,
    spatial: Any = None,
    n_starts: int = 1,
    x0=None,
    seed: Any = 0,
    bounds=(0.0, 1.0),
    image_shape: tuple[int, ...] | None = None,
    penalties: InputPenalties | None = None,
    reference: Reference | Any = None,
    prior: str | GaussianPrior | MixturePrior | None = "auto",
    prior_weight: float | None = None,
    mode: Any = None,
    **ascent: Any,
) -> ActivationReport:
    """Maximise units of a layer, many units in one compiled call.

    The keywords are a published contract (code outside symnn calls them): what the target
    is (``layer``, ``preactivation``, ``probability``, ``spatial``), where the ascent starts
    (``n_starts``, ``x0``, ``seed``, ``bounds``), the image, the penalties, the reference data
    and the prior; :func:`maximize`'s own options pass through as ``**ascent``.

    Parameters
    ----------
    network
        A trained network (a :class:`~symnn.layers.Sequential` such as ``mlp(...)``).
    units
        Unit indices (``[0, 3]``, ``range(10)``, ``"0-9"``, ``"all"``); row ``k`` of the batch
        maximises ``units[k]``, each repeated ``n_starts`` times.
    layer
        Which layer: its position in ``network.layers`` (every layer counts, dropout and
        batch normalisation included; default the output layer) or its name. The units of
        a convolutional layer are its channels.
    preactivation
        Maximise ``x @ W + b`` before the nonlinearity. Default: True for a softmax output
        layer (the class logit) and for rectifier layers (relu, leaky_relu, elu, softplus: a
        unit that is off at the start gets no gradient otherwise), False otherwise.
        ``probability=True`` maximises the softmax probability of the class instead. Rows
        whose objective never changed are marked ``moved=False`` and warned about.
    spatial
        For an image layer, how a channel's map becomes one value: ``"mean"`` (default),
        ``"center"`` or a position ``(y, x)`` (see :func:`unit_activations`); refused for
        dense layers.
    x0
        Starts: an array (one row per unit and start), None (uniform in the box),
        ``"mean"`` (the mean reference input), ``"class-mean"`` (for class units, the mean
        reference input of the unit's class; needs reference labels) or ``"facets"``
        (the k-means centres of the unit's :data:`FACET_POOL` times ``n_starts`` most
        activating reference inputs, one start per facet, so the starts of a unit show its
        different facets; combine with ``diversity`` to keep them apart).
    seed, bounds, mode
        As for :func:`~symnn.inputopt.maximize` (``seed`` also draws the jitter and warps).
    image_shape
        The inputs' image shape, for ``tv``, ``blur_every``, ``jitter``, warps,
        ``precondition`` and the report.
    penalties
        An :class:`InputPenalties` (default none).
    reference
        A :class:`Reference` (inputs, their labels, ``top_k``, a ``judge``), or the inputs
        alone (e.g. the training set): each row then reports its unit's highest activation
        on them, the unit's ``top_k`` reference inputs (dataset examples) and realism figures:
        ``top_corr``, the correlation of the found input with the mean of those examples;
        ``nn_ratio``, its distance to the nearest reference input over the typical
        nearest-neighbour distance inside the reference set (about 1 for a realistic input,
        much more for noise); with labels, ``knn_label`` (the majority label of its 5 nearest
        reference inputs) and, for output units, ``class_corr`` (the correlation with the
        mean input of the unit's class); with a judge, ``judge_label``.
    prior, prior_weight
        A density prior on the input: ``"gaussian"`` (a :class:`~symnn.inputopt.priors.
        GaussianPrior` fitted to the reference inputs), ``"gmm"`` (a :class:`~symnn.inputopt.
        priors.MixturePrior`: ten diagonal Gaussians on the principal components), a fitted
        prior, or None (plain activation maximisation). ``"auto"`` (default) is ``"gmm"``
        when ``reference`` is given, else None; a prior named here is fitted once per
        reference content and reused (:func:`~symnn.inputopt.priors.fitted_prior`). The
        ascent maximises ``activation - prior_weight * penalty``, the penalty being about 0.5
        for a real input. ``prior_weight`` is relative to the unit's activation spread on the
        reference (its best minus its mean), so one value suits units of any scale. By default each
        unit and start runs with every weight of :data:`AUTO_PRIOR_WEIGHTS` in the same
        compiled call and keeps the strongest under which it still beats its best reference
        input and its picture stays its own: ``row.distinctness``, one minus its largest
        correlation with the mean reference input and with the other units' pictures, at
        least :data:`DISTINCT_MIN` (else the most distinct of those weights;
        ``row.prior_weight`` says which); without reference inputs (a fitted prior given)
        the weight is absolute, :data:`DEFAULT_PRIOR_WEIGHT` by default.
    **ascent
        :func:`~symnn.inputopt.maximize`'s options (:data:`ASCENT_OPTIONS`: ``steps``,
        ``learning_rate``, ``method``, ``tol``, ``blas_threads``, ``keep``), forwarded unchanged;
        the defaults here are :data:`ASCENT_DEFAULTS` and ``learning_rate=0.05`` for the
        projected methods.

    Examples
    --------
    >>> from symnn.datasets import load_digits
    >>> from symnn.layers import mlp
    >>> X = load_digits().X_train
    >>> report = activation_maximization(
    ...     mlp([64, 16, 10], rng=0), [0, 1], image_shape=(8, 8), steps=20,
    ...     penalties=InputPenalties(l2=0.01), reference=Reference(X, top_k=3),
    ... )
    >>> report.x.shape, len(report.rows[0].top_examples)
    ((2, 64), 3)
    """
    ascent, legacy = _split_options(ascent)
    target = Target.resolve(
        network, layer, preactivation=preactivation, probability=probability,
        image_shape=image_shape, spatial=spatial,
    )  # fmt: skip
    penalties = _penalties(penalties, legacy["penalties"], target.image_shape, ascent["method"])
    check_ascent_options(**ascent, every=penalties.every(target.image_shape))
    check_positive(n_starts, "n_starts", integer=True)
    reference = as_reference(reference, legacy["reference"])
    reference = reference and reference.checked(target.n_in, target.dtype)
    check_starts(x0, reference)
    density = _resolve_prior(prior, prior_weight, reference, target.n_in)
    if target.n_units() is not None:  # before compiling, when the layer says its width
        parse_units(units, target.n_units())
    graph = _graph(target, penalties, density, mode)
    with graph.lock:  # the graph's shared settings and functions are this call's
        unit_list = parse_units(units, graph.n_units)
        row_units = np.repeat(unit_list, n_starts)
        acts = graph.reference_activations(reference and reference.data)
        x0 = _starts(target, x0, row_units, seed, bounds, _Reference.of(reference, acts))
        rows = _Rows.expand(row_units, _weight_candidates(density, acts))
        graph.configure(rows, penalties, seed, graph.prior_weights(density, rows, acts))
        result = maximize(
            graph.objective, graph.x, x0=np.repeat(x0, len(rows.weights_of), axis=0),
            bounds=bounds, mode=mode, every=penalties.every(target.image_shape), **ascent,
        )  # fmt: skip
        result, chosen, distinct = _keep_chosen_weights(graph, result, rows, acts, reference)
        realism = _realism(reference, acts, target.is_output)
        report_rows = graph.rows(result, row_units, n_starts, realism)
        _record_weights(report_rows, chosen, density, distinct)
    if reference is not None:  # outside the graph's lock: its own compiled function
        annotate_rows(report_rows, network, result.x, reference, target.index, mode)
    _warn_if_stuck(report_rows)
    settings = dict(
        layer=target.index, preactivation=target.preactivation, probability=target.probability,
        spatial=spatial, method=result.method, steps=ascent["steps"],
        learning_rate=ascent.get("learning_rate"), **asdict(penalties),
        **_prior_settings(density), n_starts=n_starts, bounds=_bounds_setting(bounds),
    )  # fmt: skip
    return ActivationReport(unit_list, result.x, report_rows, result, target.image_shape, settings)


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict]]:
    """``(the ascent's options with this function's defaults, the deprecated keywords)``:
    penalties and ``top_k``/``judge`` given as keywords are taken with a warning."""
    penalty_names = {f.name for f in fields(InputPenalties)}
    legacy = {
        "penalties": {k: v for k, v in options.items() if k in penalty_names},
        "reference": {k: v for k, v in options.items() if k in ("top_k", "judge")},
    }
    ascent = {k: v for k, v in options.items() if k not in penalty_names | {"top_k", "judge"}}
    unknown = sorted(set(ascent) - set(ASCENT_OPTIONS))
    if unknown:
        raise SymnnTypeError(
            f"activation_maximization got an unexpected keyword {unknown[0]!r}; the ascent's "
            f"options are maximize's: {', '.join(ASCENT_OPTIONS)}."
        )
    ascent = {**ASCENT_DEFAULTS, **ascent}
    if ascent["method"] not in SCIPY:
        ascent.setdefault("learning_rate", 0.05)
    return ascent, legacy


def _bounds_setting(bounds: Any) -> list[float]:
    return [float(np.min(bounds[0])), float(np.max(bounds[1]))]


def _record_weights(rows: list[UnitResult], chosen: Any, density: Any, distinct: Any) -> None:
    """Each row's chosen relative prior weight (None without a prior) and distinctness."""
    for row, weight, d in zip(rows, chosen, distinct):
        row.prior_weight = None if density is None else float(weight)
        row.distinctness = float(d)


#: the prior weight when none is given (measured: docs/performance.md, "Readable activation
#: maximisation")
DEFAULT_PRIOR_WEIGHT = 2.0


def _resolve_prior(prior: Any, weight: Any, reference: Reference | None, width: int):
    """``(prior model, weight)`` or None."""
    if isinstance(prior, str) and prior == "auto":
        prior = "gmm" if reference is not None else None
    if prior is None:
        if weight is not None:
            raise SymnnValueError(f"prior_weight={weight!r} has no effect without a prior.")
        return None
    if isinstance(prior, str):
        if prior not in PRIORS:
            raise SymnnValueError(
                f"prior={prior!r} is not known; expected 'auto', {', '.join(map(repr, PRIORS))}, "
                "a fitted prior or None."
            )
        if reference is None:
            raise SymnnValueError(f"prior={prior!r} needs reference inputs to fit it to.")
        prior = fitted_prior(prior, reference.data)
    if not isinstance(prior, tuple(PRIORS.values())) or prior.width != width:
        raise SymnnTypeError(
            f"prior must be a GaussianPrior or MixturePrior of width {width}; got "
            f"{describe(prior)}."
        )
    if weight is None:
        return prior, None  # chosen per unit among AUTO_PRIOR_WEIGHTS
    return prior, float(check_positive(weight, "prior_weight", allow_zero=True))


def _weight_candidates(density, acts) -> tuple[float, ...]:
    """The relative prior weights each unit and start runs with."""
    if density is None:
        return (0.0,)
    if density[1] is not None:
        return (density[1],)
    return AUTO_PRIOR_WEIGHTS if acts is not None else (DEFAULT_PRIOR_WEIGHT,)
