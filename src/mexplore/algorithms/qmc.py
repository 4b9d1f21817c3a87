"""``sobol`` and ``lhs``: space-filling designs from scipy.stats.qmc, mapped onto the space.

A quasi-random design covers the space more evenly than independent draws, so a sweep of a
few hundred points leaves fewer holes. Points are made in blocks (one scipy call per block,
columns mapped with numpy), which keeps the master's cost per task to microseconds.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np

from ..errors import AlgorithmError
from ..space import FinishedPoints, Float, Int, Space
from ..types import Result
from .base import Algorithm, StudyInfo


def to_space(space: Space, unit: np.ndarray) -> list[dict[str, Any]]:
    """Points of ``space`` from rows of ``unit`` (values in [0, 1), one column per parameter):
    linear or log-linear for floats and ints, equal-width bins for ints, choices and grids."""
    columns: list[list[Any]] = []
    for j, param in enumerate(space.parameters.values()):
        u = unit[:, j]
        if isinstance(param, Float):
            if param.log:
                low, high = math.log(param.low), math.log(param.high)
                column = np.minimum(np.exp(low + u * (high - low)), param.high)
            else:
                column = param.low + u * (param.high - param.low)
            columns.append(np.clip(column, param.low, param.high).tolist())
        elif isinstance(param, Int) and param.log:
            low, high = math.log(param.low), math.log(param.high + 1)
            columns.append(np.minimum(np.exp(low + u * (high - low)).astype(np.int64), param.high).tolist())
        else:
            values = param.values()
            index = np.minimum((u * len(values)).astype(np.int64), len(values) - 1)
            columns.append([values[i] for i in index.tolist()])
    names = list(space.parameters)
    constants = dict(space.constants)
    rows = zip(*columns) if columns else [()] * len(unit)
    return [{**dict(zip(names, row)), **constants} for row in rows]


class _Design(Algorithm):
    """A seeded stream of points from a scipy QMC engine, regenerated and skipped on resume
    like ``random``, so an interrupted run ends with the points an uninterrupted one has."""

    block = 1024
    """Points drawn per scipy call."""
    learns = False

    def __init__(self, space: Space, info: StudyInfo | None = None) -> None:
        super().__init__(space, info)
        self._buffer: list[dict[str, Any]] = []
        self._next = 0
        self._replayed = FinishedPoints()

    @abstractmethod
    def _draw(self) -> np.ndarray:
        """The next block of unit points, one row per point."""

    def ask(self, n: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < n:
            if self._next == len(self._buffer):
                self._buffer, self._next = to_space(self.space, self._draw()), 0
            point = self._buffer[self._next]
            self._next += 1
            if not self._replayed.consume(point):
                batch.append(point)
        return batch

    def replay(self, results: list[Result]) -> None:
        self._replayed.add(results)


class Sobol(_Design):
    """Scrambled Sobol' sequence: every 2^k consecutive points are balanced in every parameter.

    Budgets that are powers of two (64, 128, 256...) get the best coverage.
    """

    def __init__(self, space: Space, info: StudyInfo | None = None, *, scramble: bool = True) -> None:
        super().__init__(space, info)
        from scipy.stats import qmc

        if not isinstance(scramble, bool):
            raise AlgorithmError(f"sobol option scramble = {scramble!r}: expected true or false")
        self._engine = qmc.Sobol(max(1, len(space.parameters)), scramble=scramble, rng=np.random.default_rng(self.seed))

    def _draw(self) -> np.ndarray:
        return self._engine.random(self.block)  # the same sequence as one long call


class LatinHypercube(_Design):
    """Latin hypercube designs, one after another: each parameter stratified per design.

    Within each design of ``size`` points, every parameter's range is cut into ``size``
    equal bins with exactly one point in each. Set ``size`` to the budget for one design over the whole study; the default, 100, suits
    budgets that are multiples of 100. ``optimization = "random-cd"`` spreads each design
    further (slower to make).
    """

    def __init__(self, space: Space, info: StudyInfo | None = None, *, size: int = 100,
                 optimization: str | None = None) -> None:
        super().__init__(space, info)
        from scipy.stats import qmc

        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise AlgorithmError(f"lhs option size = {size!r}: expected an integer >= 1")
        if optimization not in (None, "random-cd", "lloyd"):
            raise AlgorithmError(f"lhs option optimization = {optimization!r}: expected 'random-cd' or 'lloyd'")
        self.size = size
        self._engine = qmc.LatinHypercube(
            max(1, len(space.parameters)), optimization=optimization, rng=np.random.default_rng(self.seed),
        )

    def _draw(self) -> np.ndarray:
        return self._engine.random(self.size)
