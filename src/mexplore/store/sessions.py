"""``<output>/sessions.jsonl``: each session of a run (one ``mexplore run`` on the output
directory), when it started and ended, on how many workers, and how it ended.

A run resumed after a kill, or extended with a larger budget, is several sessions with idle
time between them (minutes in a queue, days before a budget is raised). The journal alone
cannot tell that time from a slow run: figures over the whole span (wall time, throughput,
utilization) would count the idle time. The master appends one ``start`` line when a
session begins (before any task id is handed out) and one ``end`` line when it ends;
a killed session has no end line, and ends where its last task ended.

Every line is strict JSON, one object, flushed and fsynced when written (two lines per
session: nothing to batch). A line cut short by a kill is skipped when read. Tasks belong
to sessions by id: a session hands out ids from its ``first_task`` on, and the next
session starts after every id an earlier one reserved (:mod:`.task_ids`), so the ids of
one session lie between its ``first_task`` and the next session's.

Runs written before this file existed (or the tasks of a journal before the first session
recorded here) are one session spanning their tasks: splitting them at idle gaps would
need a threshold that a slow algorithm step or a long task could pass, and a wrong split
would silently overstate utilization. Only those journals still show the idle time.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..node import node_name

if TYPE_CHECKING:
    import pandas as pd

SESSIONS_NAME = "sessions.jsonl"


def mexplore_version() -> str:
    """The installed mexplore's version, ``"?"`` when run from a source tree."""
    try:
        return version("mexplore")
    except PackageNotFoundError:
        return "?"


class SessionLog:
    """The master's side of ``sessions.jsonl``: :meth:`start` writes the start line,
    :meth:`end` the end line."""

    def __init__(self, path: Path, number: int, workers: int) -> None:
        self.path = path
        self.number = number
        self.workers = workers

    @classmethod
    def start(cls, output: Path, workers: int, first_task: int) -> SessionLog:
        """A session begins, with ``workers`` worker ranks, handing out ids from ``first_task``.

        Its number follows the recorded sessions; ids handed out before any session was
        recorded (``first_task > 0`` without a start line) are counted as one session
        (number 1), as :func:`split_sessions` reads them.
        """
        path = output / SESSIONS_NAME
        recorded = [r for r in _lines(path) if r.get("event") == "start"]
        earlier = max((int(r["session"]) for r in recorded), default=1 if first_task > 0 else 0)
        log = cls(path, earlier + 1, workers)
        log._append({
            "event": "start", "session": log.number, "time": time.time(), "host": node_name(),
            "pid": os.getpid(), "ranks": workers + 1, "workers": workers, "first_task": first_task,
            "version": mexplore_version(),
        })
        return log

    def end(self, outcome: str) -> None:
        """The session is over: ``finished``, ``stopped by SIGTERM``, ``failed``..."""
        self._append({"event": "end", "session": self.number, "time": time.time(), "outcome": outcome})

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
            file.flush()
            os.fsync(file.fileno())


@dataclass(frozen=True)
class SessionRecord:
    """One session as ``sessions.jsonl`` records it; ``end`` and ``outcome`` are None
    when it has no end line (killed, or still running)."""

    number: int
    start: float
    workers: int
    first_task: int
    host: str
    pid: int
    version: str
    end: float | None = None
    outcome: str | None = None


def read_session_records(output: Path) -> list[SessionRecord]:
    """The sessions recorded in ``output``, in order; none when the file is absent.
    Lines that are not whole records (a kill mid-write, an edit) are left out."""
    starts: dict[int, SessionRecord] = {}
    ends: dict[int, dict[str, Any]] = {}
    for line in _lines(output / SESSIONS_NAME):
        try:
            if line.get("event") == "start":
                number = int(line["session"])
                starts[number] = SessionRecord(
                    number, float(line["time"]), int(line["workers"]), int(line["first_task"]),
                    str(line.get("host", "?")), int(line.get("pid", 0)), str(line.get("version", "?")))
            elif line.get("event") == "end":
                ends[int(line["session"])] = line
        except (KeyError, TypeError, ValueError):
            continue
    records = []
    for number in sorted(starts):
        end = ends.get(number, {})
        ended = end.get("time")
        records.append(replace(starts[number], end=None if ended is None else float(ended),
                               outcome=end.get("outcome")))
    return records


@dataclass(frozen=True, eq=False)
class Session:
    """One session of a run and the tasks that finished in it.

    ``end`` is the end line's time, else (killed, or still running) its last task's end, else
    its start. ``recorded`` is False for the tasks of a journal that predates
    ``sessions.jsonl``: their start is their first task's start, and ``workers`` the ranks
    seen running them.
    """

    number: int
    start: float
    end: float
    workers: int
    tasks: pd.DataFrame
    outcome: str | None
    recorded: bool = True


def split_sessions(records: list[SessionRecord], frame: pd.DataFrame, workers: int) -> list[Session]:
    """The run's sessions, each with its rows of ``frame`` (a :func:`~.table.results_frame`).

    Rows whose ids come before the first recorded session form a session of their own,
    ``workers`` wide when no session is recorded at all (a run from before this file: the
    run's recorded rank count), else as wide as the ranks seen in them.
    """
    bounds = [r.first_task for r in records]
    sessions = []
    earlier = _ids_in(frame, 0, bounds[0] if bounds else None)
    if not earlier.empty:
        seen = int(earlier.loc[earlier["rank"] >= 0, "rank"].nunique())
        sessions.append(Session(1, _first(earlier, "started"), _last(earlier, "ended"),
                                seen if records else workers, earlier, None, recorded=False))
    for record, below in zip(records, [*bounds[1:], None]):
        tasks = _ids_in(frame, record.first_task, below)
        end = record.end if record.end is not None else max(_last(tasks, "ended"), record.start)
        sessions.append(Session(record.number, record.start, end, record.workers, tasks, record.outcome))
    return sessions


def _ids_in(frame: pd.DataFrame, first: int, below: int | None) -> pd.DataFrame:
    """The rows of ``frame`` whose task ids are ``first`` or more, and under ``below``."""
    if frame.empty:
        return frame
    inside = frame["id"] >= first
    if below is not None:
        inside &= frame["id"] < below
    return frame[inside]


def _first(tasks: pd.DataFrame, column: str) -> float:
    """The earliest time in ``column`` (0.0, which the journal writes for "never", left out)."""
    times = tasks.loc[tasks[column] > 0, column] if not tasks.empty else ()
    return float(min(times)) if len(times) else 0.0


def _last(tasks: pd.DataFrame, column: str) -> float:
    """The latest time in ``column``; 0.0 when there is none."""
    times = tasks.loc[tasks[column] > 0, column] if not tasks.empty else ()
    return float(max(times)) if len(times) else 0.0


def _lines(path: Path) -> list[dict[str, Any]]:
    """The file's JSON objects; a damaged line (cut short by a kill) is left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            lines.append(record)
    return lines
