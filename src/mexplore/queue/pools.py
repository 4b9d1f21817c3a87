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

:class:`Pools` keeps these rules over worker ranks; the :class:`PoolDispatcher` hands
tasks of one slot to them, and the :class:`~.dispatch.PlacingDispatcher` (tasks of
several ranks) places each task on free slots its kind may use. Pure bookkeeping: no MPI,
no clock. Kinds are keyed as tasks are: None for the objective kind, its name for the others.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import AlgorithmError
from ..types import Result, Task
from .dispatch import ByHeld, Dispatcher
from .policies import Policy

Kind = str | None
SHARED = "(shared)"
"""How messages name the workers no pool holds."""
_SHARED_ONLY = frozenset({SHARED})


def pool_sizes(pools: Mapping[str, int | float], workers: int) -> dict[str, int]:
    """Each listed kind's worker count: a count as given, a fraction (in (0, 1], as the
    study file is checked) of the job's workers rounded, at least 1. ValueError when they
    add up to more than the job has."""
    sizes = {kind: value if isinstance(value, int) else max(1, round(value * workers)) for kind, value in pools.items()}
    if sum(sizes.values()) > workers:
        raise ValueError(f"they add up to {sum(sizes.values())} workers and the job has {workers}: "
                         "run with more ranks, or smaller pools")
    return sizes


class Pools:
    """Which pool each worker is in, each pool's target size, and the moves between them
    (see the module's rules). ``sizes`` are worker counts by kind *name*, ``objective``
    being the objective kind's (whose tasks carry no kind); :meth:`set_target` takes names too."""

    def __init__(self, workers: Iterable[int], sizes: Mapping[str, int], objective: str, kinds: frozenset[str]) -> None:
        self.objective = objective
        self.kinds = kinds
        self.targets: dict[Kind, int] = {self._key(name): size for name, size in sizes.items()}
        self.pool_of: dict[int, Kind | str] = {}
        free = deque(workers)
        for kind, size in self.targets.items():
            for _ in range(size):
                self.pool_of[free.popleft()] = kind
        for worker in free:
            self.pool_of[worker] = SHARED
        self._counts: dict[Kind | str, int] = {}  # workers per pool, kept as workers move
        for pool in self.pool_of.values():
            self._counts[pool] = self._counts.get(pool, 0) + 1
        self._targets_changed()

    def _key(self, name: str) -> Kind:
        """A kind's name as tasks carry it: None for the objective kind."""
        return None if name == self.objective else name

    def _targets_changed(self) -> None:
        # when every kind has a pool, the shared workers join the objective kind's
        self._all_pooled = None in self.targets and all(kind in self.targets for kind in self.kinds)
        self._running = {kind: frozenset({kind, SHARED} if kind is None and self._all_pooled else {kind})
                         for kind in self.targets}
        self._check_settled()

    def _check_settled(self) -> None:
        """Every pool at its target: no worker will move until a target changes."""
        self._settled = all(self._counts.get(kind, 0) == target for kind, target in self.targets.items())

    def pools_running(self, kind: Kind) -> frozenset[Kind | str]:
        """The pools whose workers run ``kind``: its own, or the shared workers when it has
        none (and both for the objective kind when every kind has a pool)."""
        return self._running.get(kind, _SHARED_ONLY)

    def runs(self, worker: int, kind: Kind) -> bool:
        return self.pool_of[worker] in self.pools_running(kind)

    def most_for(self, kind: Kind) -> int:
        """The most workers that may run ``kind`` once every pool has reached its target:
        a task of more ranks could never start."""
        shared = len(self.pool_of) - sum(self.targets.values())
        if kind in self.targets:
            return self.targets[kind] + (shared if kind is None and self._all_pooled else 0)
        return shared

    def set_target(self, name: str, workers: int) -> Kind:
        """Set the pool of the kind ``name`` to ``workers``; returns its key. Move idle
        workers with :meth:`rebalance` next."""
        kind = self._key(name)
        if kind is not None and kind not in self.kinds:
            raise AlgorithmError(f"resize: the study has no kind {name!r}")
        if workers < 0:
            raise AlgorithmError(f"resize({name!r}, {workers}): expected a worker count >= 0")
        self.targets[kind] = workers
        self._targets_changed()
        return kind

    def rebalance(self, idle: Iterable[int]) -> list[tuple[int, Kind | str]]:
        """Move these idle workers from pools over their target to pools under it (shared
        workers first), or back to the shared ones when no pool is short; returns each
        worker moved with the pool it left."""
        if self._settled:  # the common case, at every result: nothing to move
            return []
        counts, moved = self._counts, []
        short = [kind for kind, target in self.targets.items() if counts.get(kind, 0) < target]
        for worker in sorted(idle, key=lambda w: self.pool_of[w] != SHARED):
            pool = self.pool_of[worker]
            if pool != SHARED and counts[pool] <= self.targets.get(pool, 0):
                continue  # its pool is not over target
            while short and counts.get(short[0], 0) >= self.targets[short[0]]:
                short.pop(0)
            if short:
                destination: Kind | str = short[0]
            elif pool == SHARED:
                continue
            else:
                destination = SHARED  # a shrinking pool gives its workers back
            counts[pool] -= 1
            counts[destination] = counts.get(destination, 0) + 1
            self.pool_of[worker] = destination
            moved.append((worker, pool))
        if moved:
            self._check_settled()
        return moved

    def size_of(self, kind: Kind) -> int:
        return self._counts.get(kind, 0)

    def sizes(self) -> dict[Kind | str, int]:
        """Workers per pool now (the shared ones under :data:`SHARED`)."""
        return {pool: n for pool, n in self._counts.items() if n}

    def named_sizes(self) -> dict[str, int]:
        """Workers per pool now, by kind name (the shared ones under ``(shared)``)."""
        return {self.objective if kind is None else kind: n for kind, n in self.sizes().items()}

    def describe(self) -> str:
        """``simulate 3, train 1, (shared) 0``: the pools now, by kind name."""
        return ", ".join(f"{name} {n}" for name, n in self.named_sizes().items())


class PoolDispatcher(Dispatcher):
    """A :class:`~.dispatch.Dispatcher` whose workers each belong to a pool of one kind, or
    to the shared workers (:class:`Pools`). Only tasks of kinds a worker runs are handed to
    it, and the master asks the algorithm only for kinds some free worker runs
    (:attr:`proposable`, set by :meth:`wanted`), so a kind with no free worker never fills
    the queue."""

    def __init__(
        self, workers: Iterable[int], pools: Mapping[str, int], objective: str, policy: Policy,
        budget: int | None, retries: int = 0, check: Callable[[dict[str, Any]], None] | None = None,
        kinds: frozenset[str] = frozenset(), kind_checks: Mapping[str, Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        workers = list(workers)
        super().__init__(workers, policy, budget, retries, check, kinds, kind_checks)
        self.pools = Pools(workers, pools, objective, kinds)
        self._pool_by_held: dict[Kind | str, ByHeld] = {}  # each pool's workers by the tasks they hold
        for worker in workers:
            self._pool_by_held.setdefault(self.pools.pool_of[worker], ByHeld(())).add(worker, 0)

    def _set_held(self, worker: int, held: int) -> None:
        self._pool_by_held[self.pools.pool_of[worker]].move(worker, self._held[worker], held)
        super()._set_held(worker, held)

    # -- who runs what --------------------------------------------------------------------
    def _room_and_waiting(self) -> tuple[dict[Kind | str, int], Counter[Kind]]:
        """The free slots of each pool's ready workers, and the waiting tasks of each kind:
        O(pools x the held counts a worker can have + waiting tasks), not O(workers)."""
        most_held = self.capacity - self._refill_at
        room = {pool: workers.free_slots(self.capacity, most_held) for pool, workers in self._pool_by_held.items()}
        return room, Counter(task.kind for task in self.pending) if self.pending else Counter()

    def runnable(self) -> frozenset[Kind]:
        """The kinds some ready worker could take one more task of now."""
        room, waiting = self._room_and_waiting()
        return self._runnable(room, waiting)

    def _runnable(self, room: dict[Kind | str, int], waiting: Counter[Kind]) -> frozenset[Kind]:
        running = self.pools.pools_running
        return frozenset(kind for kind in (None, *self.kinds)
                         if sum(room.get(pool, 0) for pool in running(kind)) > waiting[kind])

    # -- decisions ------------------------------------------------------------------------
    def wanted(self) -> int:
        """Proposals to ask for: free slots of ready workers less the tasks already waiting
        for them, by kind, within the budget. Sets :attr:`proposable`, the kinds to ask for."""
        room, waiting = self._room_and_waiting()
        runnable = self.proposable = self._runnable(room, waiting)
        if not runnable:
            return 0
        pools = frozenset().union(*map(self.pools.pools_running, runnable))
        free = sum(room.get(pool, 0) for pool in pools)
        return self._within_budget(max(free - sum(waiting[kind] for kind in runnable), 0))

    def assign(self) -> list[tuple[int, list[Task]]]:
        """Waiting tasks, in order, each to a ready worker that runs its kind: the one with
        the most free slots, then the same worker until it is full (as the plain dispatcher
        fills one worker at a time)."""
        sends: dict[int, list[Task]] = {}
        kept: deque[Task] = deque()
        emptied = self._emptied
        filling: dict[frozenset[Kind | str], int | None] = {}  # the pools of a kind -> the worker they fill
        for task in self.pending:
            pools = self.pools.pools_running(task.kind)
            worker = filling.get(pools, -1)
            if worker == -1 or (worker is not None and self._held[worker] >= self.capacity):
                worker = filling[pools] = self._fullest_of(pools)
            if worker is None:
                kept.append(task)
                continue
            if emptied and self._held[worker] == 0 and (previous_end := emptied.get(worker)) is not None:
                self._timed[task.id] = previous_end + self._round_cost  # its hand-off, as Dispatcher.assign times it
            self.running[task.id] = (worker, task)
            self._set_held(worker, self._held[worker] + 1)
            sends.setdefault(worker, []).append(task)
        self.pending = kept
        emptied.clear()
        self._round_cost = 0.0
        return list(sends.items())

    def _fullest_of(self, pools: frozenset[Kind | str]) -> int | None:
        """The ready worker of these pools with the most free slots (the longest ready among equals), or None."""
        most_held = self.capacity - self._refill_at
        found = [fullest for pool in pools if (workers := self._pool_by_held.get(pool)) is not None
                 and (fullest := workers.fullest(most_held)) is not None]
        return min(found)[2] if found else None

    # -- events ---------------------------------------------------------------------------
    def complete(self, worker: int, results: Iterable[Result]) -> tuple[list[tuple[Task, Result]], list[Result]]:
        booked = super().complete(worker, results)
        if self._held[worker] == 0:
            self._rebalance([worker])  # the others idle were placed when they freed up or at a resize
        return booked

    def _rebalance(self, idle: list[int]) -> None:
        for worker, left in self.pools.rebalance(idle):
            self._pool_by_held[left].remove(worker, 0)
            self._pool_by_held.setdefault(self.pools.pool_of[worker], ByHeld(())).add(worker, 0)

    def resize(self, name: str, workers: int) -> tuple[int, int]:
        """Set the pool of the kind ``name`` to ``workers``; returns (its size now, its
        target). Idle workers move at once, busy ones as they free up."""
        kind = self.pools.set_target(name, workers)
        self._rebalance([w for w, held in self._held.items() if held == 0])
        return self.pools.size_of(kind), workers
