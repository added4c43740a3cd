"""take_rows: the training step's gather, in the numpy perform and the C code."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symnn
from symnn.errors import SymnnTypeError
from symnn.ops import take_rows
from symnn.ops.gather import NonFiniteRowError, nonfinite_row

MODES = ["FAST_COMPILE", pytest.param("C", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def gathers():
    """One function per mode: float32 and float64 matrices, an int vector and a 3-d float32
    array through a checking gather, and a float32 matrix through a plain one."""
    cache = {}

    def get(mode):
        if mode not in cache:
            i = pt.lvector("i")
            a32, a64 = pt.matrix("a32", dtype="float32"), pt.matrix("a64", dtype="float64")
            lab, cube = pt.ivector("lab"), pt.tensor3("cube", dtype="float32")
            plain = pt.matrix("plain", dtype="float32")
            outs = [take_rows(v, i, check_finite=True) for v in (a32, a64, lab, cube)]
            outs.append(take_rows(plain, i))
            cache[mode] = symnn.function([i, a32, a64, lab, cube, plain], outs, mode=mode)
        return cache[mode]

    return get


def _data(rng):
    a = rng.standard_normal((6, 5))
    return [
        a.astype("float32"),
        a.T.copy().T,  # float64, not C-contiguous
        np.arange(6, dtype="int32"),
        rng.standard_normal((6, 2, 3)).astype("float32"),
        a.astype("float32"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_rows_match_numpy_indexing_including_negative_and_repeated(mode, gathers, rng):
    data = _data(rng)
    idx = np.array([5, 0, -1, 2, 2])
    f = gathers(mode)
    for _ in range(2):  # the second call may write into the first call's buffers
        out = f(idx, *data)
        for got, want in zip(out, data):
            np.testing.assert_array_equal(got, want[idx])
            assert got.dtype == want.dtype


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which, value", [(0, np.nan), (1, np.inf), (3, -np.inf)])
def test_nan_or_infinity_in_a_copied_row_is_an_error_naming_the_row(
    mode, gathers, rng, which, value
):
    data = _data(rng)
    data[which][4].flat[1] = value
    f = gathers(mode)
    f(np.array([0, 1, 2]), *data)  # row 4 not copied: no error
    with pytest.raises(NonFiniteRowError, match="take_rows: row 4 holds NaN or infinity") as info:
        f(np.array([0, -2, 2]), *data)
    assert info.value.row == 4 and nonfinite_row(info.value) == 4
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("mode", MODES)
def test_unchecked_gather_copies_nan_and_index_errors_are_clear(mode, gathers, rng):
    data = _data(rng)
    data[4][1, 1] = np.nan
    f = gathers(mode)
    assert np.isnan(f(np.array([1]), *data)[4][0, 1])
    with pytest.raises(IndexError, match="index 6 is out of bounds for 6 rows"):
        f(np.array([0, 6]), *data)


def test_gradient_scatters_back_to_the_rows(rng):
    x = pt.matrix("x", dtype="float64")
    i = pt.lvector("i")
    g = pytensor.grad(pt.sum(take_rows(x, i) * 2.0), x)
    got = g.eval({x: np.zeros((4, 2)), i: np.array([1, 1, 3])})
    np.testing.assert_array_equal(got, [[0, 0], [4, 4], [0, 0], [2, 2]])


def test_indices_must_be_an_int64_vector():
    with pytest.raises(SymnnTypeError, match="int64 vector"):
        take_rows(pt.matrix(), pt.ivector())
