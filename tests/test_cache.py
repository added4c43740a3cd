"""The one cache of compiled functions: built once under concurrency, per-owner LRU, owners
held weakly."""

import gc
import threading
import time

from symnn.backend.cache import CompiledCache


class Owner:
    pass


def test_eight_threads_asking_for_one_function_build_it_once():
    cache, owner, builds = CompiledCache(), Owner(), []

    def build():
        builds.append(1)
        time.sleep(0.05)  # long enough for every thread to ask while it builds
        return object()

    got, barrier = [], threading.Barrier(8)

    def ask():
        barrier.wait()
        got.append(cache.get(owner, "step", build))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len({id(g) for g in got}) == 1 and len(got) == 8


def test_different_keys_build_side_by_side():
    cache, owner, running, peak = CompiledCache(), Owner(), [0], [0]
    lock = threading.Lock()

    def build():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return object()

    threads = [threading.Thread(target=cache.get, args=(owner, k, build)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] > 1 and len(cache) == 4


def test_least_recently_used_goes_first_per_owner_and_unowned():
    cache = CompiledCache(size=2)
    a, b = Owner(), Owner()
    for owner in (a, None):
        cache.get(owner, 1, lambda: "one")
        cache.get(owner, 2, lambda: "two")
        cache.lookup(owner, 1)  # 1 used after 2
        cache.get(owner, 3, lambda: "three")
        assert [k for k, _ in cache.items(owner)] == [1, 3]
    cache.get(b, 1, lambda: "b's")
    assert cache.lookup(b, 1) == "b's" and cache.lookup(a, 1) == "one"  # per owner


def test_an_owners_entries_go_with_it_and_a_failed_build_keeps_nothing():
    cache, owner = CompiledCache(), Owner()
    cache.get(owner, "x", lambda: "compiled")
    del owner
    gc.collect()
    assert len(cache) == 0

    def fail():
        raise ValueError("no")

    other = Owner()
    try:
        cache.get(other, "x", fail)
    except ValueError:
        pass
    assert cache.lookup(other, "x") is None and cache.get(other, "x", lambda: 1) == 1
