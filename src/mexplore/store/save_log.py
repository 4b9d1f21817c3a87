"""The node-local save log: what models save, as append-only records that are cheap to
write and safe to read back after a kill at any instant.

Why not HDF5 on the node: HDF5 updates its metadata in place, so a ``kill -9`` in the middle
of a save can leave a whole file unreadable, every earlier task's outputs with it; and a
small HDF5 file per task costs a file creation and HDF5's per-file overhead on every task.
A log only ever appends: a kill leaves at most one torn record at its end, which the reader
stops at, and a save is one ``writev`` of the encoded value.

A record is a header ``<4s q B H I Q`` (magic, task id, kind, then the byte lengths of the
name, the meta text and the payload) with a CRC-32 of its own, the name and meta in UTF-8,
the payload, and a CRC-32 of all that. The header's own checksum tells a record a kill cut
short (the file ends inside it: the log's end) from a length damaged on disk (an error,
never taken for the end, so what follows is not silently lost). Kinds:

- ``ARRAY``: the payload is the value in ``.npy`` format; ``BYTES``: the bytes as they are;
- ``FILE``: the file's bytes, meta is its file name; ``FOLDER``: a saved folder, whose
  entries follow as records named ``<folder>/<entry>``; ``LINK``: a symbolic link inside a
  saved folder, the payload its target. Links are never followed: one could lead to
  ``/etc``, to terabytes of shared data, or back up the tree forever;
- ``COMMIT``: the task's model has returned. A task's records count only once a COMMIT
  follows them, and the worker writes it before it sends the task's result: so a result
  journaled ``ok`` implies its outputs are whole in the log. ``DISCARD``: the records since
  the task's last COMMIT are dropped (it was interrupted).

The values become HDF5 only when a flush packs them (:mod:`~.layout`). What HDF5 could not
hold must still fail in the task that saves it: an array's dtype is checked with h5py's own
conversion at save time, and a name that would go inside a value saved before is refused.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..types import JsonValue

MAGIC = b"MXS1"
FIELDS = struct.Struct("<4sqBHIQ")
CRC = struct.Struct("<I")
HEADER_SIZE = FIELDS.size + CRC.size


class Kind(IntEnum):
    ARRAY = 1
    BYTES = 2
    FILE = 3
    FOLDER = 4
    LINK = 5
    COMMIT = 6
    DISCARD = 7
    JSON = 8


KINDS = frozenset(Kind)
MARKERS = (Kind.COMMIT, Kind.DISCARD)


@dataclass(frozen=True, slots=True)
class Record:
    task: int
    kind: Kind
    name: str
    meta: str
    payload: bytes


class DamagedLog(Exception):
    """A record that is wrong (bad magic or checksum): not a kill's torn end, a fault."""


class SaveLog:
    """Appends the saves of tasks to the log at ``path``, created on the first save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._open: dict[int, dict[str, bool]] = {}
        """Tasks with records since their last COMMIT or DISCARD: name saved -> is a folder."""

    def save(self, task_id: int, name: str, value: Any) -> None:
        """Append ``value`` (array, bytes, a :class:`~mexplore.types.JsonValue`, or path of a
        file or directory, which is followed) as ``name`` of the task; the last save of a
        name wins, as with a file."""
        check_name(name)
        if isinstance(value, JsonValue):
            self._claim(task_id, name, folder=False)
            self._append(task_id, Kind.JSON, name, b"", value.text.encode())
        elif isinstance(value, (str, os.PathLike)):
            self._save_path(task_id, name, Path(value), follow=True)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._claim(task_id, name, folder=False)
            self._append(task_id, Kind.BYTES, name, b"", bytes(value))
        else:
            payload = _npy(value)
            self._claim(task_id, name, folder=False)
            self._append(task_id, Kind.ARRAY, name, b"", payload)

    def save_folder(self, task_id: int, folder: Path) -> None:
        """Append each entry of ``folder`` (an external model's ``artifacts/``) under its own
        name; entries that are symbolic links are stored as links. ``folder`` itself being a
        link is refused rather than followed."""
        if folder.is_symlink():
            raise ValueError(f"{folder} is a symbolic link to {os.readlink(folder)}; "
                             "put the files themselves (or links) in it instead")
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                self._save_path(task_id, entry.name, entry, follow=False)

    def absorb(self, task_id: int, other: Path) -> None:
        """Append the task's records from another log (what an isolated child saved); a torn
        end (the child killed mid-save) is left out, and later names win as usual."""
        if other.exists():
            for record in read_records(other):
                if record.task == task_id and record.kind not in MARKERS:
                    self._open.setdefault(task_id, {})
                    self._append(task_id, record.kind, record.name, record.meta.encode(), record.payload)

    def commit(self, task_id: int) -> None:
        """The task's saves are complete; nothing is written for a task that saved nothing."""
        if self._open.pop(task_id, None) is not None:
            self._append(task_id, Kind.COMMIT, "", b"", b"")

    def discard(self, task_id: int) -> None:
        if self._open.pop(task_id, None) is not None:
            self._append(task_id, Kind.DISCARD, "", b"", b"")

    @property
    def writing(self) -> bool:
        """Whether some task has records that are neither committed nor discarded."""
        return bool(self._open)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _save_path(self, task_id: int, name: str, path: Path, follow: bool) -> None:
        if path.is_symlink() or path.exists():
            self._claim(task_id, name, folder=path.is_dir() and (follow or not path.is_symlink()))
        self._store_path(task_id, name, path, follow)

    def _store_path(self, task_id: int, name: str, path: Path, follow: bool) -> None:
        if path.is_symlink() and not follow:
            self._append(task_id, Kind.LINK, name, b"", os.fsencode(os.readlink(path)))
        elif path.is_dir():
            self._append(task_id, Kind.FOLDER, name, b"", b"")
            for entry in sorted(path.iterdir()):
                self._store_path(task_id, f"{name}/{entry.name}", entry, follow=False)
        elif path.is_file():
            self._append(task_id, Kind.FILE, name, path.name.encode(), path.read_bytes())
        elif path.exists():
            raise ValueError(f"ctx.save({name!r}, ...): {path} is neither a file, a folder nor a link")
        else:
            raise FileNotFoundError(f"ctx.save({name!r}, ...): no such file or directory: {path}")

    def _claim(self, task_id: int, name: str, folder: bool) -> None:
        """Refuse ``a/b`` when ``a`` holds a value: HDF5 cannot put one inside the other, and
        the task, not a later flush, must fail. (Names inside a saved folder are not tracked.)"""
        names = self._open.setdefault(task_id, {})
        parts = name.split("/")
        for end in range(1, len(parts)):
            if names.get(parent := "/".join(parts[:end])) is False:
                raise ValueError(f"ctx.save: {name!r} cannot go inside {parent!r}, which holds a value, "
                                 "not a folder")
        names[name] = folder

    def _append(self, task_id: int, kind: Kind, name: str, meta: bytes, payload: bytes) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fields = FIELDS.pack(MAGIC, task_id, kind, len(encoded := name.encode()), len(meta), len(payload))
        crc = zlib.crc32(payload, zlib.crc32(meta, zlib.crc32(encoded, zlib.crc32(fields))))
        parts = [memoryview(part) for part in (fields, CRC.pack(zlib.crc32(fields)), encoded, meta, payload,
                                                CRC.pack(crc))]
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while parts := [part for part in parts if part]:  # one call, but for a payload over 2 GiB
                written = os.writev(self._fd, parts)
                for index, part in enumerate(parts):
                    parts[index], written = part[written:], max(0, written - len(part))
        except BaseException:  # a full disk: cut the torn record off, so later ones stay readable
            os.ftruncate(self._fd, start)
            raise


def read_records(path: Path) -> Iterator[Record]:
    """The whole records of the log at ``path``, in order, stopping at a torn end; raises
    :class:`DamagedLog` at a record that is whole but wrong."""
    with open(path, "rb") as file:
        for offset, head in _headers(path):
            file.seek(offset + HEADER_SIZE)
            yield _decode(path, offset, head, file)


def committed(path: Path, task: int | None = None) -> Iterator[Record]:
    """The records of ``path`` that count: those of each task followed by its COMMIT, and not
    by a DISCARD first; only task ``task``'s if given. Two passes, so only one payload is in
    memory at a time: the headers decide, then the records kept are read (and their
    checksums checked). At damage, what counts before it is still given, then
    :class:`DamagedLog` raised."""
    tasks: dict[int, list[tuple[int, tuple]]] = {}
    damage = None
    try:
        for offset, head in _headers(path):
            if task is None or head[0] == task:
                tasks.setdefault(head[0], []).append((offset, head))
    except DamagedLog as exc:
        damage = exc
    kept = []
    for records in tasks.values():
        counts = False
        for offset, head in reversed(records):
            if head[1] in MARKERS:
                counts = head[1] == Kind.COMMIT
            elif counts:
                kept.append((offset, head))
    with open(path, "rb") as file:
        for offset, head in sorted(kept):
            file.seek(offset + HEADER_SIZE)
            yield _decode(path, offset, head, file)
    if damage is not None:
        raise damage


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name or name.startswith("/") or name in (".", ".."):
        raise ValueError(f"ctx.save: name {name!r} must be a non-empty relative name such as 'weights'")


def _npy(value: Any) -> bytes:
    import h5py
    import numpy as np

    array = np.asarray(value)
    h5py.h5t.py_create(array.dtype, logical=True)  # what create_dataset will do: fail here, in the task
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _headers(path: Path) -> Iterator[tuple[int, tuple[int, Kind, int, int, int]]]:
    """(offset, (task, kind, name, meta and payload lengths)) of each whole record, skipping
    the bodies; ends at a torn end, raises DamagedLog at a header that fails its checks."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        offset = 0
        while offset + HEADER_SIZE <= size:
            file.seek(offset)
            head = file.read(HEADER_SIZE)
            magic, task, kind, name, meta, payload = FIELDS.unpack_from(head)
            (crc,) = CRC.unpack_from(head, FIELDS.size)
            if magic != MAGIC or zlib.crc32(head[:FIELDS.size]) != crc or kind not in KINDS:
                raise DamagedLog(f"{path}: no record at byte {offset}")
            end = offset + HEADER_SIZE + name + meta + payload + CRC.size
            if end > size:
                return
            yield offset, (task, Kind(kind), name, meta, payload)
            offset = end


def _decode(path: Path, offset: int, head: tuple, file: Any) -> Record:
    """The record whose header (less its magic) is ``head``, its body read from ``file``."""
    task, kind, name, meta, payload = head
    body = file.read(name + meta + payload)
    (crc,) = CRC.unpack(file.read(CRC.size))
    if zlib.crc32(body, zlib.crc32(FIELDS.pack(MAGIC, task, kind, name, meta, payload))) != crc:
        raise DamagedLog(f"{path}: record at byte {offset} fails its checksum")
    return Record(task, Kind(kind), body[:name].decode(), body[name:name + meta].decode(), body[name + meta:])
