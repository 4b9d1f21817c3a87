"""``<output>/status.json``: what the master is doing now, for ``mexplore status``; and the
session's lines of ``sessions.jsonl`` (:mod:`mexplore.store.sessions`), since a session
starts and ends exactly when this file says so.

The journal says what finished; only the master knows what runs right now and when the
caches were last flushed. It rewrites this small file (temp file, then rename) at most
every ``WRITE_EVERY`` seconds, so a parallel filesystem sees a handful of writes a minute,
and once more when the run ends.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..node import node_name
from ..store.atomic import atomic_write
from ..store.sessions import SessionLog

STATUS_NAME = "status.json"
WRITE_EVERY = 5.0
HEARTBEAT = 60.0
"""Rewritten at least this often while the run lives, so a stale file means a dead master."""


class LiveStatus:
    """The master's side of ``status.json`` and of the session's record; :meth:`start`
    makes one and writes both."""

    def __init__(self, output: Path, session: SessionLog) -> None:
        self.path = output / STATUS_NAME
        self.session = session
        self.state: dict[str, Any] = {
            "state": "running", "pid": os.getpid(), "host": node_name(), "workers": session.workers,
            "session": session.number, "started": time.time(), "running": 0, "last_flush": None,
            "flushed_files": 0, "flushed_bytes": 0,
        }
        self._written = 0.0
        self._warned = False

    @classmethod
    def start(cls, output: Path, workers: int, first_task: int) -> LiveStatus:
        """A session starts, handing out task ids from ``first_task``: it is recorded in
        ``sessions.jsonl``, and ``mexplore status`` can see it from now on."""
        live = cls(output, SessionLog.start(output, workers, first_task))
        live.write()
        return live

    def running(self, in_flight: int) -> None:
        """Called when the master is idle: a change is written within WRITE_EVERY seconds,
        and the file is rewritten every HEARTBEAT seconds anyway."""
        since = time.monotonic() - self._written
        changed = in_flight != self.state["running"]
        self.state["running"] = in_flight
        if (changed and since >= WRITE_EVERY) or since >= HEARTBEAT:
            self.write()

    def flushed(self, files: int, nbytes: int) -> None:
        self.state.update(last_flush=time.time(), flushed_files=files, flushed_bytes=nbytes)
        self.write()

    def ended(self, state: str) -> None:
        """``finished``, ``stopped by SIGTERM``, ``failed``...: the session is over."""
        self.state.update(state=state, running=0)
        self.write()
        try:
            self.session.end(state)
        except OSError as error:  # a full disk: the session reads as killed, nothing else is lost
            self._warn(self.session.path, error)

    def write(self) -> None:
        """Rewrite status.json. A filesystem that refuses it (full, read-only) is said once
        and otherwise ignored: the file only informs ``mexplore status``; the journal, which
        decides what is done, reports its own failures."""
        self.state["updated"] = time.time()
        try:
            atomic_write(self.path, json.dumps(self.state))
        except OSError as error:
            self._warn(self.path, error)
        self._written = time.monotonic()

    def _warn(self, path: Path, error: OSError) -> None:
        if not self._warned:
            self._warned = True
            print(f"mexplore: warning: cannot write {path}: {error.strerror or error}", file=sys.stderr)


def read_status(output: Path) -> dict[str, Any] | None:
    try:
        return json.loads((output / STATUS_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
