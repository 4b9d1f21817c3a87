"""``mexplore results OUTPUT``: the best rows of a run, read from its journal (safe mid-run)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.run import Run


def results_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mexplore results DIR | head` ends quietly
    from ..store.run import NoRunError, load_run
    from ..store.table import best_rows

    try:
        run = load_run(Path(args.output))
    except NoRunError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    frame, objectives = run.frame, run.objectives
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no tasks"
    print(f"{run.output}: {len(frame)} tasks ({summary})")
    if (line := _bottleneck(run)) is not None:
        print(line)
    best = best_rows(frame, objectives[0], run.directions[0], args.top)
    if best.empty:
        return 0
    shown = ["id", *objectives, *[c for c in best.columns if c.startswith(("p:", "m:"))], "duration", "rank"]
    print(best[shown].to_string(index=False))
    return 0


def _bottleneck(run: Run) -> str | None:
    """Whether the algorithm limited throughput over the run's latest tasks."""
    from ..runtime.bottleneck import RECENT, verdict

    frame = run.frame
    if frame.empty or "algorithm_time" not in frame:
        return None
    ran = frame[frame["rank"] >= 0].sort_values("ended").tail(RECENT)
    now = verdict(zip(ran["algorithm_time"], ran["duration"]), run.workers)
    return None if now is None else f"note: {now.line}"
