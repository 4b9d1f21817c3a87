"""The flat results table (``results.csv``) and the best-rows query behind ``mexplore results``.

Built from the journal, never from memory, so the table and the journal cannot disagree and
the table can be rebuilt at any time, even while a run goes on. pandas is imported here
only, when a table is actually wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..types import error_summary
from .journal import iter_records

if TYPE_CHECKING:
    import pandas as pd

RESULTS_NAME = "results.csv"


def results_frame(journal: Path, objectives: Sequence[str]) -> pd.DataFrame:
    """One row per task: id, status, objective column(s), ``p:<param>``, ``m:<metric>``,
    start and end (UNIX seconds), duration, rank, host, gpu, attempt, error (its summary
    line; the journal keeps the whole text and the intermediate reports)."""
    import pandas as pd

    rows = []
    for record in iter_records(journal):
        row = {"id": record["id"], "status": record["status"]}
        objective = record.get("objective")
        values = objective if isinstance(objective, list) else [objective] * len(objectives)
        row.update(zip(objectives, values))
        row.update({f"p:{k}": v for k, v in record["params"].items()})
        row.update({f"m:{k}": v for k, v in (record.get("metrics") or {}).items()})
        row.update(
            started=record.get("started"),
            ended=record.get("ended"),
            duration=(record.get("ended") or 0) - (record.get("started") or 0),
            rank=record.get("rank"),
            host=record.get("host"),
            gpu=record.get("gpu"),
            attempt=record.get("attempt", 0),
            error=error_summary(record.get("error")),
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values("id", kind="stable").reset_index(drop=True) if rows else frame


def write_results_csv(frame: pd.DataFrame, output: Path) -> Path:
    """(Re)write ``results.csv`` from the :func:`results_frame`, atomically (temp file, then rename)."""
    target = output / RESULTS_NAME
    temporary = target.with_suffix(".csv.tmp")
    frame.to_csv(temporary, index=False)
    temporary.replace(target)
    return target


def best_rows(frame: pd.DataFrame, objective: str, direction: str, top: int) -> pd.DataFrame:
    """The ``top`` finished (``ok``) rows, best first, by one objective."""
    if frame.empty:
        return frame
    done = frame[frame["status"] == "ok"]
    return done.sort_values(objective, ascending=direction == "minimize", kind="stable").head(top)
