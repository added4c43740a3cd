"""``visualize``: feature visualisation of an :class:`~symnn.inputopt.objectives.Objective`
under an image parametrisation (:mod:`~symnn.inputopt.param`), Lucid's ``render_vis``."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..backend import function
from ..backend.cache import COMPILED
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import Layer, attach_updates
from ..utils import as_rng, check_array, check_positive
from .maximize import MaximizeResult, maximize
from .objective import _shift_rows
from .objectives import Objective, parse_objective
from .param import PARAM_BOUND, Parametrisation
from .transforms import warp_rows, warp_tables
from .units import _check_network

__all__ = ["visualize", "Visualization", "ASCENT_DEFAULTS"]


@dataclass
class Visualization:
    """What :func:`visualize` found: ``n`` images and their objective values."""

    images: np.ndarray  #: ``(n, C*H*W)``, inside the box
    values: np.ndarray  #: the objective of each image
    objective: Objective
    param: str
    image_shape: tuple[int, int, int]
    result: MaximizeResult  #: the ascent over the parameters (``result.x``: parameters)


def _box(bounds: Any) -> tuple[float, float]:
    if isinstance(bounds, str | bytes):
        bounds = None  # two characters are not two numbers
    try:
        lo, hi = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise SymnnTypeError(
            f"bounds must be two numbers (lo, hi) for every pixel; got {bounds!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise SymnnValueError(f"bounds={bounds!r}: expected finite lo < hi.")
    return lo, hi


def visualize(
    network: Layer,
    objective: Objective | str,
    *,
    image_shape: Any,
    n: int = 1,
    param: str | Parametrisation = "fourier",
    reference: Any = None,
    x0: Any = None,
    **options: Any,
) -> Visualization:
    """Maximise ``objective`` over ``n`` images made by the parametrisation ``param``.

    Parameters
    ----------
    network
        A symnn network (``Sequential`` or ``Graph``, e.g. one read by ``from_onnx``).
    objective
        An :class:`~symnn.inputopt.objectives.Objective` or its text
        (``"channel:conv1:3 - 0.5*diversity:conv1"``, see :func:`~symnn.inputopt.
        objectives.parse_objective`). Terms that couple the images (``diversity``) see
        all ``n`` of them.
    image_shape
        ``(H, W)`` or ``(C, H, W)`` of the network's input (``C*H*W`` inputs).
    n
        Images optimised together, each from its own random start (an objective with one
        index per row, ``class_logit(range(10))``, sets it).
    param
        ``"fourier"`` (default, Lucid's 1/f spectrum), ``"maco"`` (phase only, the
        magnitude from ``reference``) or ``"pixel"`` (projected pixels); see
        :mod:`symnn.inputopt.param` for the definitions and why the box holds by squashing.
        Three-channel Fourier and MaCo images mix their colours by a decorrelation matrix;
        ``param=Parametrisation.make("fourier", shape, decorrelate=False)`` does not.
    reference
        Real inputs (rows of ``C*H*W`` values): MaCo's magnitude spectrum and the colour
        decorrelation of three-channel images are fitted to them.
    x0
        Real inputs to start from (feature accentuation, Hamblin et al. 2024: what in this
        image drives the objective?), one image per row (``n`` is then their number); with
        ``seed_penalty`` the ascent also pays ``seed_penalty`` times the mean squared
        difference of each image from its start.
    **options
        ``bounds``: the pixels' box ``(lo, hi)`` (default ``(0, 1)``); ``seed_penalty``
        (default 0, needs ``x0``); ``jitter``: each step the network sees every image shifted
        cyclically by up to this many pixels (default 0); ``scale`` and ``rotate``: each
        step it sees every image scaled by a factor in ``[1 - scale, 1 + scale]`` and rotated
        by up to ``rotate`` degrees about its centre, bilinearly, one of
        :data:`~symnn.inputopt.transforms.N_WARPS` warps drawn per call (defaults 0; Lucid's
        transformation robustness: warps, then the jitter); ``crop=(lo, hi)``: the warps also
        crop a random square of side ``lo`` to ``hi`` times the image's (MaCo's crops, see
        :func:`~symnn.inputopt.transforms.warp_tables`; the first warp stays the whole
        image); ``noise``: each step the network sees every pixel plus N(0, noise) and
        U(-noise/2, noise/2) noise, MaCo's (default 0);
        ``seed`` (the random starts and shifts, default 0) and
        :func:`~symnn.inputopt.maximize`'s ``steps`` (256), ``learning_rate`` (0.05),
        ``method`` (``"adam"``: Lucid's), ``tol``, ``mode``, ``blas_threads`` and ``keep``
        (default ``"last"``, Lucid's, with any random transformation: each step's value is
        then that of one random view, and the highest of them partly noise; else ``"best"``).

    Returns
    -------
    Visualization

    Notes
    -----
    The graph and its compiled step are kept per network, objective, parametrisation,
    bounds, jitter, warps, noise, seed penalty and mode: a second call with other starts,
    seeds or ``x0`` compiles nothing. Calls from several threads that share a graph run one
    at a time.

    Examples
    --------
    >>> from symnn.layers import from_arch
    >>> net = from_arch("conv4x3,pool2,8,3", (8, 8), rng=0)
    >>> vis = visualize(net, "channel:conv0:1", image_shape=(8, 8), n=2, steps=10,
    ...                 mode="FAST_COMPILE")
    >>> vis.images.shape, bool(vis.images.min() >= 0 and vis.images.max() <= 1)
    ((2, 64), True)
    """
    _check_network(network)
    objective = parse_objective(objective) if isinstance(objective, str) else objective
    if not isinstance(objective, Objective):
        raise SymnnTypeError(
            f"objective must be an Objective or its text; got {type(objective).__name__}."
        )
    objective.check(network)
    ascent = _ascent_options(options)
    box, seed, penalty = _box(ascent.pop("bounds")), ascent.pop("seed"), ascent.pop("seed_penalty")
    jitter = check_positive(ascent.pop("jitter"), "jitter", integer=True, allow_zero=True)
    warp = _warp_setting(ascent.pop("scale"), ascent.pop("rotate"), ascent.pop("crop"))
    noise = float(check_positive(ascent.pop("noise"), "noise", allow_zero=True))
    if ascent["keep"] is None:  # random views: the best recorded value is partly noise
        ascent["keep"] = "last" if jitter or warp != (0.0, 0.0, None) or noise else "best"
    par = _parametrisation(param, image_shape, reference, network)
    rows = objective.rows
    if rows is not None and n not in (1, rows):
        raise SymnnValueError(f"n={n}, but {objective!r} has one index per row for {rows} rows.")
    starts, start_images = _starts(par, x0, rows or n, box, seed, network.dtype)
    if check_positive(penalty, "seed_penalty", allow_zero=True) and start_images is None:
        raise SymnnValueError(f"seed_penalty={penalty} pulls towards x0; no x0 was given.")
    key = _VisKey(objective, _param_key(par), box, jitter, warp, noise, float(penalty),
                  repr(ascent["mode"]))  # fmt: skip
    graph = COMPILED.get(network, ("visualize", key),
                         lambda: _vis_graph(network, par, key, ascent["mode"]))  # fmt: skip
    limits = box if par.kind == "pixel" else (-PARAM_BOUND, PARAM_BOUND)
    with graph.lock:  # the graph's shared start images and generator are this call's
        graph.seed(int(as_rng(seed).integers(2**31 - 1)), par.image_shape, warp)
        if graph.anchor is not None:
            graph.anchor.set_value(start_images.astype(network.dtype))
        result = maximize(graph.values, graph.p, x0=starts, bounds=limits, **ascent)
        found = graph.images(result.x)
    return Visualization(found, result.value, objective, par.kind, par.image_shape, result)


@dataclass(frozen=True)
class _VisKey:
    """What makes two visualisation graphs of one network differ (starts and seeds do not)."""

    objective: Objective
    param: tuple
    box: tuple[float, float]
    jitter: int
    warp: tuple  #: (scale, rotate, crop or None), (0, 0, None) for none
    noise: float
    seed_penalty: float
    mode: str


@dataclass
class _VisGraph:
    """One visualisation graph: parameters ``p``, the objective per row, the images of the
    parameters compiled, and the shared state each call sets (under ``lock``)."""

    p: Any
    values: Any
    images: Any  #: compiled: parameters -> images
    rng: Any  #: the jitter's and warps' shared generator, or None
    warps: Any  #: the shared warp tables ``(index, weight)``, or None
    anchor: Any  #: the start images the seed penalty pulls towards (shared), or None
    lock: Any = field(default_factory=threading.RLock)

    def seed(self, seed: int, image_shape: tuple[int, int, int], warp: tuple) -> None:
        """This call's random draws: the generator seeded, the warps drawn from ``seed``."""
        if self.rng is not None:
            self.rng.set_value(np.random.default_rng(seed))
        if self.warps is not None:
            c, h, w = image_shape
            index, weight = warp_tables((h, w, c), warp[0], warp[1], seed=seed, crop=warp[2])
            self.warps[0].set_value(index)
            self.warps[1].set_value(weight.astype(self.warps[1].dtype))


def _param_key(par: Parametrisation) -> tuple:
    """A parametrisation by value (its fitted arrays by digest)."""
    digest = [None if a is None else hashlib.sha1(np.ascontiguousarray(a)).hexdigest()
              for a in (par.magnitude, par.colour)]  # fmt: skip
    return (par.kind, par.image_shape, *digest)


def _vis_graph(network: Layer, par: Parametrisation, key: _VisKey, mode: Any) -> _VisGraph:
    p = pt.matrix("parameters", dtype=network.dtype, shape=(None, par.width))
    images = par.image(p, key.box)
    rng = warps = None
    if key.jitter or any(key.warp) or key.noise:
        rng = pt.random.shared_rng(seed=0, name="transforms.rng")
    if any(key.warp):
        warps = (pytensor.shared(np.zeros((1, par.width, 4), dtype=np.int64), name="warp.index"),
                 pytensor.shared(np.zeros((1, par.width, 4), dtype=network.dtype),
                                 name="warp.weight"))  # fmt: skip
    seen, rng_updates = _transformed(images, par.image_shape, (key.jitter, key.noise), rng,
                                     warps)  # fmt: skip
    values = key.objective(network, seen)
    anchor = None
    if key.seed_penalty:
        anchor = pytensor.shared(np.zeros((1, par.width), dtype=network.dtype), name="x0",
                                 shape=(None, par.width))  # fmt: skip
        distance = pt.mean(pt.sqr(images - anchor), axis=1)
        values = values - np.asarray(key.seed_penalty, dtype=network.dtype) * distance
    values = attach_updates(values, rng_updates)
    return _VisGraph(p, values, function([p], images, mode=mode), rng, warps, anchor)


def _transformed(images: Any, shape: tuple[int, int, int], shift_noise: tuple, rng: Any,
                 warps: Any):  # fmt: skip
    """``(what the network sees, the generator's update)``: each row warped by a table entry
    drawn per row (``warps``), then shifted cyclically by its own random ``(dy, dx)`` in
    ``[-jitter, jitter]``, then with noise added (``shift_noise = (jitter, noise)``), drawn
    anew every step from the shared generator ``rng`` (Lucid's transformation robustness,
    MaCo's noise; the returned images are not transformed)."""
    if rng is None:
        return images, {}
    (jitter, noise), (c, h, w), n = shift_noise, shape, images.shape[0]
    hwc = images.reshape((n, c, h, w)).transpose(0, 2, 3, 1).reshape(images.shape)
    state = rng
    if warps is not None:
        state, choice = state.integers(0, warps[0].shape[0], size=(n,))
        hwc = warp_rows(hwc, choice, *warps)
    if jitter:
        state, shift = state.integers(-jitter, jitter + 1, size=(n, 2))
        hwc = _shift_rows(hwc, shift, (h, w, c))
    if noise:
        state, normal = state.normal(0.0, noise, size=hwc.shape)
        state, uniform = state.uniform(-noise / 2, noise / 2, size=hwc.shape)
        hwc = hwc + (normal + uniform).astype(hwc.dtype)
    chw = hwc.reshape((n, h, w, c)).transpose(0, 3, 1, 2)
    return chw.reshape(images.shape), {rng: state}


def _warp_setting(scale: Any, rotate: Any, crop: Any) -> tuple:
    scale = float(check_positive(scale, "scale", allow_zero=True))
    rotate = float(check_positive(rotate, "rotate", allow_zero=True))
    if scale >= 0.5 or rotate > 45:
        raise SymnnValueError(f"scale={scale!r}, rotate={rotate!r}: small transformations are "
                              "expected (scale < 0.5, rotate <= 45 degrees).")  # fmt: skip
    if crop is None:
        return scale, rotate, None
    try:
        lo, hi = (float(v) for v in crop)
    except (TypeError, ValueError):
        raise SymnnTypeError(f"crop must be two numbers (lo, hi); got {crop!r}.") from None
    if not 0 < lo <= hi <= 1:
        raise SymnnValueError(f"crop={crop!r}: expected sides 0 < lo <= hi <= 1 (fractions "
                              "of the image's side).")  # fmt: skip
    return scale, rotate, (lo, hi)


def _parametrisation(param: Any, image_shape: Any, reference: Any, network: Layer):
    """``param`` made (or checked) for ``image_shape`` and the network's input width."""
    if reference is not None:
        reference = check_array(reference, "reference", ndim=2, dtype="float64")
    par = param if isinstance(param, Parametrisation) else Parametrisation.make(
        param, image_shape, reference=reference
    )
    if par.image_shape != Parametrisation.make("pixel", image_shape).image_shape:
        raise SymnnValueError(
            f"param is made for images {par.image_shape}; image_shape={tuple(image_shape)}."
        )
    if par.width != network.n_in:
        raise SymnnValueError(
            f"image_shape={tuple(image_shape)} has {par.width} values; the network takes "
            f"{network.n_in} inputs."
        )
    if reference is not None and reference.shape[1] != par.width:
        raise SymnnValueError(
            f"reference has {reference.shape[1]} columns; the images have {par.width} values."
        )
    return par


def _starts(par: Parametrisation, x0: Any, n: int, box, seed: Any, dtype: str):
    """``(starting parameters, the start images or None)``: ``n`` random starts, or the
    parameters of the images ``x0`` (checked: width, inside the box, ``n`` rows)."""
    check_positive(n, "n", integer=True)
    if x0 is None:
        return par.initial(int(n), as_rng(seed, name="seed"), box, dtype), None
    x0 = check_array(x0, "x0", ndim=(1, 2), dtype="float64")
    x0 = x0[None, :] if x0.ndim == 1 else x0
    if x0.shape[1] != par.width:
        raise SymnnValueError(f"x0 has {x0.shape[1]} columns; the images have {par.width}.")
    if n != 1 and n != len(x0):
        raise SymnnValueError(f"n={n} starts, but x0 has {len(x0)} rows: give one of them.")
    if x0.min() < box[0] or x0.max() > box[1]:
        raise SymnnValueError(f"x0 has values outside the bounds {box}.")
    return par.parameters_of(x0, box).astype(dtype), x0


#: visualize's ascent options and their defaults (Lucid's: Adam at 0.05, 256 steps)
ASCENT_DEFAULTS = {"bounds": (0.0, 1.0), "seed_penalty": 0.0, "jitter": 0, "scale": 0.0,
                   "rotate": 0.0, "crop": None, "noise": 0.0, "seed": 0,
                   "steps": 256, "learning_rate": 0.05, "method": "adam", "tol": None, "mode": None,
                   "blas_threads": "auto", "keep": None}  # fmt: skip


def _ascent_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(ASCENT_DEFAULTS))
    if unknown:
        raise SymnnTypeError(
            f"visualize() got unexpected keyword(s) {', '.join(unknown)}; the ascent takes "
            f"{', '.join(ASCENT_DEFAULTS)}."
        )
    return {**ASCENT_DEFAULTS, **options}
