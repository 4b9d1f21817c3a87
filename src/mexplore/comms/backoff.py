"""How an idle rank waits: a short spin, then sleeps that grow to a cap.

A blocking MPI receive in MPICH spins a core at 100%; with 8 ranks on 2 cores that starves
the ranks doing real work. Sleeping a fixed 1 ms instead costs latency on every hand-off. A
spin of a few dozen microseconds catches the replies that come back at once (no-op tasks,
a refill just after a result); past it, sleeps double up to ``cap`` so an idle rank costs
almost nothing.
"""

from __future__ import annotations

import time


class Backoff:
    """Call :meth:`wait` when a poll found nothing and :meth:`reset` when it found something."""

    __slots__ = ("spin", "first_sleep", "cap", "_spun_since", "_sleep")

    def __init__(self, spin: float = 50e-6, first_sleep: float = 10e-6, cap: float = 1e-3) -> None:
        self.spin, self.first_sleep, self.cap = spin, first_sleep, cap
        self._spun_since = 0.0
        self._sleep = 0.0

    def reset(self) -> None:
        self._spun_since = 0.0
        self._sleep = 0.0

    def wait(self) -> None:
        if self._sleep == 0.0:
            now = time.perf_counter()
            if self._spun_since == 0.0:
                self._spun_since = now
                return
            if now - self._spun_since < self.spin:
                return
            self._sleep = self.first_sleep
        time.sleep(self._sleep)
        self._sleep = min(self._sleep * 2.0, self.cap)
