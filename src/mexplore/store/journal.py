"""``journal.jsonl``: one line per finished task, the source of truth for resume.

Durability: the master appends a batch of result lines and flushes them to the operating
system before those tasks count as done, so a killed job (``kill -9``, walltime) loses no
finished task. ``fsync`` (surviving a crash of the node itself) runs at most once per
``fsync_every`` seconds and when the journal is closed, because an fsync per task on a
parallel filesystem would cost milliseconds each. A line cut short by a kill mid-write is
skipped with a warning when the journal is read back, and cut off before the next run
appends to it.

Every line is strict JSON (RFC 8259), readable by any language's JSON library. JSON has no
NaN or infinity, so a non-finite float (a metric, an intermediate report, a constant) is
written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``; :func:`iter_records`
turns those back into floats in ``metrics``, ``reports`` and ``objective``. (Journals of
earlier versions hold bare ``NaN``, which Python's reader accepts as well.)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..types import Result, Status

JOURNAL_NAME = "journal.jsonl"
_TAIL = 1 << 20


class JournalWriter:
    """Appends results; not thread-safe (the master's loop is its only user). Made by
    :meth:`open`; the constructor takes the open file, so building one does no I/O."""

    def __init__(self, path: Path, file: TextIO, fsync_every: float = 1.0) -> None:
        self.path = path
        self._file = file
        self._fsync_every = fsync_every
        self._last_fsync = time.monotonic()

    @classmethod
    def open(cls, path: Path, fsync_every: float = 1.0) -> JournalWriter:
        """Open the journal for appending, after cutting off a line a kill left unfinished."""
        _drop_unterminated_line(path)
        return cls(path, open(path, "a", encoding="utf-8"), fsync_every)  # noqa: SIM115 (closed in close())

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


def _drop_unterminated_line(path: Path) -> None:
    """A kill mid-write can leave the journal ending inside a line. That task never counted
    as done (it was not flushed whole), so the fragment is cut off before appending: the
    task runs again, and the journal holds only whole lines from then on."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as raw:
        size = raw.seek(0, os.SEEK_END)
        raw.seek(size - 1)
        if raw.read(1) == b"\n":
            return
        start = max(size - _TAIL, 0)
        raw.seek(start)
        cut = raw.read().rfind(b"\n")
        if cut < 0 and start > 0:  # a last line longer than _TAIL: look at everything
            raw.seek(0)
            start, cut = 0, raw.read().rfind(b"\n")
        raw.truncate(start + cut + 1)


def _builtin(value: Any) -> Any:
    """numpy scalars and arrays in params proposed by an algorithm become plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_builtin)
_SPELLING = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_DECODED_KEYS = ("metrics", "reports", "objective")
"""Where :func:`iter_records` reads the spellings back as floats. Not in ``params``: a
categorical value may well be the text "NaN", and must come back as it was proposed."""


def _line(record: dict[str, Any]) -> str:
    try:
        text = _ENCODER.encode(record)
    except ValueError:  # a NaN or an infinity somewhere (rare): spell it, and only then walk the record
        text = _ENCODER.encode(_spelled(record))
    return text + "\n"


def _spelled(value: Any) -> Any:
    """``value`` with every non-finite float written as its JSON spelling."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {key: _spelled(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_spelled(item) for item in value]
    if hasattr(value, "tolist"):
        return _spelled(value.tolist())
    return value


def _unspelled(value: Any) -> Any:
    """Inverse of :func:`_spelled`."""
    if isinstance(value, str):
        return _SPELLING.get(value, value)
    if isinstance(value, dict):
        return {key: _unspelled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unspelled(item) for item in value]
    return value


_STATUSES = frozenset(status.value for status in Status)


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's records in order, non-finite numbers as floats again (see the module's
    docstring); damaged lines are skipped with a warning naming them."""
    with open(path, encoding="utf-8") as journal:
        for number, line in enumerate(journal, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, or JSON Python cannot hold
                record = None
            if not isinstance(record, dict):
                print(f"mexplore: warning: {path}:{number}: skipping a damaged journal line "
                      "(cut short by a kill?)", file=sys.stderr)
                continue
            if not (type(record.get("id")) is int and record.get("status") in _STATUSES
                    and isinstance(record.get("params", {}), dict)):
                print(f"mexplore: warning: {path}:{number}: skipping a line that is not a task's "
                      "result (it needs an integer id, a status and a params object)", file=sys.stderr)
                continue
            if '"NaN"' in line or 'Infinity"' in line:  # a cheap test first: most lines have none
                for key in _DECODED_KEYS:
                    if key in record:
                        record[key] = _unspelled(record[key])
            yield record


def read_results(path: Path) -> list[Result]:
    """Every result the journal holds; an absent journal holds none."""
    if not path.exists():
        return []
    return [Result.from_record(record) for record in iter_records(path)]
