"""Shared by the tests that run scikit-learn's estimator checks on symnn's estimators."""

from functools import partial

from sklearn.base import clone

SAMPLE_WEIGHT_CHECKS = {
    f"check_sample_weight_equivalence_on_{kind}_data" for kind in ("dense", "sparse")
}


def _name(check) -> str:
    func = check.func if isinstance(check, partial) else check
    return getattr(func, "__name__", "")


def with_check_params(estimator, check):
    """The estimator a check runs on, parametrised per check as scikit-learn parametrises its
    own MLP (``PER_ESTIMATOR_CHECK_PARAMS`` in ``sklearn/utils/_test_common``): the weighted-rows
    equivalence, to 1e-7, needs a full-batch solver; symnn runs it with L-BFGS in float64.
    Every other check runs on the estimator as given. No check is expected to fail."""
    if _name(check) in SAMPLE_WEIGHT_CHECKS:
        return clone(estimator).set_params(solver="lbfgs", dtype="float64")
    return estimator
