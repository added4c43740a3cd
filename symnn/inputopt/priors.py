"""Density priors for activation maximisation ("activation maximisation with an expert",
Montavon, Samek and Müller, *Methods for interpreting and understanding deep neural
networks*, 2018): maximise ``activation(x) - weight * penalty(x)`` where the penalty is the
negative log-density of a model of the real inputs, here a Gaussian fitted to a reference set.

:class:`GaussianPrior` keeps the mean, the top principal directions with their variances and
one variance for the rest of the space; its penalty is half the Mahalanobis distance divided
by the input width, so a typical real input scores about 0.5 whatever its size, and it is a
symbolic expression compiled into the ascent step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnValueError
from ..utils import check_array, check_positive

__all__ = ["GaussianPrior", "gaussian_penalty", "PRIOR_ARRAYS"]

#: the names of a prior's arrays, as the compiled step holds them
PRIOR_ARRAYS = ("mean", "components", "inv_variances", "inv_rest")


def gaussian_penalty(x, arrays: dict, width: int):
    """The symbolic per-row penalty of the rows of ``x`` (half the Mahalanobis distance over
    the width), the prior's arrays given as tensors (:data:`PRIOR_ARRAYS`)."""
    z = x - arrays["mean"]
    p = pt.dot(z, arrays["components"].T)
    inside = pt.sum(pt.square(p) * arrays["inv_variances"], axis=1)
    outside = (pt.sum(pt.square(z), axis=1) - pt.sum(pt.square(p), axis=1)) * arrays["inv_rest"]
    return (inside + outside) / np.asarray(2 * width, dtype=x.dtype)


_REST_FLOOR = 1e-4  # the isotropic variance is at least this fraction of the largest one


@dataclass(frozen=True)
class GaussianPrior:
    """A Gaussian model of real inputs: ``mean``, orthonormal ``components`` (k, d) with
    their ``variances``, and ``rest_variance`` for every direction orthogonal to them.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) * [3.0, 1.0, 0.1]
    >>> prior = GaussianPrior.fit(X, n_components=1)
    >>> np.round(np.abs(prior.components), 1), np.round(prior.variances)
    (array([[1., 0., 0.]]), array([9.]))
    >>> float(np.round(prior.penalty_numpy(X).mean(), 1))  # a real input scores about 0.5
    0.5
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    rest_variance: float

    @classmethod
    def fit(cls, reference, n_components: int = 50) -> GaussianPrior:
        """Fit to the rows of ``reference`` (the top ``n_components`` principal directions
        by an eigendecomposition of the covariance; the remaining variance averaged)."""
        X = check_array(reference, "reference", ndim=2, dtype="float64")
        check_positive(n_components, "n_components", integer=True)
        n, d = X.shape
        if n < 2:
            raise SymnnValueError(f"reference has {n} row(s); a prior needs at least 2.")
        k = min(int(n_components), d, n - 1)
        mean = X.mean(axis=0)
        centred = X - mean
        values, vectors = np.linalg.eigh(centred.T @ centred / (n - 1))
        order = np.argsort(values)[::-1]
        values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
        top = max(float(values[0]), 1e-12)
        rest = float(values[k:].mean()) if k < d else 0.0
        floor = _REST_FLOOR * top
        return cls(mean, vectors[:, :k].T.copy(), np.maximum(values[:k], floor),
                   max(rest, floor))  # fmt: skip

    @property
    def width(self) -> int:
        return len(self.mean)

    def penalty_numpy(self, X) -> np.ndarray:
        """The same penalty in numpy, for rows ``X``."""
        z = np.asarray(X, dtype=np.float64) - self.mean
        p = z @ self.components.T
        inside = (p**2 / self.variances).sum(axis=1)
        outside = ((z**2).sum(axis=1) - (p**2).sum(axis=1)) / self.rest_variance
        return (inside + outside) / (2 * self.width)

    def arrays(self, dtype: str) -> dict[str, np.ndarray]:
        """The values of the step's shared variables."""
        return {
            "mean": self.mean.astype(dtype),
            "components": self.components.astype(dtype),
            "inv_variances": (1.0 / self.variances).astype(dtype),
            "inv_rest": np.asarray(1.0 / self.rest_variance, dtype=dtype),
        }
