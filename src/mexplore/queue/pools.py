"""Worker pools: which workers run which task kinds (``[pools]``), resized as the run goes on.

A study of several kinds (``[models.<kind>]``) may give a kind workers of its own, so a
surrogate's training never waits behind a thousand simulations, and simulations never run
on the GPU node meant for training. The rules:

- a kind listed in ``[pools]`` runs only on its pool's workers, and they run only it;
- the workers no pool holds are *shared*: they run every kind that has no pool; when
  every kind has a pool, they join the objective kind's;
- ``resize(kind, n)`` sets a pool's target size. A worker moves only when it holds no
  task: at once if idle, else as it frees up. It comes from the shared workers first,
  then from the pool most over its target, and a shrinking pool's workers go to the
  shared ones (or to a pool under its target).

Pure bookkeeping, as the :class:`~.dispatch.Dispatcher` it extends: no MPI, no clock.
Kinds are keyed as tasks are: None for the objective kind, its name for the others.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import AlgorithmError
from ..types import Result, Task
from .dispatch import Dispatcher
from .policies import Policy

Kind = str | None
SHARED = "(shared)"
"""How messages name the workers no pool holds."""


def pool_sizes(pools: Mapping[Kind, int | float], workers: int) -> dict[Kind, int]:
    """Each listed kind's worker count: a count as given, a fraction of the job's workers
    rounded (at least 1 when above 0). ValueError when they add up to more than the job has."""
    sizes = {kind: value if isinstance(value, int) else max(1, round(value * workers)) if value > 0 else 0
             for kind, value in pools.items()}
    if sum(sizes.values()) > workers:
        raise ValueError(f"they add up to {sum(sizes.values())} workers and the job has {workers}: "
                         "run with more ranks, or smaller pools")
    return sizes


class PoolDispatcher(Dispatcher):
    """A :class:`~.dispatch.Dispatcher` whose workers each belong to a pool of one kind, or
    to the shared workers (see the module's rules). Only tasks of kinds a worker runs are
    handed to it, and the master asks the algorithm only for kinds some free worker runs
    (:meth:`runnable`), so a kind with no free worker never fills the queue."""

    def __init__(
        self, workers: Iterable[int], pools: Mapping[Kind, int], policy: Policy, budget: int | None,
        retries: int = 0, check: Callable[[dict[str, Any]], None] | None = None, kinds: frozenset[str] = frozenset(),
    ) -> None:
        workers = list(workers)
        super().__init__(workers, policy, budget, retries, check, kinds)
        self.targets: dict[Kind, int] = dict(pools)
        self.pool_of: dict[int, Kind | str] = {}
        free = deque(workers)
        for kind, size in self.targets.items():
            for _ in range(size):
                self.pool_of[free.popleft()] = kind
        for worker in free:
            self.pool_of[worker] = SHARED
        self._all_pooled = None in self.targets and all(kind in self.targets for kind in kinds)

    # -- who runs what --------------------------------------------------------------------
    def runs(self, worker: int, kind: Kind) -> bool:
        pool = self.pool_of[worker]
        if pool == SHARED:
            return kind not in self.targets or (self._all_pooled and kind is None)
        return pool == kind

    def runnable(self) -> frozenset[Kind]:
        """The kinds some ready worker could take one more task of now."""
        waiting: dict[Kind, int] = {}
        for task in self.pending:
            waiting[task.kind] = waiting.get(task.kind, 0) + 1
        room: dict[Kind, int] = {}
        for worker in self._ready:
            for kind in (None, *self.kinds):
                if self.runs(worker, kind):
                    room[kind] = room.get(kind, 0) + self._free[worker]
        return frozenset(kind for kind, slots in room.items() if slots > waiting.get(kind, 0))

    def sizes(self) -> dict[Kind | str, int]:
        """Workers per pool now (the shared ones under :data:`SHARED`)."""
        counts: dict[Kind | str, int] = {}
        for pool in self.pool_of.values():
            counts[pool] = counts.get(pool, 0) + 1
        return counts

    # -- decisions ------------------------------------------------------------------------
    def wanted(self) -> int:
        """Proposals to ask for: free slots of ready workers less the tasks already waiting
        for them, by kind, within the budget."""
        runnable = self.runnable()
        if not runnable:
            return 0
        room = sum(self._free[worker] for worker in self._ready
                   if any(self.runs(worker, kind) for kind in runnable))
        waiting = sum(1 for task in self.pending if task.kind in runnable)
        return self._within_budget(max(room - waiting, 0))

    def assign(self) -> list[tuple[int, list[Task]]]:
        """Waiting tasks, in order, each to a ready worker that runs its kind (the one with
        the most free slots first)."""
        sends = []
        for worker in sorted(self._ready, key=self._free.__getitem__, reverse=True):
            room = self._free[worker]
            batch, kept = [], deque()
            while self.pending:
                task = self.pending.popleft()
                (batch if len(batch) < room and self.runs(worker, task.kind) else kept).append(task)
                if len(batch) == room:
                    break
            kept.extend(self.pending)
            self.pending = kept
            if not batch:
                continue
            for task in batch:
                self.running[task.id] = (worker, task)
            self._held[worker] += len(batch)
            self._set_free(worker, room - len(batch))
            sends.append((worker, batch))
        self._emptied.clear()
        self._round_cost = 0.0
        return sends

    # -- events ---------------------------------------------------------------------------
    def complete(self, worker: int, results: Iterable[Result]) -> tuple[list[tuple[Task, Result]], list[Result]]:
        booked = super().complete(worker, results)
        if self._held[worker] == 0:
            self._rebalance()
        return booked

    def resize(self, kind: Kind, workers: int) -> tuple[int, int]:
        """Set ``kind``'s pool to ``workers``; returns (its size now, its target). Idle
        workers move at once, busy ones as they free up."""
        if kind is not None and kind not in self.kinds:
            raise AlgorithmError(f"resize: the study has no kind {kind!r}")
        if workers < 0:
            raise AlgorithmError(f"resize({kind!r}, {workers}): expected a worker count >= 0")
        self.targets[kind] = workers
        self._all_pooled = None in self.targets and all(k in self.targets for k in self.kinds)
        self._rebalance()
        return self.sizes().get(kind, 0), workers

    def _rebalance(self) -> None:
        """Move idle workers from pools over their target to pools under it."""
        sizes = self.sizes()
        short = {kind: target - sizes.get(kind, 0) for kind, target in self.targets.items()
                 if target > sizes.get(kind, 0)}
        idle = [w for w, held in self._held.items() if held == 0]
        for worker in sorted(idle, key=lambda w: self.pool_of[w] != SHARED):  # shared workers first
            pool = self.pool_of[worker]
            if pool != SHARED and sizes.get(pool, 0) <= self.targets.get(pool, 0):
                continue  # its pool is not over target
            destination = next(iter(short), None)
            if destination is None:
                if pool == SHARED:
                    continue
                destination = SHARED  # a shrinking pool gives its workers back
            sizes[pool] -= 1
            sizes[destination] = sizes.get(destination, 0) + 1
            self.pool_of[worker] = destination
            if destination in short:
                short[destination] -= 1
                if short[destination] == 0:
                    del short[destination]

    def describe(self, objective: str) -> str:
        """``simulate 3, train 1, shared 0``: the pools now, by kind name."""
        return ", ".join(f"{objective if kind is None else kind} {n}" for kind, n in self.sizes().items())
