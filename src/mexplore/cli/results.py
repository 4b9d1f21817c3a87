"""``mexplore results OUTPUT``: the best rows of a run, read from its journal (safe mid-run)."""

from __future__ import annotations

import argparse
import signal
import sys
import tomllib
from pathlib import Path


def results_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mexplore results DIR | head` ends quietly
    from ..runtime.record import STUDY_RECORD
    from ..store.journal import JOURNAL_NAME
    from ..store.table import best_rows, results_frame

    output = Path(args.output)
    record, journal = output / STUDY_RECORD, output / JOURNAL_NAME
    if not record.exists() or not journal.exists():
        print(f"mexplore: error: {output} holds no run ({STUDY_RECORD} and {JOURNAL_NAME} expected)",
              file=sys.stderr)
        return 2
    study = tomllib.loads(record.read_text())["study"]
    objectives = _as_list(study.get("objective", "objective"))
    directions = _as_list(study.get("direction", "minimize")) * len(objectives)
    frame = results_frame(journal, objectives)
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no tasks"
    print(f"{output}: {len(frame)} tasks ({summary})")
    best = best_rows(frame, objectives[0], directions[0], args.top)
    if best.empty:
        return 0
    shown = ["id", *objectives, *[c for c in best.columns if c.startswith(("p:", "m:"))], "duration", "rank"]
    print(best[shown].to_string(index=False))
    return 0


def _as_list(value: object) -> list[str]:
    return list(value) if isinstance(value, list) else [str(value)]
