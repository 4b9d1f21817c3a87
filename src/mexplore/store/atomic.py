"""Replace a file atomically: a reader, or a kill mid-write, sees the old file or the new
one, never half of one.

Every file of the output directory that is rewritten while others may read it (the study
record, ``status.json``, ``results.csv``, ``results.h5``, the report page, a flushed
cache) goes through here: write a temporary file next to the target (a rename is atomic
only within one filesystem), ``fsync`` it, ``os.replace`` it onto the target, then
``fsync`` the directory so the rename itself survives a crash of the node.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target`` for the caller to write (pandas ``to_csv``, h5py,
    a copy); when the block ends the file is made durable and renamed onto ``target``.

    The name is hidden and unique to this writer (pid and a random tag), so two writers of
    the same target never share it and a ``*.h5`` or ``*.csv`` glob never sees it. If the
    block, the ``fsync`` or the rename fails, the temporary file is removed and the error
    raised: the old ``target``, if any, is left as it was.
    """
    partial = target.with_name(f".{target.name}.part-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield partial
        _fsync(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write(target: Path, data: str | bytes) -> Path:
    """Replace ``target`` with ``data`` (text is written as UTF-8) atomically; returns ``target``."""
    with atomic_path(target) as partial:
        partial.write_bytes(data.encode() if isinstance(data, str) else data)
    return target


def _fsync(path: Path) -> None:
    """Flush ``path``'s data (or a directory's entries) to disk. Any descriptor of a file
    will do, so one written by a library (h5py, pandas) is synced after it closed it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Best effort: some filesystems (and some network ones) refuse to fsync a directory;
    the rename is done by then, only its durability across a node crash is at stake."""
    try:
        _fsync(folder)
    except OSError:
        pass


def remove_abandoned(folder: Path) -> None:
    """Delete the temporary files of :func:`atomic_path` whose writer no longer runs on this
    node: a kill -9 mid-write leaves one behind, hidden but holding space (a flushed cache
    can be gigabytes). A run calls this once it holds the output's lock; a writer on
    another node (a ``mexplore results`` there) whose pid is not alive here would lose its
    file, which it then reports: a rare race, against a leak on every kill."""
    for partial in folder.glob(".*.part-*-*"):
        if (named := _PARTIAL.fullmatch(partial.name)) and partial.is_file() and not _alive(int(named[1])):
            partial.unlink(missing_ok=True)


_PARTIAL = re.compile(r"\..+\.part-(\d+)-[0-9a-f]{8}")
"""The names :func:`atomic_path` gives, and only those: a pid and a tag of 8 hex digits."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
