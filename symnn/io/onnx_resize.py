"""ONNX's ``Resize`` and ``Upsample`` read as symnn layers: PyTorch's integer nearest and
bilinear upsampling of images as :class:`~symnn.layers.Upsample2D`, every other resize of
the samples' axes (nearest, linear, cubic; each coordinate transformation, antialiasing,
``axes``, ``keep_aspect_ratio_policy``, crop-and-resize) as :class:`~symnn.layers.Resize`.
A resize of the batch axis is refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import SymnnValueError
from ..layers import Interpolation, Resize, Upsample2D
from .onnx_reader import BATCH, Reader

__all__ = ["RESIZE_READERS", "RESIZE_ATTRIBUTES"]

#: the attributes each op's reader honours (any other is refused by name)
RESIZE_ATTRIBUTES: dict[str, set[str]] = {
    "Resize": {"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
               "exclude_outside", "extrapolation_value", "antialias", "keep_aspect_ratio_policy",
               "axes"},
    "Upsample": {"mode", "scales"},
}  # fmt: skip


def _resize(r: Reader, node) -> None:
    """PyTorch's integer nearest and bilinear upsampling of images as ``Upsample2D``; every
    other ``Resize`` (any axes of the samples, scales or sizes) as a ``Resize`` layer."""
    a = r.attrs(node)
    shape = r.shape(node)
    full = (_batch_size(r), *shape)
    scales, sizes = _resize_targets(r, node, full)
    old = r.opset < 11 or node.op_type == "Upsample"
    interp = _interpolation(r, node, old)
    roi = _resize_roi(r, node, len(full)) if (
        interp.coordinate_transformation_mode == "tf_crop_and_resize") else None  # fmt: skip
    policy = a.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        scales, sizes = _keep_aspect(r, node, full, sizes, policy)
    changed = [k for k in range(len(full)) if sizes[k] != full[k] or scales[k] != 1.0
               or (roi is not None and (roi[k], roi[len(full) + k]) != (0.0, 1.0))]  # fmt: skip
    if 0 in changed:
        raise r.error(node, f"scales {scales}, sizes {sizes} or roi {roi} resize the batch "
                            "axis (symnn computes each sample alone).")  # fmt: skip
    if not changed:
        r.alias(node)
        return
    if _as_upsample(interp, full, scales, sizes, changed):
        mode = "nearest" if interp.mode == "nearest" else "bilinear"
        r.call(node, Upsample2D((sizes[2] // full[2], sizes[3] // full[3]), mode,
                                name=node.name or None))  # fmt: skip
        return
    layer_roi = None if roi is None else (
        [roi[k] for k in changed] + [roi[len(full) + k] for k in changed])  # fmt: skip
    r.call(node, Resize([sizes[k] for k in changed], changed, interp,
                        scales=[scales[k] for k in changed], roi=layer_roi,
                        name=node.name or None))  # fmt: skip


def _batch_size(r: Reader) -> int:
    """The batch size the file declares (sizes of a Resize name it), else ``BATCH``."""
    for i in r.graph.input:
        dims = i.type.tensor_type.shape.dim
        if i.name not in r.consts and dims and dims[0].HasField("dim_value"):
            return int(dims[0].dim_value)
    return BATCH


def _interpolation(r: Reader, node, old: bool) -> Interpolation:
    a = r.attrs(node)
    mode = a.get("mode", "nearest")
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    try:
        return Interpolation(
            mode=mode,
            coordinate_transformation_mode="asymmetric" if old else a.get(
                "coordinate_transformation_mode", "half_pixel"),
            nearest_mode="floor" if old else a.get("nearest_mode", "round_prefer_floor"),
            cubic_coeff_a=float(a.get("cubic_coeff_a", -0.75)),
            exclude_outside=bool(a.get("exclude_outside", 0)),
            antialias=bool(a.get("antialias", 0)),
            extrapolation_value=float(a.get("extrapolation_value", 0.0)),
        )  # fmt: skip
    except SymnnValueError as exc:
        raise r.error(node, str(exc)) from None


def _resize_targets(r: Reader, node, full: tuple) -> tuple[list[float], list[int]]:
    """Per-axis scales and output sizes (ONNX: sizes ``floor(scale * size)`` when scales are
    given; scales ``size / input size`` when sizes are)."""
    a = r.attrs(node)
    if node.op_type == "Upsample" and "scales" in a:
        given, sizes = np.asarray(a["scales"], dtype=np.float64), None
    else:
        index = 1 if (node.op_type == "Upsample" or r.opset < 11) else 2
        given = r.optional_const(node, index)
        sizes = r.optional_const(node, 3) if index == 2 else None
    axes = _resize_axes(r, node, len(full))
    rank = len(full)
    if given is not None and given.size:
        scales = [1.0] * rank
        for k, s in zip(axes, np.asarray(given, dtype=np.float64).reshape(-1)):
            scales[k] = float(s)
        if min(scales) <= 0:
            raise r.error(node, f"scales {list(given)} are not all > 0.")
        return scales, [int(s * n) for s, n in zip(scales, full)]
    if sizes is None:
        raise r.error(node, "neither scales nor sizes are given as constants.")
    out = list(full)
    for k, n in zip(axes, np.asarray(sizes).reshape(-1)):
        out[k] = int(n)
    if out[0] == BATCH:  # a Shape of the input, folded (it gives BATCH for the batch axis)
        out[0] = full[0]
    return [o / n for o, n in zip(out, full)], out


def _resize_axes(r: Reader, node, rank: int) -> list[int]:
    axes = r.attrs(node).get("axes")
    if axes is None:
        return list(range(rank))
    if any(not -rank <= k < rank for k in axes):
        raise r.error(node, f"axes={list(axes)} are out of range for {rank}-axis tensors.")
    return [k % rank for k in axes]


def _resize_roi(r: Reader, node, rank: int) -> list[float]:
    given = r.optional_const(node, 1)
    if given is None or not given.size:
        raise r.error(node, "coordinate_transformation_mode='tf_crop_and_resize' needs roi.")
    axes = _resize_axes(r, node, rank)
    roi = [0.0] * rank + [1.0] * rank
    given = np.asarray(given, dtype=np.float64).reshape(-1)
    for i, k in enumerate(axes):
        roi[k], roi[rank + k] = float(given[i]), float(given[len(axes) + i])
    return roi


def _keep_aspect(r: Reader, node, full: tuple, sizes: list[int], policy: str):
    """``keep_aspect_ratio_policy``: one scale for the resized axes, the smallest
    (``not_larger``) or the largest (``not_smaller``), sizes rounded half up."""
    if policy not in ("not_larger", "not_smaller"):
        raise r.error(node, f"keep_aspect_ratio_policy={policy!r} is not known.")
    axes = _resize_axes(r, node, len(full))
    ratios = [sizes[k] / full[k] for k in axes]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    scales = [scale if k in axes else 1.0 for k in range(len(full))]
    return scales, [int(scale * n + 0.5) if k in axes else n for k, n in enumerate(full)]


def _as_upsample(interp: Interpolation, full: tuple, scales: list, sizes: list,
                 changed: list) -> bool:  # fmt: skip
    """Whether ``Upsample2D`` computes this resize (integer factors on H and W of images,
    PyTorch's nearest or bilinear)."""
    if len(full) != 4 or not set(changed) <= {2, 3} or interp.antialias:
        return False
    factors = [s / n for s, n in zip(sizes[2:], full[2:])]
    if any(f != int(f) or f < 1 or f != s for f, s in zip(factors, scales[2:])):
        return False
    key = (interp.coordinate_transformation_mode, interp.nearest_mode)
    if interp.mode == "nearest":
        return key in _NEAREST_AS_REPEAT
    return interp.mode == "linear" and key[0] in ("half_pixel", "pytorch_half_pixel")


#: (coordinate mode, nearest mode) pairs that pick ``floor(x / scale)`` for integer scales
_NEAREST_AS_REPEAT = {
    ("asymmetric", "floor"),
    *((c, n) for c in ("half_pixel", "pytorch_half_pixel")
      for n in ("round_prefer_floor", "round_prefer_ceil", "floor")),
}  # fmt: skip


RESIZE_READERS: dict[str, Callable] = {"Resize": _resize, "Upsample": _resize}
