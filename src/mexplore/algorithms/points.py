"""``points``: the points of a file, in its order (CANDLE's "unrolled parameter file" sweeps).

The file (``[algorithm] file``) is read and checked when the study loads; each line may
carry its own keys, and a line's ``id`` becomes its ``label``. Like ``grid`` it learns
nothing and, on resume, skips the points the journal holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import AlgorithmError
from ..space import FinishedPoints, Space
from ..types import Result
from .base import Algorithm, StudyInfo


class Points(Algorithm):
    """The points of a file, line by line ([algorithm] file = "upf.jsonl"), each line its own keys."""

    learns = False

    def __init__(self, space: Space, info: StudyInfo | None = None, *, points: Sequence[dict[str, Any]] = (),
                 repeats: int = 1) -> None:
        super().__init__(space, info)
        if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
            raise AlgorithmError(f"points option repeats = {repeats!r}: expected an integer >= 1")
        if not points:
            raise AlgorithmError('points needs a file of points: [algorithm] file = "points.jsonl"')
        self._all = [dict(point, repeat=repeat) if repeats > 1 else dict(point)
                     for repeat in range(repeats) for point in points]
        self._next = 0
        self._replayed = FinishedPoints()

    def ask(self, n: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < n and self._next < len(self._all):
            point = self._all[self._next]
            self._next += 1
            if not self._replayed.consume(point):
                batch.append(dict(point))
        return batch

    def replay(self, results: list[Result]) -> None:
        self._replayed.add(results)

    @property
    def finished(self) -> bool:
        return self._next >= len(self._all)
