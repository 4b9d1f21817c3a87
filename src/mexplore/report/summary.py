"""The report's headline numbers: tasks by status, the best task of each objective, and
wall time, throughput and how busy the workers were, per session and over the sessions
(the idle time between sessions counted in none of them)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..objectives import Direction
from ..store.run import Run
from ..store.sessions import Session
from .tables import objective_values, session_spans, worker_time

NOT_RECORDED = "before sessions were recorded"
NO_END = "no end recorded (killed, or still running)"


@dataclass(frozen=True)
class Best:
    """The best ``ok`` task by one objective."""

    objective: str
    direction: Direction
    value: float
    task: int
    params: dict[str, Any]


@dataclass(frozen=True)
class SessionFigures:
    """One session's numbers, as the per-session table shows them."""

    number: int
    start: float
    """Wall clock (UNIX seconds) at which the session began."""
    ended: str
    """How it ended: ``finished``, ``stopped by SIGTERM``, ..., or why that is not known."""
    tasks: int
    wall: float | None
    """Seconds from its first task's start to its last task's end."""
    workers: int
    busy: float
    """Worker-seconds spent in tasks."""
    available: float
    """Worker-seconds the workers were there for: ``workers`` x the span of its tasks."""
    idle_before: float
    """Seconds since the previous session's last task ended (0 for the first)."""

    @property
    def rate(self) -> float | None:
        return self.tasks / self.wall if self.wall else None

    @property
    def utilization(self) -> float | None:
        return self.busy / self.available if self.available > 0 else None


@dataclass(frozen=True)
class Summary:
    tasks: int
    by_status: dict[str, int]
    best: list[Best]
    sessions: list[SessionFigures]

    @property
    def wall(self) -> float | None:
        """The sessions' wall times summed: the run's time, less the time between sessions."""
        walls = [s.wall for s in self.sessions if s.wall is not None]
        return sum(walls) if walls else None

    @property
    def idle(self) -> float:
        """Seconds between sessions, left out of every figure."""
        return sum(s.idle_before for s in self.sessions)

    @property
    def rate(self) -> float | None:
        """Finished tasks per second of wall time."""
        return self.tasks / self.wall if self.wall else None

    @property
    def workers(self) -> str:
        """The worker count, or its range when sessions differ (``2-4``)."""
        counts = sorted({s.workers for s in self.sessions}) or [0]
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    @property
    def utilization(self) -> float | None:
        """Busy worker time over available worker time, summed over the sessions."""
        available = sum(s.available for s in self.sessions)
        return sum(s.busy for s in self.sessions) / available if available > 0 else None


def summarize(run: Run) -> Summary:
    frame = run.frame
    sessions = _sessions(run.sessions)
    if frame.empty:
        return Summary(0, {}, [], sessions)
    by_status = {str(k): int(v) for k, v in sorted(frame["status"].value_counts().items())}
    best = [b for o, d in zip(run.objectives, run.directions) if (b := _best(run, o, d)) is not None]
    return Summary(len(frame), by_status, best, sessions)


def _sessions(sessions: list[Session]) -> list[SessionFigures]:
    spans = {span.number: span for span in session_spans(sessions)}
    figures = []
    for session in sessions:
        span = spans.get(session.number)
        busy, available = worker_time(session.tasks, session.workers)
        ended = session.outcome or (NO_END if session.recorded else NOT_RECORDED)
        figures.append(SessionFigures(
            session.number, session.start, ended, len(session.tasks),
            span.end - span.start if span else None, session.workers, busy, available,
            span.idle_before if span else 0.0))
    return figures


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


def duration_text(seconds: float) -> str:
    """``42.5 s``, ``7m 54s``, ``2h 03m 10s``: for the page and the plots' labels."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {rest:02d}s" if hours else f"{minutes}m {rest:02d}s"
