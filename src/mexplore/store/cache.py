"""A worker's node-local cache: what its tasks save, in an append-only log on the node,
packed into one HDF5 file per worker for the output directory.

What is on the node must survive a ``kill -9`` at any instant, and nothing complete is ever
modified in place:

- saves are appended to a log segment of this process (:mod:`~.save_log`), and a task's
  records count once its COMMIT follows them, written by :meth:`TaskCache.commit` when its
  model has returned, before the worker sends its result: a result journaled ``ok``
  implies its outputs are whole on the node; a kill leaves at most a torn record at the
  end of a segment, which readers stop at;
- a flush packs the committed records into a copy of ``packed.h5``, renames the copy over
  it, and only then deletes (or, for the segment still written to, empties) the segments;
- names starting with a dot are temporary, deleted on the next start. A killed run's
  segments and ``packed.h5`` are adopted by the next worker of the same node, rank and
  local directory, and go out with its next flush; records of its unfinished tasks never
  count (a resume runs those tasks again, under new ids).

Nothing here is fsynced: these files must outlive the worker process, which the page cache
does; a crash of the node takes its local disk with it anyway.

Why pack at all: a study can write thousands of models, and one file per task on Lustre or
GPFS is a metadata storm. A flush copies ``packed.h5`` to ``<output>/cache/`` in one large
sequential write, under a temporary name then renamed (:func:`copy_atomically`), so a
reader or a kill mid-copy never sees half a file. The layout inside is :mod:`~.layout`'s,
``/tasks/<id>/<name>``; the attribute ``flush_target`` says which flushed file it becomes.

The flushed file's name is chosen at the first flush that writes something and kept in the
cache folder, so a flush only ever replaces a file this same cache wrote, never one left by
an earlier job on a node of the same name. h5py is imported on first use (an array's save,
a flush with something to pack), so a worker whose model saves nothing never loads it, and
never touches the output filesystem.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_path, atomic_write
from .disk import SPACE, Reservation, no_room, reserved_h5
from .layout import read_value, store_record, task_ids, value_of_records
from .save_log import DamagedLog, Record, SaveLog, committed

CACHE_DIR = "cache"
COPY_BUFFER = 16 << 20
PACKED = "packed.h5"
FLUSH_TARGET = "flush-target"
"""A text file in the cache folder: the name of the flushed file in ``<output>/cache/``."""


@dataclass(slots=True)
class FlushSummary:
    """What one flush wrote: the file (None when there was nothing to keep), how many tasks,
    how many bytes and how long it took."""

    path: Path | None
    tasks: int
    nbytes: int
    seconds: float


class TaskCache:
    """One worker's cache: the folder ``path`` on node-local storage, made on the first save.

    A folder left by a killed run of the same study on this node and rank is adopted: its
    committed tasks are flushed with the new ones, under the name it chose.
    """

    def __init__(self, path: Path, flush_name: Callable[[], str]) -> None:
        self.path = path
        self.flush_name = flush_name
        self._log: SaveLog | None = None
        self._started = False
        self._target: str | None = None  # the flushed file's name, when the disk had no room to keep it

    # -- writing ------------------------------------------------------------------------
    def save(self, task_id: int, name: str, value: Any) -> None:
        """Store ``value`` (array, bytes, or path of a file or directory) as ``name`` of the task."""
        self._writer().save(task_id, name, value)

    def save_folder(self, task_id: int, folder: Path) -> None:
        """Store every entry of ``folder`` (an external model's ``artifacts/``) as the task's;
        symbolic links are stored as links."""
        self._writer().save_folder(task_id, folder)

    def absorb(self, task_id: int, other: Path) -> None:
        """Take in the task's values from a log a child process wrote (``isolate``)."""
        self._writer().absorb(task_id, other)

    def commit(self, task_id: int) -> None:
        """The task is over (its model returned, whatever its outcome): its saves count. The
        worker calls this before the task's result can be sent."""
        if self._log is not None:
            self._log.commit(task_id)

    def discard(self, task_id: int) -> None:
        """Forget a task's values (it was interrupted and will run again)."""
        if self._log is not None:
            self._log.discard(task_id)

    def task_ids(self) -> list[int]:
        """The committed tasks: those a flush writes (kept or not)."""
        packed = self.path / PACKED
        ids = set(_ids_in(packed)) if packed.exists() else set()
        for segment in self._segments():
            ids.update(record.task for record in committed(segment))
        return sorted(ids)

    # -- reading ------------------------------------------------------------------------
    def read(self, task_id: int, name: str) -> Any:
        """What committed task ``task_id`` saved as ``name`` here, as ``load_output`` gives it
        (``ctx.load`` of another worker's task, or of this worker's own): from the log, newest
        segment first, else from ``packed.h5``. KeyError when this cache does not hold it."""
        for segment in reversed(self._segments()):
            if records := list(committed(segment, task_id)):
                try:
                    return value_of_records(name, records)
                except KeyError:
                    pass
        packed = self.path / PACKED
        if packed.exists():
            import h5py

            with h5py.File(packed, "r", locking=False) as file:
                node = file.get(f"tasks/{task_id}/{name}")
                if node is not None:
                    return read_value(node)
        raise KeyError(f"task {task_id} saved no {name!r} in {self.path}")

    # -- flushing -----------------------------------------------------------------------
    def flush(self, output_dir: Path, keep: Collection[int] | None = None) -> FlushSummary:
        """Write the committed tasks to ``output_dir/cache/`` atomically; ``keep`` limits it
        to those task ids (None keeps all). Nothing to keep writes nothing."""
        started = time.perf_counter()
        try:
            ids = self._pack() if keep is None or keep else []
            kept = ids if keep is None else [task for task in ids if task in keep]
            if not kept:
                return FlushSummary(None, 0, 0, time.perf_counter() - started)
            source = self.path / PACKED
            if len(kept) < len(ids):  # write only the kept tasks, on node-local storage first
                source = self._copy_tasks(kept)
        except OSError as error:
            if error.errno not in SPACE:
                raise
            target = output_dir / CACHE_DIR / self._flush_target()
            kept = self._write_straight(target, keep)
            return FlushSummary(target if kept else None, len(kept), target.stat().st_size if kept else 0,
                                time.perf_counter() - started)
        target = output_dir / CACHE_DIR / self._flush_target()
        try:
            nbytes = copy_atomically(source, target)
        finally:
            if source.name != PACKED:
                source.unlink()
        return FlushSummary(target, len(kept), nbytes, time.perf_counter() - started)

    def _pack(self) -> list[int]:
        """Move the committed records of every segment into ``packed.h5``; returns the ids
        it then holds."""
        packed = self.path / PACKED
        segments = self._segments()
        if not any(segment.stat().st_size for segment in segments):
            return _ids_in(packed) if packed.exists() else []
        import h5py

        partial = self.path / f".{PACKED}"
        file = None
        if packed.exists():
            try:
                shutil.copyfile(packed, partial)
            except OSError:  # a full disk: the straight way (flush) needs this room
                partial.unlink(missing_ok=True)
                raise
            try:
                file = h5py.File(partial, "a", locking=False)
            except OSError as exc:  # not by a kill (it is only ever renamed into place): a disk fault
                if no_room(exc):  # or no room to open it: the straight way
                    partial.unlink(missing_ok=True)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial)) from exc
                move_aside(packed, f"{exc}; later flushes go to a new file, beside the one that holds "
                                   "its tasks", self._aside_dir())
                (self.path / FLUSH_TARGET).unlink(missing_ok=True)  # so that file is not replaced
                self._target = None
        with reserved_h5(partial, file) as (file, room):  # a full disk: an OSError, not a crash in HDF5
            file.attrs["flush_target"] = self._flush_target()
            damaged = _store_committed(file.require_group("tasks"), segments, room)
            ids = task_ids(file)
        os.replace(partial, packed)
        for segment in segments:  # only now: until the rename, they held the only copy
            if segment in damaged:
                move_aside(segment, f"{damaged[segment]}; the records after it are not flushed",
                           self._aside_dir())
                if self._log is not None and segment == self._log.path:
                    self._log.close()  # the next save starts a new segment
                    self._log = None
            elif self._log is None or segment != self._log.path:
                segment.unlink()
            elif not self._log.writing:  # still ours to append to: emptied, not deleted
                os.truncate(segment, 0)
        return ids

    def _write_straight(self, target: Path, keep: Collection[int] | None) -> list[int]:
        """The node-local disk is too full to pack on (a pack needs about as much again as
        the cache holds): write the flush straight to ``target``, on the output's
        filesystem, from ``packed.h5`` and the segments, and leave those as they are. They
        still hold every value, so each later flush (this again, or a pack once there is
        room) writes them all: the flushed file never loses a task. Returns the ids written
        (none: ``target`` is left as it was)."""
        import h5py

        packed = self.path / PACKED
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(target) as partial, reserved_h5(partial) as (file, room):
                room.ensure(packed.stat().st_size if packed.exists() else 0)
                file.attrs["flush_target"] = self._flush_target()
                tasks = file.require_group("tasks")
                if packed.exists():
                    with h5py.File(packed, "r", locking=False) as earlier:
                        ids = [int(name) for name in earlier["tasks"] if keep is None or int(name) in keep]
                        _copy_task_groups(earlier, tasks, ids, room)
                _store_committed(tasks, self._segments(), room, keep)  # a pack moves damaged ones aside
                ids = task_ids(file)
                if not ids:
                    raise _NothingKept
        except _NothingKept:
            return []
        return ids

    def _copy_tasks(self, ids: list[int]) -> Path:
        import h5py

        destination = self.path / ".kept.h5"
        with h5py.File(self.path / PACKED, "r", locking=False) as packed, \
                reserved_h5(destination) as (copy, room):  # as in _pack: a full disk is an OSError
            room.ensure((self.path / PACKED).stat().st_size)  # the kept tasks take no more
            copy.attrs["flush_target"] = packed.attrs["flush_target"]
            _copy_task_groups(packed, copy.create_group("tasks"), ids, room)
        return destination

    def close(self, remove: bool = False) -> None:
        """Close the log; ``remove`` deletes the folder (after the final flush: the data is
        safe, or was not to be kept), and the folders above it that are then empty, so a
        finished run leaves nothing on the node."""
        if self._log is not None:
            self._log.close()
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)
            for folder in (self.path.parent, self.path.parent.parent):  # cache/, then the study's folder
                try:
                    folder.rmdir()  # only when empty: the last rank of the node to finish removes it
                except OSError:
                    break

    # -- the folder ---------------------------------------------------------------------
    def _writer(self) -> SaveLog:
        if self._log is None:
            self._start()
            self._log = SaveLog(self.path / f"{time.time_ns():020d}-{os.getpid()}.log")
        return self._log

    def _segments(self) -> list[Path]:
        """The log segments, oldest first (their names start with the time they were made)."""
        self._start()
        return sorted(self.path.glob("*.log")) if self.path.is_dir() else []

    def _start(self) -> None:
        """Before the first use: delete what a killed run left half-written (temporary names)."""
        if not self._started:
            self._started = True
            if self.path.is_dir():
                for path in self.path.glob(".*"):
                    path.unlink()

    def _flush_target(self) -> str:
        """The name of this cache's flushed file, chosen once and kept in the folder, so a
        worker adopting the folder flushes to the same file. On a node-local disk too full
        for even that, the name is kept in memory: a later adopter then writes a second
        file of the same tasks, never loses one."""
        file = self.path / FLUSH_TARGET
        if file.exists():
            return file.read_text()
        name = self._target or self.flush_name()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(file, name)
        except OSError as error:
            if error.errno not in SPACE:
                raise
            self._target = name
        return name

    def _aside_dir(self) -> Path:
        """Where damaged files go: beside the folder, which is removed after the final flush."""
        return self.path.with_name(f"{self.path.name}.unreadable")


def move_aside(path: Path, problem: str, folder: Path | None = None) -> Path:
    """Rename an unreadable file out of the way (into ``folder``, else beside it) under a
    name no ``*.h5`` pattern matches, with a warning naming both: it is kept, never deleted,
    for a person to look at, and it no longer stops what reads its neighbours."""
    folder = folder or path.parent
    folder.mkdir(parents=True, exist_ok=True)
    aside = folder / f"{path.name}.unreadable-{time.time_ns()}"
    path.rename(aside)
    print(f"mexplore: warning: {path} cannot be read ({problem}); moved to {aside}", file=sys.stderr)
    return aside


class _NothingKept(Exception):
    """No task to write: the flushed file, if any, stays as it was."""


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


def _copy_task_groups(source: Any, tasks: Any, ids: list[int], room: Reservation) -> None:
    """The groups of the tasks ``ids`` from the packed file ``source`` into ``tasks``."""
    for task in ids:
        room.ensure(0)
        source.copy(source[f"tasks/{task}"], tasks, name=str(task))


def _store_committed(tasks: Any, segments: list[Path], room: Reservation,
                     keep: Collection[int] | None = None) -> dict[Path, DamagedLog]:
    """The committed records of the segments (of the tasks in ``keep`` only, if given) into
    the ``tasks`` group, each write's space allocated first; returns the segments found
    damaged (what came before the damage is stored) and what damaged them."""
    damaged = {}
    for segment in segments:
        try:
            for record in committed(segment):
                if keep is None or record.task in keep:
                    room.ensure(len(record.payload), objects=1 + record.name.count("/"))
                    _store(tasks, record)
        except DamagedLog as exc:  # never written so by us: a disk fault
            damaged[segment] = exc
    return damaged


def _store(tasks: Any, record: Record) -> None:
    """One record into the pack; one HDF5 refuses (a name inside a value saved by an earlier
    attempt of the task) is left out with a warning, not allowed to stop the flush."""
    try:
        store_record(tasks, record)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"mexplore: warning: task {record.task}'s output {record.name!r} cannot be stored: {exc}",
              file=sys.stderr)


def _ids_in(packed: Path) -> list[int]:
    import h5py

    with h5py.File(packed, "r", locking=False) as file:
        return task_ids(file)
