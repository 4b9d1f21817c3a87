"""The numbers behind the plots, as plain DataFrames: pure functions of a results frame
(the one :func:`mexplore.store.table.results_frame` builds), so they are tested on frames
made by hand and reused by anyone plotting a run their own way.

Only ``ok`` rows carry objective values; a failed, timed-out or pruned task still took an
evaluation and worker time, which is where it appears (the evaluation count, the timings).

Time is the *run's clock*: seconds since the first task started, counting only the time
inside sessions. A run resumed days later is not idle for days; the time between its
sessions is cut out of every time axis and every rate (:func:`session_spans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..objectives import Direction

if TYPE_CHECKING:
    import pandas as pd

    from ..store.sessions import Session

CONFIDENCE = 0.95


def objective_values(frame: pd.DataFrame, objective: str) -> pd.Series:
    """The objective as floats, NaN wherever the task did not finish ``ok``."""
    import pandas as pd

    values = pd.to_numeric(frame[objective], errors="coerce")
    return values.where(frame["status"] == "ok")


def has_times(frame: pd.DataFrame) -> pd.Series:
    """True where a row has both timestamps (a result that never ran records 0.0, not a time)."""
    return (frame["started"] > 0) & (frame["ended"] > 0)


@dataclass(frozen=True)
class SessionSpan:
    """Where one session's tasks ran: from its first task's start to its last task's end
    (wall clock), and where that span begins on the run's clock."""

    number: int
    start: float
    end: float
    offset: float
    """The run's clock at ``start``: the summed spans of the sessions before."""
    idle_before: float
    """Wall seconds from the previous span's end to this one's start (0 for the first)."""


def session_spans(sessions: Sequence[Session]) -> list[SessionSpan]:
    """The spans of the sessions that have timed tasks, in order."""
    spans: list[SessionSpan] = []
    for session in sessions:
        done = session.tasks[has_times(session.tasks)] if not session.tasks.empty else session.tasks
        if done.empty:
            continue
        start, end = float(done["started"].min()), float(done["ended"].max())
        before = spans[-1] if spans else None
        spans.append(SessionSpan(
            session.number, start, end, before.offset + before.end - before.start if before else 0.0,
            max(start - before.end, 0.0) if before else 0.0))
    return spans


def clock_origin(frame: pd.DataFrame, sessions: Sequence[Session] = ()) -> pd.Series:
    """Per row of ``frame``, the wall-clock time at which the run's clock would read 0 for
    it: a row's ``started - origin`` and ``ended - origin`` are on the run's clock. Without
    ``sessions`` (or with one) that is the first start; with several, each session's rows
    are moved back by the idle time before it."""
    import pandas as pd

    timed_rows = frame[has_times(frame)] if not frame.empty else frame
    origin = pd.Series(timed_rows["started"].min() if not timed_rows.empty else 0.0, index=frame.index, dtype=float)
    spans = {span.number: span for span in session_spans(sessions)}
    for session in sessions:
        if session.number in spans:
            span = spans[session.number]
            origin[origin.index.intersection(session.tasks.index)] = span.start - span.offset
    return origin


def best_so_far(
    frame: pd.DataFrame, objective: str, direction: Direction | str, sessions: Sequence[Session] = (),
) -> pd.DataFrame:
    """One row per finished task in the order tasks ended: ``evaluation`` (1, 2, ...),
    ``elapsed`` (seconds on the run's clock: from the first start, without the time between
    ``sessions`` when given), ``value`` (NaN unless ``ok``) and ``best``, the best ``ok``
    value up to that task (NaN before the first one)."""
    import numpy as np
    import pandas as pd

    done = frame[has_times(frame)].sort_values("ended", kind="stable")
    value = objective_values(done, objective)
    best = (value.cummin() if Direction(direction).ascending else value.cummax()).ffill()
    return pd.DataFrame({
        "evaluation": np.arange(1, len(done) + 1),
        "elapsed": (done["ended"] - clock_origin(frame, sessions)[done.index]).to_numpy(dtype=float),
        "value": value.to_numpy(dtype=float),
        "best": best.to_numpy(dtype=float),
    })


def sweep_table(
    frame: pd.DataFrame, objective: str, x: str, by: str | None = None, confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """The sweep curve: for each value of column ``x`` (and of ``by``, one curve per value),
    ``n`` ok rows, their ``mean``, ``std`` (n - 1 in the denominator) and the ``low``/``high``
    ends of the Student t interval of the mean at ``confidence``, ``mean -+ t * std / sqrt(n)``.

    The rows of one group are the repeats of one sweep point; with one row (no repeats)
    the interval is NaN: a single value says nothing about its own noise.
    """
    import numpy as np
    from scipy import stats

    keys = [by, x] if by else [x]
    values = frame.assign(_value=objective_values(frame, objective)).dropna(subset=["_value"])
    table = values.groupby(keys, sort=True)["_value"].agg(n="count", mean="mean", std="std").reset_index()
    n = table["n"].to_numpy(dtype=float)
    t = stats.t.ppf((1 + confidence) / 2, np.where(n > 1, n - 1, np.nan))
    half = t * table["std"].to_numpy(dtype=float) / np.sqrt(n)
    table["low"] = table["mean"] - half
    table["high"] = table["mean"] + half
    return table


def timed(frame: pd.DataFrame) -> pd.DataFrame:
    """Tasks that ran on a worker (a reused result has rank -1 and took no time), with
    both timestamps: the rows a timeline or a utilization figure can use."""
    if frame.empty:
        return frame
    return frame[has_times(frame) & (frame["rank"] >= 0)]


def per_slot(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a task that held several worker slots (its ``slots`` column, in a
    study with ``[model] ranks``) repeated once per slot, ``rank`` set to that slot: the
    rows of a timeline, whose busy time is then slot-seconds."""
    if frame.empty or "slots" not in frame:
        return frame
    held = frame["slots"].map(lambda slots: [int(s) for s in str(slots).split()] if isinstance(slots, str) else [])
    spread = frame.assign(rank=[slots or [rank] for slots, rank in zip(held, frame["rank"])]).explode("rank")
    return spread.astype({"rank": frame["rank"].dtype})


def worker_time(frame: pd.DataFrame, workers: int) -> tuple[float, float]:
    """(busy, available) worker-seconds of one session: the summed durations of the tasks
    that ran on a worker (times the slots each held), and ``workers`` x the span from their
    first start to their last end. Sum them over sessions for a whole run: the time between
    sessions is in neither."""
    ran = per_slot(timed(frame))
    if ran.empty or workers < 1:
        return 0.0, 0.0
    span = float(ran["ended"].max() - ran["started"].min())
    return float((ran["ended"] - ran["started"]).sum()), workers * max(span, 0.0)


def utilization(frame: pd.DataFrame, workers: int) -> float | None:
    """Busy worker time over available worker time in one session (:func:`worker_time`);
    None when nothing ran."""
    busy, available = worker_time(frame, workers)
    return busy / available if available > 0 else None
