"""The search space: named parameters, how to sample them and how to enumerate them, and
when two parameter sets are the same point (:func:`point_key`), and whether a point an
algorithm proposed lies in the space (:class:`ProposalCheck`).

Validation of the study file happens in ``config/``; objects here are assumed well formed,
so algorithms can use them without re-checking. numpy only.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from .errors import AlgorithmError
from .types import REF_PREFIX, Result


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``rng.uniform(low, high)``, the same number from the same draw, four times faster where
    numpy computes it as ``low + (high - low) * u`` rounded twice (checked once: a build
    that fuses the two into one rounding keeps ``rng.uniform``). ``random`` draws one per
    float parameter per task on the master's loop."""
    if _uniform_is_affine() and (span := high - low) < math.inf:  # a span beyond floats: numpy's error
        return low + span * rng.random()
    return float(rng.uniform(low, high))


@functools.cache
def _uniform_is_affine() -> bool:
    numpys, ours = np.random.default_rng(17), np.random.default_rng(17)  # the same draws
    return all(numpys.uniform(low, high) == low + (high - low) * ours.random()
               for low, high in [(-3.7, 12.9), (1e-3, 7.77), (-1e6, -0.1)] * 100)


@dataclass(frozen=True, slots=True)
class Float:
    low: float
    high: float
    log: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(_uniform(rng, math.log(self.low), math.log(self.high))))
        return _uniform(rng, self.low, self.high)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of this parameter's (the rules: :class:`ProposalCheck`)."""
        return not param_problem(self, value)

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
        """Whether ``value`` is one of this parameter's (the rules: :class:`ProposalCheck`)."""
        return not param_problem(self, value)

    def values(self) -> range:
        return range(self.low, self.high + 1, self.step)


@dataclass(frozen=True, slots=True)
class Categorical:
    choices: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of this parameter's (the rules: :class:`ProposalCheck`)."""
        return not param_problem(self, value)

    def values(self) -> list[Any]:
        return list(self.choices)


@dataclass(frozen=True, slots=True)
class Grid:
    """Explicit values to sweep; a random algorithm draws among them uniformly."""

    values_: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values_[int(rng.integers(len(self.values_)))]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of this parameter's (the rules: :class:`ProposalCheck`)."""
        return not param_problem(self, value)

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

REPEAT = "repeat"
"""The parameter a sweep with ``repeats`` adds to each point (0, 1, ...): allowed in a
proposal besides ``[space]``, as a non-negative int."""
LABEL = "label"
"""A point's name, kept beside its parameters (a points file's ``id``, CANDLE's run id):
allowed in a proposal besides ``[space]``, as a string."""
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
"""What a parameter may be called: it becomes a ``{placeholder}`` in commands, a results
column and an HDF5 name."""


class ProposalCheck:
    """Stops a run whose algorithm proposes a point outside ``[space]``.

    Called on every proposal as it enters the master's bookkeeping, so it is compiled once
    per run: one small test per parameter, and a fast path (a dict with exactly the
    expected names, every value passing) that costs about a microsecond for a handful of
    parameters. Only a point that fails is looked at again, slowly, to say exactly what is
    wrong: the algorithm, the parameter, the value and the bound or type expected.

    The rules: a proposal is a dict naming every parameter and every constant (with the
    constant's value), and nothing else but ``repeat`` and keys whose value is a ref (data
    passed by reference, ``queue.put``: an input, not a searched parameter); a ``float`` takes an int or a float
    (not a bool) within its range; an ``int`` takes an int only (not a bool, not 3.0: the
    model would get a float where it counts on an int) on its step from ``low``; a
    ``categorical`` or ``grid`` takes a value equal to one of its choices, where a bool
    matches only a bool (``True == 1`` in Python, but not in a study).
    """

    def __init__(self, space: Space, algorithm: str, table: str = "[space]") -> None:
        self.space, self.algorithm, self.table = space, algorithm, table  # table: how messages name the space
        self._names = frozenset(space.parameters) | frozenset(space.constants)
        self._with_repeat = self._names | {REPEAT}
        self._tests = [(name, _compile(param)) for name, param in space.parameters.items()]
        self._constants = list(space.constants.items())

    def __call__(self, point: Any) -> None:
        """Raise :class:`AlgorithmError` unless ``point`` lies in the space."""
        if type(point) is dict and (point.keys() == self._names or (
                point.keys() == self._with_repeat and _is_count(point[REPEAT]))):
            for name, test in self._tests:
                if not test(point[name]):
                    break
            else:
                for name, value in self._constants:
                    if not _same(point[name], value):
                        break
                else:
                    return
        why = self.problem(point)
        if why:
            raise AlgorithmError(f"algorithm {self.algorithm!r} proposed {why}; the run stops (finished "
                                 "tasks are kept: fix the algorithm and run again to resume)")

    def problem(self, point: Any) -> str:
        """What is wrong with ``point``, worded to follow "proposed"; "" when it lies in the space."""
        space, table = self.space, self.table
        if not isinstance(point, dict):
            return f"{point!r} ({type(point).__name__}), not a dict of parameter values"
        for name, param in space.parameters.items():
            if name not in point:
                return (f"a point without parameter {name!r} ({point!r}); every proposal names every "
                        f"parameter of {table}: {', '.join(space.parameters)}")
            why = param_problem(param, point[name])
            if why:
                return f"{name} = {point[name]!r} ({table} {name}: {why})"
        for name, value in space.constants.items():
            if name not in point:
                return (f"a point without the constant {name} = {value!r} ({point!r}); every proposal "
                        f"carries the constants of {table} (space.sample(rng) adds them, or "
                        "{**point, **space.constants})")
            if not _same(point[name], value):
                return f"{name} = {point[name]!r}, but {table} holds the constant {name} = {value!r}"
        for name in point:
            if name == REPEAT and name not in self._names:
                if not _is_count(point[name]):
                    return f"{REPEAT} = {point[name]!r}: expected a sweep's repeat number, an int >= 0"
            elif name == LABEL and name not in self._names:
                if not isinstance(point[name], str):
                    return f"{LABEL} = {point[name]!r}: expected a point's name, a string"
            elif name not in self._names and not (isinstance(point[name], str) and point[name].startswith(REF_PREFIX)):
                return (f"{name} = {point[name]!r}, which is not in {table} (its names: "
                        f"{', '.join(space.names)})")
        return ""


class OpenCheck:
    """The check of proposals in a study with no parameters in ``[space]``: an algorithm
    that brings its own points (``points``, ``eqpy``, ``command``) proposes any keys, as
    long as each is a dict whose keys can be parameter names (they become results columns,
    HDF5 names and command placeholders)."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def __call__(self, point: Any) -> None:
        why = self.problem(point)
        if why:
            raise AlgorithmError(f"algorithm {self.algorithm!r} proposed {why}; the run stops (finished "
                                 "tasks are kept: fix the algorithm and run again to resume)")

    @staticmethod
    def problem(point: Any) -> str:
        """What is wrong with ``point``, worded to follow "proposed"; "" when nothing is."""
        if not isinstance(point, dict):
            return f"{point!r} ({type(point).__name__}), not a dict of parameter values"
        for name in point:
            if not (isinstance(name, str) and PARAMETER_NAME.fullmatch(name)):
                return (f"a point with the key {name!r}: expected a name of letters, digits, '_' and '-' "
                        "that starts with a letter or '_'")
        return ""


def param_problem(param: Parameter, value: Any) -> str:
    """Why ``value`` is not a value of ``param`` ("" when it is), naming the bound or type."""
    if isinstance(param, (Float, Int)):
        kind, takes, what = (("a float", _is_real, "an int or a float") if isinstance(param, Float)
                             else ("an int", _is_integer, "an int"))
        if not takes(value):
            return f"{kind} parameter takes {what}, not {type(value).__name__}"
        if not value >= param.low:  # also NaN
            return f"below low = {param.low!r}" if value < param.low else f"outside {param.low!r}..{param.high!r}"
        if value > param.high:
            return f"above high = {param.high!r}"
        if isinstance(param, Int) and (value - param.low) % param.step:
            below = value - (value - param.low) % param.step
            return (f"not on the step: low = {param.low}, step = {param.step} "
                    f"(nearest: {below} or {below + param.step})")
        return ""
    choices = param.choices if isinstance(param, Categorical) else param.values_
    if _member(choices)(value):
        return ""
    kind = "choices" if isinstance(param, Categorical) else "grid values"
    bool_care = " (a bool matches only a bool)" if _is_bool(value) and any(_equal(value, c) for c in choices) else ""
    return f"not one of the {kind} {list(choices)!r}{bool_care}"


def _compile(param: Parameter) -> Callable[[Any], bool]:
    """A fast test of one parameter's values; :func:`param_problem` says why one fails."""
    if isinstance(param, Float):
        low, high = param.low, param.high
        return lambda v: (type(v) is float or _is_real(v)) and low <= v <= high
    if isinstance(param, Int):
        low, high, step = param.low, param.high, param.step
        if step == 1:
            return lambda v: (type(v) is int or _is_integer(v)) and low <= v <= high
        return lambda v: (type(v) is int or _is_integer(v)) and low <= v <= high and (v - low) % step == 0
    return _member(param.choices if isinstance(param, Categorical) else param.values_)


def _member(choices: Sequence[Any]) -> Callable[[Any], bool]:
    """Membership by equality, where a bool matches only a bool (``True == 1`` in Python):
    bools are looked up among the bool choices, other values among the others, in sets
    where they can be hashed (lists cannot)."""
    bools, plain, listed = set(), set(), []
    for choice in choices:
        if _is_bool(choice):
            bools.add(choice)
        else:
            try:
                plain.add(choice)
            except TypeError:
                listed.append(choice)

    def member(value: Any) -> bool:
        try:
            if type(value) is bool or isinstance(value, np.bool_):
                return value in bools
            if value in plain:
                return True
        except TypeError:
            pass
        return any(_same(value, choice) for choice in listed)

    return member


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    """An int or a float (numpy's included), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not _is_bool(value)


def _is_integer(value: Any) -> bool:
    """An int (numpy's included), not a bool and not an integral float."""
    return isinstance(value, (int, np.integer)) and not _is_bool(value)


def _is_count(value: Any) -> bool:
    return _is_integer(value) and value >= 0


def _same(value: Any, expected: Any) -> bool:
    """Equal, with a bool equal only to a bool, and a value always equal to itself (NaN)."""
    return value is expected or (_is_bool(value) == _is_bool(expected) and _equal(value, expected))


def _equal(value: Any, other: Any) -> bool:
    try:
        return bool(value == other)
    except (TypeError, ValueError):  # numpy arrays compare elementwise
        return False


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
