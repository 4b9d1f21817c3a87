"""When the output's filesystem refuses a write: full, over quota, read-only, failing.

A run must then stop dispatching, keep its journal whole, leave no temporary file behind,
and tell the user what to free and how to go on; a traceback and ``MPI_Abort`` say none of
that. :class:`OutputUnwritable` carries that message, built here once for every writer.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import MexploreError

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
