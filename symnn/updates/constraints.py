"""Constraints on update expressions (applied after a rule)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnValueError
from ..utils import check_positive

__all__ = ["total_norm_constraint", "norm_constraint"]


def total_norm_constraint(
    tensor_vars: Sequence, max_norm: float, epsilon: float = 1e-7, return_norm: bool = False
):
    """Rescale a list of tensors (usually gradients) so their joint L2 norm is at most
    ``max_norm`` (Pascanu et al., 2012). Returns the rescaled list, and the norm if asked.

    >>> import numpy as np, pytensor.tensor as pt
    >>> g = pt.constant(np.array([3.0, 4.0]))
    >>> np.round(total_norm_constraint([g], 1.0)[0].eval(), 6)
    array([0.6, 0.8])
    """
    tensor_vars = list(tensor_vars)
    if not tensor_vars:
        raise SymnnValueError("tensor_vars is empty; expected gradients to rescale.")
    check_positive(max_norm, "max_norm")
    dtype = tensor_vars[0].dtype
    norm = pt.sqrt(sum(pt.sum(pt.square(t)) for t in tensor_vars))
    target = pt.clip(norm, 0, np.asarray(max_norm, dtype=dtype))
    multiplier = target / (np.asarray(epsilon, dtype=dtype) + norm)
    scaled = [t * pt.cast(multiplier, t.dtype) for t in tensor_vars]
    return (scaled, norm) if return_norm else scaled


def norm_constraint(tensor_var, max_norm: float, norm_axes=None, epsilon: float = 1e-7):
    """Rescale each column of a weight matrix (norms over ``norm_axes``, default all but the
    last axis) to an L2 norm of at most ``max_norm`` (max-norm regularisation)."""
    ndim = tensor_var.ndim
    axes = tuple(range(ndim - 1)) if norm_axes is None else tuple(norm_axes)
    dtype = tensor_var.dtype
    norms = pt.sqrt(pt.sum(pt.square(tensor_var), axis=axes, keepdims=True))
    target = pt.clip(norms, 0, np.asarray(max_norm, dtype=dtype))
    return tensor_var * (target / (np.asarray(epsilon, dtype=dtype) + norms))
