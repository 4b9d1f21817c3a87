"""``<output>/results.h5``: the results table plus a link to every task's saved outputs.

The table is the one of ``results.csv`` (built from the journal), stored as one dataset per
column under ``/table`` (attribute ``columns`` gives their order, ``datasets`` the name of
each one's dataset), so h5py reads it without pandas and :func:`read_table` gives a
DataFrame. A study of several task kinds also gets ``/kinds/<kind>``: a table of the same
form per kind, the objective kind's included, with only that kind's own columns
(``read_table(output, kind=...)``). A dataset is named as its column, but for what an HDF5 name cannot hold, which
is percent-escaped (:func:`dataset_name`): so metrics ``a`` and ``a/b`` are two datasets,
not a dataset and a path through it. ``/tasks/<id>`` is an HDF5 external link
into the worker cache file that holds that task's data (``cache/<node>-r<rank>.h5``), so a
reader never needs to know which worker ran what; a task answered from an earlier one
(``[cache] reuse``) links to that one's data.

The links are found by listing the flushed cache files, so results.h5 never disagrees with
them and can be rebuilt from the output directory alone; the master does so after each run.
A flushed file HDF5 cannot read (truncated by a full quota, a partial copy...) is moved
aside with a warning rather than failing every later run of the study.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write
from .cache import CACHE_DIR, move_aside
from .csv_text import text_codes
from .journal import JOURNAL_NAME, iter_records
from .layout import read_value
from .table import REUSED, kind_rows, write_results_csv

if TYPE_CHECKING:
    import pandas as pd

RESULTS_H5 = "results.h5"
IMAGE_GROWTH = 1 << 24
"""Bytes by which the in-memory image of results.h5 grows: HDF5's 64 KiB default copies a
large image over and over as it grows."""


def write_results_h5(
    output: Path, frame: pd.DataFrame, keep: Collection[int] | None = None, objective_kind: str | None = None,
) -> Path:
    """(Re)write ``results.h5`` from the :func:`~.table.results_frame` and the flushed cache
    files, atomically; ``keep`` limits the links to those tasks. ``objective_kind`` names
    the objective kind's table under ``/kinds`` in a study of several kinds."""
    import h5py

    target = output / RESULTS_H5
    holders = _task_holders(output)
    reused = frame.attrs.get(REUSED)
    for task, earlier in (_reused(output / JOURNAL_NAME) if reused is None else reused).items():
        if earlier in holders and task not in holders:
            holders[task] = holders[earlier]
    # Built in memory and written as one image: HDF5 writing to a full disk itself ends in a
    # segmentation fault as its objects are freed (h5py 3, measured on a full tmpfs), where
    # one plain write of the image fails with an OSError that the run reports.
    # The name is never written, but HDF5 takes two in-memory files of one name for one file.
    in_memory = f"{target}.{secrets.token_hex(8)}"
    with h5py.File(in_memory, "w", driver="core", backing_store=False, block_size=IMAGE_GROWTH) as file:
        _write_table(file.create_group("table"), frame)
        if "kind" in frame and not frame.empty:
            kinds = file.create_group("kinds")
            for kind in [None, *sorted(frame["kind"].dropna().unique())]:
                name = (objective_kind or "objective") if kind is None else str(kind)
                group = kinds.create_group(dataset_name(name))
                group.attrs["kind"] = _h5_text(name)
                _write_table(group, kind_rows(frame, kind))
        tasks = file.create_group("tasks")
        for task, (name, inside) in sorted(holders.items()):
            if keep is None or task in keep:
                tasks[str(task)] = h5py.ExternalLink(f"{CACHE_DIR}/{name}", inside)
        file.flush()
        image = file.id.get_file_image()
    return atomic_write(target, image)


def write_results(
    output: Path, frame: pd.DataFrame, keep: Collection[int] | None = None, objective_kind: str | None = None,
) -> Path:
    """``results.csv`` and ``results.h5`` from the :func:`~.table.results_frame`, as at the end
    of every run; returns the CSV's path. The HDF5 file is written by a thread while this one
    writes the CSV: each spends part of its time outside the interpreter (HDF5's C code,
    the disk), so the two overlap, and the end of a long run is a tenth shorter."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="mexplore-results-h5") as writer:
        h5 = writer.submit(write_results_h5, output, frame, keep, objective_kind)
        table = write_results_csv(frame, output)
        h5.result()  # its error, if any, as the CSV's would be
    return table


def read_table(output: str | os.PathLike[str], kind: str | None = None) -> pd.DataFrame:
    """The results table stored in ``<output>/results.h5``, as a DataFrame; with ``kind``,
    that task kind's own table (a study of several kinds; KeyError names the kinds there)."""
    import h5py
    import pandas as pd

    with h5py.File(Path(output) / RESULTS_H5, "r") as file:
        if kind is None:
            table = file["table"]
        elif f"kinds/{dataset_name(kind)}" in file:
            table = file[f"kinds/{dataset_name(kind)}"]
        else:
            there = sorted(group.attrs.get("kind", key) for key, group in file.get("kinds", {}).items())
            raise KeyError(f"{Path(output) / RESULTS_H5} has no table of kind {kind!r}: "
                           + (f"its kinds are {', '.join(there)}" if there else "its study has one kind"))
        names = table.attrs["columns"]
        columns = {}
        for name, key in zip(names, table.attrs.get("datasets", names)):  # older files: named as the columns
            dataset = table[key]
            columns[name] = dataset.asstr()[()] if dataset.dtype.kind == "O" else dataset[()]
    return pd.DataFrame(columns)


class NoOutputsFlushed(KeyError):
    """The output directory holds no saved output of the task at all: none was saved, or
    they are still in a node-local cache (not flushed yet)."""


def load_output(output: str | os.PathLike[str], task_id: int, name: str) -> Any:
    """What task ``task_id`` saved as ``name``: an array, ``bytes`` (for saved bytes and
    files), or a dict of name -> value for a saved folder, where a symbolic link is its
    target path as a ``str``. KeyError names what is missing (:class:`NoOutputsFlushed`
    when the task has no output there at all)."""
    import h5py

    output = Path(output)
    if not (output / RESULTS_H5).exists():  # a run that has not ended yet: its flushed cache files
        return _from_cache_files(output, task_id, name)
    with h5py.File(output / RESULTS_H5, "r") as file:
        if f"tasks/{task_id}" not in file:  # flushed since results.h5 was written (a resumed run)
            return _from_cache_files(output, task_id, name)
        try:
            node = file[f"tasks/{task_id}/{name}"]
        except KeyError:
            saved = sorted(file[f"tasks/{task_id}"])
            raise KeyError(f"task {task_id} has no saved output {name!r} in {output / RESULTS_H5}; "
                           f"it has: {', '.join(saved) or 'nothing'}") from None
        return read_value(node)


def _from_cache_files(output: Path, task_id: int, name: str) -> Any:
    """What task ``task_id`` saved as ``name``, from the flushed cache file holding it."""
    import h5py

    holder = _task_holders(output).get(task_id)
    if holder is None:
        raise NoOutputsFlushed(f"task {task_id} has no saved outputs in {output / CACHE_DIR} (and "
                               f"{output / RESULTS_H5} does not link it)")
    file_name, inside = holder
    with h5py.File(output / CACHE_DIR / file_name, "r", locking=False) as file:
        if name not in file[inside]:
            raise KeyError(f"task {task_id} has no saved output {name!r} in {output / CACHE_DIR / file_name}; "
                           f"it has: {', '.join(sorted(file[inside])) or 'nothing'}")
        return read_value(file[f"{inside}/{name}"])



def _task_holders(output: Path) -> dict[int, tuple[str, str]]:
    """task id -> (cache file name, path inside it), from every flushed cache file; where two
    files hold a task, the newer file wins."""
    import h5py

    holders: dict[int, tuple[str, str]] = {}
    files = sorted((output / CACHE_DIR).glob("*.h5"), key=lambda path: path.stat().st_mtime)
    for path in files:
        try:
            with h5py.File(path, "r", locking=False) as cache:
                names = list(cache.get("tasks", {}))
        except OSError as exc:
            move_aside(path, f"{exc}; results.h5 does not link the outputs it held")
            continue
        holders.update((int(name), (path.name, f"/tasks/{name}")) for name in names)
    return holders


def _reused(journal: Path) -> dict[int, int]:
    if not journal.exists():
        return {}
    return {record["id"]: record["reused_from"] for record in iter_records(journal)
            if record.get("reused_from") is not None}


def _write_table(group: Any, frame: pd.DataFrame) -> None:
    """One dataset per column: numbers stay numbers, anything else becomes UTF-8 text."""
    import h5py

    names = [str(name) for name in frame.columns]
    datasets = [dataset_name(name) for name in names]
    group.attrs["columns"] = [_h5_text(name) for name in names]
    group.attrs["datasets"] = datasets
    for (_, column), dataset in zip(frame.items(), datasets):
        if column.dtype.kind in "biuf":
            group.create_dataset(dataset, data=column.to_numpy())
        else:
            group.create_dataset(dataset, data=_texts(column), dtype=h5py.string_dtype())


def _texts(column: pd.Series) -> Any:
    """A column as HDF5 text: missing values empty, each value as :func:`_h5_text` makes it.
    The common case (no NUL, valid UTF-8 throughout) is checked once for the whole column
    instead of value by value, which was half the cost of writing results.h5."""
    import numpy as np

    if (coded := text_codes(column)) is not None:  # each distinct text made HDF5 text once
        codes, texts = coded
        return np.array([*map(_h5_text, texts), ""], dtype=object)[codes]  # code -1 (missing): the last
    values = column.astype(str).where(column.notna(), "").to_numpy(dtype=object)
    joined = "".join(values)
    if "\0" not in joined and _is_utf8(joined):
        return values
    return np.array([_h5_text(value) for value in values], dtype=object)


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


_UNSAFE_IN_NAMES = re.compile(r"[/%\x00\ud800-\udfff]")


def dataset_name(column: str) -> str:
    """The name of a column's dataset under ``/table``: the column's own, with ``/`` (a path
    separator in HDF5), NUL, an unpaired surrogate and ``%`` itself written ``%XX`` (their
    UTF-8 bytes), ``.`` as ``%2E`` and the empty name as ``%``. Distinct columns get
    distinct names."""
    if column in ("", "."):
        return "%" if column == "" else "%2E"
    return _UNSAFE_IN_NAMES.sub(
        lambda match: "".join(f"%{byte:02X}" for byte in match[0].encode("utf-8", "surrogatepass")), column)


def _h5_text(text: str) -> str:
    """Text HDF5 can store: NUL (which ends a C string) as U+2400 (␀), an unpaired surrogate
    (not UTF-8) as its ``\\udXXX`` escape."""
    return text.replace("\0", "\u2400").encode(errors="backslashreplace").decode()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
