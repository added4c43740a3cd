"""Weights trained elsewhere into a symnn network, by name: PyTorch's ``state_dict`` layout
from a dict of arrays, an ``.npz`` or a ``.safetensors`` file (no pickle, no torch needed).

Source keys are grouped by their prefix (``"features.0.weight"`` belongs to ``"features.0"``);
the groups fill symnn's layers that have parameters, in order, unless ``key_map`` pairs some
of them explicitly. A network read by :func:`symnn.io.from_onnx` is filled by name instead:
each layer from the group its weights were named after in the file (``layer.torch_prefix``),
whatever the graph's order. Layouts: ``Linear.weight`` ``(out, in)`` becomes ``Dense.W``
transposed; ``Conv2d.weight`` (OIHW) is ``Conv2D.W`` as it is (flipped for a layer with
``flip_filters=True``, so it computes what PyTorch computes); ``BatchNorm``'s weight, bias,
running mean and variance become ``gamma``, ``beta``, ``mean`` and ``inv_std = 1 / sqrt(var +
epsilon)`` (the symnn layer's epsilon: PyTorch's default is 1e-5); ``num_batches_tracked`` is
ignored. Every shape is checked before anything is written.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..layers import BatchNorm, Conv2D, ConvTranspose2D, Dense, Graph, Layer, PReLU, Sequential
from ..layers.graph import last_layer
from ..utils import describe
from .safetensors import read_safetensors

__all__ = ["load_state_dict", "LoadReport", "read_weights"]

_IGNORED = ("num_batches_tracked",)
_PICKLED = (".pt", ".pth", ".bin", ".ckpt", ".pkl")


@dataclass
class LoadReport:
    """What :func:`load_state_dict` did: the symnn parameters it set, which source key
    filled each (``pairs``: ``{"features.0.weight": "conv0.W"}``), the layers with parameters
    it left as they were, the source keys it did not use, and ``notes`` on differences the
    weights do not carry (a final softmax the source model may not have)."""

    loaded: list[str] = field(default_factory=list)
    pairs: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _natural(key: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split("."))


def read_weights(source: Any) -> tuple[dict[str, np.ndarray], str]:
    """``(arrays by name, a label for messages)`` from a mapping, an ``.npz`` or a
    ``.safetensors`` file; a pickled PyTorch file is refused with how to export it."""
    if isinstance(source, Mapping):
        return {str(k): np.asarray(v) for k, v in source.items()}, "the weights"
    if not isinstance(source, str | os.PathLike):
        raise SymnnTypeError(
            f"source must be a dict of arrays or a path (.npz, .safetensors); got "
            f"{describe(source)}."
        )
    path = Path(source)
    if path.suffix in _PICKLED:
        raise SymnnValueError(
            f"{path}: a pickled PyTorch file is not read (loading it would run code). Export "
            "the weights: safetensors.torch.save_file(model.state_dict(), 'w.safetensors') or "
            "numpy.savez('w.npz', **{k: v.numpy() for k, v in model.state_dict().items()})."
        )
    if not path.is_file():
        raise SymnnValueError(f"{path}: no such file.")
    if path.suffix == ".safetensors":
        arrays = read_safetensors(path)  # its header order is not the model's: natural order
        return dict(sorted(arrays.items(), key=lambda kv: _natural(kv[0]))), str(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}, str(path)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise SymnnValueError(f"{path}: not a readable .npz of arrays ({exc}).") from None
    raise SymnnValueError(f"{path}: expected a .npz or .safetensors file.")


def _groups(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        prefix, _, suffix = key.rpartition(".")
        groups.setdefault(prefix, {})[suffix] = value
    return {p: g for p, g in groups.items() if set(g) - set(_IGNORED)}


def _layers_with_params(network: Layer) -> list[Layer]:
    """The layers to fill, in order: a Sequential's in order, a Graph's in topological
    order, a layer's own parameters or else its sub-layers' (each layer once)."""
    if isinstance(network, Sequential | Graph):
        found = [la for sub in network.layers for la in _layers_with_params(sub)]
        return list(dict.fromkeys(found))
    if not network._params and network.sublayers() and not hasattr(network, "torch_keys"):
        return list(dict.fromkeys(
            la for _, sub in network.sublayers() for la in _layers_with_params(sub)
        ))  # fmt: skip
    return [network] if network.get_params() else []


def _take(group: dict, name: str, prefix: str, label: str) -> np.ndarray:
    if name not in group:
        raise SymnnValueError(f"{label}: {prefix}.{name} is missing.")
    return np.asarray(group[name])


def _fit(value: np.ndarray, shape: tuple, key: str, label: str, layer: Layer) -> np.ndarray:
    if value.shape != shape:
        raise SymnnValueError(
            f"{label}: {key} has shape {value.shape}; {type(layer).__name__}{layer._label()} "
            f"needs {shape} (PyTorch's layout)."
        )
    if value.dtype.kind not in "fiu" or not np.all(np.isfinite(value)):
        raise SymnnValueError(f"{label}: {key} must hold finite numbers.")
    return value


def _convert(layer: Layer, group: dict, prefix: str, label: str) -> dict:
    """``{shared variable: (value, source key)}`` for one layer."""

    def key(name):
        return f"{prefix}.{name}" if prefix else name

    def take(name, var, transpose=False):
        value = _take(group, name, prefix, label)
        want = var.get_value(borrow=True).shape
        if isinstance(layer, Conv2D | ConvTranspose2D) and value.ndim == 3 and want[2] == 1:
            value = value[:, :, None]  # a Conv1d's weight: a kernel one pixel high
        return _fit(value, want[::-1] if transpose else want, key(name), label, layer)

    out = {}
    if isinstance(layer, Dense):  # nn.Linear's weight is (out, in)
        out[layer.W] = (take("weight", layer.W, transpose=True).T, key("weight"))
    elif isinstance(layer, Conv2D):
        w = take("weight", layer.W)
        out[layer.W] = (w[:, :, ::-1, ::-1] if layer.flip_filters else w, key("weight"))
    elif isinstance(layer, ConvTranspose2D):  # ConvTranspose2d's weight is (in, out, kh, kw)
        out[layer.W] = (take("weight", layer.W), key("weight"))
    elif isinstance(layer, BatchNorm):
        var = take("running_var", layer.mean)
        if np.any(var < 0):
            raise SymnnValueError(f"{label}: {key('running_var')} has negative values.")
        out[layer.gamma] = (take("weight", layer.gamma), key("weight"))
        out[layer.beta] = (take("bias", layer.beta), key("bias"))
        out[layer.mean] = (take("running_mean", layer.mean), key("running_mean"))
        inv_std = 1.0 / np.sqrt(var.astype(np.float64) + layer.epsilon)
        out[layer.inv_std] = (inv_std, key("running_var"))
    elif hasattr(layer, "torch_keys"):  # recurrent layers, embeddings: their own table
        for name, var, transpose in layer.torch_keys():
            value = take(name, var, transpose=transpose)
            out[var] = (value.T if transpose else value, key(name))
    elif isinstance(layer, PReLU):
        a = _take(group, "weight", prefix, label).reshape(-1)
        shape = layer.alpha.get_value(borrow=True).shape
        a = np.broadcast_to(a, shape) if a.size == 1 else a
        out[layer.alpha] = (_fit(a, shape, key("weight"), label, layer), key("weight"))
    else:
        raise SymnnValueError(
            f"{type(layer).__name__}{layer._label()} has parameters load_state_dict does not "
            "know how to fill; set them with set_values."
        )
    if isinstance(layer, Dense | Conv2D | ConvTranspose2D) and layer.b is not None:
        out[layer.b] = (take("bias", layer.b), key("bias"))
    return out


def _output_note(network: Layer) -> list[str]:
    """A network that ends with softmax (as ``from_arch``'s do) computes probabilities where
    a PyTorch model ending with ``nn.Linear`` computes scores: same weights, other numbers."""
    last = last_layer(network)
    name = nonlinearities.name_of(getattr(last, "activation", None))
    if name not in ("softmax", "log_softmax", "sigmoid"):
        return []
    return [
        f"the network's last layer{last._label()} applies {name}: compare it with "
        f"torch's {name}(scores) if the source model ends with scores (nn.Linear), or build "
        "the last layer with activation=None"
    ]


def _pairs(network: Layer, groups: dict, key_map: Mapping | None, label: str) -> list:
    """``(layer, prefix)`` pairs: ``key_map`` first (layer name or position in
    ``network.layers`` -> source prefix), the rest in order."""
    layers = _layers_with_params(network)
    if any(hasattr(la, "torch_prefix") for la in layers):  # from_onnx's: its weights only
        layers = [la for la in layers if hasattr(la, "torch_prefix")]
    chosen: dict[int, str] = {}
    named = {la.name: i for i, la in enumerate(layers) if la.name}
    top = list(network.layers) if isinstance(network, Sequential | Graph) else [network]
    for target, prefix in (key_map or {}).items():
        if prefix not in groups:
            raise SymnnValueError(f"{label}: key_map names {prefix!r}, which it does not hold.")
        if isinstance(target, str) and target in named:
            index = named[target]
        elif isinstance(target, int) and -len(top) <= target < len(top) and top[target] in layers:
            index = layers.index(top[target])
        else:
            raise SymnnValueError(
                f"key_map target {target!r} is not a layer with parameters (give its name or "
                "its position in network.layers)."
            )
        chosen[index] = prefix
    if any(hasattr(la, "torch_prefix") for la in layers):  # read by from_onnx: by name
        taken = set(chosen.values())
        return [(la, chosen.get(i) or _named(la, groups, taken)) for i, la in enumerate(layers)]
    rest = iter(p for p in groups if p not in chosen.values())
    return [(la, chosen.get(i) or next(rest, None)) for i, la in enumerate(layers)]


def _named(layer: Layer, groups: dict, taken: set) -> str | None:
    prefix = getattr(layer, "torch_prefix", None)
    return prefix if prefix in groups and prefix not in taken else None


def _folded(groups: dict, pairs: list, label: str) -> None:
    """A network read by ``from_onnx`` without a layer for a source's BatchNorm (PyTorch's
    exporters fold BatchNorm into the convolution before it, and dynamo's keeps the
    convolution's key names for the folded weights): loading the unfolded weights would
    compute something else, so it is refused whatever ``strict`` says."""
    if not any(hasattr(la, "torch_prefix") for la, _ in pairs):
        return
    used = {p for _, p in pairs}
    norms = [p for p, g in groups.items() if "running_mean" in g and p not in used]
    if norms:
        raise SymnnValueError(
            f"{label}: no layer of the network holds the BatchNorm weights {norms[:5]}: the "
            "ONNX exporter folded them into the convolutions before them, whose weights in "
            "the file are the folded ones. Export without folding to load a state_dict "
            "by name: torch.onnx.export(..., dynamo=False, "
            "training=torch.onnx.TrainingMode.PRESERVE) or (..., dynamo=True, optimize=False)."
        )


def load_state_dict(
    network: Layer, source: Any, *, key_map: Mapping | None = None, strict: bool = True
) -> LoadReport:
    """Set ``network``'s weights from PyTorch-layout arrays (see the module docstring).

    ``strict=True`` refuses a source whose keys and the network's layers do not pair up
    exactly; ``strict=False`` fills what pairs and reports the rest. Nothing is written
    unless every value fits.

    >>> from symnn.layers import mlp
    >>> net = mlp([3, 2], rng=0)
    >>> w = {"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)}  # nn.Linear(3, 2)
    >>> report = load_state_dict(net, w)
    >>> report.pairs
    {'fc.weight': 'dense0.W', 'fc.bias': 'dense0.b'}
    >>> report.notes[0].split(":")[0]
    "the network's last layer 'dense0' applies softmax"
    """
    if not isinstance(network, Layer):
        raise SymnnTypeError(f"network must be a symnn layer; got {describe(network)}.")
    arrays, label = read_weights(source)
    groups = _groups(arrays)
    report, values = LoadReport(notes=_output_note(network)), {}
    pairs = _pairs(network, groups, key_map, label)
    _folded(groups, pairs, label)
    for layer, prefix in pairs:
        if prefix is None:
            named = getattr(layer, "onnx_weights", ())
            report.missing.append(type(layer).__name__ + layer._label()
                                  + (f" (weights {list(named)} in the file)" if named else ""))
            continue
        values.update(_convert(layer, groups[prefix], prefix, label))
    used = {key for _, key in values.values()}
    report.unexpected = [k for k in arrays if k not in used and not k.endswith(_IGNORED)]
    if strict and (report.missing or report.unexpected):
        raise SymnnValueError(
            f"{label} does not fit the network: layers without weights {report.missing}, "
            f"keys not used {report.unexpected[:10]}; pass key_map or strict=False."
        )
    for var, (value, key) in values.items():
        var.set_value(np.asarray(value, dtype=var.get_value(borrow=True).dtype))
        report.loaded.append(str(var.name))
        report.pairs[key] = str(var.name)
    return report
