"""Typed messages between the master and the workers.

Each kind is its own slotted dataclass, so a handler dispatches on type instead of on integer
tags. Payloads are the shared :mod:`mexplore.types`; nothing here knows about studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import Result, Task


@dataclass(slots=True)
class Setup:
    """Master -> worker, once: what to run and how to batch replies.

    ``model`` is an opaque, picklable description the worker's model factory understands;
    ``reply_low_water``: reply as soon as no more than this many tasks wait locally.
    """

    model: Any
    reply_low_water: int = 0


@dataclass(slots=True)
class WorkerFailed:
    """Worker -> master: this worker cannot go on (its model would not load, say)."""

    rank: int
    host: str
    error: str


@dataclass(slots=True)
class TaskBatch:
    """Master -> worker: tasks to run, in order."""

    tasks: list[Task]


@dataclass(slots=True)
class ResultBatch:
    """Worker -> master: finished tasks since the last reply."""

    results: list[Result]


@dataclass(slots=True)
class Report:
    """Worker -> master, while a task runs: an intermediate value (a loss after an epoch)."""

    task_id: int
    step: float
    value: float


@dataclass(slots=True)
class Stop:
    """Master -> worker: no more work; finish what is held, then leave the loop."""


Message = Setup | WorkerFailed | TaskBatch | ResultBatch | Report | Stop
