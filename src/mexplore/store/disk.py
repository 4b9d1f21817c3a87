"""When the output's filesystem refuses a write: full, over quota, read-only, failing.

A run must then stop dispatching, keep its journal whole, leave no temporary file behind,
and tell the user what to free and how to go on; a traceback and ``MPI_Abort`` say none of
that. :class:`OutputUnwritable` carries that message, built here once for every writer.
HDF5 files written where the disk may fill (a worker's node-local cache) hold their space
ahead (:class:`Reservation`, :func:`reserved_h5`): a full disk is then an ``OSError``, not
a crash of the process.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MexploreError

if TYPE_CHECKING:
    import h5py

SPACE = (errno.ENOSPC, errno.EDQUOT)
ADVICE = {
    errno.ENOSPC: "free space there, then run the same command again",
    errno.EDQUOT: "free space in your quota there (or ask for more), then run the same command again",
    errno.EROFS: "the filesystem is read-only: choose another output directory (-o)",
}
OTHERWISE = "make it writable or choose another output directory (-o)"


class OutputUnwritable(MexploreError):
    """A file of the output directory could not be written; nothing written before was lost.
    ``consequence`` says what became of the run (it did not start; it stopped, and what
    runs again on resume)."""

    def __init__(self, path: Path, error: OSError, consequence: str) -> None:
        self.path, self.errno = path, error.errno
        reason = error.strerror or str(error)
        free = _free(path) if error.errno in SPACE else ""
        advice = ADVICE.get(error.errno or 0, OTHERWISE)
        super().__init__(f"cannot write {path}: {reason}{free}. {consequence}; {advice}")


def _free(path: Path) -> str:
    """`` (12 kB free)`` on the filesystem of ``path``, or nothing when that cannot be told."""
    folder = path if path.is_dir() else path.parent
    try:
        stat = os.statvfs(folder)
    except OSError:
        return ""
    free = stat.f_bavail * stat.f_frsize
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if free >= size:
            return f" ({free / size:.1f} {unit} free)"
    return f" ({free} bytes free)"


class Reservation:
    """Disk space held ahead of HDF5's writes into the file at ``path``: HDF5 meeting a full
    disk crashes the whole process (a segmentation fault as its objects are freed), so a
    worker packing its node-local cache on a full disk died instead of reporting it. Each
    :meth:`ensure` allocates the blocks the next write and the metadata still to come may
    take, beyond the file's end without changing its size (``fallocate`` with
    ``FALLOC_FL_KEEP_SIZE``), and raises ``OSError(ENOSPC)`` while nothing was written
    there. Where the filesystem cannot allocate ahead, the free space is checked instead.
    The blocks left over are freed when the reservation closes."""

    METADATA_PER_OBJECT = 4096
    """Bytes of HDF5 metadata (object headers, links, index nodes) one stored object (a
    value, or a group its name makes) may add, written when the file closes: counted until
    then, as a debt."""
    AHEAD = 8 << 20
    """Allocated at a time beyond what is needed, so a few calls cover many small writes
    (only what is needed when the disk has not that much more)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY)
        self._debt = 64 << 10  # the superblock, the root group, the free-space bookkeeping
        self._reserved = 0
        self._size = os.fstat(self._fd).st_size  # the file's size when last looked at
        self._coming = 0  # the bytes ensured since: the file is at most _size + _coming + _debt

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            os.ftruncate(self._fd, os.fstat(self._fd).st_size)  # frees the blocks beyond the end
        finally:
            os.close(self._fd)

    def ensure(self, nbytes: int, objects: int = 1) -> None:
        """Room for ``nbytes`` more, and the metadata of ``objects`` more HDF5 objects."""
        self._debt += self.METADATA_PER_OBJECT * objects
        self._coming += nbytes
        if self._size + self._coming + self._debt <= self._reserved:  # no fstat per value: on a
            return  # parallel filesystem (the straight flush) each is a round trip to its servers
        self._size, self._coming = os.fstat(self._fd).st_size, nbytes
        end = self._size + self._coming + self._debt
        try:
            _allocate_ahead(self._fd, self.path, end + self.AHEAD)
            self._reserved = end + self.AHEAD
        except OSError as error:  # a disk nearly full: what is needed, no more
            if error.errno not in SPACE:
                raise
            _allocate_ahead(self._fd, self.path, end)
            self._reserved = end


@contextmanager
def reserved_h5(path: Path, file: h5py.File | None = None) -> Iterator[tuple[h5py.File, Reservation]]:
    """The HDF5 file at ``path`` (``file``, opened by the caller, or a new one), with a
    :class:`Reservation` for its writes; on any failure the file is removed. HDF5 reports a
    write that found no room as it closes the file, as a RuntimeError naming errno 28: that
    is an ``OSError(ENOSPC)`` here, which callers handle as a full disk."""
    import h5py

    try:
        if file is None:
            file = h5py.File(path, "w", locking=False)
        with Reservation(path) as room, file:
            room.ensure(0)
            yield file, room
    except BaseException as error:
        path.unlink(missing_ok=True)
        if isinstance(error, RuntimeError) and no_room(error):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
        raise


def no_room(error: BaseException) -> bool:
    """Whether ``error`` says the disk is full: its errno, or, for HDF5's errors (an OSError
    or RuntimeError without one), the errno its message names."""
    return getattr(error, "errno", None) in SPACE or "errno = 28" in str(error)


def _allocate_ahead(fd: int, path: Path, length: int) -> None:
    """Blocks for the file's first ``length`` bytes, its size unchanged; ENOSPC if there are not."""
    error = _fallocate_keep_size(fd, length)
    if error == 0:
        return
    if error not in UNSUPPORTED:
        raise OSError(error, os.strerror(error), str(path))
    stat = os.fstatvfs(fd)
    if stat.f_bavail * stat.f_frsize < length - os.fstat(fd).st_size:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _fallocate_keep_size(fd: int, length: int) -> int:
    """``fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, length)``: 0, or the errno it failed with."""
    import ctypes

    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except AttributeError:  # not Linux
        return errno.ENOSYS
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return 0 if fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, length) == 0 else ctypes.get_errno()


FALLOC_FL_KEEP_SIZE = 1
UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
"""What a filesystem that cannot allocate ahead answers (EINVAL: some refuse the mode so)."""
