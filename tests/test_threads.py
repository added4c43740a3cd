"""The BLAS thread tuner, driven by a fake library and a fake compiled function whose
duration depends on the thread count."""

import time

import pytest

from symnn import threads


class FakeLib:
    def __init__(self, default=2):
        self.n = default
        self.sets = 0

    def get_num_threads(self):
        return self.n

    def set_num_threads(self, n):
        self.n = n
        self.sets += 1


@pytest.fixture
def lib(monkeypatch):
    fake = FakeLib()
    monkeypatch.setattr(threads, "blas_controller", lambda: fake)
    return fake


def sleeper(lib, seconds_by_threads):
    def fn():
        time.sleep(seconds_by_threads[lib.n])
        return lib.n

    return fn


@pytest.mark.parametrize("times, chosen", [({1: 0.001, 2: 0.004}, 1), ({1: 0.004, 2: 0.001}, 2)])
def test_tuner_keeps_the_faster_thread_count_and_restores_the_default(lib, times, chosen):
    tuner = threads.ThreadTuner()
    fn = sleeper(lib, times)
    while tuner.choice is None:
        tuner(fn)
    ran = [tuner(fn) for _ in range(5)]
    assert tuner.choice == chosen
    assert ran == [chosen] * 5 and tuner.current == chosen
    assert tuner.calls <= 2 * threads._BLOCK * threads._PROBES
    tuner.restore()
    assert lib.n == 2


def test_tuner_keeps_all_threads_unless_one_thread_is_clearly_faster(lib):
    tuner = threads.ThreadTuner()
    fn = sleeper(lib, {1: 0.002, 2: 0.002})
    while tuner.choice is None:
        tuner(fn)
    assert tuner.choice == 2


def test_a_known_choice_is_applied_at_once_and_not_measured(lib):
    tuner = threads.ThreadTuner(choice=1)
    assert lib.n == 1 and tuner(sleeper(lib, {1: 0.0, 2: 0.0})) == 1
    assert tuner.times == {1: [], 2: []}
    sets = lib.sets
    tuner.set(1)  # already 1: no call into the library
    assert lib.sets == sets
