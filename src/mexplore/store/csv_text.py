"""A frame as CSV text, a column at a time, for ``results.csv`` at the end of every run.

pandas' ``to_csv`` (and the standard ``csv`` module, given the same cells) formats and
checks every cell one by one: at 100,000 tasks that was 0.9 s, the largest part of the end
of a run. Here each column becomes text in one call where it can (orjson formats a float
column five times faster than ``repr`` does), only a text column holding a comma, a quote or
a line break is quoted cell by cell, and rows are joined in C. The result reads back the
same with any CSV reader: missing values are empty, text is quoted as RFC 4180 and the
``csv`` module do, and a float has the shortest text that reads back as the same float (it
may differ from pandas' own in how it writes exponents: ``1e-9``, not ``1e-09``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

ROWS_AT_ONCE = 65_536
"""Rows made into text at a time, so a table of millions of rows never exists as text all
at once."""

_QUOTED_IF_IN = (",", '"', "\n", "\r")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` (without its index) as CSV in ``path``, UTF-8, lines ending in ``\\n``;
    text that is not valid UTF-8 (an unpaired surrogate) as its ``\\udXXX`` escape."""
    with open(path, "w", encoding="utf-8", errors="backslashreplace", newline="") as file:
        file.write(_line(_quoted([str(name) for name in frame.columns])))
        for start in range(0, len(frame), ROWS_AT_ONCE):
            part = frame.iloc[start:start + ROWS_AT_ONCE]
            columns = [_cells(column) for _, column in part.items()]
            if len(columns) == 1:  # an empty cell alone would be a blank line, which readers skip
                columns = [[cell or '""' for cell in columns[0]]]
            file.write("\n".join(map(",".join, zip(*columns))) + "\n")


def _line(cells: list[str]) -> str:
    return (",".join(cells) if cells != [""] else '""') + "\n"


def _cells(column: pd.Series) -> list[str]:
    import numpy as np

    values = column.to_numpy()
    if values.dtype == np.float64:
        return _float_cells(values)
    if values.dtype == np.int64:
        return _json_cells(values)
    if values.dtype == np.bool_:
        return np.where(values, "True", "False").tolist()
    if (coded := text_codes(column)) is not None:  # quoted once per distinct text
        codes, texts = coded
        return np.array([*_quoted(texts), ""], dtype=object)[codes].tolist()  # code -1 (missing): the last
    missing = column.isna().to_numpy()
    return _quoted(["" if gone else str(value) for value, gone in zip(values, missing)])


def text_codes(column: pd.Series) -> tuple[Any, list[str]] | None:
    """A column of text only (missing values aside) as the code of each row, -1 where
    missing, and its distinct texts; None for any other column. A results table's text
    (status, host, a categorical param) takes a few values over many rows, so whatever is
    done to each text is done to these few. Only text: 1, 1.0 and True are one value to
    ``factorize`` but three cells."""
    import pandas as pd

    if pd.api.types.infer_dtype(column, skipna=True) != "string":
        return None
    codes, texts = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    return codes, [str(text) for text in texts]


def _json_cells(values: object) -> list[str]:
    """The numbers of a numpy array as orjson writes them, one text per value."""
    import orjson

    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")


def _float_cells(values: object) -> list[str]:
    import numpy as np

    cells = _json_cells(np.ascontiguousarray(values))
    for at in np.flatnonzero(~np.isfinite(values)).tolist():  # JSON writes these as null
        value = values[at]
        cells[at] = "" if value != value else "inf" if value > 0 else "-inf"
    return cells


def _quoted(cells: list[str]) -> list[str]:
    """Cells holding a comma, a quote or a line break in quotes, their quotes doubled; the
    whole column is looked at once first, since most columns have none."""
    joined = "".join(cells)
    if not any(mark in joined for mark in _QUOTED_IF_IN):
        return cells
    return ['"' + cell.replace('"', '""') + '"' if any(mark in cell for mark in _QUOTED_IF_IN) else cell
            for cell in cells]
