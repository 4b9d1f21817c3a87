"""The shared vocabulary every room speaks: tasks, results and their status.

Slotted dataclasses keep messages small and fast to pickle on the master's hot path; the
status enum replaces stringly-typed flags. Standard library only.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


TABLE_COLUMNS = (
    "id", "status", "started", "ended", "duration", "rank", "host", "gpu", "attempt", "error",
    "algorithm_time",
)
"""Columns every row of the results table has besides objectives, ``p:`` params and ``m:``
metrics; an objective may not take one of these names."""


class Status(str, enum.Enum):
    """What became of a task. Only ``ok`` results carry a trustworthy objective."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    PRUNED = "pruned"
    CANCELLED = "cancelled"
    LOST = "lost"


Objective = float | list[float] | None


@dataclass(slots=True)
class Task:
    """One evaluation of the model at one parameter set.

    ``algorithm_time`` is what proposing it cost the master: its share of the ``ask`` that
    returned it, plus of every ``tell`` and ``report`` since the ``ask`` before."""

    id: int
    params: dict[str, Any]
    attempt: int = 0
    priority: float = 0.0
    algorithm_time: float = 0.0


@dataclass(slots=True)
class Result:
    """What came back from one task, with where and when it ran.

    ``objective`` is a float (one objective), a list (several) or None (the task did not
    produce one: failed, cancelled...). ``error`` holds the reason or the remote traceback.
    Workers leave ``params`` empty to keep replies small; the master puts back the task's
    own dict, so an algorithm gets the very object it proposed. ``reports`` holds the
    intermediate ``(step, value)`` pairs the model reported while it ran. ``reused_from`` is
    the task whose result this one took instead of running (``[cache] reuse``).
    ``algorithm_time`` is the master's seconds in the algorithm to propose it (see
    :class:`Task`).
    """

    task_id: int
    params: dict[str, Any]
    status: Status
    objective: Objective = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    rank: int = -1
    host: str = ""
    attempt: int = 0
    gpu: str | None = None
    reports: list[tuple[float, float]] = field(default_factory=list)
    reused_from: int | None = None
    algorithm_time: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready form written to the journal (one line per finished task)."""
        record = {
            "id": self.task_id,
            "status": self.status.value,
            "objective": self.objective,
            "params": self.params,
            "metrics": self.metrics,
            "error": self.error,
            "started": self.started,
            "ended": self.ended,
            "rank": self.rank,
            "host": self.host,
            "gpu": self.gpu,
            "attempt": self.attempt,
            "reports": self.reports,
            "algorithm_time": round(self.algorithm_time, 7),
        }
        if self.reused_from is not None:
            record["reused_from"] = self.reused_from
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Result:
        """Inverse of :meth:`to_record`; used when a journal is replayed on resume."""
        return cls(
            task_id=int(record["id"]),
            params=record["params"],
            status=Status(record["status"]),
            objective=record.get("objective"),
            metrics=record.get("metrics") or {},
            error=record.get("error"),
            started=record.get("started", 0.0),
            ended=record.get("ended", 0.0),
            rank=record.get("rank", -1),
            host=record.get("host", ""),
            attempt=record.get("attempt", 0),
            gpu=record.get("gpu"),
            reports=[tuple(pair) for pair in record.get("reports") or []],
            reused_from=record.get("reused_from"),
            algorithm_time=record.get("algorithm_time", 0.0),
        )


def is_finite_number(value: object) -> bool:
    """True for real numbers that are not NaN or infinite (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def error_summary(error: str | None) -> str | None:
    """The last non-empty line of an error text: a traceback's exception, or the reason an
    external model failed. The journal keeps the whole text."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else None
