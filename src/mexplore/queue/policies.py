"""Policies: how many tasks to ask the algorithm for, and how many a worker may hold.

Mechanism (who gets which task, the budget) lives in :mod:`.dispatch`; a policy only answers
two questions, so a new one is a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Async:
    """Ask for one new task whenever a worker frees.

    Full utilization for tasks longer than a hand-off (about a millisecond); for shorter
    tasks each worker waits for the master once per task, and ``Queue`` does better.
    """

    capacity: int = 1

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return max(free_slots - pending, 0)


@dataclass(frozen=True, slots=True)
class Queue:
    """Keep ``backlog`` tasks waiting on every worker besides the one it runs.

    Nobody waits for the master, so very short tasks flow at full rate; the price is that
    tasks are decided up to ``backlog`` results earlier, which costs a model-based
    algorithm some information. Bad for long tasks of very different lengths: a task may
    wait behind a slow one on a busy worker while another worker idles at the tail.
    """

    backlog: int = 8

    @property
    def capacity(self) -> int:
        return 1 + self.backlog

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return max(free_slots - pending, 0)


@dataclass(frozen=True, slots=True)
class Batch:
    """Ask for ``size`` tasks, wait until every one is back, then ask again.

    Each decision sees every earlier result (what a generational algorithm wants); workers
    idle while the slowest task of a batch finishes.
    """

    size: int
    capacity: int = 1

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
