"""A worker's node-local cache: one HDF5 file holding every task's saved outputs.

Why one file: a study can write thousands of models; one file per task on Lustre or GPFS is
a metadata storm, and a job killed at walltime loses what was still on the node. Here each
worker appends to one HDF5 file on node-local storage, and a *flush* copies that file to the
output directory in one large sequential write, under a temporary name and then renamed, so
a reader (or a kill mid-copy) never sees half a file.

Layout inside the file: ``/tasks/<task id>/<name>``, one dataset per saved value:

- a numpy array (or anything ``numpy.asarray`` takes) is stored as it is;
- ``bytes`` become a ``uint8`` dataset with attribute ``kind = "bytes"``;
- a file path becomes a ``uint8`` dataset with ``kind = "file"`` and its ``filename``;
  a directory becomes a group of its files, recursively.

The file's ``flush_target`` attribute is the name its flushes are written under, chosen
when the cache is created: a flush only ever replaces a file this same cache wrote, never
one left by an earlier job on a node of the same name.

h5py is imported on first use, so a worker whose model saves nothing never loads it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_path

CACHE_DIR = "cache"
COPY_BUFFER = 16 << 20


@dataclass(slots=True)
class FlushSummary:
    """What one flush wrote: the file (None when there was nothing to keep), how many tasks,
    how many bytes and how long it took."""

    path: Path | None
    tasks: int
    nbytes: int
    seconds: float


class TaskCache:
    """One worker's cache file at ``path``, opened on first use.

    A file left by a killed run of the same study on this node and rank is adopted (its
    tasks are flushed with the new ones); one that HDF5 cannot read is moved aside with a
    warning and a new one is started. ``flush_name()`` is called only when a new file is
    made, so a worker whose model saves nothing never touches the output filesystem.
    """

    def __init__(self, path: Path, flush_name: Callable[[], str]) -> None:
        self.path = path
        self.flush_name = flush_name
        self._file: Any = None

    # -- writing ------------------------------------------------------------------------
    def save(self, task_id: int, name: str, value: Any) -> None:
        """Store ``value`` (array, bytes, or path of a file or directory) as ``name`` of the task."""
        group = self._open().require_group(f"tasks/{task_id}")
        _check_name(name)
        if name in group:
            del group[name]  # the last save of a name wins, as with a file
        if isinstance(value, (str, os.PathLike)):
            _store_path(group, name, Path(value))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            _store_bytes(group, name, bytes(value), "bytes")
        else:
            import numpy as np

            group.create_dataset(name, data=np.asarray(value))

    def save_folder(self, task_id: int, folder: Path) -> None:
        """Store every file under ``folder`` (an external model's ``artifacts/``) as the task's."""
        if folder.is_dir() and any(folder.iterdir()):
            for entry in sorted(folder.iterdir()):
                self.save(task_id, entry.name, entry)

    def absorb(self, task_id: int, other: Path) -> None:
        """Take in the task's values from a cache file a child process wrote (``isolate``)."""
        if not other.exists():
            return
        import h5py

        with h5py.File(other, "r", locking=False) as source:
            saved = source.get(f"tasks/{task_id}")
            if saved is not None:
                tasks = self._open().require_group("tasks")
                if str(task_id) in tasks:
                    del tasks[str(task_id)]
                source.copy(saved, tasks, name=str(task_id))

    def discard(self, task_id: int) -> None:
        """Forget a task's values (it was interrupted and will run again)."""
        if self._file is not None and f"tasks/{task_id}" in self._file:
            del self._file[f"tasks/{task_id}"]

    def task_ids(self) -> list[int]:
        if self._file is None and not self.path.exists():
            return []
        tasks = self._open().get("tasks")
        return [] if tasks is None else sorted(int(name) for name in tasks)

    # -- flushing -----------------------------------------------------------------------
    def flush(self, output_dir: Path, keep: Collection[int] | None = None) -> FlushSummary:
        """Write the cache to ``output_dir/cache/`` atomically; ``keep`` limits it to those
        task ids (None keeps all). Nothing to keep writes nothing."""
        started = time.perf_counter()
        ids = self.task_ids()
        kept = ids if keep is None else [task for task in ids if task in keep]
        if not kept:
            return FlushSummary(None, 0, 0, time.perf_counter() - started)
        self._file.flush()
        source = self.path
        if len(kept) < len(ids):  # write only the kept tasks, on node-local storage first
            source = self.path.with_suffix(".keep.h5")
            self._copy_tasks(kept, source)
        target = output_dir / CACHE_DIR / self._file.attrs["flush_target"]
        nbytes = copy_atomically(source, target)
        if source != self.path:
            source.unlink()
        return FlushSummary(target, len(kept), nbytes, time.perf_counter() - started)

    def _copy_tasks(self, ids: list[int], destination: Path) -> None:
        import h5py

        with h5py.File(destination, "w", locking=False) as copy:
            copy.attrs["flush_target"] = self._file.attrs["flush_target"]
            tasks = copy.create_group("tasks")
            for task in ids:
                self._file.copy(self._file[f"tasks/{task}"], tasks, name=str(task))

    def close(self, remove: bool = False) -> None:
        """Close the file; ``remove`` deletes it (after the final flush: the data is safe)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if remove:
            self.path.unlink(missing_ok=True)

    # -- opening ------------------------------------------------------------------------
    def _open(self) -> Any:
        if self._file is None:
            import h5py

            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._file = h5py.File(self.path, "a", locking=False)
            except OSError as exc:  # cut short by a kill mid-write: keep it, start afresh
                aside = self.path.with_suffix(f".unreadable-{int(time.time())}.h5")
                self.path.rename(aside)
                print(f"mexplore: warning: node-local cache {self.path} cannot be read ({exc}); "
                      f"moved to {aside.name}, starting a new one", file=sys.stderr)
                self._file = h5py.File(self.path, "a", locking=False)
            if "flush_target" not in self._file.attrs:
                self._file.attrs["flush_target"] = self.flush_name()
        return self._file


def copy_atomically(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` in large sequential writes, under a temporary name that
    is renamed once the data is on disk (:func:`~.atomic.atomic_path`); returns the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial, open(source, "rb") as reader, open(partial, "wb") as writer:
        shutil.copyfileobj(reader, writer, COPY_BUFFER)
        nbytes = writer.tell()
    return nbytes


def free_flush_name(output_dir: Path, node: str, rank: int) -> str:
    """``<node>-r<rank>.h5``, or ``<node>-r<rank>-2.h5``... when an earlier job of the same
    study left one: a new cache never overwrites a flush it did not write."""
    folder = output_dir / CACHE_DIR
    name, number = f"{node}-r{rank}.h5", 1
    while (folder / name).exists():
        number += 1
        name = f"{node}-r{rank}-{number}.h5"
    return name


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or name.startswith("/") or name in (".", ".."):
        raise ValueError(f"ctx.save: name {name!r} must be a non-empty relative name such as 'weights'")


def _store_bytes(group: Any, name: str, data: bytes, kind: str) -> Any:
    import numpy as np

    dataset = group.create_dataset(name, data=np.frombuffer(data, dtype=np.uint8))
    dataset.attrs["kind"] = kind
    return dataset


def _store_path(group: Any, name: str, path: Path) -> None:
    if path.is_dir():
        folder = group.create_group(name)
        folder.attrs["kind"] = "folder"
        for entry in sorted(path.iterdir()):
            _store_path(folder, entry.name, entry)
    elif path.is_file():
        _store_bytes(group, name, path.read_bytes(), "file").attrs["filename"] = path.name
    else:
        raise FileNotFoundError(f"ctx.save({name!r}, ...): no such file or directory: {path}")
