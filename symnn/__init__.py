"""symnn: neural networks as symbolic PyTensor expressions.

Layers hold their weights as ``pytensor.shared`` variables; calling a layer on a symbolic
tensor returns a symbolic tensor; costs and update rules are symbolic too, and
:func:`symnn.function` compiles them on the fastest CPU backend available (the C backend
linked to the OpenBLAS inside scipy's wheel, configured on import).
"""

__version__ = "0.1.0"

from . import (  # noqa: E402 - the version must exist before backend.info imports it
    backend,
    costs,
    datasets,
    errors,
    fullbatch,
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
from .backend import default_mode, function, info, set_default_mode  # noqa: E402
from .errors import SymnnError, SymnnTypeError, SymnnValueError  # noqa: E402
from .estimator import MLPClassifier, MLPRegressor  # noqa: E402
from .gradcheck import check_grad  # noqa: E402
from .io import load, save  # noqa: E402

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
    "fullbatch",
    "inputopt",
    "io",
    "train",
    "save",
    "load",
    "MLPClassifier",
    "MLPRegressor",
    "function",
    "info",
    "default_mode",
    "set_default_mode",
    "check_grad",
    "SymnnError",
    "SymnnValueError",
    "SymnnTypeError",
]
