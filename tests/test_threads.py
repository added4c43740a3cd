"""The BLAS thread tuner, driven by a fake library and a fake compiled function whose
duration depends on the thread count."""

import time

import numpy as np
import pytest

from symnn.backend import threads
from symnn.errors import SymnnValueError


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
    monkeypatch.setattr(threads, "_gates", [])  # a gate of the fake library
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


@pytest.fixture
def quick_recheck(monkeypatch):
    monkeypatch.setattr(threads, "_RECHECK", 6)


def run_until_choice(tuner, fn, limit=200):
    while tuner.choice is None and limit:
        tuner(fn)
        limit -= 1


def test_the_choice_follows_the_machine_when_the_other_setting_becomes_faster(lib, quick_recheck):
    times = {1: 0.004, 2: 0.001}
    tuner = threads.ThreadTuner()
    fn = sleeper(lib, times)
    run_until_choice(tuner, fn)
    assert tuner.choice == 2
    times.update({1: 0.001, 2: 0.004})  # the second core is taken
    for _ in range(threads._RECHECK + threads._BLOCK):
        tuner(fn)
    assert tuner.choice == 1 and tuner.switches == 1
    times.update({1: 0.004, 2: 0.001})  # and given back
    for _ in range(2 * (threads._RECHECK + threads._BLOCK)):
        tuner(fn)
    assert tuner.choice == 2 and tuner.switches == 2


def test_a_known_choice_is_rechecked_and_replaced_when_wrong(lib, quick_recheck):
    tuner = threads.ThreadTuner(choice=1)
    fn = sleeper(lib, {1: 0.004, 2: 0.001})
    for _ in range(threads._RECHECK + threads._BLOCK):
        tuner(fn)
    assert tuner.choice == 2 and lib.n == 2


def test_a_steady_choice_runs_the_other_setting_only_one_block_per_recheck(lib, quick_recheck):
    tuner = threads.ThreadTuner(choice=2)
    fn = sleeper(lib, {1: 0.003, 2: 0.001})
    cycles = 4
    ran = [tuner(fn) for _ in range(cycles * (threads._RECHECK + threads._BLOCK))]
    assert tuner.choice == 2 and tuner.switches == 0
    assert ran.count(1) == cycles * threads._BLOCK


def test_set_pins_direct_calls_but_a_call_through_the_tuner_uses_its_choice(lib):
    tuner = threads.ThreadTuner(choice=2)
    tuner.set(1)
    assert lib.n == 1  # a replay calls the function directly with this count
    assert tuner(sleeper(lib, {1: 0.0, 2: 0.0})) == 2


def test_a_fixed_count_is_used_for_every_call_and_nothing_is_measured(lib, quick_recheck):
    tuner = threads.ThreadTuner(choice=2, fixed=1)
    fn = sleeper(lib, {1: 0.002, 2: 0.0})
    ran = [tuner(fn) for _ in range(2 * (threads._RECHECK + threads._BLOCK))]
    assert ran == [1] * len(ran) and tuner.choice == 1
    assert tuner.times == {1: [], 2: []} and not tuner._recent and tuner.switches == 0
    tuner.restore()
    assert lib.n == 2


@pytest.mark.parametrize("value, expected", [("auto", None), (1, 1), (np.int64(3), 3)])
def test_blas_threads_accepts_auto_or_a_positive_count(value, expected):
    assert threads.check_blas_threads(value) == expected


@pytest.mark.parametrize("value", [0, -2, 1.5, "two", True, None])
def test_blas_threads_refuses_anything_else_naming_the_argument(value):
    with pytest.raises(SymnnValueError, match="blas_threads=.*'auto' or a positive number"):
        threads.check_blas_threads(value)


def test_a_fixed_count_waits_for_runs_holding_another_count(lib):
    """Two threads, fixed counts 1 and 2: each run's calls all see its own count."""
    import threading

    seen = {1: set(), 2: set()}
    start = threading.Barrier(2)

    def run(n):
        start.wait()
        tuner = threads.ThreadTuner(fixed=n)
        try:
            for _ in range(50):
                seen[n].add(tuner(lambda: lib.n))
                time.sleep(0.0005)
        finally:
            tuner.restore()

    workers = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert seen == {1: {1}, 2: {2}}
    assert lib.n == 2  # the default is back once nobody holds the gate


def test_a_tuned_run_joins_the_count_in_force_and_switches_only_alone(lib):
    fixed = threads.ThreadTuner(fixed=1)
    tuned = threads.ThreadTuner(choice=2)  # same thread: nested holds count as alone
    assert tuned.current == 2 and lib.n == 2
    tuned.restore()
    fixed.restore()
    assert lib.n == 2
    import threading

    holder = threads.ThreadTuner(fixed=1)
    out = {}

    def other():
        t = threads.ThreadTuner(choice=2)  # another thread holds 1: join at 1, no switch
        out["count"] = t.current
        t.set(2)
        out["after_set"] = t.current
        t.restore()

    w = threading.Thread(target=other)
    w.start()
    w.join()
    assert out == {"count": 1, "after_set": 1} and lib.n == 1
    holder.restore()
    assert lib.n == 2
