"""``[cache] reuse``: a point evaluated before takes the recorded result instead of running.

Only ``ok`` results are reused: a failure may be passing (a node running out of memory, a
timeout on a busy machine), so a failed point runs again. Points are compared by their
canonical JSON form, so ``{"x": 1, "y": 2}`` and ``{"y": 2, "x": 1}`` are the same point,
and the ``repeat`` parameter of a sweep with repeats keeps each repeat distinct.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ..space import point_key
from ..types import Result, Task


class Memo:
    """The first ``ok`` result of every point seen so far."""

    def __init__(self) -> None:
        self._results: dict[str, Result] = {}

    def add(self, results: Iterable[Result]) -> None:
        for result in results:
            if result.ok:
                self._results.setdefault(point_key(result.params), result)

    def lookup(self, params: dict[str, Any]) -> Result | None:
        return self._results.get(point_key(params)) if self._results else None


def reused(task: Task, earlier: Result) -> Result:
    """The result of ``task`` taken from ``earlier``: same outcome, no run, a pointer back."""
    now = time.time()
    return Result.for_task(task, earlier.status, objective=earlier.objective, metrics=earlier.metrics,
                           started=now, ended=now,
                           reused_from=earlier.reused_from if earlier.reused_from is not None else earlier.task_id)
