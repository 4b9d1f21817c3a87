"""``<output>/run.lock``: one run at a time per output directory.

Two runs on one output both resume from the same journal, propose the same task ids and
append to the same file: the budget is overrun and ids appear twice. So the master takes
this lock before it writes anything in the output directory, and a second run is refused
with one line saying who holds it. Readers (``results``, ``status``, ``report``) never take
it: they only read files that are replaced atomically or appended to.

Two ways to hold it, chosen per run:

- ``flock``: ``fcntl.flock`` on a descriptor the master keeps open for the run's whole
  life. The kernel drops the lock when the process ends, however it ends (``kill -9``
  included), so a dead run never blocks the next one and there is nothing to clean up.
- ``heartbeat``: for filesystems without ``flock`` (some Lustre and GPFS mounts answer
  ENOLCK or EOPNOTSUPP). The file is created exclusively (``O_CREAT | O_EXCL``) and a daemon
  thread refreshes its mtime every ``HEARTBEAT`` seconds. A lock whose holder is on this
  host with a pid that no longer runs, or whose heartbeat is older than ``STALE_AFTER``, is
  taken over with a warning. ``MEXPLORE_OUTPUT_LOCK=heartbeat`` forces it, for mounts
  where ``flock`` succeeds but only locks within one node (Lustre's ``localflock``).

Either way the file holds JSON naming the holder (host, pid, start time, version, mode),
for the refusal message, and is removed when the run releases it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import Self

from ..errors import MexploreError
from .disk import OutputUnwritable

LOCK_NAME = "run.lock"
HEARTBEAT = 30.0
"""A heartbeat-mode holder refreshes the lock file's mtime at least this often."""
STALE_AFTER = 600.0
"""A heartbeat older than this means the holder is gone. Generous: a parallel filesystem's
metadata server may stall for minutes, and hosts' clocks may differ by some seconds."""
MODES = ("flock", "heartbeat")
MODE_VARIABLE = "MEXPLORE_OUTPUT_LOCK"
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})
_ATTEMPTS = 5
"""Tries before giving up when the lock file changes under us (released, taken over)."""


class OutputInUse(MexploreError):
    """Another run holds the output directory; the message says who and what to do."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    host: str
    pid: int
    started: float
    version: str
    mode: str

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M:%S")
        return f"pid {self.pid} on {self.host} since {since}, mexplore {self.version}"


HOLDER_WAIT = 2.0
"""Seconds a refused run waits for the holder's name to appear in the lock file."""


def read_holder(path: Path) -> Holder | None:
    """The holder a lock file names; None if it is missing, being written or damaged."""
    try:
        return _parse(path.read_bytes())
    except OSError:
        return None


class OutputLock:
    """A held lock on an output directory; :meth:`acquire` takes one, :meth:`release` (or
    leaving a ``with`` block) gives it back and removes the file."""

    def __init__(self, path: Path, fd: int, mode: str) -> None:
        self.path, self.mode = path, mode
        self._fd: int | None = fd
        self._released = threading.Event()
        self._beater: threading.Thread | None = None

    @classmethod
    def acquire(cls, output: Path, *, mode: str | None = None) -> OutputLock:
        """Take ``output``'s lock or raise :class:`OutputInUse`. ``mode`` is ``"flock"``
        (falls back to ``"heartbeat"`` where the filesystem has no flock), ``"heartbeat"``,
        or None for ``$MEXPLORE_OUTPUT_LOCK``, by default ``flock``."""
        mode = mode or os.environ.get(MODE_VARIABLE) or "flock"
        if mode not in MODES:
            raise MexploreError(f"{MODE_VARIABLE}={mode!r}: expected one of {', '.join(MODES)}")
        path = output / LOCK_NAME
        for _ in range(_ATTEMPTS):
            try:
                lock = cls._attempt(path, mode == "flock")
            except OSError as error:  # read-only, full, not ours: the run cannot start here
                raise OutputUnwritable(path, error, "The run did not start") from None
            if lock is not None:
                return lock
        raise _in_use(path, mode)

    @classmethod
    def _attempt(cls, path: Path, use_flock: bool) -> OutputLock | None:
        """One try: the lock, or None when the file changed under us and is worth another try."""
        try:
            fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                fd, created = os.open(path, os.O_RDWR), False
            except FileNotFoundError:  # released between the two opens
                return None
        if use_flock:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _in_use(path, "flock") from None
            except OSError as error:
                if error.errno not in _NO_FLOCK:
                    os.close(fd)
                    raise
            else:
                if not _same_file(fd, path):  # its holder removed it as we opened it
                    os.close(fd)
                    return None
                if not created and _live_heartbeat_holder(fd):  # a run that forced heartbeat mode
                    os.close(fd)
                    raise _in_use(path, "heartbeat")
                return cls(path, fd, "flock")._claim()
        if created:
            return cls(path, fd, "heartbeat")._claim()
        os.close(fd)
        _take_over_if_stale(path)
        return None

    def _claim(self) -> OutputLock:
        """Write who holds the lock; in heartbeat mode start beating."""
        assert self._fd is not None
        holder = Holder(socket.gethostname(), os.getpid(), time.time(), _version(), self.mode)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(asdict(holder)).encode(), 0)
        os.fsync(self._fd)
        if self.mode == "heartbeat":
            # A thread rather than the master loop: the master may spend minutes in one
            # algorithm step or waiting for final flushes, and a lock must not look stale then.
            self._beater = threading.Thread(target=self._beat, name="mexplore-lock-heartbeat", daemon=True)
            self._beater.start()
        return self

    def _beat(self) -> None:
        fd = self._fd  # release() joins this thread before it closes the descriptor
        assert fd is not None
        while not self._released.wait(HEARTBEAT):
            try:
                if not _same_file(fd, self.path):
                    print(f"mexplore: warning: {self.path} was removed or taken over: another run "
                          f"may now write to {self.path.parent}", file=sys.stderr)
                    return
                os.utime(fd)  # through the descriptor: never touches a file another run made
            except OSError as error:  # a filesystem hiccup: try again at the next beat
                print(f"mexplore: warning: cannot refresh {self.path}: {error}", file=sys.stderr)

    def owned(self) -> bool:
        """Whether the lock file is still the one this lock made."""
        return self._fd is not None and _same_file(self._fd, self.path)

    def release(self) -> None:
        """Stop beating and remove the file (unless another run has taken it over). The
        file is removed before the descriptor is closed, so whoever opened it meanwhile
        finds it gone and tries again on a new one."""
        if self._fd is None:
            return
        self._released.set()
        if self._beater is not None:
            self._beater.join()
        try:
            if self.owned():
                self.path.unlink()
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def _take_over_if_stale(path: Path) -> None:
    """Remove a heartbeat lock whose holder is gone, or raise :class:`OutputInUse`.

    There is no compare-and-swap on a path, so contenders take turns: only the one that
    creates ``.run.lock.takeover`` exclusively may remove the lock, and it first checks,
    under that guard, that the lock is still the very file judged stale (same inode, same
    bytes: nobody else removes a dead holder's file). The caller then creates a fresh lock
    exclusively, so exactly one contender holds it. The others try again, and are refused
    once it is held. (Moving the file aside and linking it back, as before, let a third
    contender create a lock in between that the second then deleted: two holders.)
    """
    try:
        seen, raw = os.stat(path), path.read_bytes()
    except FileNotFoundError:
        return
    holder = _parse(raw)
    if holder is not None and holder.mode == "flock" and _flock_held(path):  # flock holders do not beat
        raise _in_use(path, "flock")
    gone = _gone(holder, time.time() - seen.st_mtime)
    if gone is None:
        raise _in_use(path, "heartbeat")
    guard = path.with_name(f".{path.name}.takeover")
    try:
        fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another contender is taking it over
        _clear_abandoned(guard)
        return
    try:
        try:
            now, current = os.stat(path), path.read_bytes()
        except FileNotFoundError:
            return
        if _identity(now) == _identity(seen) and current == raw:
            path.unlink()
            who = holder.describe() if holder is not None else "unreadable"
            print(f"mexplore: warning: took over {path} ({who}): {gone}", file=sys.stderr)
    finally:
        os.close(fd)
        guard.unlink()


TAKEOVER_STALE = 60.0
"""A takeover guard this old was left by a contender killed mid-takeover, which takes
milliseconds: it is removed. (Two contenders that both judge it abandoned at that instant
could both proceed; that needs a kill -9 in a millisecond window and a second run started
within a minute of it.)"""


def _clear_abandoned(guard: Path) -> None:
    try:
        if time.time() - os.stat(guard).st_mtime > TAKEOVER_STALE:
            guard.unlink()
    except FileNotFoundError:
        pass


def _gone(holder: Holder | None, age: float) -> str | None:
    """Why a heartbeat lock's holder is gone, or None if it may still run."""
    if age > STALE_AFTER:
        return f"no heartbeat for {age / 60:.0f} min"
    if holder is not None and holder.host == socket.gethostname() and not _runs(holder.pid):
        return f"pid {holder.pid} no longer runs on {holder.host}"
    return None


def _flock_held(path: Path) -> bool:
    """Whether a process holds the file's flock; False where the filesystem has no flock."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _live_heartbeat_holder(fd: int) -> bool:
    """Whether the file names a heartbeat-mode holder that may still run: flock cannot see
    it, so a flock-mode run must not overwrite it. Read through our own descriptor: where
    flock is emulated with fcntl locks (NFS), closing any other descriptor of the file
    would drop the lock just taken."""
    holder = _parse(os.pread(fd, 1 << 16, 0))
    age = time.time() - os.fstat(fd).st_mtime
    return holder is not None and holder.mode == "heartbeat" and _gone(holder, age) is None


def _in_use(path: Path, mode: str) -> OutputInUse:
    """The one-line refusal: who holds the lock and what to do if that run is dead. The
    holder writes its name just after it takes the lock: a run refused in between waits
    a moment (at most ``HOLDER_WAIT`` seconds) to read it."""
    deadline = time.monotonic() + HOLDER_WAIT
    while (holder := read_holder(path)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    who = holder.describe() if holder is not None else "holder unknown: its lock file is being written or damaged"
    if mode == "flock":
        then = ("wait for it to end or stop it; nothing to delete, the lock is free as soon as "
                "that process is gone")
    else:
        try:
            who += f", heartbeat {time.time() - os.stat(path).st_mtime:.0f} s ago"
        except FileNotFoundError:
            pass
        then = (f"if that run is dead, delete {path} and run again (or wait: a run takes it "
                f"over once its heartbeat is {STALE_AFTER / 60:.0f} min old)")
    return OutputInUse(f"{path.parent} is in use by another run ({who}); {then}")


def _parse(raw: bytes) -> Holder | None:
    try:
        data = json.loads(raw)
        return Holder(str(data["host"]), int(data["pid"]), float(data["started"]),
                      str(data.get("version", "?")), str(data.get("mode", "?")))
    except (ValueError, KeyError, TypeError):
        return None


def _version() -> str:
    try:
        return version("mexplore")
    except PackageNotFoundError:  # run from a source tree
        return "?"


def _runs(pid: int) -> bool:
    """Whether a process ``pid`` exists here; unknown (True) for pids that are no process."""
    if pid <= 0:  # kill(0) or kill(-1) would signal whole groups
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return _identity(os.stat(path)) == _identity(os.fstat(fd))
    except FileNotFoundError:
        return False


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns
