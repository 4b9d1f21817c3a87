"""The flat results table (``results.csv``) and the best-rows query behind ``mexplore results``.

Built from the journal, never from memory, so the table and the journal cannot disagree and
the table can be rebuilt at any time, even while a run goes on. pandas is imported here
only, when a table is actually wanted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..objectives import Direction
from ..types import error_summary
from .atomic import atomic_path
from .csv_text import write_csv
from .journal import gc_paused, iter_counted_blocks, spans

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

    with gc_paused():
        table = read_in_parts(journal, objectives)
        frame = pd.DataFrame(table.columns, copy=False)  # the arrays are its own: copying them cost a third
    reused = table.reused
    frame.attrs[REUSED] = reused  # for results.h5's links, so the journal is read once
    if frame.empty:
        return frame
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
    frame.attrs[REUSED] = reused
    if "kind" in frame:  # beside the id, as in the journal, not wherever the first such row put it
        frame.insert(1, "kind", frame.pop("kind"))
    if len(objectives) > 1 and len(directions) == len(objectives):
        frame["pareto"] = pareto_mask(frame, objectives, directions)
    return frame


_ABSENT = float("nan")
"""A row's value for a column it lacks (another kind's param, a metric only some tasks
report): NaN, as pandas fills rows given as dicts, but this one object, so a column's first
row can be told from a NaN the row holds."""
_NO_DICT: dict[str, Any] = {}


PART_BYTES = 16 << 20
"""A journal this many bytes long or more (some 40,000 tasks) is read in parts at once, one
per core the master may use (:func:`read_in_parts`)."""
MAX_PARTS = 16


def read_in_parts(journal: Path, objectives: Sequence[str]) -> JournalTable:
    """The table of the whole journal. A long one is cut into parts at line starts, read at
    the same time by helper processes (``python -m mexplore.store.table_part``) and this
    one, then joined in order: a million tasks took 10 s to read in one process. A part a
    helper could not read, or that needs care (a damaged line, warned of by its line
    number), is read here afterwards."""
    parts = min(usable_cores(), journal.stat().st_size // PART_BYTES, MAX_PARTS) if journal.exists() else 0
    if parts < 2:
        return part_table(journal, (0, None), objectives, first_line=1)
    from .table_part import start_helpers

    first, *rest = spans(journal, parts)
    helpers = start_helpers(journal, rest, objectives)
    table = part_table(journal, first, objectives, first_line=1)
    for span, helper in zip(rest, helpers):
        table.extend(helper.table() or part_table(journal, span, objectives, first_line=table.lines + 1))
    return table


def usable_cores() -> int:
    """The cores this process may run on (a launcher may bind a rank to fewer than the node has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def part_table(journal: Path, span: tuple[int, int | None], objectives: Sequence[str], first_line: int,
               sound_only: bool = False) -> JournalTable | None:
    """The table of the journal's lines in ``span`` (byte offsets; the first is line
    ``first_line``, for warnings); with ``sound_only``, None as soon as a block needs care,
    so that its warnings come from the reader that knows the line numbers."""
    table = JournalTable()
    if not journal.exists():
        return table
    for lines, block in iter_counted_blocks(journal, span, first_line, sound_only):
        if block is None:
            return None
        table.add(_columns(block, objectives), lines)  # a block's records go once its columns have their values
        earlier = list(map(dict.get, block, repeat("reused_from")))
        if earlier.count(None) < len(earlier):  # some task took an earlier one's result
            table.reused.update((record["id"], record["reused_from"]) for record in block
                                if record.get("reused_from") is not None)
    return table


class JournalTable:
    """The columns of the whole journal, from the columns of its blocks: a column first
    seen in a later block starts with a missing value for each row before it, and goes after
    the columns already there (so after the first row's, as in a frame built row by row).
    A block's column of plain floats or plain integers is kept as a numpy array at once, so
    its Python numbers are let go while still in the processor's cache: with a million
    rows, building the frame from lists took longer per row than with a hundred thousand.
    ``lines`` counts the journal lines read (blank and skipped ones too), ``reused`` maps a
    task to the one whose result it took."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[Any]] = {}
        self.rows = 0
        self.lines = 0
        self.reused: dict[int, int] = {}

    def add(self, block: dict[str, list[Any]], lines: int) -> None:
        self.lines += lines
        if block:
            self._append({name: [_packed(column)] for name, column in block.items()}, len(block["id"]))

    def extend(self, later: JournalTable) -> None:
        """Put the rows of ``later`` (the journal's next part) after these."""
        self.lines += later.lines
        self.reused.update(later.reused)
        self._append(later.chunks, later.rows)

    def _append(self, chunks: dict[str, list[Any]], rows: int) -> None:
        import numpy as np

        if not rows:  # a part of damaged or blank lines alone: an empty float array would make ids floats
            return
        for name, added in chunks.items():
            if name not in self.chunks:  # missing in every row before
                self.chunks[name] = [np.full(self.rows, np.nan)] if self.rows else []
            self.chunks[name].extend(added)
        for name in self.chunks.keys() - chunks.keys():  # a column these rows all lack
            self.chunks[name].append(np.full(rows, np.nan))
        self.rows += rows

    @property
    def columns(self) -> dict[str, Any]:
        """Each column whole: one array where every block's was numbers (integers and floats
        together make floats, as pandas makes them of such a list), else one list."""
        import numpy as np

        return {name: np.concatenate(chunks) if all(isinstance(chunk, np.ndarray) for chunk in chunks)
                else [value for chunk in chunks for value in (chunk.tolist() if isinstance(chunk, np.ndarray) else chunk)]
                for name, chunks in self.chunks.items()}


def _packed(column: list[Any]) -> Any:
    """A column of floats only, or of integers numpy holds, as an array; else as it is."""
    import numpy as np

    kinds = set(map(type, column))
    if kinds == {float}:
        return np.array(column, dtype=np.float64)
    if kinds == {int}:
        try:
            return np.array(column, dtype=np.int64)
        except OverflowError:  # beyond 64 bits: pandas keeps such integers as objects
            return column
    return column


def _columns(records: list[dict[str, Any]], objectives: Sequence[str]) -> dict[str, list[Any]]:
    """The table's columns from the records, in the order a column first shows up in the
    rows (as a frame built from one dict per row has them): id, status, kind, objectives,
    params, metrics, the timings and the rest, then slots and hosts, and after those any
    column the first row lacks. Taken a column at a time with ``map`` over the records,
    so that little Python runs per row: building a dict per row was most of the read."""
    rows = len(records)
    if not rows:
        return {}

    def field(key: str, default: Any = None, among: list[dict[str, Any]] = records) -> list[Any]:
        return list(map(dict.get, among, repeat(key, rows), repeat(default, rows)))

    varying: list[tuple[int, str, list[Any]]] = []  # (where in a row it goes, name, column)
    kinds = field("kind", _ABSENT)
    if kinds.count(_ABSENT) < rows:
        varying.append((0, "kind", kinds))
    scored = field("objective")
    if list not in set(map(type, scored)):
        varying += [(1, name, scored) for name in objectives]
    else:  # several objectives per record
        varying += [(1, name, [(value[at] if at < len(value) else _ABSENT) if type(value) is list else value
                                for value in scored]) for at, name in enumerate(objectives)]
    params = field("params", _NO_DICT)
    varying += [(2, f"p:{key}", field(key, _ABSENT, params)) for key in dict.fromkeys(chain.from_iterable(params))]
    metrics = [found or _NO_DICT for found in field("metrics")]
    varying += [(3, f"m:{key}", field(key, _ABSENT, metrics)) for key in dict.fromkeys(chain.from_iterable(metrics))]
    slots = field("slots", _ABSENT)
    if slots.count(_ABSENT) < rows:
        varying.append((5, "slots", [_ABSENT if held is _ABSENT else " ".join(map(str, held)) for held in slots]))
        varying.append((5, "hosts", [_ABSENT if held is _ABSENT else ",".join(dict.fromkeys(hosts or ()))
                                     for held, hosts in zip(slots, field("hosts"))]))

    started, ended = field("started"), field("ended")
    tail = {
        "started": started, "ended": ended,
        "duration": [(end or 0) - (start or 0) for start, end in zip(started, ended)],
        "rank": field("rank"), "host": field("host"), "gpu": field("gpu"), "attempt": field("attempt", 0),
        "error": [None if error is None else error_summary(error) for error in field("error")],
        "algorithm_time": field("algorithm_time", 0.0), "lag": field("lag", 0),
    }
    varying = _merged(varying)
    first_rows = [next((row for row, value in enumerate(column) if value is not _ABSENT), None)
                  for _, _, column in varying]
    order = sorted((at for at, row in enumerate(first_rows) if row is not None),  # a column no row has is none
                   key=lambda at: (first_rows[at], varying[at][0], at))
    before_tail = [at for at in order if first_rows[at] == 0 and varying[at][0] < 4]
    columns = {"id": field("id"), "status": field("status")}
    columns.update((varying[at][1], varying[at][2]) for at in before_tail)
    columns.update(tail)
    placed = set(before_tail)
    columns.update((varying[at][1], varying[at][2]) for at in order if at not in placed)
    return columns


def _merged(varying: list[tuple[int, str, list[Any]]]) -> list[tuple[int, str, list[Any]]]:
    """One column per name: an objective named as a metric's or a param's column (``m:loss``)
    takes that metric's value in the rows that have it, as a row's later key overwrites an
    earlier one in a frame built row by row; it keeps its first place."""
    merged: dict[str, tuple[int, str, list[Any]]] = {}
    for place, name, column in varying:
        if name in merged:
            first = merged[name]
            column = [earlier if later is _ABSENT else later for earlier, later in zip(first[2], column)]
            place = first[0]
        merged[name] = (place, name, column)
    return list(merged.values())


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
        write_csv(frame, partial)
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
