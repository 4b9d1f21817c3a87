"""The ask/tell interface every engine-driven algorithm implements.

Lifecycle, as the master calls it:

1. ``Algorithm(space, seed=..., **options)``: once, on the master, before any task runs.
   ``options`` is the study's ``[algorithm.options]`` table, as is.
2. ``replay(results)``: once, before the first ``ask``, when a run resumes: the results its
   journal holds. The default passes them to ``tell``; algorithms that regenerate a fixed
   sequence (grid, seeded random) override it to skip those points instead.
   ``learn(results)``: results of points the algorithm did not propose: the study's
   ``initial`` points as they finish, and an earlier run's results (``from``) before the
   first ``ask``. The default ignores them; model-based algorithms add them to what they know.
3. ``tell(results)``: during the run, with each batch of finished results: ``ok`` ones and
   failures alike (look at ``result.status``). ``result.params`` is the very dict object
   ``ask`` returned.
4. ``report(params, step, value)``: while a task runs, with each intermediate value the model
   reports; True stops (prunes) the task.
5. ``ask(n)``: whenever the policy has room for ``n`` new tasks. Return up to ``n`` parameter
   dicts: fewer, or none, when the algorithm must wait for results first. The engine enforces
   the study's budget; the algorithm need not count.
6. ``finished``: read after every round; once True (and nothing is in flight), the run ends.

Algorithms are plain Python: no MPI, no files, no ranks. They run and test anywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..space import Space
from ..types import Result


class Algorithm(ABC):
    """Base class of ask/tell algorithms; subclass it and implement :meth:`ask`."""

    thinks_in_background = False
    """True for algorithms that may propose nothing now and something later with no result
    in between (they compute in a thread of their own); for any other, proposing nothing
    while no task runs and not being finished is a bug, and the run stops with an error."""

    def __init__(self, space: Space, *, seed: int | None = None) -> None:
        self.space = space
        self.seed = seed

    @abstractmethod
    def ask(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` new parameter sets."""

    def tell(self, results: list[Result]) -> None:
        """Learn from finished results; the default ignores them (fine for sweeps)."""

    def report(self, params: dict[str, Any], step: float, value: float) -> bool:
        """An intermediate value of a running task (the very ``params`` dict ``ask``
        returned). Return True to stop that task: it ends as ``pruned``. The default never
        prunes; the ``optuna.*`` algorithms ask their ``pruner``."""
        return False

    def replay(self, results: list[Result]) -> None:
        """Take in the results of the run being resumed; by default, like :meth:`tell`."""
        self.tell(results)

    def learn(self, results: list[Result]) -> None:
        """Results of points this algorithm did not propose (``initial`` points, an earlier
        run named by ``from``). The default ignores them, which is right for sweeps and
        random designs; a model-based algorithm adds them to its model."""

    @property
    def finished(self) -> bool:
        """True once the algorithm will propose nothing more; the default never finishes."""
        return False

    def close(self) -> None:
        """Called once when the run ends (budget met or finished); release what you hold."""
