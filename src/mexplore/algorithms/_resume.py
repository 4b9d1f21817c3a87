"""Skipping points a resumed run already finished, for algorithms that replay a sequence."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..types import Result


def point_key(params: dict[str, Any]) -> str:
    """A canonical text form of a parameter set: equal points give equal keys."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


class FinishedPoints:
    """The points of a previous run, each consumed once when the sequence reaches it again.

    Deterministic algorithms (grid, seeded random) regenerate their sequence from the start
    on resume; points found here were finished before the interruption and are skipped,
    while points that were in flight come out again and run. Only replayed points are kept,
    so a fresh run holds nothing.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, results: list[Result]) -> None:
        self.add_points(result.params for result in results)

    def add_points(self, points: Iterable[dict[str, Any]]) -> None:
        for params in points:
            key = point_key(params)
            self._counts[key] = self._counts.get(key, 0) + 1

    def consume(self, params: dict[str, Any]) -> bool:
        """True (and forget one copy) if ``params`` was finished before."""
        if not self._counts:
            return False
        key = point_key(params)
        left = self._counts.get(key, 0)
        if left == 0:
            return False
        if left == 1:
            del self._counts[key]
        else:
            self._counts[key] = left - 1
        return True
