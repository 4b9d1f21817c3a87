"""Command models die with their worker, however the worker goes.

A command model runs in a process group of its own (so a timeout can kill its children
too). When the worker is killed with ``kill -9``, nothing in it runs to kill that group:
the model is reparented to init and goes on writing into a task folder a resumed run may
hand out again. The reaper is a small process started beside the worker, in a session of
its own so that a signal to the job's process group does not take it down with the rest.
The worker tells it each group it starts and ends over a pipe; when that pipe closes, the
worker is gone (the kernel closes it whatever killed the worker), and the reaper kills
every group still registered before it leaves.

A program the worker started but had not yet registered when it was killed (the kill
came between the fork and the write to the pipe: seen on a loaded machine) is found
another way: every program carries ``MEXPLORE_REAPER=<token>`` in its environment, the
token private to this worker, and the reaper also kills, at the end, every process whose
environment holds it (children and grandchildren inherit it).

``python -m mexplore.models.reaper`` is the reaper itself; :class:`Reaper` is the worker's
side. The reaper starts when a command model is built, before any program runs (started
with the first task instead, a kill while it starts would leave that task's program
unknown to it), and only then: a Python-model worker never pays for it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

MARK = "MEXPLORE_REAPER"
"""The environment variable naming the reaper a program belongs to."""


class Reaper:
    """The worker's handle on its reaper: :meth:`started` / :meth:`ended` per process group."""

    def __init__(self) -> None:
        self._pipe: IO[str] | None = None
        self._process: subprocess.Popen | None = None
        self.token = secrets.token_hex(8)

    @property
    def environment(self) -> dict[str, str]:
        """What every program this worker starts carries, so the reaper finds it even unregistered."""
        return {MARK: self.token}

    def start(self) -> None:
        """Start the reaper now (once), so it is in place before the first program."""
        if self._pipe is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mexplore.models.reaper", self.token], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, start_new_session=True, text=True, bufsize=1,
            )
            self._pipe = self._process.stdin

    def started(self, pgid: int) -> None:
        """A command's process group now exists: kill it if this worker dies."""
        self._send(f"+{pgid}\n")

    def ended(self, pgid: int) -> None:
        """The group was killed by the worker itself: forget it."""
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """The worker leaves normally: the reaper kills what is left (nothing) and exits."""
        if self._pipe is not None:
            self._pipe.close()
            self._process.wait()
            self._pipe = self._process = None

    def _send(self, line: str) -> None:
        self.start()
        self._pipe.write(line)  # line-buffered: the reaper knows the group before the model runs


def reap(lines: IO[str], token: str | None = None) -> set[int]:
    """Read ``+pgid`` / ``-pgid`` lines until the worker's end of the pipe closes, then kill
    every group still registered, and every process marked with ``token``; returns the
    groups."""
    groups: set[int] = set()
    for line in lines:
        sign, number = line[:1], line[1:].strip()
        if number.isdigit():
            (groups.add if sign == "+" else groups.discard)(int(number))
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if token:
        for pid in marked(token):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return groups


def marked(token: str) -> list[int]:
    """Pids of the processes whose environment holds ``MEXPLORE_REAPER=token`` (Linux /proc)."""
    wanted = f"{MARK}={token}".encode()
    found = []
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc: nothing to find
        return []
    for pid in pids:
        try:
            if wanted in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.append(pid)
        except OSError:  # ended while we looked, or not ours to read
            continue
    return found


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the job: the worker handles it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # likewise a scheduler's warning; EOF is the cue
    reap(sys.stdin, sys.argv[1] if len(sys.argv) > 1 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
