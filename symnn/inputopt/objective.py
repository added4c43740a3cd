"""The ascent graph of activation maximisation: the objective (the units' activations, the
input penalties and the density prior), the random jitter and warps of each step, and the
process-wide cache of the compiled step per network and configuration."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..backend import function
from ..backend.cache import COMPILED
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import attach_updates
from ..utils import as_rng, check_positive, describe
from .engine import SCIPY
from .priors import PRIORS
from .realism import _Realism
from .report import UnitResult
from .transforms import precondition, spectral_filter, warp_rows, warp_tables
from .units import Target


def _total_variation(img):
    dh = img[:, 1:, :] - img[:, :-1, :]
    dw = img[:, :, 1:] - img[:, :, :-1]
    eps = np.asarray(1e-8, dtype=img.dtype)
    return pt.sum(pt.sqrt(dh[:, :, :-1] ** 2 + dw[:, :-1, :] ** 2 + eps), axis=(1, 2))


@dataclass
class _Graph:
    x: Any
    objective: Any
    unit_index: Any  # shared int64 vector: the unit of each row
    same_unit: Any  # shared (n, n) mask of other starts of the same unit
    coef: dict[str, Any]  # shared regulariser coefficients
    measure: Any  # compiled x -> [activations, (probabilities)]
    n_units: int
    has_probs: bool
    jitter_rng: Any = None  # shared generator of the jitter shifts and warps
    prior: dict[str, Any] | None = None  # shared arrays of a Gaussian prior
    warp: dict[str, Any] | None = None  # shared warp tables (index, weight)
    image_shape: tuple[int, ...] | None = None
    lock: Any = field(default_factory=threading.RLock)  #: held for a whole call

    def configure(
        self, rows: _Rows, penalties: InputPenalties, seed: Any, prior: Any = None
    ) -> None:
        """Set the graph's shared settings for one call (the caller holds :attr:`lock`);
        ``prior`` is ``(GaussianPrior, per-row weights)`` for a graph built with one."""
        dtype = self.x.type.dtype
        n = len(rows.units)
        self.unit_index.set_value(rows.units)
        if self.jitter_rng is not None:  # the same seed gives the same shifts
            self.jitter_rng.set_value(np.random.default_rng(as_rng(seed).integers(2**31 - 1)))
        group = rows.units * len(rows.weights_of) + rows.weight_index  # one weight, one unit
        same = (group[:, None] == group[None, :]) & ~np.eye(n, dtype=bool)
        self.same_unit.set_value(same.astype(dtype))
        for name in ("l2", "l1", "tv", "diversity"):
            self.coef[name].set_value(np.asarray(getattr(penalties, name), dtype=dtype))
        if self.warp is not None:
            index, weight = warp_tables(self.image_shape, penalties.scale, penalties.rotate, seed)
            self.warp["index"].set_value(index)
            self.warp["weight"].set_value(weight.astype(dtype))
        if self.prior is not None:
            model, weights = prior
            for name, value in model.arrays(dtype).items():
                self.prior[name].set_value(value)
            self.prior["weight"].set_value(np.asarray(weights, dtype=dtype))

    @staticmethod
    def prior_weights(density, rows: _Rows, acts: np.ndarray | None):
        """``(prior, per-row weights)``: each row's relative weight times its unit's
        activation spread on the reference inputs (best minus mean), so that one weight
        suits units of any scale; without reference activations, the weight itself."""
        if density is None:
            return None
        model, _ = density
        relative = np.asarray(rows.weights_of)[rows.weight_index]
        if acts is None:
            return model, relative
        spread = np.maximum(acts.max(axis=0) - acts.mean(axis=0), 1e-6)
        return model, relative * spread[rows.units]

    def rows(self, result, row_units, n_starts: int, realism: _Realism | None) -> list[UnitResult]:
        """The report's rows: each start's activations, best and last, probability and, with
        ``reference``, the unit's best activation there, its ``top_k`` reference inputs and
        how much the found input looks like real data."""
        dtype, n = self.x.type.dtype, len(row_units)
        pick = (np.arange(n), row_units)
        measured = self.measure(result.x.astype(dtype))
        best = np.asarray(measured[0])[pick]
        probs = np.asarray(measured[1])[pick] if self.has_probs else [None] * n
        last = result.x_last if result.x_last is not None else result.x
        final = np.asarray(self.measure(last.astype(dtype))[0])[pick]
        acts = None if realism is None else realism.activations
        ref_max = None if acts is None else acts.max(axis=0)
        real = None if realism is None else realism.measure(result.x, row_units)
        rows = [
            UnitResult(
                unit=int(u),
                start=k % n_starts,
                final=float(final[k]),
                best=float(best[k]),
                reference_max=None if ref_max is None else float(ref_max[u]),
                exceeds_reference=None if ref_max is None else bool(best[k] > ref_max[u]),
                probability=None if probs[k] is None else float(probs[k]),
                at_bounds=float(result.at_bounds[k]),
                steps=result.n_steps,
                seconds=result.seconds,
                moved=bool(len(result.history) < 2 or np.ptp(result.history[:, k]) > 0),
            )
            for k, u in enumerate(row_units)
        ]
        for k, row in enumerate(rows if real is not None else ()):
            for name, value in real[k].items():
                setattr(row, name, value)
        return rows

    def reference_activations(self, reference: np.ndarray | None) -> np.ndarray | None:
        """Every unit's activation on each (checked) reference input."""
        if reference is None:
            return None
        chunks = [np.asarray(self.measure(reference[s : s + 4096])[0])
                  for s in range(0, len(reference), 4096)]  # fmt: skip
        return np.concatenate(chunks)


@dataclass(frozen=True)
class _Rows:
    """The rows of one call: each row's unit and the index of its prior weight in
    ``weights_of`` (several weights per unit and start when the weight is chosen per unit)."""

    units: np.ndarray
    weight_index: np.ndarray
    weights_of: tuple[float, ...]

    @classmethod
    def expand(cls, row_units: np.ndarray, weights: tuple[float, ...]) -> _Rows:
        k = len(weights)
        return cls(np.repeat(row_units, k), np.tile(np.arange(k), len(row_units)), weights)


@dataclass(frozen=True)
class _GraphKey:
    """What makes two activation-maximisation graphs of one network differ."""

    index: int
    preactivation: bool
    probability: bool
    image_shape: tuple[int, ...] | None
    jitter: int
    prior: str | None  #: the prior's kind (``PRIORS``), or None
    mode: str
    spatial: Any = None  #: how an image layer's channels are reduced (``unit_activations``)
    warp: bool = False  #: random scalings and rotations in the step
    precondition: bool = False  #: the gradient through a 1/f filter

    @classmethod
    def of(cls, target: Target, penalties: InputPenalties, density: Any, mode: Any) -> _GraphKey:
        """The graph a call needs (the network itself is the cache entry's owner)."""
        return cls(
            target.index, target.preactivation, target.probability, target.image_shape,
            int(penalties.jitter), density and density[0].kind, repr(mode), target.spatial,
            penalties.warps, bool(penalties.precondition),
        )  # fmt: skip


def _graph(target: Target, penalties: InputPenalties, density: Any, mode: Any) -> _Graph:
    """The compiled ascent graph of ``target`` with these penalties and prior, built once per
    network and configuration (kept in :data:`~symnn.backend.cache.COMPILED`)."""
    key = _GraphKey.of(target, penalties, density, mode)
    return COMPILED.get(target.network, ("ascent graph", key), lambda: _build(target, key, mode))


def _prior_arrays(kind: str, dtype: str) -> dict[str, Any]:
    shapes = {**PRIORS[kind].SHAPES, "weight": (1,)}
    return {
        name: pytensor.shared(np.zeros(shape, dtype=dtype), name=f"prior.{name}")
        for name, shape in shapes.items()
    }


def _shift_rows(x: Any, shift: Any, image_shape: tuple[int, ...]) -> Any:
    """Each row of ``x`` (an image of ``image_shape``, rows then columns first) shifted
    cyclically by its own ``shift[n] = (rows, columns)``, as ``np.roll`` on axes 0 and 1.

    One flat gather (C code, and its gradient a C scatter-add), so every row of a batch sees
    its own jitter.
    """
    height, width = image_shape[0], image_shape[1]
    depth = int(np.prod(image_shape[2:], dtype=int))
    n = x.shape[0]
    rows = (pt.arange(height)[None, :] - shift[:, 0][:, None]) % height  # (n, height)
    cols = (pt.arange(width)[None, :] - shift[:, 1][:, None]) % width  # (n, width)
    pixel = rows[:, :, None] * width + cols[:, None, :]  # (n, height, width)
    flat = pixel[:, :, :, None] * depth + pt.arange(depth)[None, None, None, :]
    flat = flat.reshape((n, -1)) + (pt.arange(n) * x.shape[1])[:, None]
    return x.reshape((-1,))[flat.reshape((-1,))].reshape(x.shape)


def _step_input(x, key: _GraphKey, target: Target):
    """What the step's objective sees: ``(x for the penalties, x for the network, the shared
    generator, the shared warp tables, the generator's update)``. With ``precondition`` both
    are ``x`` with its gradient filtered; warps then jitter, drawn per row, for the network."""
    dtype, shape = target.dtype, key.image_shape
    if key.precondition:
        x = precondition(x, pt.constant(spectral_filter(shape).astype(dtype)))
    inp, rng, warp = x, None, None
    if key.jitter or key.warp:  # one generator, advanced by every draw of the step
        rng = pt.random.shared_rng(seed=int(as_rng(0).integers(2**31 - 1)), name="jitter.rng")
    state = rng
    if key.warp:
        warp = {"index": pytensor.shared(np.zeros((1, target.n_in, 4), dtype=np.int64)),
                "weight": pytensor.shared(np.zeros((1, target.n_in, 4), dtype=dtype))}  # fmt: skip
        state, choice = state.integers(0, warp["index"].shape[0], size=(x.shape[0],))
        inp = warp_rows(inp, choice, warp["index"], warp["weight"])
    if key.jitter:
        jitter = int(key.jitter)
        state, shift = state.integers(-jitter, jitter + 1, size=(x.shape[0], 2))
        inp = _shift_rows(inp, shift, shape)
    return x, inp, rng, warp, ({} if rng is None else {rng: state})


def _penalty_terms(x, coef: dict, same_unit, image_shape):
    """The per-row sum of the input penalties (l2, l1, total variation, diversity)."""
    total = coef["l2"] * pt.sum(pt.square(x), axis=1) + coef["l1"] * pt.sum(pt.abs(x), axis=1)
    if image_shape is not None:
        total = total + coef["tv"] * _total_variation(x.reshape((x.shape[0], *image_shape)))
    sim = pt.dot(x, x.T) / np.asarray(x.type.shape[1], dtype=x.dtype)
    return total + coef["diversity"] * pt.sum(same_unit * sim, axis=1)


def _build(target: Target, key: _GraphKey, mode) -> _Graph:
    dtype = target.dtype
    x = pt.matrix("x", dtype=dtype, shape=(None, target.n_in))
    unit_index = pytensor.shared(np.zeros(1, dtype=np.int64), name="unit_index")
    same_unit = pytensor.shared(np.zeros((1, 1), dtype=dtype), name="same_unit")
    coef = {
        k: pytensor.shared(np.asarray(0.0, dtype=dtype), name=k)
        for k in ("l2", "l1", "tv", "diversity")
    }
    xo, inp, rng, warp, rng_updates = _step_input(x, key, target)
    objective = target.unit_per_row(inp, unit_index)
    objective = objective - _penalty_terms(xo, coef, same_unit, key.image_shape)
    prior = _prior_arrays(key.prior, dtype) if key.prior else None
    if prior is not None:
        penalty = PRIORS[key.prior].penalty(xo, prior, target.n_in)
        objective = objective - prior["weight"] * penalty
    objective = attach_updates(objective, rng_updates)
    units, output = target.activations(x, with_output=True)
    measure = function([x], [units, output] if target.has_probabilities else [units], mode=mode)
    n_units = target.n_units() or int(
        np.asarray(measure(np.zeros((1, target.n_in), dtype=dtype))[0]).shape[1]
    )
    return _Graph(
        x, objective, unit_index, same_unit, coef, measure, int(n_units),
        target.has_probabilities, rng, prior, warp=warp, image_shape=key.image_shape,
    )  # fmt: skip


def _blur(image_shape, sigma):
    from scipy.ndimage import gaussian_filter

    def blur(X):
        imgs = X.reshape((len(X), *image_shape))
        out = gaussian_filter(imgs, sigma=(0,) + (sigma,) * len(image_shape))
        return out.reshape(len(X), -1)

    return blur


@dataclass(frozen=True)
class InputPenalties:
    """The penalties and image regularisers of activation maximisation, as one value.

    ``l2``, ``l1``: decay of the input; ``tv``: total variation (images); ``blur_every``,
    ``blur_sigma``: a Gaussian blur (default 0.5 pixels) of every input every ``blur_every``
    steps; ``jitter``: random shifts of up to ``jitter`` pixels before each forward pass,
    drawn for each row on its own; ``scale``, ``rotate``: a random scaling by up to
    ``scale`` (relative) and rotation by up to ``rotate`` degrees per row and step (bilinear,
    :mod:`~symnn.inputopt.transforms`); ``precondition``: the gradient through a 1/f
    filter (:func:`~symnn.inputopt.transforms.spectral_filter`), low frequencies first;
    ``diversity``: a penalty on the similarity between starts of the same unit.

    >>> InputPenalties(l2=0.1, tv=0.3).needs_image
    True
    """

    l2: float = 0.0
    l1: float = 0.0
    tv: float = 0.0
    blur_every: int = 0
    blur_sigma: float | None = None
    jitter: int = 0
    diversity: float = 0.0
    scale: float = 0.0
    rotate: float = 0.0
    precondition: bool = False

    @property
    def needs_image(self) -> bool:
        return bool(self.tv or self.blur_every or self.jitter or self.warps or self.precondition)

    @property
    def warps(self) -> bool:
        """Whether the inputs are randomly scaled or rotated in each step."""
        return bool(self.scale or self.rotate)

    def check(self, image_shape: tuple[int, ...] | None, method: str) -> None:
        """Refuse values that are invalid or would have no effect, naming them."""
        for name in ("l2", "l1", "tv", "diversity", "jitter", "blur_every", "scale", "rotate"):
            check_positive(getattr(self, name), name, allow_zero=True)
        if self.scale >= 0.5 or self.rotate > 45:
            raise SymnnValueError(
                f"scale={self.scale!r}, rotate={self.rotate!r}: small transformations are "
                "expected (scale < 0.5, rotate <= 45 degrees)."
            )
        for name in ("tv", "blur_every", "jitter", "scale", "rotate", "precondition"):
            if getattr(self, name) and image_shape is None:
                value = getattr(self, name)
                raise SymnnValueError(
                    f"{name}={value!r} needs an image: pass image_shape (e.g. (28, 28))."
                )
        if self.blur_sigma is not None and not self.blur_every:
            raise SymnnValueError(
                f"blur_sigma={self.blur_sigma!r} has no effect without blur_every; pass "
                "blur_every=k to blur every k steps."
            )
        for name in ("jitter", "scale", "rotate", "precondition", "blur_every"):
            if getattr(self, name) and method in SCIPY:
                raise SymnnValueError(
                    f"{name}={getattr(self, name)!r} has no effect with method={method!r} "
                    "(scipy needs one fixed objective); use a projected method such as 'adam'."
                )

    def every(self, image_shape) -> tuple[int, Any] | None:
        """The blur as ``maximize``'s ``every`` hook."""
        sigma = 0.5 if self.blur_sigma is None else float(self.blur_sigma)
        return (int(self.blur_every), _blur(image_shape, sigma)) if self.blur_every else None


def _penalties(
    penalties: InputPenalties | None, legacy: dict[str, Any], image_shape: Any, method: str
) -> InputPenalties:
    """The call's :class:`InputPenalties`, checked against the image shape and method;
    ``legacy`` holds penalties given as keywords (deprecated)."""
    if legacy:
        given = ", ".join(f"{k}={v!r}" for k, v in legacy.items())
        warnings.warn(
            f"activation_maximization({given}) is deprecated (goes in 0.3); pass "
            f"penalties=InputPenalties({given}).",
            DeprecationWarning,
            stacklevel=3,
        )
        if penalties is not None:
            raise SymnnValueError(
                f"penalties={penalties!r} and {given}: pass penalties=InputPenalties(...) only."
            )
        penalties = InputPenalties(**legacy)
    if penalties is None:
        penalties = InputPenalties()
    if not isinstance(penalties, InputPenalties):
        raise SymnnTypeError(f"penalties must be an InputPenalties; got {describe(penalties)}.")
    penalties.check(image_shape, method)
    return penalties
