"""Warm starts: evaluate a study's ``initial`` points first, and tell the algorithm what an
earlier run (``from``) found, for any algorithm, without each one implementing it.

The wrapper hands out the initial points before asking the algorithm for anything, so
with more workers than initial points the algorithm's own proposals start at once. The
algorithm never proposed the initial points, so their results reach it through
:meth:`Algorithm.learn`, as an earlier run's do; its own proposals go to ``tell`` as usual.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..space import FinishedPoints
from ..types import Result
from .base import Ahead, Algorithm


class WarmStart(Algorithm):
    """``algorithm`` preceded by ``initial`` points and taught ``earlier`` results."""

    def __init__(self, algorithm: Algorithm, initial: list[dict[str, Any]], earlier: list[Result]) -> None:
        super().__init__(algorithm.space, algorithm.info)
        self.algorithm = algorithm
        self._initial: deque[dict[str, Any]] = deque(dict(point) for point in initial)
        self._handed_out: set[int] = set()  # task ids of the initial points given to the master
        if earlier:
            algorithm.learn(earlier)

    # What the wrapped algorithm can do is what this one can.
    name = property(lambda self: self.algorithm.name)
    learns = property(lambda self: self.algorithm.learns)
    prunes = property(lambda self: self.algorithm.prunes)
    thinks_in_background = property(lambda self: self.algorithm.thinks_in_background)

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        batch = []
        while self._initial and len(batch) < len(task_ids):
            self._handed_out.add(task_ids[len(batch)])
            batch.append(self._initial.popleft())
        if len(batch) < len(task_ids) and not self.algorithm.finished:
            batch += self.algorithm.propose(task_ids[len(batch):])
        return batch

    def computed_ahead(self, task_ids: range) -> Ahead | None:
        return self.algorithm.computed_ahead(task_ids)  # an initial point's id: none missed, no time

    def tell(self, results: list[Result]) -> None:
        initial, own = [], []
        for result in results:
            (initial if result.task_id in self._handed_out else own).append(result)
        if initial:
            self._handed_out.difference_update(result.task_id for result in initial)
            self.algorithm.learn(initial)
        if own:
            self.algorithm.tell(own)

    def report(self, task_id: int, step: float, value: float) -> bool:
        if task_id in self._handed_out:
            return False  # not the algorithm's trial: it has nothing to compare it with
        return self.algorithm.report(task_id, step, value)

    def replay(self, results: list[Result]) -> None:
        """A resumed run: initial points it finished are not run again and are learned;
        everything else is the algorithm's own journal, replayed to it."""
        unmatched = FinishedPoints()
        unmatched.add_points(self._initial)
        done, own = [], []
        for result in results:
            (done if unmatched.consume(result.params) else own).append(result)
        finished = FinishedPoints()
        finished.add(done)
        self._initial = deque(point for point in self._initial if not finished.consume(point))
        if done:
            self.algorithm.learn(done)
        if own:
            self.algorithm.replay(own)

    @property
    def finished(self) -> bool:
        return not self._initial and self.algorithm.finished

    def close(self) -> None:
        self.algorithm.close()
