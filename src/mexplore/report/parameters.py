"""Which parameters a report plots, and how each is laid on an axis.

The space in the record says what a parameter is: a ``float``/``int`` range is a number line
(logarithmic where ``log = true``), a ``categorical`` is a set of labels in the order of its
``choices``, a ``grid`` of numbers is a number line (noise levels are amounts, not labels).
Parameters the space does not describe (an algorithm of the user's may add some) are
numbers when their column is numeric, labels otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..store.run import Run
from ..types import REF_PREFIX

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REPEAT = "repeat"
"""The parameter ``grid`` adds with ``options = { repeats = R }``: the index of a repeat."""


@dataclass(frozen=True)
class ParameterAxis:
    """One parameter as an x axis: its name, ``p:`` column, and either labels or a number line."""

    name: str
    categories: tuple[Any, ...] | None = None
    log: bool = False

    @property
    def column(self) -> str:
        return f"p:{self.name}"

    @property
    def categorical(self) -> bool:
        return self.categories is not None

    def positions(self, values: pd.Series) -> np.ndarray:
        """x coordinates of ``values``: the values themselves, or each label's index."""
        import numpy as np

        if self.categories is None:
            return values.to_numpy(dtype=float)
        index = {_key(c): i for i, c in enumerate(self.categories)}
        return np.array([index.get(_key(v), np.nan) for v in values], dtype=float)

    def labels(self) -> list[str]:
        return [str(c) for c in self.categories or ()]


def parameter_axes(run: Run) -> list[ParameterAxis]:
    """Every parameter of the run's tasks, in the space's order, but the constants and the
    repeat index (which carries no information about the model, only about its noise)."""
    columns = [c[2:] for c in run.frame.columns if c.startswith("p:") and not _holds_refs(run.frame[c])] \
        if not run.frame.empty else []
    skipped = run.constants | ({REPEAT} if repeats(run) > 1 else set())
    described = [name for name in run.space if name in columns]
    extra = [name for name in columns if name not in run.space]
    return [_axis(run, name) for name in described + extra if name not in skipped]


def _holds_refs(column: pd.Series) -> bool:
    """A params column of refs (data passed by reference, ``queue.put``): an input, not a parameter."""
    values = column.dropna()
    return not values.empty and all(isinstance(v, str) and v.startswith(REF_PREFIX) for v in values)


def swept_parameters(run: Run) -> list[ParameterAxis]:
    """The sweep's axes: ``grid`` parameters with two values or more, and, when the
    algorithm is ``grid`` (which sweeps every parameter), ``categorical`` and ``int`` ones too."""
    sweeps_all = run.algorithm.get("name") == "grid"
    kinds = {"grid", "categorical", "int"} if sweeps_all else {"grid"}
    names = [
        name for name, entry in run.space.items()
        if isinstance(entry, dict) and entry.get("type") in kinds and _count(entry) >= 2
    ]
    axes = {axis.name: axis for axis in parameter_axes(run)}
    return [axes[name] for name in names if name in axes]


def repeats(run: Run) -> int:
    """R of a ``grid`` study with ``options = { repeats = R }``; 1 otherwise."""
    if run.algorithm.get("name") != "grid":
        return 1
    value = run.algorithm.get("options", {}).get("repeats", 1)
    return value if isinstance(value, int) else 1


def _axis(run: Run, name: str) -> ParameterAxis:
    entry = run.space.get(name)
    kind = entry.get("type") if isinstance(entry, dict) else None
    if kind in ("float", "int"):
        return ParameterAxis(name, log=bool(entry.get("log", False)))
    if kind == "categorical":
        return ParameterAxis(name, categories=tuple(entry.get("choices", ())))
    if kind == "grid":
        values = tuple(entry.get("values", ()))
        return ParameterAxis(name) if _numbers(values) else ParameterAxis(name, categories=values)
    column = run.frame[f"p:{name}"].dropna()
    if _numbers(column.tolist()):
        return ParameterAxis(name)
    return ParameterAxis(name, categories=tuple(sorted(set(map(_key, column)), key=str)))


def _count(entry: dict[str, Any]) -> int:
    if entry.get("type") == "int":
        return (entry["high"] - entry["low"]) // entry.get("step", 1) + 1
    return len(entry.get("values", entry.get("choices", ())))


def _numbers(values: Sequence[Any]) -> bool:
    import numbers

    return bool(values) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)


def _key(value: Any) -> Any:
    """A hashable stand-in for a value (a list-valued parameter becomes its text)."""
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value
