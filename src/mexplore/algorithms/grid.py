"""``grid``: every combination of the space's values, ``repeats`` times, streamed lazily."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import AlgorithmError
from ..space import FinishedPoints, Space
from ..types import Result
from .base import Algorithm, StudyInfo


class GridSearch(Algorithm):
    """The cartesian product of grid, categorical and int parameters (float ranges refused).

    ``repeats = R`` runs every point R times and adds a ``repeat`` parameter (0..R-1) so a
    model can seed itself per repeat, as noise-robustness studies need. Repeats form the
    outer loop: a budget smaller than the sweep still covers every point once before any
    point a second time. Points are generated on demand, so a sweep of 10^6 points never
    sits in memory.
    """

    learns = False

    def __init__(self, space: Space, info: StudyInfo | None = None, *, repeats: int = 1) -> None:
        super().__init__(space, info)
        if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
            raise AlgorithmError(f"grid option repeats = {repeats!r}: expected an integer >= 1")
        self.repeats = repeats
        self.size = space.grid_size() * repeats
        self._points = self._generate()
        self._exhausted = False
        self._replayed = FinishedPoints()

    def _generate(self) -> Iterator[dict[str, Any]]:
        for repeat in range(self.repeats):
            for point in self.space.grid_points():
                if self.repeats > 1:
                    point["repeat"] = repeat
                yield point

    def ask(self, n: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < n:
            point = next(self._points, None)
            if point is None:
                self._exhausted = True
                break
            if not self._replayed.consume(point):
                batch.append(point)
        return batch

    def replay(self, results: list[Result]) -> None:
        self._replayed.add(results)

    @property
    def finished(self) -> bool:
        return self._exhausted
