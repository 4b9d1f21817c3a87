"""``mexplore results OUTPUT``: the best rows of a run, read from its journal (safe mid-run),
and why tasks failed: a count per reason always, every failed row with ``--failed`` or
``--status``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..failures import FailureTally, is_failure, reason_of
from ..types import Status

if TYPE_CHECKING:
    import pandas as pd

    from ..store.run import Run

REASONS_SHOWN = 5
"""Failure reasons listed under the counts (the most frequent); ``--failed`` lists all."""


def results_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mexplore results DIR | head` ends quietly
    from ..store.run import NoRunError, load_run
    from ..store.table import best_rows

    try:
        wanted = _statuses(args.statuses, args.failed)
        run = load_run(Path(args.output))
    except (ValueError, NoRunError) as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    frame, objectives = run.frame, run.objectives
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no tasks"
    kinds = frame["kind"].value_counts().to_dict() if "kind" in frame else {}
    auxiliary = "".join(f", {n} of kind {kind}" for kind, n in sorted(kinds.items()))
    print(f"{run.output}: {len(frame)} tasks ({summary}{auxiliary})")
    for line in _reasons(frame, None if wanted else run.output):
        print(line)
    if wanted:
        _print_rows(frame, wanted)
        return 0
    if (line := _bottleneck(run)) is not None:
        print(line)
    if (line := _lag(frame, run.workers)) is not None:
        print(line)
    best = best_rows(frame, objectives[0], run.directions[0], args.top)
    if best.empty:
        return 0
    own = [c for c in best.columns if c.startswith(("p:", "m:")) and best[c].notna().any()]  # not other kinds'
    shown = ["id", *objectives, *own, "duration", "rank"]
    print(best[shown].to_string(index=False))
    return 0


def _statuses(given: list[str], failed: bool) -> list[str]:
    """The statuses asked for: each ``--status`` may be a comma list; ``--failed`` adds
    those :func:`~mexplore.failures.is_failure` counts. A ValueError names an unknown one."""
    known = [status.value for status in Status]
    wanted = [name.strip() for item in given for name in item.split(",") if name.strip()]
    for name in wanted:
        if name not in known:
            raise ValueError(f"--status {name}: expected one of {', '.join(known)}")
    if failed:
        wanted += [name for name in known if is_failure(name)]
    return list(dict.fromkeys(wanted))


def _reasons(frame: pd.DataFrame, output: Path | None) -> list[str]:
    """Why tasks failed: a count per reason, most frequent first, with task ids to look up,
    and (given the ``output``) how to list every failed task."""
    if frame.empty:
        return []
    tally = FailureTally()
    for task_id, status, error in frame.loc[frame["status"].map(is_failure), ["id", "status", "error"]].itertuples(
        index=False
    ):
        tally.add(int(task_id), status, error if isinstance(error, str) else None)
    if not tally.total:
        return []
    ranked = tally.most_common()
    lines = [f"failures by reason ({tally.total} tasks):", *(f"  {reason.describe()}" for reason in ranked[:REASONS_SHOWN])]
    if output is not None:
        more = f"{len(ranked) - REASONS_SHOWN} more reasons; " if len(ranked) > REASONS_SHOWN else ""
        lines.append(f"  ({more}`mexplore results {output} --failed` lists every failed task)")
    return lines


def _print_rows(frame: pd.DataFrame, statuses: list[str]) -> None:
    """Every task with one of ``statuses``, by id: its params, where it ran, and its reason."""
    rows = frame[frame["status"].isin(statuses)] if not frame.empty else frame
    if rows.empty:
        print(f"no task is {' or '.join(statuses)}")
        return
    reasons = [reason_of(status, error if isinstance(error, str) else None)
               for status, error in zip(rows["status"], rows["error"])]
    shown = ["id", "status", *[c for c in rows.columns if c.startswith("p:")], "attempt", "rank"]
    header, *lines = rows[shown].to_string(index=False).splitlines()
    print(f"{header}  reason")
    for line, reason in zip(lines, reasons):  # the reason last, left-aligned: it is long
        print(f"{line}  {reason}")


def _lag(frame: pd.DataFrame, workers: int) -> str | None:
    """How many tasks were pending when each was proposed: results a learning algorithm's
    proposals could not see (one task per worker keeps it below the number of workers)."""
    if frame.empty or "lag" not in frame:
        return None
    lag = frame["lag"].fillna(0)
    return (f"lag: mean {lag.mean():.1f}, max {int(lag.max())} with {workers} worker{'s' if workers != 1 else ''} "
            "(tasks pending when each task was proposed)")


def _bottleneck(run: Run) -> str | None:
    """Whether workers waited for the algorithm's proposals over the run's latest tasks."""
    from ..runtime.bottleneck import Span, verdict, window

    frame = run.frame
    if frame.empty or "algorithm_time" not in frame:
        return None
    ran = frame[frame["rank"] >= 0].sort_values("ended").tail(window(run.workers))
    spans = [Span(int(rank), started, ended, algorithm_time, status == "ok") for rank, started, ended, algorithm_time, status
             in ran[["rank", "started", "ended", "algorithm_time", "status"]].itertuples(index=False)]
    now = verdict(spans, run.workers)
    return None if now is None else f"note: {now.line}"
