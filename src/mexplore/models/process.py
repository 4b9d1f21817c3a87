"""Run one external program for one task: no shell, its own process group, bounded output.

What a misbehaving program can do and what stops it:

- print gigabytes: each stream is copied to a file up to ``limit`` bytes, the rest is
  counted and dropped, and lines are read in bounded pieces, so neither memory nor the
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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

RESULT_PREFIX = b"MEXPLORE_RESULT "
REPORT_PREFIX = b"MEXPLORE_REPORT "
TAIL_BYTES = 4096
LINE_BYTES = 1 << 16
POLL_EVERY = 0.05
READER_JOIN = 5.0


@dataclass(slots=True)
class Exit:
    """How the program ended and what it said that matters."""

    returncode: int
    timed_out: bool
    result_line: str | None
    stderr_tail: str
    start_error: str | None = None


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
) -> Exit:
    """Run ``argv`` to its end (or its timeout); call ``on_report(step, value)`` from this
    thread for every ``MEXPLORE_REPORT`` line while it runs."""
    reports: queue.SimpleQueue[tuple[float, float]] = queue.SimpleQueue()
    with open(stdout_path, "wb") as out_file, open(stderr_path, "wb") as err_file:
        try:
            process = subprocess.Popen(
                list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:  # no such program, not executable, no such cwd...
            return Exit(-1, False, None, "", start_error=f"could not start {argv[0]!r}: {exc}")
        stdout = _Reader(process.stdout, out_file, limit, reports)
        stderr = _Reader(process.stderr, err_file, limit, None)
        try:
            timed_out = _wait(process, timeout, grace, reports, on_report)
        finally:  # also when the worker is interrupted by a stop signal while it waits
            _kill_group(process.pid, signal.SIGKILL)  # whatever it left behind
            stdout.join(READER_JOIN)  # bounded: a grandchild that left the group may keep a pipe
            stderr.join(READER_JOIN)
    while not reports.empty():
        on_report(*reports.get())
    return Exit(process.returncode, timed_out, stdout.result_line, stderr.tail())


def _wait(
    process: subprocess.Popen,
    timeout: float | None,
    grace: float,
    reports: queue.SimpleQueue,
    on_report: Callable[[float, float], None],
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
    marker lines (stdout only)."""

    def __init__(
        self, stream: BinaryIO, file: BinaryIO, limit: int,
        reports: queue.SimpleQueue[tuple[float, float]] | None,
    ) -> None:
        super().__init__(daemon=True)
        self.stream, self.file, self.limit, self.reports = stream, file, limit, reports
        self.written = 0
        self.dropped = 0
        self.result_line: str | None = None
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.start()

    def run(self) -> None:
        while line := self.stream.readline(LINE_BYTES):
            self._keep(line)
            if self.reports is not None:
                self._markers(line)
        if self.dropped:
            self.file.write(f"\n[mexplore: {self.dropped} more bytes dropped]\n".encode())
        self.stream.close()

    def _keep(self, line: bytes) -> None:
        room = self.limit - self.written
        if room > 0:
            self.file.write(line[:room])
            self.written += min(len(line), room)
        self.dropped += max(len(line) - max(room, 0), 0)
        self._tail.append(line)
        self._tail_size += len(line)
        while self._tail_size > TAIL_BYTES and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft())

    def _markers(self, line: bytes) -> None:
        if line.startswith(RESULT_PREFIX):
            self.result_line = line[len(RESULT_PREFIX):].decode(errors="replace").strip()
        elif line.startswith(REPORT_PREFIX):
            fields = line[len(REPORT_PREFIX):].split()
            try:
                self.reports.put((float(fields[0]), float(fields[1])))
            except (IndexError, ValueError):
                pass

    def tail(self) -> str:
        return b"".join(self._tail)[-TAIL_BYTES:].decode(errors="replace")
