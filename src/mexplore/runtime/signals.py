"""Signals that end a run early but cleanly: SIGTERM, SIGUSR1, SIGINT.

Schedulers send SIGTERM (PBS, Slurm) or a chosen signal such as SIGUSR1 (``#SBATCH
--signal``) shortly before walltime; ``mpiexec`` forwards these and Ctrl-C's SIGINT to every
rank. What each rank does with them:

- the master only notes the signal; its loop then stops handing out work, tells every worker
  to flush and stop, and exits with 128 + the signal number once all have answered. A second
  signal, ``REPEAT_AFTER`` seconds or more after the first, gives up waiting
  (:class:`KeyboardInterrupt`, which aborts the job); sooner, it is the same signal arriving
  twice (a scheduler signals every process of the job, and ``mpiexec`` forwards it too);
- a worker notes it too, and if its model is running, interrupts the model at once
  (:class:`Interrupted`, raised from the handler): the task runs again on resume, and the
  time left before the scheduler's SIGKILL goes to the flush instead.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import Interrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGALRM)
"""What a scheduler sends before walltime, Ctrl-C, and the run's own deadline (SIGALRM,
:mod:`.deadline`)."""
REPEAT_AFTER = 2.0


class StopSignals:
    """The first stop signal this process got, and whether to interrupt what runs now."""

    def __init__(self, second_aborts: bool = False) -> None:
        self.signum: int | None = None
        self._first_at = 0.0
        self.second_aborts = second_aborts
        self._interruptible = False
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Handle the stop signals from now on (again: nothing changes); only the main
        thread can (elsewhere, as in a test's thread, nothing is installed and no signal is
        ever seen)."""
        if threading.current_thread() is threading.main_thread() and not self._previous:
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum, self._first_at = signum, time.monotonic()
        elif self.second_aborts and time.monotonic() - self._first_at >= REPEAT_AFTER:
            raise KeyboardInterrupt
        if self._interruptible:
            self._interruptible = False
            raise Interrupted(signum)

    def interruptible(self) -> _Interruptible:
        """Run the block so that a stop signal interrupts it (the worker's model call)."""
        return _Interruptible(self)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Inside an interruptible block, hold a signal back until the block ends (a write
        into the cache must not stop half-way); it is raised right after."""
        was = self._interruptible
        self._interruptible = False
        try:
            yield
        finally:
            self._interruptible = was
            if was and self.signum is not None:
                self._interruptible = False
                raise Interrupted(self.signum)


class _Interruptible:
    """:meth:`StopSignals.interruptible`'s block. A class, not a generator: every worker
    enters it once per task, and this costs a third as much."""

    __slots__ = ("signals",)

    def __init__(self, signals: StopSignals) -> None:
        self.signals = signals

    def __enter__(self) -> None:
        if self.signals.signum is not None:
            raise Interrupted(self.signals.signum)
        self.signals._interruptible = True

    def __exit__(self, *exception: object) -> None:
        self.signals._interruptible = False
