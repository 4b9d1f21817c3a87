"""Run one external program for one task: no shell, its own process group, bounded output.

What a misbehaving program can do and what stops it:

- print gigabytes: each stream is read in large blocks (not line by line: 200 MB of
  short lines would take a minute in Python) and copied to a file up to ``limit`` bytes;
  the rest is counted and dropped, and only the last ``TAIL_BYTES`` and the marker lines
  (each up to ``RESULT_LINE_LIMIT``) are held in memory, so neither memory nor the
  node-local disk fills up;
- hang: past ``timeout`` its whole process group gets SIGTERM, then SIGKILL after
  ``grace`` seconds, so children and grandchildren die with it;
- leave children behind: the group is killed when the program exits, too;
- print anything at all: only lines that start with ``MEXPLORE_RESULT`` or
  ``MEXPLORE_REPORT`` mean something, and a malformed one is ignored.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

RESULT_PREFIX = b"MEXPLORE_RESULT "
REPORT_PREFIX = b"MEXPLORE_REPORT "
MARKER = b"MEXPLORE_RE"
"""What both marker prefixes start with: the only lines looked at."""
TAIL_BYTES = 4096
RESULT_LINE_LIMIT = 1 << 20
"""Bytes a ``MEXPLORE_RESULT`` line may have; a longer one is a failed task that says so."""
BLOCK_BYTES = 1 << 20
POLL_EVERY = 0.05
READER_JOIN = 5.0


class GroupGuard(Protocol):
    """Who must know a program's process group, to kill it if the worker dies first."""

    environment: dict[str, str]
    """Variables every program carries, by which the guard finds it even unregistered."""

    def start(self) -> None: ...
    def started(self, pgid: int) -> None: ...
    def ended(self, pgid: int) -> None: ...


@dataclass(slots=True)
class Exit:
    """How the program ended and what it said that matters."""

    returncode: int
    timed_out: bool
    result_line: str | None
    stderr_tail: str
    start_error: str | None = None
    result_too_long: bool = False
    """The last ``MEXPLORE_RESULT`` line was longer than :data:`RESULT_LINE_LIMIT`."""


def run_program(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout_path: Path,
    stderr_path: Path,
    timeout: float | None,
    limit: int,
    on_report: Callable[[float, float], None],
    grace: float = 5.0,
    guard: GroupGuard | None = None,
    check: Callable[[], None] | None = None,
) -> Exit:
    """Run ``argv`` to its end (or its timeout); call ``on_report(step, value)`` from this
    thread for every ``MEXPLORE_REPORT`` line while it runs, and ``check()`` every
    :data:`POLL_EVERY` (it raises to stop the program: the worker was told to stop it).
    ``guard`` is told the program's process group when it starts and when it is gone
    (:mod:`.reaper`)."""
    reports: queue.SimpleQueue[tuple[float, float]] = queue.SimpleQueue()
    with open(stdout_path, "wb") as out_file, open(stderr_path, "wb") as err_file:
        try:
            process = subprocess.Popen(
                list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # no such program, no such cwd, a NUL byte in argv or env...
            return Exit(-1, False, None, "", start_error=f"could not start {argv[0]!r}: {exc}")
        if guard is not None:
            guard.started(process.pid)
        stdout = _Reader(process.stdout, out_file, limit, reports)
        stderr = _Reader(process.stderr, err_file, limit, None)
        try:
            timed_out = _wait(process, timeout, grace, reports, on_report, check)
        finally:  # also when the worker is interrupted by a stop signal while it waits
            _kill_group(process.pid, signal.SIGKILL)  # whatever it left behind
            if guard is not None:
                guard.ended(process.pid)
            stdout.join(READER_JOIN)  # bounded: a grandchild that left the group may keep a pipe
            stderr.join(READER_JOIN)
    while not reports.empty():
        on_report(*reports.get())
    lines = stdout.markers
    return Exit(process.returncode, timed_out, lines.result_line if lines else None, stderr.tail(),
                result_too_long=bool(lines and lines.result_too_long))


def _wait(
    process: subprocess.Popen,
    timeout: float | None,
    grace: float,
    reports: queue.SimpleQueue,
    on_report: Callable[[float, float], None],
    check: Callable[[], None] | None,
) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            process.wait(POLL_EVERY)
            return False
        except subprocess.TimeoutExpired:
            pass
        while not reports.empty():
            on_report(*reports.get())
        if check is not None:
            check()
        if deadline is not None and time.monotonic() >= deadline:
            _kill_group(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid, signal.SIGKILL)
                process.wait()
            return True


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Reader(threading.Thread):
    """Copies one stream to a file up to ``limit`` bytes, keeps its tail, and picks out the
    marker lines (stdout only, when given ``reports``)."""

    def __init__(
        self, stream: BinaryIO, file: BinaryIO, limit: int,
        reports: queue.SimpleQueue[tuple[float, float]] | None,
    ) -> None:
        super().__init__(daemon=True)
        self.stream, self.file, self.limit = stream, file, limit
        self.markers = None if reports is None else _MarkerLines(reports)
        self.written = 0
        self.dropped = 0
        self._tail = b""
        self.start()

    def run(self) -> None:
        while block := self.stream.read1(BLOCK_BYTES):  # what the pipe holds, in one call
            self._keep(block)
            if self.markers is not None:
                self.markers.scan(block)
        if self.markers is not None:
            self.markers.end()
        if self.dropped:
            self.file.write(f"\n[mexplore: {self.dropped} more bytes dropped]\n".encode())
        self.stream.close()

    def _keep(self, block: bytes) -> None:
        room = self.limit - self.written
        if room > 0:
            self.file.write(block[:room])
            self.written += min(len(block), room)
        self.dropped += max(len(block) - max(room, 0), 0)
        self._tail = (self._tail + block[-TAIL_BYTES:])[-TAIL_BYTES:]

    def tail(self) -> str:
        return self._tail.decode(errors="replace")


class _MarkerLines:
    """Finds the lines that start with ``MEXPLORE_RESULT `` or ``MEXPLORE_REPORT `` in a
    stream read in blocks, searching each block in C (``bytes.find``) rather than looking
    at every line. A line cut by a block's end is carried to the next block only when it
    is (or may still become) a marker line, and only up to :data:`RESULT_LINE_LIMIT`."""

    def __init__(self, reports: queue.SimpleQueue[tuple[float, float]]) -> None:
        self.reports = reports
        self.result_line: str | None = None
        self.result_too_long = False
        self._carry = b""  # the start of the current line, when it may be a marker line
        self._skipping = False  # in the rest of a line that is not one (or is too long)

    def scan(self, block: bytes) -> None:
        data = self._carry + block if self._carry else block
        self._carry, position = b"", 0
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self._skipping, position = False, newline + 1
        while (start := self._next_marker(data, position)) >= 0:
            end = data.find(b"\n", start)
            if end < 0:  # cut by the block's end
                self._hold(data[start:])
                return
            self._line(data[start:end])
            position = end + 1
        last = data[max(data.rfind(b"\n", position) + 1, position):]  # the unfinished line, if any
        if MARKER.startswith(last):  # "" or "MEXPL": the next block may make it a marker line
            self._carry = last
        else:
            self._skipping = True

    def end(self) -> None:
        """The stream ended: a marker line without its newline still counts."""
        if self._carry:
            self._line(self._carry)
        self._carry = b""

    @staticmethod
    def _next_marker(data: bytes, position: int) -> int:
        if data.startswith(MARKER, position):
            return position
        found = data.find(b"\n" + MARKER, position)
        return found + 1 if found >= 0 else -1

    def _hold(self, start: bytes) -> None:
        if len(start) <= len(RESULT_PREFIX) + RESULT_LINE_LIMIT:
            self._carry = start
            return
        if start.startswith(RESULT_PREFIX):
            self.result_line, self.result_too_long = None, True
        self._skipping = True

    def _line(self, line: bytes) -> None:
        if line.startswith(RESULT_PREFIX):
            if len(line) > len(RESULT_PREFIX) + RESULT_LINE_LIMIT:
                self.result_line, self.result_too_long = None, True
            else:
                self.result_line = line[len(RESULT_PREFIX):].decode(errors="replace").strip()
                self.result_too_long = False
        elif line.startswith(REPORT_PREFIX):
            fields = line[len(REPORT_PREFIX):].split()
            try:
                self.reports.put((float(fields[0]), float(fields[1])))
            except (IndexError, ValueError):
                pass
