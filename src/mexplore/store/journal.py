"""``journal.jsonl``: one line per finished task, the source of truth for resume.

Durability: the master appends a batch of result lines and flushes them to the operating
system before those tasks count as done, so a killed job (``kill -9``, walltime) loses no
finished task. ``fsync`` (surviving a crash of the node itself) runs at most once per
``fsync_every`` seconds and when the journal is closed, because an fsync per task on a
parallel filesystem would cost milliseconds each. A line cut short by a kill mid-write is
skipped with a warning when the journal is read back.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..types import Result

JOURNAL_NAME = "journal.jsonl"


class JournalWriter:
    """Appends results; not thread-safe (the master's loop is its only user)."""

    def __init__(self, path: Path, fsync_every: float = 1.0) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._fsync_every = fsync_every
        self._last_fsync = time.monotonic()
        self._repair_unterminated_line()

    def _repair_unterminated_line(self) -> None:
        """After a kill mid-write the file may end inside a line; start ours on a new one."""
        if self._file.tell() == 0:
            return
        with open(self.path, "rb") as raw:
            raw.seek(-1, os.SEEK_END)
            if raw.read(1) != b"\n":
                self._file.write("\n")

    def append(self, results: Iterable[Result]) -> None:
        """Write the results and flush them to the OS before returning."""
        self._file.write("".join(_line(r.to_record()) for r in results))
        self._file.flush()
        now = time.monotonic()
        if now - self._last_fsync >= self._fsync_every:
            os.fsync(self._file.fileno())
            self._last_fsync = now

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), default=_builtin) + "\n"


def _builtin(value: Any) -> Any:
    """numpy scalars and arrays in params proposed by an algorithm become plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's records in order; damaged lines are skipped with a warning naming them."""
    with open(path, encoding="utf-8") as journal:
        for number, line in enumerate(journal, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(
                    f"{path}:{number}: skipping a damaged journal line (cut short by a kill?)",
                    stacklevel=2,
                )


def read_results(path: Path) -> list[Result]:
    """Every result the journal holds; an absent journal holds none."""
    if not path.exists():
        return []
    return [Result.from_record(record) for record in iter_records(path)]
