"""Ctrl-C during a long compiled loop: deferred to the end of the current step."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["deferred_interrupt"]


@contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Turn SIGINT into a flag checked between updates (main thread only; a process that
    ignores SIGINT, as one started in the background by a shell does, keeps ignoring it)."""
    flag = {"hit": False}
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield lambda: False
        return

    def handler(signum, frame):
        if flag["hit"]:  # a second Ctrl-C interrupts at once
            raise KeyboardInterrupt
        flag["hit"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["hit"]
    finally:
        signal.signal(signal.SIGINT, previous)
