"""Density priors for activation maximisation ("activation maximisation with an expert",
Montavon, Samek and Müller, *Methods for interpreting and understanding deep neural
networks*, 2018): maximise ``activation(x) - weight * penalty(x)`` where the penalty is the
negative log-density of a model of the real inputs, fitted to a reference set.

:class:`GaussianPrior` keeps the mean, the top principal directions with their variances and
one variance for the rest of the space; its penalty is half the Mahalanobis distance divided
by the input width, so a typical real input scores about 0.5 whatever its size.
:class:`MixturePrior` replaces the Gaussian inside the principal subspace by a mixture of
diagonal Gaussians (scikit-learn's ``GaussianMixture``), for data made of distinct kinds (the
classes of Fashion-MNIST); its penalty is the negative log-density over the width, shifted so
that real inputs also score 0.5 on average. Both are symbolic expressions compiled into the
ascent step; :data:`PRIORS` names them.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad

from ..errors import SymnnValueError
from ..utils import check_array, check_positive

__all__ = [
    "GaussianPrior", "MixturePrior", "PRIORS", "gaussian_penalty", "PRIOR_ARRAYS", "fitted_prior",
]  # fmt: skip

#: the names of a Gaussian prior's arrays, as the compiled step holds them
PRIOR_ARRAYS = ("mean", "components", "inv_variances", "inv_rest")


def gaussian_penalty(x, arrays: dict, width: int):
    """The symbolic per-row penalty of the rows of ``x`` (half the Mahalanobis distance over
    the width), the prior's arrays given as tensors (:data:`PRIOR_ARRAYS`)."""
    z = x - arrays["mean"]
    p = pt.dot(z, arrays["components"].T)
    # inside + outside = sum(p^2 (1/var - 1/rest)) + |z|^2 / rest: one product with the
    # components forward and one backward (the two terms written apart took two of each)
    inside = pt.sum(pt.square(p) * (arrays["inv_variances"] - arrays["inv_rest"]), axis=1)
    total = inside + pt.sum(pt.square(z), axis=1) * arrays["inv_rest"]
    return total / np.asarray(2 * width, dtype=x.dtype)


_REST_FLOOR = 1e-4  # the isotropic variance is at least this fraction of the largest one


def _principal(X: np.ndarray, n_components: int):
    """``(mean, components (k, d), variances (k,), rest variance)`` of the rows of ``X``."""
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
    return mean, vectors[:, :k].T.copy(), np.maximum(values[:k], floor), max(rest, floor)


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

    kind = "gaussian"
    #: the shapes of the step's shared arrays (placeholders until a call sets them)
    SHAPES = {"mean": (1,), "components": (1, 1), "inv_variances": (1,), "inv_rest": ()}

    @classmethod
    def fit(cls, reference, n_components: int = 50) -> GaussianPrior:
        """Fit to the rows of ``reference`` (the top ``n_components`` principal directions
        by an eigendecomposition of the covariance; the remaining variance averaged)."""
        X = check_array(reference, "reference", ndim=2, dtype="float64")
        check_positive(n_components, "n_components", integer=True)
        return cls(*_principal(X, n_components))

    @staticmethod
    def penalty(x, arrays: dict, width: int):
        """The symbolic per-row penalty (see :func:`gaussian_penalty`)."""
        return gaussian_penalty(x, arrays, width)

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


@dataclass(frozen=True)
class MixturePrior:
    """A Gaussian mixture on the top principal components (diagonal covariances, fitted by
    scikit-learn's ``GaussianMixture``) and one isotropic variance for the rest of the space.

    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 0.3, (300, 2)), rng.normal(3, 0.3, (300, 2))])
    >>> prior = MixturePrior.fit(X, n_components=2, n_mixture=2)
    >>> bool(prior.penalty_numpy([[0.0, 0.0]])[0] > prior.penalty_numpy([[3.0, 3.0]])[0])
    True
    >>> float(np.round(prior.penalty_numpy(X).mean(), 6))  # real inputs: 0.5 on average
    0.5
    """

    mean: np.ndarray
    components: np.ndarray  # (k, d)
    mix_means: np.ndarray  # (m, k)
    mix_variances: np.ndarray  # (m, k)
    mix_weights: np.ndarray  # (m,)
    rest_variance: float
    offset: float = 0.0  # added to the negative log-density so that real inputs score 0.5

    kind = "gmm"
    SHAPES = {"mean": (1,), "components": (1, 1), "mix_means": (1, 1), "mix_inv_var": (1, 1),
              "mix_log_norm": (1,), "inv_rest": (), "offset": ()}  # fmt: skip

    @classmethod
    def fit(
        cls, reference, n_components: int = 50, n_mixture: int = 10, seed: int = 0
    ) -> MixturePrior:
        """Fit to the rows of ``reference``: principal directions as for
        :class:`GaussianPrior`, then ``n_mixture`` diagonal Gaussians on the projections."""
        from sklearn.mixture import GaussianMixture

        X = check_array(reference, "reference", ndim=2, dtype="float64")
        check_positive(n_components, "n_components", integer=True)
        check_positive(n_mixture, "n_mixture", integer=True)
        mean, components, variances, rest = _principal(X, n_components)
        m = min(int(n_mixture), len(X))
        gmm = GaussianMixture(
            m, covariance_type="diag", random_state=seed, reg_covar=1e-6 * float(variances[0])
        ).fit((X - mean) @ components.T)
        prior = cls(mean, components, gmm.means_, gmm.covariances_, gmm.weights_, rest)  # fmt: skip
        offset = 0.5 - float(prior.penalty_numpy(X).mean())
        return cls(mean, components, gmm.means_, gmm.covariances_, gmm.weights_, rest, offset)

    @property
    def width(self) -> int:
        return len(self.mean)

    def _log_norm(self) -> np.ndarray:
        return np.log(self.mix_weights) - 0.5 * np.log(2 * np.pi * self.mix_variances).sum(1)

    def penalty_numpy(self, X) -> np.ndarray:
        """The same penalty in numpy, for rows ``X``."""
        z = np.asarray(X, dtype=np.float64) - self.mean
        p = z @ self.components.T
        sq = ((p[:, None, :] - self.mix_means[None]) ** 2 / self.mix_variances[None]).sum(-1)
        logp = self._log_norm()[None] - 0.5 * sq
        top = logp.max(axis=1)
        inside = -(top + np.log(np.exp(logp - top[:, None]).sum(axis=1)))
        outside = 0.5 * ((z**2).sum(axis=1) - (p**2).sum(axis=1)) / self.rest_variance
        return (inside + outside) / self.width + self.offset

    def arrays(self, dtype: str) -> dict[str, np.ndarray]:
        """The values of the step's shared variables."""
        return {
            "mean": self.mean.astype(dtype),
            "components": self.components.astype(dtype),
            "mix_means": self.mix_means.astype(dtype),
            "mix_inv_var": (1.0 / self.mix_variances).astype(dtype),
            "mix_log_norm": self._log_norm().astype(dtype),
            "inv_rest": np.asarray(1.0 / self.rest_variance, dtype=dtype),
            "offset": np.asarray(self.offset, dtype=dtype),
        }

    @staticmethod
    def penalty(x, arrays: dict, width: int):
        """The symbolic per-row penalty, the arrays given as tensors (:attr:`SHAPES`)."""
        z = x - arrays["mean"]
        p = pt.dot(z, arrays["components"].T)  # (n, k)
        mu, iv = arrays["mix_means"], arrays["mix_inv_var"]  # (m, k)
        # sum_k (p_k - mu_mk)^2 iv_mk expanded into two products: no (n, m, k) tensor in the
        # step or its gradient (benchmarks/prior_penalty_speed.py; same values within float32)
        sq = (pt.dot(pt.square(p), iv.T) - np.asarray(2, dtype=x.dtype) * pt.dot(p, (mu * iv).T)
              + pt.sum(pt.square(mu) * iv, axis=1)[None, :])  # fmt: skip
        logp = arrays["mix_log_norm"][None, :] - np.asarray(0.5, dtype=x.dtype) * sq
        # logsumexp, stable far from the data; its value does not depend on the shift, so
        # neither does its gradient (none flows through the max)
        top = zero_grad(pt.max(logp, axis=1, keepdims=True))
        inside = -(top[:, 0] + pt.log(pt.sum(pt.exp(logp - top), axis=1)))
        rest = pt.sum(pt.square(z), axis=1) - pt.sum(pt.square(p), axis=1)
        outside = np.asarray(0.5, dtype=x.dtype) * rest * arrays["inv_rest"]
        return (inside + outside) / np.asarray(width, dtype=x.dtype) + arrays["offset"]


#: the priors by name (``activation_maximization(prior=...)``)
PRIORS = {"gaussian": GaussianPrior, "gmm": MixturePrior}


#: how many fitted priors :func:`fitted_prior` keeps (the most recently used)
CACHE_SIZE = 4
_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()


def fitted_prior(kind: str, reference) -> GaussianPrior | MixturePrior:
    """``PRIORS[kind].fit(reference)`` with its default options, fitted once per content of
    ``reference`` (a checksum of its bytes, so an array changed in place is fitted again) and
    kept for the next call: one ``activation_maximization`` per layer of a network fits the
    same prior once.

    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> fitted_prior("gaussian", X) is fitted_prior("gaussian", X.copy())
    True
    """
    if kind not in PRIORS:
        raise SymnnValueError(f"kind={kind!r} is not a prior's name; expected one of "
                              f"{', '.join(map(repr, PRIORS))}.")  # fmt: skip
    X = np.ascontiguousarray(reference)
    key = (kind, X.shape, X.dtype.str, zlib.crc32(memoryview(X).cast("B")))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    prior = PRIORS[kind].fit(X)  # outside the lock: fits of other data run meanwhile
    with _CACHE_LOCK:
        _CACHE[key] = prior
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return prior
