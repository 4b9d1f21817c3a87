"""One summary of a run's task timings, computed the same way for every variant.

Each variant yields, per task, ``(started, ended)`` UNIX timestamps taken on the worker around
the model call. From them:

* ``span``: max ended - min started, the time during which tasks ran (launch, import and
  shut-down are outside it);
* ``tasks_per_s``: tasks / span;
* ``utilization``: sum of (ended - started) / (workers x span): the share of the workers'
  time spent inside the model.
"""

from __future__ import annotations

from collections.abc import Iterable


def summarize(intervals: Iterable[tuple[float, float]], workers: int) -> dict[str, float]:
    """``tasks``, ``span``, ``busy``, ``tasks_per_s`` and ``utilization`` of ``intervals``."""
    tasks, busy = 0, 0.0
    first, last = float("inf"), float("-inf")
    for started, ended in intervals:
        tasks += 1
        busy += ended - started
        first = min(first, started)
        last = max(last, ended)
    span = last - first if tasks else 0.0
    return {
        "tasks": tasks,
        "workers": workers,
        "span": span,
        "busy": busy,
        "tasks_per_s": tasks / span if span > 0 else 0.0,
        "utilization": busy / (workers * span) if span > 0 else 0.0,
    }
