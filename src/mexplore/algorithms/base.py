"""The ask/tell interface every engine-driven algorithm implements.

Lifecycle, as the master calls it:

1. ``Algorithm(space, info, **options)``: once, on the master, before any task runs.
   ``info`` is the study's :class:`StudyInfo` (objectives and directions, budget, number
   of workers, output directory, seed); ``options`` is the study's ``[algorithm.options]``
   table, as is.
2. ``replay(results)``: once, before the first proposal, when a run resumes: the results
   its journal holds. The default passes them to ``tell``; algorithms that regenerate a
   fixed sequence (grid, seeded random) override it to skip those points instead.
   ``learn(results)``: results of points the algorithm did not propose: the study's
   ``initial`` points as they finish, and an earlier run's results (``from``) before the
   first proposal. The default ignores them; model-based algorithms add them to what they know.
3. ``tell(results)``: during the run, with each batch of finished results: ``ok`` ones and
   failures alike (look at ``result.status``). ``result.task_id`` names the proposal.
4. ``report(task_id, step, value)``: while a task runs, with each intermediate value the
   model reports; True stops (prunes) the task.
5. ``propose(task_ids)``: whenever the policy has room for ``len(task_ids)`` new tasks; the
   i-th parameter dict returned becomes task ``task_ids[i]``. The default calls ``ask(n)``,
   which is all most algorithms implement; one that pairs results with its proposals
   (a trial per task) overrides ``propose`` instead and keys its bookkeeping on the ids.
   Return fewer dicts, or none, when the algorithm must wait for results first. The engine
   enforces the study's budget; the algorithm need not count.
6. ``finished``: read after every round; once True (and nothing is in flight), the run ends.

What an algorithm can do is declared in class attributes the master reads: ``learns``,
``prunes``, ``thinks_in_background``.

Algorithms are plain Python: no MPI, no files, no ranks. They run and test anywhere.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..objectives import Direction
from ..space import Space
from ..types import ResizePool, Result, StopTask


@dataclass(frozen=True, slots=True)
class Ahead:
    """Proposals computed ahead of need, outside the master's calls to the algorithm.

    ``missed``: for each task, how many results told before it its proposal did not see
    (added to its ``lag``). ``seconds``: what computing them took, divided by how many
    were computed side by side (K processes computing at once hand out one proposal every
    ``seconds / K``); it is billed to them as ``algorithm_time``, as the master's own time
    in the algorithm is, so the note on workers waiting for the algorithm sees it."""

    missed: list[int]
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """What an algorithm is told of the study it serves, once, in its constructor.

    The defaults describe a study of one objective, minimized, with no budget, one
    worker and no seed, so an algorithm can be built in a test with ``Mine(space)``.
    """

    objectives: tuple[str, ...] = ("value",)
    directions: tuple[Direction, ...] = (Direction.MINIMIZE,)
    budget: int | None = None
    """Evaluations the study may spend (None: until the algorithm is finished)."""
    workers: int = 1
    """Worker ranks of this run: how many tasks can run at once."""
    output: Path | None = None
    """The run's output directory, for an algorithm that keeps files of its own there."""
    seed: int | None = None
    """The study's seed, or the one drawn and recorded for this run."""
    kinds: tuple[str, ...] = ()
    """The study's auxiliary task kinds (``[models.<kind>]`` besides the objective kind),
    which an imperative algorithm may submit (``queue.submit(params, kind=...)``)."""
    kind: str | None = None
    """The objective kind's name in a study of several kinds (None with one ``[model]``)."""
    kind_constants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The constants of the auxiliary kinds that declare a space of their own, by kind:
    ``queue.submit(params, kind=...)`` adds them, as it adds ``[space]``'s to the objective kind's."""
    placed: bool = False
    """Whether tasks are placed on worker slots by their size (``[model] ranks``, ``nodes``
    or ``gpus`` set): then an imperative algorithm may size each (``queue.submit(params, ranks=R)``)."""


class Algorithm(ABC):
    """Base of ask/tell algorithms; subclass it and implement :meth:`ask` (or :meth:`propose`)."""

    learns = True
    """Whether proposals depend on the results told so far. Under the default ``async``
    policy an algorithm that learns gets one task per worker, so each proposal misses only
    the results still running (its *lag*); one that does not has tasks queued ahead on
    every worker, which costs it nothing and hides the master's hand-offs. Sweeps and fixed
    designs (grid, random, sobol, lhs, optuna.random, optuna.qmc, optuna.grid) set False;
    a subclass that learns nothing should too, or it runs slower than it could."""
    prunes = False
    """Whether :meth:`report` may stop running tasks; only such algorithms accept
    ``[algorithm] pruner``."""
    steers = False
    """Whether the algorithm may ask the master to stop running tasks or resize pools
    (:meth:`steering`); the master asks only such algorithms, so others pay nothing for it."""
    proposes_kinds = False
    """Whether the algorithm can propose tasks of chosen kinds only (``propose_kinds``), as
    a study with ``[pools]`` needs; others propose the objective kind only."""
    thinks_in_background = False
    """True for algorithms that may propose nothing now and something later with no result
    in between (they compute in a thread of their own); for any other, proposing nothing
    while no task runs and not being finished is a bug, and the run stops with an error."""

    def __init__(self, space: Space, info: StudyInfo | None = None) -> None:
        self.space = space
        self.info = StudyInfo() if info is None else info
        self.seed = self.info.seed

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.ask is Algorithm.ask and cls.propose is Algorithm.propose:
            raise TypeError(f"{cls.__name__} must implement ask(n) or propose(task_ids)")
        if "unseen" in vars(cls):  # the hook's earlier name: ignored now, so the lag would be short
            raise TypeError(f"{cls.__name__}.unseen(task_ids) is now computed_ahead(task_ids), which returns "
                            "mexplore.Ahead(missed=<what unseen returned>, seconds=<computing time>)")

    @property
    def name(self) -> str:
        """How messages name this algorithm."""
        return type(self).__name__

    def ask(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` new parameter sets."""
        raise NotImplementedError(f"{self.name} proposes through propose(task_ids)")

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        """Up to ``len(task_ids)`` parameter sets; the i-th becomes task ``task_ids[i]``.
        The engine calls this; the default asks :meth:`ask`."""
        return self.ask(len(task_ids))

    def tell(self, results: list[Result]) -> None:
        """Learn from finished results; the default ignores them (fine for sweeps)."""

    def computed_ahead(self, task_ids: range) -> Ahead | None:
        """For the tasks just numbered from the latest proposals, what computing them ahead
        of need (``[algorithm] proposers``, an algorithm's own thread) hid from the master:
        see :class:`Ahead`. None (the default): each proposal was computed when asked, in
        the call the master timed, so it saw every result told before."""
        return None

    def report(self, task_id: int, step: float, value: float) -> bool:
        """An intermediate value of the running task ``task_id``. Return True to stop that
        task: it ends as ``pruned``. The default never prunes; the ``optuna.*`` algorithms
        ask their ``pruner`` (and set ``prunes``)."""
        return False

    def steering(self) -> list[StopTask | ResizePool]:
        """Requests for the master, polled between messages when :attr:`steers` is True:
        running tasks to stop (each ends ``cancelled``), pools to resize. The IoC queue's
        ``future.stop()`` and ``queue.resize`` answer through it."""
        return []

    def pools_changed(self, sizes: Mapping[str, int]) -> None:
        """The workers of each pool (``[pools]``), by kind name, whenever they change (at the
        start, after a resize, as busy workers move). The default ignores them; the IoC
        queue shows them as ``queue.pools``."""

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
