"""``<output>/results.h5``: the results table plus a link to every task's saved outputs.

The table is the one of ``results.csv`` (built from the journal), stored as one dataset per
column under ``/table`` (attribute ``columns`` gives their order), so h5py reads it without
pandas and :func:`read_table` gives a DataFrame. ``/tasks/<id>`` is an HDF5 external link
into the worker cache file that holds that task's data (``cache/<node>-r<rank>.h5``), so a
reader never needs to know which worker ran what; a task answered from an earlier one
(``[cache] reuse``) links to that one's data.

The links are found by listing the flushed cache files, so results.h5 never disagrees with
them and can be rebuilt from the output directory alone; the master does so after each run.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_path
from .cache import CACHE_DIR
from .journal import JOURNAL_NAME, iter_records

if TYPE_CHECKING:
    import pandas as pd

RESULTS_H5 = "results.h5"


def write_results_h5(output: Path, frame: pd.DataFrame, keep: Collection[int] | None = None) -> Path:
    """(Re)write ``results.h5`` from the :func:`~.table.results_frame` and the flushed cache
    files, atomically; ``keep`` limits the links to those tasks."""
    import h5py

    target = output / RESULTS_H5
    holders = _task_holders(output)
    for task, earlier in _reused(output / JOURNAL_NAME).items():
        if earlier in holders and task not in holders:
            holders[task] = holders[earlier]
    with atomic_path(target) as partial, h5py.File(partial, "w", locking=False) as file:
        _write_table(file.create_group("table"), frame)
        tasks = file.create_group("tasks")
        for task, (name, inside) in sorted(holders.items()):
            if keep is None or task in keep:
                tasks[str(task)] = h5py.ExternalLink(f"{CACHE_DIR}/{name}", inside)
    return target


def read_table(output: Path) -> pd.DataFrame:
    """The results table stored in ``<output>/results.h5``, as a DataFrame."""
    import h5py
    import pandas as pd

    with h5py.File(output / RESULTS_H5, "r") as file:
        table = file["table"]
        columns = {}
        for name in table.attrs["columns"]:
            dataset = table[name]
            columns[name] = dataset.asstr()[()] if dataset.dtype.kind == "O" else dataset[()]
    return pd.DataFrame(columns)


def load_output(output: Path, task_id: int, name: str) -> Any:
    """What task ``task_id`` saved as ``name``: an array, ``bytes`` (for saved bytes and
    files), or a dict of name -> value for a saved folder. KeyError names what is missing."""
    import h5py

    with h5py.File(output / RESULTS_H5, "r") as file:
        try:
            node = file[f"tasks/{task_id}/{name}"]
        except KeyError:
            saved = sorted(file[f"tasks/{task_id}"]) if f"tasks/{task_id}" in file else []
            raise KeyError(f"task {task_id} has no saved output {name!r} in {output / RESULTS_H5}; "
                           f"it has: {', '.join(saved) or 'nothing'}") from None
        return _value(node)


def _value(node: Any) -> Any:
    import h5py

    if isinstance(node, h5py.Group):
        return {name: _value(child) for name, child in node.items()}
    if node.attrs.get("kind") in ("bytes", "file"):
        return node[()].tobytes()
    return node[()]


def _task_holders(output: Path) -> dict[int, tuple[str, str]]:
    """task id -> (cache file name, path inside it), from every flushed cache file; where two
    files hold a task, the newer file wins."""
    import h5py

    holders: dict[int, tuple[str, str]] = {}
    files = sorted((output / CACHE_DIR).glob("*.h5"), key=lambda path: path.stat().st_mtime)
    for path in files:
        with h5py.File(path, "r", locking=False) as cache:
            for name in cache.get("tasks", {}):
                holders[int(name)] = (path.name, f"/tasks/{name}")
    return holders


def _reused(journal: Path) -> dict[int, int]:
    if not journal.exists():
        return {}
    return {record["id"]: record["reused_from"] for record in iter_records(journal)
            if record.get("reused_from") is not None}


def _write_table(group: Any, frame: pd.DataFrame) -> None:
    """One dataset per column: numbers stay numbers, anything else becomes UTF-8 text."""
    import h5py
    import numpy as np

    group.attrs["columns"] = [str(name) for name in frame.columns]
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "biuf":
            group.create_dataset(str(name), data=column.to_numpy())
        else:
            text = ["" if _missing(value) else str(value) for value in column]
            group.create_dataset(str(name), data=np.array(text, dtype=object), dtype=h5py.string_dtype())


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
