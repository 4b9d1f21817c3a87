"""The worker loop: take tasks from the master, run them, send results back.

Tasks a worker holds run one after the other; when results go back is :class:`_ReplyRule`'s
call, made before each task starts.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections import deque
from collections.abc import Callable

from ..comms.backoff import Backoff
from ..comms.messages import Report, ResultBatch, Setup, Stop, TaskBatch, WorkerFailed
from ..comms.transport import WorkerEnd
from ..types import Result, Task

MAX_REPLY_DELAY = 0.002
WORKER_SPIN = 1e-3
"""After a task, a worker polls (yielding the core) this long before it starts to sleep:
the master's answer to a result usually comes well within it, and a worker asleep when
it comes would add its sleep to every hand-off."""

ModelFactory = Callable[[object, int, str, Callable[[int, float, float], None]], Callable[[Task], Result]]


def serve(link: WorkerEnd, make_model: ModelFactory, backoff: Backoff | None = None) -> None:
    """Run until the master says stop. Model errors never leave this function."""
    backoff = backoff or Backoff(spin=WORKER_SPIN)
    host = socket.gethostname()
    setup = _wait_for_setup(link, backoff)
    if setup is None:
        return
    try:
        model = make_model(setup.model, link.rank, host,
                           lambda task_id, step, value: link.send(Report(task_id, step, value)))
    except Exception:
        link.send(WorkerFailed(link.rank, host, f"could not load the model:\n{traceback.format_exc()}"))
        _wait_for_stop(link, backoff)
        return
    try:
        _work(link, model, setup.reply_low_water, backoff)
    except Exception:  # a bug of ours, not the model's: stop the run cleanly, with the reason
        link.send(WorkerFailed(link.rank, host, f"the worker failed:\n{traceback.format_exc()}"))
        _wait_for_stop(link, backoff)


def _wait_for_setup(link: WorkerEnd, backoff: Backoff) -> Setup | None:
    while True:
        message = link.poll()
        if isinstance(message, Setup):
            return message
        if isinstance(message, Stop):
            return None
        backoff.wait()


def _wait_for_stop(link: WorkerEnd, backoff: Backoff) -> None:
    while not isinstance(link.poll(), Stop):
        backoff.wait()


def _work(link: WorkerEnd, model: Callable[[Task], Result], low_water: int, backoff: Backoff) -> None:
    held: deque[Task] = deque()
    unsent: list[Result] = []
    reply = _ReplyRule(low_water)
    stopping = False
    while True:
        message = link.poll()
        while message is not None:
            if isinstance(message, TaskBatch):
                held.extend(message.tasks)
                reply.refilled()
            elif isinstance(message, Stop):
                stopping = True
            message = link.poll()
        if unsent and reply.due(len(held)):
            link.send(ResultBatch(unsent))
            unsent = []
            reply.sent(len(held))
        if held:
            started = time.perf_counter()
            unsent.append(model(held.popleft()))
            reply.ran(started)
            backoff.reset()
        elif stopping:
            break
        else:
            backoff.wait()
    link.close()


class _ReplyRule:
    """When a worker sends its finished results, checked before it starts its next task.

    - when it holds no more tasks: the master must know it is free;
    - when it first falls to ``low_water`` held tasks since its last refill: the master can
      send the next batch while the rest run, so the worker never waits for it;
    - when the results would otherwise wait too long: the oldest one's age plus the next
      task's expected length (the last one's) reaches ``MAX_REPLY_DELAY``. Results of long
      tasks thus go back one by one at once; those of very short tasks share a message.
    """

    __slots__ = ("low_water", "_armed", "_oldest", "_last_length")

    def __init__(self, low_water: int) -> None:
        self.low_water = low_water
        self._armed = True
        self._oldest = 0.0
        self._last_length = 0.0

    def refilled(self) -> None:
        self._armed = True

    def ran(self, started: float) -> None:
        now = time.perf_counter()
        self._last_length = now - started
        if not self._oldest:
            self._oldest = now

    def due(self, held: int) -> bool:
        if held == 0 or (self._armed and held <= self.low_water):
            return True
        return time.perf_counter() - self._oldest + self._last_length >= MAX_REPLY_DELAY

    def sent(self, held: int) -> None:
        self._oldest = 0.0
        if held <= self.low_water:
            self._armed = False
