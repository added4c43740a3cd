"""Shared by the tests that run scikit-learn's estimator checks on symnn's estimators."""

import re
from functools import partial

import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

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


def parametrize_checks(estimators):
    """scikit-learn's ``parametrize_with_checks`` with test names free of memory addresses: an
    estimator holding a function (``NetClassifier(dense_network)``) is named
    ``<function dense_network at 0x...>``, and pytest-xdist's workers must all collect the
    same names."""
    mark = parametrize_with_checks(estimators)
    name = mark.kwargs["ids"]
    return pytest.mark.parametrize(
        *mark.args, ids=lambda obj: re.sub(r"at0x[0-9a-f]+", "", name(obj))
    )
