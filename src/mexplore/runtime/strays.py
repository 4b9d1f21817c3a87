"""Processes a Python model started and left running when its worker leaves.

A model may start a helper (a server, a monitor, ``subprocess.Popen(...,
start_new_session=True)``) and never stop it. Such a process holds the rank's stdout and
stderr open, and ``mpiexec`` waits for those to close: the job outlived its end by as long
as the stray lived (44 s seen). Command models are already killed with their process
group (``models/process.py``) and by the reaper; this is for the rest, done once per
worker process at its very end, when nothing of its own is left to run.

Found by walking ``/proc`` from the worker's pid down (Linux; elsewhere nothing is done).
A process whose parent exited before the end (a double-forked daemon) has left the tree
and is not found: making the worker a child subreaper would catch it, at the price of
zombies accumulating under the worker and ``subprocess`` losing its children's exit codes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

PROC = Path("/proc")


def process_ids() -> list[int]:
    """The pids in ``/proc`` now (none where there is no ``/proc``). Listed, not globbed:
    ``Path.glob`` stats each entry and raises ProcessLookupError for a process that ends
    meanwhile, which once crashed a worker at its very end."""
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s living descendants (children first), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for other in process_ids():
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            fields = (PROC / str(other) / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # it ended while we looked (ENOENT, or ESRCH mid-read)
            continue
        children.setdefault(int(fields[1]), []).append(other)
    found, frontier = [], [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def kill_strays() -> int:
    """SIGKILL every descendant of this process; returns how many were signalled."""
    strays = descendants(os.getpid())
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(strays)
