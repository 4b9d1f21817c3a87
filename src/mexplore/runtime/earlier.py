"""The results of an earlier run (``[algorithm] from``), as this study's algorithm can use them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..space import Space
from ..store.journal import JOURNAL_NAME, read_results
from ..types import Result


def earlier_results(folder: Path, space: Space) -> tuple[list[Result], int]:
    """The earlier run's results whose points lie in ``space``, with this study's constants
    (an earlier run may have held other constants: it is the parameters that are learned),
    and how many were left out because they lie outside it."""
    kept, outside = [], 0
    for result in read_results(folder / JOURNAL_NAME):
        point = {name: result.params.get(name) for name in space.parameters} | dict(space.constants)
        if space.contains(point):
            kept.append(replace(result, params=point))
        else:
            outside += 1
    return kept, outside
