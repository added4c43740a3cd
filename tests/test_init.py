import numpy as np
import pytest

from symnn import init
from symnn.errors import SymnnTypeError, SymnnValueError


def test_glorot_uniform_range_and_gain(rng):
    w = init.GlorotUniform(gain=4.0)((300, 100), rng)
    bound = 4.0 * np.sqrt(6.0 / 400)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound


@pytest.mark.parametrize(
    "initializer, std",
    [
        (init.GlorotNormal(), np.sqrt(2.0 / 1100)),
        (init.HeNormal(), np.sqrt(2.0 / 1000)),
        (init.HeUniform(), np.sqrt(6.0 / 1000) / np.sqrt(3)),
        (init.Normal(std=0.05), 0.05),
        (init.Uniform(0.1), 0.1 / np.sqrt(3)),
    ],
)
def test_initializer_standard_deviation(initializer, std, rng):
    w = initializer((1000, 100), rng, dtype="float64")
    assert w.dtype == np.float64
    assert abs(w.std() - std) / std < 0.02
    assert abs(w.mean()) < 0.05 * std + 1e-3


def test_constant_and_uniform_pair(rng):
    assert np.all(init.Constant(0.5)((2, 3), rng) == 0.5)
    w = init.Uniform((2.0, 3.0))((50,), rng)
    assert w.min() >= 2.0 and w.max() <= 3.0


def test_same_seed_same_weights():
    a = init.GlorotUniform()((5, 4), np.random.default_rng(3))
    b = init.GlorotUniform()((5, 4), np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_initializer_requires_a_generator():
    with pytest.raises(SymnnTypeError, match="numpy.random.Generator"):
        init.GlorotUniform()((2, 2), 42)


def test_fan_based_initializer_needs_a_matrix(rng):
    with pytest.raises(SymnnValueError, match="at least 2 dimensions"):
        init.HeNormal()((10,), rng)


def test_get_by_name():
    assert isinstance(init.get("he_normal"), init.HeNormal)
    with pytest.raises(SymnnValueError, match="is not an initialiser"):
        init.get("orthogonal_magic")


def test_fans_of_a_convolution_kernel_are_those_of_lasagne_and_pytorch():
    # OIHW (32, 3, 5, 5): fan_in = 3 * 25 = 75, fan_out = 32 * 25 = 800 (torch's
    # _calculate_fan_in_and_fan_out gives the same)
    from symnn.init import HeUniform, _fans

    assert _fans((32, 3, 5, 5)) == (75, 800)
    w = HeUniform()((32, 3, 5, 5), np.random.default_rng(0), "float64")
    bound = np.sqrt(6.0 / 75)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
