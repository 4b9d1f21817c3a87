"""Which tasks' saved outputs are worth flushing: ``[cache] keep = "all" | "none" | "top:K"``.

Only the master knows the global ranking, so it decides and sends the chosen task ids with
each flush; a worker drops the rest. This is CANDLE's model-cache problem: many medium-size
models, few worth keeping. Tasks are ranked by the first objective: ``ok`` results with a
finite value only (:func:`~mexplore.objectives.first_objective`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from ..objectives import Direction, first_objective
from ..types import Result


class KeepPolicy:
    """Tracks the ranking as results arrive; :meth:`chosen` is what a flush keeps now."""

    def __init__(self, top: int | None, direction: Direction | str) -> None:
        self.top = top
        self.direction = Direction(direction)
        self._scored: list[tuple[float, int]] = []

    def add(self, results: Iterable[Result]) -> None:
        if not self.top:
            return
        for result in results:
            value = first_objective(result)
            if value is not None:
                self._scored.append((self.direction.sign * value, result.task_id))

    def chosen(self) -> frozenset[int] | None:
        """The task ids to keep (the best K; none for ``none``), or None to keep every one."""
        if self.top is None:
            return None
        return frozenset(task for _, task in heapq.nsmallest(self.top, self._scored))
