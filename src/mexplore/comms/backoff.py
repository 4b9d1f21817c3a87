"""How an idle rank waits: a short spin, then sleeps that grow to a cap.

A blocking MPI receive in MPICH spins a core at 100%; with 8 ranks on 2 cores that starves
the ranks doing real work. Sleeping a fixed 1 ms instead costs latency on every hand-off. A
spin right after work catches the replies that come back at once (the next task after a
result, a refill), and yields the core to any rank that has work while it spins; past it,
sleeps double up to ``cap`` so an idle rank costs almost nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import time
from collections.abc import Callable

_PR_SET_TIMERSLACK = 29


@functools.cache
def _tighten_timer_slack() -> None:
    """Ask Linux to wake short sleeps on time: the default 50 us slack would add that much
    to every hand-off that waits out a sleep."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass


class Backoff:
    """Call :meth:`wait` when a poll found nothing and :meth:`reset` when it found something."""

    __slots__ = ("spin", "first_sleep", "cap", "clock", "sleep", "yield_core", "_spun_since", "_sleep")

    def __init__(
        self, spin: float = 50e-6, first_sleep: float = 10e-6, cap: float = 1e-3, *,
        clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
        yield_core: Callable[[], None] = os.sched_yield,
    ) -> None:
        self.spin, self.first_sleep, self.cap = spin, first_sleep, cap
        self.clock, self.sleep, self.yield_core = clock, sleep, yield_core  # replaceable in tests
        self._spun_since = 0.0
        self._sleep = 0.0
        _tighten_timer_slack()

    def reset(self) -> None:
        self._spun_since = 0.0
        self._sleep = 0.0

    def wait(self) -> None:
        if self._sleep == 0.0:
            now = self.clock()
            if self._spun_since == 0.0:
                self._spun_since = now
            if now - self._spun_since < self.spin:
                self.yield_core()
                return
            self._sleep = self.first_sleep
        self.sleep(self._sleep)
        self._sleep = min(self._sleep * 2.0, self.cap)
