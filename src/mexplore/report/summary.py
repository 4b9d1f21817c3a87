"""The report's headline numbers: tasks by status, the best task of each objective, wall
time, throughput and how busy the workers were."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..objectives import Direction
from ..store.run import Run
from .tables import has_times, objective_values, utilization


@dataclass(frozen=True)
class Best:
    """The best ``ok`` task by one objective."""

    objective: str
    direction: Direction
    value: float
    task: int
    params: dict[str, Any]


@dataclass(frozen=True)
class Summary:
    tasks: int
    by_status: dict[str, int]
    best: list[Best]
    wall: float | None
    """Seconds from the first task's start to the last task's end."""
    workers: int
    utilization: float | None

    @property
    def rate(self) -> float | None:
        """Finished tasks per second of wall time."""
        return self.tasks / self.wall if self.wall else None


def summarize(run: Run) -> Summary:
    frame = run.frame
    if frame.empty:
        return Summary(0, {}, [], None, run.workers, None)
    by_status = {str(k): int(v) for k, v in sorted(frame["status"].value_counts().items())}
    best = [b for o, d in zip(run.objectives, run.directions) if (b := _best(run, o, d)) is not None]
    both = frame[has_times(frame)]
    wall = float(both["ended"].max() - both["started"].min()) if not both.empty else None
    count = run.workers
    return Summary(len(frame), by_status, best, wall, count, utilization(frame, count))


def _best(run: Run, objective: str, direction: Direction) -> Best | None:
    values = objective_values(run.frame, objective).dropna()
    if values.empty:
        return None
    index = (direction.sign * values).idxmin()  # the first of equal values, as best_result
    row = run.frame.loc[index]
    params = {c[2:]: row[c] for c in run.frame.columns
              if c.startswith("p:") and c[2:] not in run.constants and _present(row[c])}
    return Best(objective, direction, float(values[index]), int(row["id"]), params)


def _present(value: Any) -> bool:
    """False for the NaN pandas puts where a task lacks a parameter others have."""
    return not (isinstance(value, float) and math.isnan(value))
