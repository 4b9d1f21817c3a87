"""The worker loop: take tasks from the master, run them, send results back.

Tasks a worker holds run one after the other. Results go back in batches: at once when the
worker is about to run dry (so the master can refill it before it idles), or when the
oldest unsent result is a couple of milliseconds old; very short tasks thus share one
message instead of paying one each.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections import deque
from collections.abc import Callable

from ..comms.backoff import Backoff
from ..comms.messages import ResultBatch, Setup, WorkerFailed, Stop, TaskBatch
from ..comms.transport import WorkerEnd
from ..types import Result, Task

MAX_REPLY_DELAY = 0.002

ModelFactory = Callable[[object, int, str], Callable[[Task], Result]]


def serve(link: WorkerEnd, make_model: ModelFactory, backoff: Backoff | None = None) -> None:
    """Run until the master says stop. Model errors never leave this function."""
    backoff = backoff or Backoff()
    host = socket.gethostname()
    setup = _wait_for_setup(link, backoff)
    if setup is None:
        return
    try:
        model = make_model(setup.model, link.rank, host)
    except Exception:
        link.send(WorkerFailed(link.rank, host, f"could not load the model:\n{traceback.format_exc()}"))
        _wait_for_stop(link, backoff)
        return
    _work(link, model, setup.reply_low_water, backoff)


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
    oldest_unsent = 0.0
    stopping = False
    while True:
        message = link.poll()
        while message is not None:
            if isinstance(message, TaskBatch):
                held.extend(message.tasks)
            elif isinstance(message, Stop):
                stopping = True
            message = link.poll()
        if held:
            backoff.reset()
            result = model(held.popleft())
            if not unsent:
                oldest_unsent = time.perf_counter()
            unsent.append(result)
            if len(held) <= low_water or time.perf_counter() - oldest_unsent >= MAX_REPLY_DELAY:
                link.send(ResultBatch(unsent))
                unsent = []
        elif stopping:
            break
        else:
            backoff.wait()
    link.close()
