"""mexplore: model exploration on HPC machines, in the EMEWS tradition, under mpiexec.

The names users touch, importable from here (``from mexplore import Algorithm``). They are
loaded on first use, so ``import mexplore`` (and ``mexplore --help``, and a worker's
start-up) does not pay for numpy, pandas or h5py until a name that needs them is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # writing an algorithm
    "Algorithm": "mexplore.algorithms.base",
    "StudyInfo": "mexplore.algorithms.base",
    "Ahead": "mexplore.algorithms.base",
    "Space": "mexplore.space",
    "Direction": "mexplore.objectives",
    "TaskQueue": "mexplore.queue.futures",
    "Future": "mexplore.queue.futures",
    "Agents": "mexplore.queue.agents",
    "agent": "mexplore.queue.agents",
    "on_results": "mexplore.queue.agents",
    "BudgetSpent": "mexplore.errors",
    # writing a model
    "Context": "mexplore.models.context",
    "Pruned": "mexplore.errors",
    "Stopped": "mexplore.errors",
    # reading results
    "Result": "mexplore.types",
    "Status": "mexplore.types",
    "Task": "mexplore.types",
    "read_table": "mexplore.store.results_file",
    "load_output": "mexplore.store.results_file",
    "MexploreError": "mexplore.errors",
    # running studies from Python (notebooks, scripts)
    "run": "mexplore.api",
    "open_run": "mexplore.api",
    "Run": "mexplore.api",
    "RunFailed": "mexplore.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mexplore' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from .algorithms.base import Ahead, Algorithm, StudyInfo
    from .api import Run, RunFailed, open_run, run
    from .errors import BudgetSpent, MexploreError, Pruned, Stopped
    from .models.context import Context
    from .objectives import Direction
    from .queue.agents import Agents, agent, on_results
    from .queue.futures import Future, TaskQueue
    from .space import Space
    from .store.results_file import load_output, read_table
    from .types import Result, Status, Task
