"""Policies: how many tasks to ask the algorithm for, and how many a worker may hold.

Mechanism (who gets which task, the budget) lives in :mod:`.dispatch`; a policy answers
four questions, so a new one is a few lines:

- ``capacity(typical)``: how many tasks a worker may hold, given the typical task length
  seen so far (None before any result);
- ``refill_at``: how many free slots a worker needs before it is sent more;
- ``reply_low_water``: a worker replies as soon as it holds this many tasks or fewer;
- ``to_ask(free_slots, pending, in_flight)``: how many new tasks to ask the algorithm for.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFETCH_BELOW = 1.0
"""Seconds: tasks typically shorter than this get one task prefetched per worker (async)."""


@dataclass(frozen=True, slots=True)
class Async:
    """Ask for a new task as soon as a worker frees.

    A hand-off (result to master, next task back) takes about a millisecond on a busy
    node, mostly waking sleeping processes. For short tasks that would idle every worker
    for a millisecond per task, so once results show tasks typically shorter than
    ``PREFETCH_BELOW``, each worker also holds its next task, and the master replaces it
    while the current one runs. Long tasks get no prefetch: a task must never wait behind
    a long one while another worker idles. The price of prefetch is that a task is decided
    one result per worker earlier.
    """

    refill_at: int = 1
    reply_low_water: int = 1

    def capacity(self, typical: float | None) -> int:
        return 2 if typical is not None and typical < PREFETCH_BELOW else 1

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return max(free_slots - pending, 0)


@dataclass(frozen=True, slots=True)
class Queue:
    """Keep ``backlog`` tasks waiting on every worker besides the one it runs.

    Nobody waits for the master, so very short tasks flow at full rate; the price is that
    tasks are decided up to ``backlog`` results earlier, which costs a model-based
    algorithm some information. Bad for long tasks of very different lengths: a task may
    wait behind a slow one on a busy worker while another worker idles at the tail.

    A worker is refilled once half its slots are free, in one message, and replies when
    half its tasks are done: very short tasks then travel in batches both ways instead of
    one message per task.
    """

    backlog: int = 8

    def capacity(self, typical: float | None) -> int:
        return 1 + self.backlog

    @property
    def refill_at(self) -> int:
        return (self.backlog + 2) // 2

    @property
    def reply_low_water(self) -> int:
        return 1 + self.backlog - self.refill_at

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return max(free_slots - pending, 0)


@dataclass(frozen=True, slots=True)
class Batch:
    """Ask for ``size`` tasks, wait until every one is back, then ask again.

    Each decision sees every earlier result (what a generational algorithm wants); workers
    idle while the slowest task of a batch finishes.
    """

    size: int
    refill_at: int = 1
    reply_low_water: int = 0

    def capacity(self, typical: float | None) -> int:
        return 1

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return self.size if pending == 0 and in_flight == 0 else 0


Policy = Async | Queue | Batch


def make_policy(name: str, n_workers: int, backlog: int = 8, batch_size: int | None = None) -> Policy:
    """Build the named policy; ``batch_size`` defaults to one task per worker."""
    if name == "async":
        return Async()
    if name == "queue":
        return Queue(backlog)
    if name == "batch":
        return Batch(batch_size or n_workers)
    raise ValueError(f"unknown policy {name!r}: expected 'batch', 'async' or 'queue'")
