"""The flat results table (``results.csv``) and the best-rows query behind ``mexplore results``.

Built from the journal, never from memory, so the table and the journal cannot disagree and
the table can be rebuilt at any time, even while a run goes on. pandas is imported here
only, when a table is actually wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..objectives import Direction
from ..types import error_summary
from .atomic import atomic_path
from .journal import iter_records

if TYPE_CHECKING:
    import pandas as pd

RESULTS_NAME = "results.csv"


REUSED = "reused_from"
"""``frame.attrs[REUSED]``: task id -> the task whose result it took (``[cache] reuse``)."""


def results_frame(
    journal: Path, objectives: Sequence[str], directions: Sequence[Direction | str] = (),
) -> pd.DataFrame:
    """One row per task: id, status, objective column(s), ``p:<param>``, ``m:<metric>``,
    start and end (UNIX seconds), duration, rank, host, gpu, attempt, error (its summary
    line; the journal keeps the whole text and the intermediate reports), algorithm_time
    (the master's seconds in the algorithm to propose the task), lag (the proposals
    pending when it was decided). A task that held several worker slots (``[model] ranks``)
    also has slots (their ranks, space-separated, the leader first) and hosts (its nodes,
    comma-separated, each once); these columns exist only when some task did. A study of
    several kinds has a ``kind`` column, empty for the objective kind's rows and naming the
    auxiliary kind (``[models.<kind>]``) of the others. With several
    objectives and their ``directions``, a ``pareto`` column marks the non-dominated
    ``ok`` rows. Non-finite metrics, spelled as strings in the journal, are NaN and ±inf
    here again (:func:`~.journal.iter_records` reads them back)."""
    import pandas as pd

    rows = []
    reused: dict[int, int] = {}
    for record in iter_records(journal):
        row = {"id": record["id"], "status": record["status"]}
        if record.get("reused_from") is not None:
            reused[record["id"]] = record["reused_from"]
        if "kind" in record:
            row["kind"] = record["kind"]
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
            algorithm_time=record.get("algorithm_time", 0.0),
            lag=record.get("lag", 0),
        )
        if "slots" in record:
            row["slots"] = " ".join(map(str, record["slots"]))
            row["hosts"] = ",".join(dict.fromkeys(record.get("hosts") or ()))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs[REUSED] = reused  # for results.h5's links, so the journal is read once
    if not rows:
        return frame
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
    frame.attrs[REUSED] = reused
    if "kind" in frame:  # beside the id, as in the journal, not wherever the first such row put it
        frame.insert(1, "kind", frame.pop("kind"))
    if len(objectives) > 1 and len(directions) == len(objectives):
        frame["pareto"] = pareto_mask(frame, objectives, directions)
    return frame


def pareto_mask(
    frame: pd.DataFrame, objectives: Sequence[str], directions: Sequence[Direction | str],
) -> pd.Series:
    """True for ``ok`` rows no other ``ok`` row dominates (as good in every objective,
    better in one); O(n^2) in numpy, fine for the tens of thousands of rows a study has."""
    import numpy as np
    import pandas as pd

    signs = np.array([Direction(d).sign for d in directions])
    ok = (frame["status"] == "ok").to_numpy()
    values = frame.loc[ok, list(objectives)].to_numpy(dtype=float) * signs
    front = np.ones(len(values), dtype=bool)
    for index, point in enumerate(values):
        dominated_by = np.all(values <= point, axis=1) & np.any(values < point, axis=1)
        front[index] = not dominated_by.any()
    mask = np.zeros(len(frame), dtype=bool)
    mask[np.flatnonzero(ok)] = front
    return pd.Series(mask, index=frame.index)


def write_results_csv(frame: pd.DataFrame, output: Path) -> Path:
    """(Re)write ``results.csv`` from the :func:`results_frame`, atomically, so a reader
    (or a kill mid-write) never sees half a table. Text that is not valid UTF-8 (an unpaired
    surrogate, which a JSON ``\\udXXX`` escape can carry) is written as that escape."""
    target = output / RESULTS_NAME
    with atomic_path(target) as partial:
        frame.to_csv(partial, index=False, errors="backslashreplace")
    return target


def best_rows(frame: pd.DataFrame, objective: str, direction: Direction | str, top: int) -> pd.DataFrame:
    """The ``top`` finished (``ok``) rows of the objective kind, best first, by one objective."""
    if frame.empty:
        return frame
    done = frame[frame["status"] == "ok"]
    if "kind" in done:
        done = done[done["kind"].isna()]
    return done.sort_values(objective, ascending=Direction(direction).ascending, kind="stable").head(top)


def kind_rows(frame: pd.DataFrame, kind: str | None) -> pd.DataFrame:
    """The rows of one task kind of a study of several (``None``: the objective kind's, whose
    ``kind`` is empty), with only that kind's own columns: no ``kind`` column, and no
    ``p:``/``m:`` column that is empty on every one of its rows (another kind's)."""
    rows = frame[frame["kind"].isna() if kind is None else frame["kind"] == kind]
    others = [c for c in rows.columns if c.startswith(("p:", "m:")) and rows[c].isna().all()]
    return rows.drop(columns=[*others, "kind"])
