"""The process-wide cache of compiled functions: one lock order, one eviction policy.

Entries belong to an *owner* (the network or objective graph they were compiled from), held
weakly: an owner's entries go when it is garbage-collected. Each owner keeps at most
``size`` entries, and the owner-less entries (the templates of training steps, keyed by a
model's description) at most ``size`` too, the least recently used going first.

Lock order: the cache's own lock is a leaf, held only for dictionary operations; a build runs
under a lock of its key alone (so one thread compiles a given function while the others wait
for it, and different functions compile side by side up to PyTensor's ``COMPILE_LOCK``); an
entry's own lock (``AscentFunctions.lock``, ``_Graph.lock``) is taken by the caller after the
cache returned the entry, never the other way round.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["CompiledCache", "COMPILED"]

T = TypeVar("T")


class CompiledCache:
    """Compiled functions per ``(owner, key)``, built once.

    >>> cache = CompiledCache(size=2)
    >>> class Net: pass
    >>> net = Net()
    >>> cache.get(net, "step", lambda: "compiled")
    'compiled'
    >>> cache.get(net, "step", lambda: "compiled again")  # built once
    'compiled'
    >>> del net; len(cache)  # the owner's entries went with it
    0
    """

    def __init__(self, size: int = 32):
        self.size = size
        self._lock = threading.Lock()
        self._owned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._unowned: OrderedDict = OrderedDict()
        self._building: dict[tuple[int, Hashable], threading.Lock] = {}

    def _entries(self, owner: Any) -> OrderedDict:
        if owner is None:
            return self._unowned
        entries = self._owned.get(owner)
        if entries is None:
            entries = self._owned[owner] = OrderedDict()
        return entries

    def lookup(self, owner: Any, key: Hashable) -> Any:
        """The entry of ``(owner, key)``, or None."""
        with self._lock:
            entries = self._entries(owner)
            if key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, owner: Any, key: Hashable, value: Any) -> Any:
        """Keep ``value`` unless an entry is there already; returns the entry kept."""
        with self._lock:
            entries = self._entries(owner)
            if key in entries:
                entries.move_to_end(key)
                return entries[key]
            entries[key] = value
            while len(entries) > self.size:
                entries.popitem(last=False)
            return value

    def get(self, owner: Any, key: Hashable, build: Callable[[], T]) -> T:
        """The entry of ``(owner, key)``, built by ``build()`` on the first call."""
        found = self.lookup(owner, key)
        if found is not None:
            return found
        slot = (id(owner), key)
        with self._lock:
            gate = self._building.setdefault(slot, threading.Lock())
        try:
            with gate:  # one thread builds; the others wait and find its entry
                found = self.lookup(owner, key)
                return found if found is not None else self.put(owner, key, build())
        finally:
            with self._lock:
                self._building.pop(slot, None)

    def items(self, owner: Any) -> list[tuple[Hashable, Any]]:
        """The entries of ``owner`` (None: the owner-less ones), oldest use first."""
        with self._lock:
            return list(self._entries(owner).items())

    def clear(self) -> None:
        with self._lock:
            self._owned.clear()
            self._unowned.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._unowned) + sum(len(e) for e in self._owned.values())


#: the one cache: training-step templates, activation-maximisation graphs, ascent functions
COMPILED = CompiledCache()
