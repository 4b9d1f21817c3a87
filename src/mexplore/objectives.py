"""Which way an objective is optimized, and which result is the best: one rule for every room.

The master's progress line, the cache's keep policy, ``mexplore status``, the results table
and the report all rank results; deciding "minimize or maximize" and "which results count"
here, once, keeps them from disagreeing. Standard library only, so any room may import it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from .types import Result, Status, is_finite_number


class Direction(enum.StrEnum):
    """``minimize`` or ``maximize``, as the study file spells it.

    A :class:`~enum.StrEnum`, so ``Direction("minimize")`` parses the study's text, a member
    still equals its plain string, and formatting one (a report's label) prints the word.
    """

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    @property
    def sign(self) -> float:
        """1.0 or -1.0: ``sign * value`` is a score where smaller is better, so a ranking
        (a heap, a sort, a Pareto test) is written once, for minimizing."""
        return 1.0 if self is Direction.MINIMIZE else -1.0

    @property
    def ascending(self) -> bool:
        """True when an ascending sort puts the best first (pandas' ``ascending=``)."""
        return self is Direction.MINIMIZE

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``: a tie is not better, so the
        earlier of two equal values stays the best."""
        return self.sign * a < self.sign * b


def first_objective(result: Result) -> float | None:
    """The value a result is ranked by: its first objective, when the result is ``ok`` and
    that value is a finite number; None otherwise (failed, pruned, NaN, infinite...), so a
    broken evaluation never counts as the best."""
    if result.status is not Status.OK:
        return None
    value = result.objective
    if type(value) is list:
        value = value[0] if value else None
    if type(value) is float:  # the usual case, checked fast: the master calls this per task
        return value if value - value == 0.0 else None  # NaN and infinities give NaN here
    return float(value) if is_finite_number(value) else None


def best_result(results: Iterable[Result], direction: Direction | str) -> Result | None:
    """The best of ``results`` by :func:`first_objective` (the earliest of equal ones), or
    None when none counts."""
    direction = Direction(direction)
    best: Result | None = None
    best_value = 0.0
    for result in results:
        value = first_objective(result)
        if value is not None and (best is None or direction.better(value, best_value)):
            best, best_value = result, value
    return best
