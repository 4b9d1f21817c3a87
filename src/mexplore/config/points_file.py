"""Files of points: ``[algorithm] initial`` and the ``points`` algorithm's ``file``.

Two forms, told apart by the file's ending:

- ``.jsonl`` (or ``.txt``, CANDLE's "unrolled parameter files", UPF): one JSON object per
  line, each with its own keys;
- ``.csv``: a header of names; an empty cell leaves that name out of its row's point.

A point's ``id`` (UPF lines carry one, which CANDLE uses as the run's name) is kept as its
``label``: results.csv's ``id`` column is mexplore's task id. Every line is read here, when the
study loads, so line 3,712 with a typo is reported by its number before any rank starts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..space import LABEL, Categorical, Float, Grid, Int, Space
from ._limits import check_values
from ._schema import Key, Problem, first_repeated

FILE_KINDS = (".csv", ".jsonl", ".txt")
UPF_ID = "id"


def read_points(file: Path, at: Key, space: Space) -> list[tuple[int, dict[str, Any]]]:
    """Each point of ``file`` with its line number; CSV cells read as their parameter's type
    (as JSON, or as text, for a name ``space`` does not hold). Problems name ``at`` and the line."""
    if file.suffix not in FILE_KINDS:
        raise Problem(at, str(file), "a file of points ending in .csv, .jsonl or .txt (one JSON object per line)")
    try:
        text = file.read_text(encoding="utf-8-sig")  # a byte-order mark, as spreadsheets write, is not a key
    except (OSError, UnicodeDecodeError) as exc:
        raise Problem(at, str(file), "a readable file of points", f"{file}: {getattr(exc, 'strerror', exc)}") from None
    rows = _csv_rows(file, text, space, at) if file.suffix == ".csv" else _jsonl_rows(file, text, at)
    if not rows:
        raise Problem(at, str(file), "a file holding at least one point", f"{file} has none")
    for line, row in rows:
        try:
            check_values(row, at)
        except Problem as problem:
            raise Problem(at, str(file), "a file of points", f"{file} line {line}: {problem.value!r} is not "
                          f"{problem.expected}") from None
    return [(line, _labelled(file, line, row, at)) for line, row in rows]


def _labelled(file: Path, line: int, row: Any, at: Key) -> Any:
    """The row with its ``id`` renamed ``label`` (kept as text)."""
    if not isinstance(row, dict) or UPF_ID not in row:
        return row
    if LABEL in row:
        raise Problem(at, str(file), f"points with an {UPF_ID!r} or a {LABEL!r}, not both",
                      f"{file} line {line} has both")
    row = dict(row)
    value = row.pop(UPF_ID)
    row[LABEL] = value if isinstance(value, str) else json.dumps(value)
    return row


def _csv_rows(file: Path, text: str, space: Space, at: Key) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))  # a quoted cell may hold a line break
    header = reader.fieldnames or []
    repeated = first_repeated(header)
    if repeated is not None:
        raise Problem(at, str(file), "a CSV file whose header names each key once", f"{file}: {repeated!r} twice")
    rows = []
    for row in reader:
        line = reader.line_num
        if None in row or None in row.values():
            raise Problem(at, str(file), "a CSV file whose rows have as many cells as its header",
                          f"{file} line {line} does not")
        rows.append((line, {name: csv_cell(space, name, cell) for name, cell in row.items() if cell != ""}))
    return rows


def csv_cell(space: Space, name: str, text: str) -> Any:
    """A CSV cell as the value it stands for; left as text when it fits nothing, so the
    point check names it."""
    param = space.parameters.get(name)
    if param is None:
        template = space.constants.get(name, 0)
        return text if isinstance(template, str) or name in (LABEL, UPF_ID) else _json(text)
    if isinstance(param, (Float, Int)):
        try:
            return (float if isinstance(param, Float) else int)(text)
        except ValueError:
            return text
    assert isinstance(param, (Categorical, Grid))
    return next((choice for choice in param.values() if text in (str(choice), json.dumps(choice))), text)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _jsonl_rows(file: Path, text: str, at: Key) -> list[tuple[int, Any]]:
    rows = []
    for line, content in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may be in a string
        if not content.strip() or content.lstrip().startswith("#"):
            continue
        try:
            rows.append((line, json.loads(content)))
        except json.JSONDecodeError as exc:
            raise Problem(at, str(file), "one JSON object per line", f"{file} line {line}: {exc.msg}") from None
        except RecursionError:
            raise Problem(at, str(file), "one JSON object per line", f"{file} line {line}: nested too deep") from None
    return rows
