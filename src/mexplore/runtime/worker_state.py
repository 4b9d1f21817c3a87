"""A worker's bookkeeping, apart from its loop: which tasks it holds, which results wait to
go back, and when they go (:class:`ReplyRule`). No MPI, no model, no files: the loop in
:mod:`.worker` feeds it what arrived and does what it says.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from ..comms.messages import Stop
from ..types import Result, Task

MAX_REPLY_DELAY = 0.002
"""Seconds a finished result may wait on the worker to share a message with the next ones."""


class ReplyRule:
    """When a worker sends its finished results, checked before it starts its next task.

    - when it holds no more tasks: the master must know it is free;
    - when it first falls to ``low_water`` held tasks since its last refill: the master can
      send the next batch while the rest run, so the worker never waits for it;
    - when the results would otherwise wait too long: the oldest one's age plus the next
      task's expected length (the last one's) reaches ``MAX_REPLY_DELAY``. Results of long
      tasks thus go back one by one at once; those of very short tasks share a message.
    """

    __slots__ = ("low_water", "clock", "_armed", "_oldest", "_last_length")

    def __init__(self, low_water: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.low_water = low_water
        self.clock = clock
        self._armed = True
        self._oldest = 0.0
        self._last_length = 0.0

    def refilled(self) -> None:
        self._armed = True

    def ran(self, started: float) -> None:
        """A task that began at ``started`` (on :attr:`clock`) has just ended."""
        now = self.clock()
        self._last_length = now - started
        if not self._oldest:
            self._oldest = now

    def due(self, held: int) -> bool:
        if held == 0 or (self._armed and held <= self.low_water):
            return True
        return self.clock() - self._oldest + self._last_length >= MAX_REPLY_DELAY

    def sent(self, held: int) -> None:
        self._oldest = 0.0
        if held <= self.low_water:
            self._armed = False


class WorkerState:
    """The tasks a worker holds and the results it has not sent yet.

    After a stop signal it runs nothing more: what it holds is dropped (those tasks run
    again on resume), the master is told once, and results go back at once. A :class:`Stop`
    with ``abandon`` drops what is held too; a plain one lets it run first.
    """

    def __init__(self, low_water: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.held: deque[Task] = deque()
        self.unsent: list[Result] = []
        self.reply = ReplyRule(low_water, clock)
        self.stop: Stop | None = None
        self.signalled = False

    def received(self, tasks: list[Task]) -> None:
        self.held.extend(tasks)
        self.reply.refilled()

    def stopping(self, stop: Stop) -> None:
        self.stop = stop
        if stop.abandon:
            self.held.clear()

    def signal(self) -> bool:
        """A stop signal is pending: True the first time (tell the master now)."""
        if self.signalled:
            return False
        self.signalled = True
        self.held.clear()
        return True

    def finished(self, result: Result, started: float) -> None:
        """A task that began at ``started`` ended with ``result``."""
        self.unsent.append(result)
        self.reply.ran(started)

    def results_to_send(self) -> list[Result]:
        """The results to send now (empty when they may wait for more)."""
        if not self.unsent:
            return []
        if not (self.reply.due(len(self.held)) or self.stop is not None or self.signalled):
            return []
        batch, self.unsent = self.unsent, []
        self.reply.sent(len(self.held))
        return batch

    def next_task(self) -> Task | None:
        return self.held.popleft() if self.held else None

    @property
    def done(self) -> bool:
        """Stopped, with nothing left to run (results are sent before this is asked)."""
        return self.stop is not None and not self.held
