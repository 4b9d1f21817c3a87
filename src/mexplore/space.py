"""The search space: named parameters, how to sample them and how to enumerate them, and
when two parameter sets are the same point (:func:`point_key`).

Validation of user input happens in ``config/``; objects here are assumed well formed, so
algorithms can use them without re-checking. numpy only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from .errors import AlgorithmError
from .types import Result


@dataclass(frozen=True, slots=True)
class Float:
    low: float
    high: float
    log: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def values(self) -> Sequence[Any]:
        raise TypeError("a float range has no finite list of values")


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return min(int(value), self.high)
        count = (self.high - self.low) // self.step + 1
        return self.low + self.step * int(rng.integers(count))

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def values(self) -> range:
        return range(self.low, self.high + 1, self.step)


@dataclass(frozen=True, slots=True)
class Categorical:
    choices: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def values(self) -> list[Any]:
        return list(self.choices)


@dataclass(frozen=True, slots=True)
class Grid:
    """Explicit values to sweep; a random algorithm draws among them uniformly."""

    values_: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values_[int(rng.integers(len(self.values_)))]

    def contains(self, value: Any) -> bool:
        return value in self.values_

    def values(self) -> list[Any]:
        return list(self.values_)


Parameter = Float | Int | Categorical | Grid


@dataclass(frozen=True)
class Space:
    """Named parameters plus constants that every parameter set carries unchanged."""

    parameters: Mapping[str, Parameter]
    constants: Mapping[str, Any]

    @property
    def names(self) -> list[str]:
        return [*self.parameters, *self.constants]

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One parameter set drawn independently for each parameter."""
        point = {name: param.sample(rng) for name, param in self.parameters.items()}
        point.update(self.constants)
        return point

    def contains(self, point: Mapping[str, Any]) -> bool:
        """True when ``point`` names every parameter with a value inside its range."""
        return all(
            name in point and param.contains(point[name]) for name, param in self.parameters.items()
        ) and all(point.get(name) == value for name, value in self.constants.items())

    def grid_axes(self) -> list[tuple[str, Sequence[Any]]]:
        """Each parameter with the values a sweep visits: grid, categorical and int
        parameters enumerate; a float range cannot, and is refused by name so the user
        knows what to change."""
        floats = [name for name, p in self.parameters.items() if isinstance(p, Float)]
        if floats:
            raise AlgorithmError(
                f"the grid algorithm cannot enumerate float parameter(s) {', '.join(floats)}: "
                "give them as type = \"grid\" with explicit values, or use algorithm random"
            )
        return [(name, param.values()) for name, param in self.parameters.items()]

    def grid_points(self) -> Iterator[dict[str, Any]]:
        """The cartesian product of every parameter's values, streamed lazily in a fixed order."""
        axes = self.grid_axes()
        names = [name for name, _ in axes]
        for combo in product(*(values for _, values in axes)):
            point = dict(zip(names, combo))
            point.update(self.constants)
            yield point

    def grid_size(self) -> int:
        """How many points :meth:`grid_points` yields, computed without enumerating them."""
        return math.prod(len(values) for _, values in self.grid_axes())

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
