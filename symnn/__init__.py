"""symnn: neural networks as symbolic PyTensor expressions.

Layers hold their weights as ``pytensor.shared`` variables; calling a layer on a symbolic
tensor returns a symbolic tensor; costs and update rules are symbolic too, and
:func:`symnn.function` compiles them on the fastest CPU backend available (the C backend
linked to the OpenBLAS inside scipy's wheel, configured on import).
"""

import importlib

from . import (
    backend,
    costs,
    datasets,
    errors,
    gradcheck,
    init,
    inputopt,
    io,
    layers,
    nonlinearities,
    regularization,
    train,
    updates,
    utils,
)
from .backend import default_mode, function, info, set_default_mode
from .errors import SymnnError, SymnnTypeError, SymnnValueError
from .gradcheck import check_grad
from .io import load, save
from .version import __version__

#: scikit-learn's estimators, imported on first use (scikit-learn takes 0.4 s to import)
_ESTIMATORS = ("MLPClassifier", "MLPRegressor", "NetClassifier", "NetRegressor")
#: old module paths kept for one release; importing one warns where it moved
DEPRECATED_MODULES = ("compare", "fullbatch", "onnx_io", "safetensors", "state_dict", "threads")


def __getattr__(name: str):
    if name in _ESTIMATORS or name == "estimator":
        estimator = importlib.import_module(f"{__name__}.estimator")
        return estimator if name == "estimator" else getattr(estimator, name)
    if name in DEPRECATED_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'symnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ESTIMATORS) | {"estimator"})


__all__ = [
    "__version__",
    "backend",
    "costs",
    "errors",
    "gradcheck",
    "init",
    "layers",
    "nonlinearities",
    "regularization",
    "updates",
    "utils",
    "datasets",
    "inputopt",
    "io",
    "train",
    "save",
    "load",
    "MLPClassifier",
    "MLPRegressor",
    "NetClassifier",
    "NetRegressor",
    "function",
    "info",
    "default_mode",
    "set_default_mode",
    "check_grad",
    "SymnnError",
    "SymnnValueError",
    "SymnnTypeError",
]
