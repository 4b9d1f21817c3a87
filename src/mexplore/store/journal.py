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

import gc
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import repeat
from operator import is_
from pathlib import Path
from typing import Any

import orjson

from ..types import Result, Status
from .disk import OutputUnwritable

JOURNAL_NAME = "journal.jsonl"
_TAIL = 1 << 20


class JournalWriter:
    """Appends results; not thread-safe (the master's loop is its only user). Made by
    :meth:`open`; the constructor takes the open descriptor and the journal's size, so
    building one does no I/O.

    Each :meth:`append` is all or nothing: the batch goes out in one unbuffered write, and
    if the filesystem refuses part of it (full, over quota, read-only) the file is cut back
    to where the batch began and :class:`~.disk.OutputUnwritable` is raised. So the journal
    never holds half a batch, and no buffered remainder is written behind the run's back
    later. After that the writer is broken: every later append raises the same error, since
    a result may count as done only once it is journaled.
    """

    def __init__(self, path: Path, fd: int, size: int, fsync_every: float = 1.0) -> None:
        self.path = path
        self._fd = fd
        self._size = size
        self._fsync_every = fsync_every
        self._last_fsync = time.monotonic()
        self.broken: OutputUnwritable | None = None

    @classmethod
    def open(cls, path: Path, fsync_every: float = 1.0) -> JournalWriter:
        """Open the journal for appending, after cutting off a line a kill left unfinished."""
        _drop_unterminated_line(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputUnwritable(path, error, "The run did not start") from None
        return cls(path, fd, os.fstat(fd).st_size, fsync_every)

    def append(self, results: Iterable[Result]) -> None:
        """Write the results and hand them to the OS before returning (or none of them, and
        raise :class:`~.disk.OutputUnwritable`)."""
        if self.broken is not None:
            raise self.broken
        data = b"".join([_encoded(result.to_record()) for result in results])
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write: the disk is filling up
                written += os.write(self._fd, data[written:])
            now = time.monotonic()
            if now - self._last_fsync >= self._fsync_every:
                os.fsync(self._fd)
                self._last_fsync = now
        except OSError as error:
            self._cut_back()
            self.broken = OutputUnwritable(
                self.path, error, "The run stopped; every task journaled before is kept, the "
                "tasks not journaled run again on resume")
            raise self.broken from None
        self._size += len(data)

    def _cut_back(self) -> None:
        """Remove the part of a failed batch that reached the file (cutting needs no space)."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:  # then the next open cuts the unfinished line, as after a kill
            pass

    def close(self) -> None:
        """Make the journal durable and close it; a failure to sync is reported, not raised:
        the lines are written, and the run's end must go on."""
        try:
            os.fsync(self._fd)
        except OSError as error:
            print(f"mexplore: warning: cannot sync {self.path}: {error.strerror}", file=sys.stderr)
        finally:
            os.close(self._fd)


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


_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_PLAIN = frozenset([str, int, float, bool, type(None)])
"""The types of the param values orjson writes as the standard library does. Params are the
one part of a record the user's algorithm makes: a float subclass, a numpy scalar, an enum
or a named tuple there would be written otherwise by orjson (``"0.5"``, ``1``...)."""
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_builtin)
_SPELLING = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_DECODED_KEYS = ("metrics", "reports", "objective")
"""Where :func:`iter_records` reads the spellings back as floats. Not in ``params``: a
categorical value may well be the text "NaN", and must come back as it was proposed."""


def _encoded(record: dict[str, Any]) -> bytes:
    """One journal line: by orjson, five times faster than the standard library (this runs
    once per task on the master's loop), unless the record holds what orjson would write
    differently or refuses, which then goes through :func:`_line` as before. orjson writes a
    NaN or an infinity as ``null``, so a line with more ``null`` than the record has ``None``
    at its top level (error, gpu, objective of a failed task) may have one: a ``null`` or
    the word in a text deeper down also takes that way, which is slower but as right. It
    refuses an integer beyond 64 bits, an unpaired surrogate, a key that is not text and
    nesting deeper than 254. Params whose values are not all plain (:data:`_PLAIN`) take the
    standard library's way as well."""
    if not all(map(_PLAIN.__contains__, map(type, record["params"].values()))):
        return _line(record).encode()
    try:
        line = orjson.dumps(record, default=_builtin, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _line(record).encode()
    if line.count(b"null") != sum(map(is_, record.values(), repeat(None))):
        return _line(record).encode()
    return line


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
_BLOCK_BYTES = 1 << 22
"""The journal is read about this many bytes of whole lines at a time (some 10,000 lines)."""
_NUMBER_TEXT = bytes(ord("0") if ord("0") <= code <= ord("9") else code if code == ord(".") else ord(" ")
                     for code in range(256))
_LONG_INTEGER = b" " + b"0" * 19
"""In a line put through ``_NUMBER_TEXT``: 19 digits or more not after a decimal point, which
an integer beyond 64 bits has; orjson would read it as a float."""
_NO_PARAMS: dict[str, Any] = {}


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's records in order, non-finite numbers as floats again (see the module's
    docstring); damaged lines are skipped with a warning naming them."""
    for block in iter_record_blocks(path):
        yield from block


def iter_record_blocks(path: Path) -> Iterator[list[dict[str, Any]]]:
    """The records of :func:`iter_records`, a list of some thousands at a time. A block of
    sound lines (the usual case) is read by orjson in one ``map`` and checked a field at a
    time for the whole block, five times faster than the standard library line by line:
    reading the journal is most of the end of a long run. A block with something that needs
    care (a damaged line, a non-finite number, an integer beyond 64 bits) is read line by
    line instead."""
    for _, block in iter_counted_blocks(path):
        yield block  # type: ignore[misc]  # never None unless sound_only


def iter_counted_blocks(path: Path, span: tuple[int, int | None] = (0, None), first_line: int = 1,
                        sound_only: bool = False) -> Iterator[tuple[int, list[dict[str, Any]] | None]]:
    """The blocks of :func:`iter_record_blocks`, each with the number of lines it was read
    from (blank and skipped ones too). With ``span``, of the lines between those byte
    offsets only (:func:`spans`), the first being line ``first_line`` of the journal (for
    warnings); with ``sound_only``, a block that needs care is None and warns of nothing (a
    reader that does not know the line numbers yet leaves it to one that does)."""
    number = first_line
    for lines in iter_line_blocks(path, span):
        block = _sound_block(lines)
        if block is None and not sound_only:
            block = list(_checked_records(path, lines, number))
        yield len(lines), block
        number += len(lines)


def iter_line_blocks(path: Path, span: tuple[int, int | None] = (0, None)) -> Iterator[list[bytes]]:
    """The journal's lines between the byte offsets of ``span`` (each the start of a line;
    None: the end), some 4 MB of them at a time."""
    start, end = span
    with open(path, "rb") as journal:
        journal.seek(start)
        at = start
        while (end is None or at < end) and (lines := journal.readlines(_BLOCK_BYTES)):
            at += sum(map(len, lines))
            if end is not None and at > end:  # the span ends inside this block, at a line's start
                while at > end:
                    at -= len(lines.pop())
            yield lines


def spans(path: Path, count: int) -> list[tuple[int, int]]:
    """``count`` byte ranges of about equal size covering the journal, each from the start
    of a line to the start of the next range's (fewer when lines are long)."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as journal:
        for part in range(1, count):
            journal.seek(max(size * part // count - 1, cuts[-1]))
            journal.readline()  # to the end of the line the cut fell in (or of the one before it)
            if (cut := journal.tell()) < size and cut > cuts[-1]:
                cuts.append(cut)
    return list(zip(cuts, [*cuts[1:], size]))


def _sound_block(lines: list[bytes]) -> list[dict[str, Any]] | None:
    """The lines' records if every line is a task's result orjson reads exactly as JSON
    means it; else None."""
    text = b"".join(lines)
    if b'"NaN"' in text or b'Infinity"' in text or _LONG_INTEGER in text.translate(_NUMBER_TEXT):
        return None
    try:
        records = list(map(orjson.loads, lines))
        ids = set(map(type, map(dict.get, records, repeat("id"))))
        statuses = set(map(dict.get, records, repeat("status")))
        params = set(map(type, map(dict.get, records, repeat("params"), repeat(_NO_PARAMS))))
    except (orjson.JSONDecodeError, TypeError):  # not JSON; JSON but not an object; an unhashable status
        return None
    return records if ids == {int} and statuses <= _STATUSES and params == {dict} else None


def _checked_records(path: Path, lines: list[bytes], number: int) -> Iterator[dict[str, Any]]:
    """The records of ``lines`` (the first is line ``number`` of the journal) one by one,
    each checked, with a warning for each line skipped."""
    for number, line in enumerate(lines, start=number):
        if not line.strip():
            continue
        record = _decoded(line)
        if not isinstance(record, dict):
            print(f"mexplore: warning: {path}:{number}: skipping a damaged journal line "
                  "(cut short by a kill?)", file=sys.stderr)
            continue
        status = record.get("status")
        if not (type(record.get("id")) is int and isinstance(status, str) and status in _STATUSES
                and isinstance(record.get("params", {}), dict)):
            print(f"mexplore: warning: {path}:{number}: skipping a line that is not a task's "
                  "result (it needs an integer id, a status and a params object)", file=sys.stderr)
            continue
        if b'"NaN"' in line or b'Infinity"' in line:  # a cheap test first: most lines have none
            for key in _DECODED_KEYS:
                if key in record:
                    record[key] = _unspelled(record[key])
        yield record


def _decoded(line: bytes) -> Any:
    """One journal line as Python, or None when it is not JSON: by orjson, but by the
    standard library where orjson refuses or would change it: an integer beyond 64 bits
    (orjson makes it a float, so such lines never reach it), an unpaired surrogate escape,
    and the bare ``NaN`` of older journals."""
    if _LONG_INTEGER not in b" " + line.translate(_NUMBER_TEXT):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(line.decode("utf-8"))  # strict UTF-8 text, as the journal is written
    except (ValueError, RecursionError):  # not JSON, or JSON Python cannot hold
        return None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off while a whole journal is read into objects. Reading
    100,000 records makes millions of dicts and lists, none of them cyclic, and the
    collector would scan them again and again as they pile up: a third of the read's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_results(path: Path) -> list[Result]:
    """Every result the journal holds; an absent journal holds none."""
    if not path.exists():
        return []
    with gc_paused():
        return [Result.from_record(record) for record in iter_records(path)]
