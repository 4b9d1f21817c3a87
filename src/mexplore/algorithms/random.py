"""``random``: independent draws from the space, reproducible from a seed."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..space import FinishedPoints, Space
from ..types import Result
from .base import Algorithm, StudyInfo


class RandomSearch(Algorithm):
    """Draws every parameter independently (log-uniform where ``log = true``).

    One generator seeded once yields the same sequence of points whatever the number of
    workers or the order results come back in, so a seeded study gives the same result set
    at ``-n 2`` and ``-n 4``, and a resumed run re-draws the sequence, skipping the points
    its journal holds.
    """

    learns = False

    def __init__(self, space: Space, info: StudyInfo | None = None) -> None:
        super().__init__(space, info)
        self._rng = np.random.default_rng(self.seed)
        self._replayed = FinishedPoints()

    def ask(self, n: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < n:
            point = self.space.sample(self._rng)
            if not self._replayed.consume(point):
                batch.append(point)
        return batch

    def replay(self, results: list[Result]) -> None:
        self._replayed.add(results)
