"""The master's bookkeeping as a sans-I/O state machine.

It owns task ids, the budget, the tasks waiting on the master and the tasks each worker
holds. It never touches MPI, files or the algorithm: the master loop feeds it events
(proposals, results, a resumed journal) and acts on what it returns, so the hard parts
(budget exactness, resume, duplicates) are tested directly.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from itertools import count
from statistics import median_low
from typing import TYPE_CHECKING, Any

from ..errors import AlgorithmError
from ..types import Result, Shape, Status, Submission, Task
from .placement import Placement, group_for
from .policies import Policy

if TYPE_CHECKING:
    from .pools import Pools

RETRIED = (Status.FAILED, Status.TIMEOUT)
HANDOFF_SAMPLES = 15
"""Hand-offs the typical one is the median of: one slow round of the master (a journal
fsync, a garbage collection) must not switch the policy."""


class Dispatcher:
    """Tracks every task from proposal to result.

    A worker is *ready* when it has at least ``policy.refill_at`` free slots; only ready
    workers are sent tasks, and only their slots count when deciding how much to ask for.
    The ready set and its slot total are kept up to date, so a round of the master loop
    costs the same with 4 workers or 4,000. How many slots a worker has may follow the
    typical task length (a moving average of the results' run times) and the typical
    hand-off, as the policy says.

    The hand-off is measured, not assumed: when a worker that has returned all its tasks is
    sent one in the very round its results were booked, the time from its last result's
    end to that task's start (both on the worker's clock) less the algorithm's time in that
    round (the whole ``ask`` and every ``tell`` billed to the round's proposals: the worker
    waited for all of it) is what a worker waits for the master and the network; the median of the
    last ``HANDOFF_SAMPLES`` such gaps is :attr:`handoff`. A worker left waiting because
    no proposal was ready is not timed.

    Each task records its *lag*: how many tasks were proposed and not yet finished when it
    was numbered, that is how many results its proposal could not see.

    ``check`` sees every proposal before it is numbered and raises to refuse it (the run's
    :class:`~mexplore.space.ProposalCheck`): a bad point never gets an id, a worker or a
    journal line.

    ``kinds`` are the study's auxiliary task kinds: a proposal may be a
    :class:`~mexplore.types.Submission` of one of them. Such tasks run like the others but
    are outside the budget (:attr:`finished` counts the objective kind's only) and ``check``;
    ``kind_checks`` check those of the kinds with a space of their own.
    """

    def __init__(
        self, workers: Iterable[int], policy: Policy, budget: int | None, retries: int = 0,
        check: Callable[[dict[str, Any]], None] | None = None, kinds: frozenset[str] = frozenset(),
        kind_checks: Mapping[str, Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        self.policy = policy
        self.check = check
        self.budget = budget
        self.retries = retries
        self.kinds = kinds
        self.kind_checks = dict(kind_checks or {})  # of the auxiliary kinds with a space of their own
        self.pools: Pools | None = None
        """``[pools]``: which workers run which kinds (None: every worker runs every kind)."""
        self.proposable: frozenset[str | None] = frozenset()
        """With pools: the kinds some free worker could take a task of, as of the last :meth:`wanted`."""
        self.auxiliary = 0  # auxiliary tasks numbered and not finished: outside the budget
        self.finished = 0
        self.next_id = 0
        self.pending: deque[Task] = deque()
        self.running: dict[int, tuple[int, Task]] = {}
        self.typical_length: float | None = None
        self.handoff: float | None = None
        self.typical_algorithm = 0.0  # the algorithm's seconds per proposal (moving average)
        self._handoffs: deque[float] = deque(maxlen=HANDOFF_SAMPLES)
        self._emptied: dict[int, float] = {}  # worker -> its last result's end, until the next assign
        self._timed: dict[int, float] = {}  # task id -> its worker's previous end + the round's algorithm time
        self._round_cost = 0.0  # algorithm seconds billed to the proposals since the last assign
        self.capacity = policy.capacity(None, None, 1)
        self._refill_at = policy.refill_at(self.capacity)
        self._held = dict.fromkeys(workers, 0)  # tasks each worker holds
        self._by_held = ByHeld(self._held)

    # -- events -------------------------------------------------------------------------
    def resume(self, results: Iterable[Result]) -> None:
        """Count tasks a previous run finished; new ids continue after the largest."""
        for result in results:
            self.finished += result.kind is None
            self.next_id = max(self.next_id, result.task_id + 1)

    def number(self, params_list: Iterable[dict[str, Any] | Submission], algorithm_time: float = 0.0) -> list[Task]:
        """The algorithm's proposals as new tasks, with consecutive ids in the order given;
        each cost ``algorithm_time`` to propose. They wait for :meth:`enqueue` (or
        :meth:`answered_without_running`). Each is checked first: a dict by ``check`` (when
        there is one), a :class:`Submission` of an auxiliary kind by that kind's. Their lag
        is the number of tasks proposed and not finished before them."""
        proposals = list(params_list)
        for proposal in proposals:
            if type(proposal) is Submission:
                self._check_kind(proposal)
            elif self.check is not None:
                self.check(proposal)
        first, lag = self.next_id, len(self.pending) + len(self.running)
        if self.kinds:
            tasks = [Task(first + i, proposal.params, 0, 0.0, algorithm_time, lag, kind=proposal.kind)
                     if type(proposal) is Submission else Task(first + i, proposal, 0, 0.0, algorithm_time, lag)
                     for i, proposal in enumerate(proposals)]
            self.auxiliary += sum(task.kind is not None for task in tasks)
        else:
            tasks = [Task(first + i, params, 0, 0.0, algorithm_time, lag) for i, params in enumerate(proposals)]
        self.next_id += len(tasks)
        self._round_cost += algorithm_time * len(tasks)
        if tasks:
            self.typical_algorithm = 0.9 * self.typical_algorithm + 0.1 * algorithm_time
        return tasks

    def _check_kind(self, proposal: Submission) -> None:
        """A proposal of an auxiliary kind names one of the study's, and lies in its space if it has one."""
        if proposal.kind not in self.kinds:
            raise AlgorithmError(f"kind {proposal.kind!r}: the study has no [models.{proposal.kind}] "
                                 f"(its auxiliary kinds: {', '.join(sorted(self.kinds)) or 'none'})")
        if (kind_check := self.kind_checks.get(proposal.kind)) is not None:
            kind_check(proposal.params)

    def enqueue(self, tasks: Iterable[Task]) -> None:
        """Numbered tasks wait for a worker, in order."""
        self.pending.extend(tasks)

    def propose(self, params_list: Iterable[dict[str, Any]], algorithm_time: float = 0.0) -> list[Task]:
        """Number the proposals and queue them all."""
        tasks = self.number(params_list, algorithm_time)
        self.enqueue(tasks)
        return tasks

    def answered_without_running(self, task: Task) -> None:
        """A numbered task answered from a recorded result (``[cache] reuse``): it counts as
        finished at once, against the budget like any task."""
        self.finished += 1

    def complete(
        self, worker: int, results: Iterable[Result],
    ) -> tuple[list[tuple[Task, Result]], list[Result]]:
        """Book results from ``worker``: ``(final, retried)``.

        ``final`` pairs each finished task with its result. A failed or timed-out task with
        attempts left is not finished: it goes back to the front of the queue with its
        attempt number raised, and its result is in ``retried``. A result for a task this
        worker does not hold (a duplicate, or a task recorded already) is dropped, so
        nothing is ever counted twice.
        """
        final, retried = [], []
        last_end = 0.0
        for result in results:
            entry = self.running.get(result.task_id)
            if entry is None or entry[0] != worker:
                continue
            del self.running[result.task_id]
            task = entry[1]
            if self._timed and (waited_from := self._timed.pop(task.id, None)) is not None:
                self._handed_off(result.started - waited_from)
            self._observe(result.ended - result.started)
            last_end = result.ended
            if result.status in RETRIED and task.attempt < self.retries:
                self.pending.appendleft(replace(task, attempt=task.attempt + 1))
                retried.append(result)
            else:
                final.append((task, result))
        returned = len(final) + len(retried)
        if returned:
            self._resize()  # once the batch's lengths are in: nothing is assigned in between
            self._count_finished(final)
            held = self._held[worker] - returned
            if held == 0:
                self._emptied[worker] = last_end
            self._set_held(worker, held)
        return final, retried

    def _count_finished(self, final: list[tuple[Task, Result]]) -> None:
        """Finished tasks count against the budget, but an auxiliary kind's."""
        if self.auxiliary:
            auxiliary = sum(task.kind is not None for task, _ in final)
            self.auxiliary -= auxiliary
            self.finished += len(final) - auxiliary
        else:
            self.finished += len(final)

    def _observe(self, length: float) -> None:
        typical = self.typical_length
        self.typical_length = length if typical is None else 0.9 * typical + 0.1 * length

    def _handed_off(self, gap: float) -> None:
        self._handoffs.append(max(gap, 0.0))
        self.handoff = median_low(self._handoffs)

    @property
    def algorithm_load(self) -> float:
        """The share of the master's time the algorithm needs to keep every worker fed: its
        seconds per proposal times the workers over the typical task length (0 until measured)."""
        if not self.typical_length:
            return 0.0
        return self.typical_algorithm * len(self._held) / self.typical_length

    def _resize(self) -> None:
        """Apply the capacity the policy wants now (every worker's free slots change with it,
        which the buckets by held count need not be told of)."""
        capacity = self.policy.capacity(self.typical_length, self.handoff, self.capacity, self.algorithm_load)
        if capacity != self.capacity:
            self.capacity = capacity
            self._refill_at = self.policy.refill_at(capacity)

    def withdraw_pending(self) -> None:
        """Forget the tasks no worker has yet (the run is stopping); they never ran."""
        self.pending.clear()

    # -- decisions ----------------------------------------------------------------------
    def wanted(self) -> int:
        """How many new proposals to ask the algorithm for now."""
        return self._within_budget(self.policy.to_ask(self._ready_slots(), len(self.pending), len(self.running)))

    def _within_budget(self, want: int) -> int:
        if self.budget is not None:
            outstanding = len(self.running) + len(self.pending) - self.auxiliary
            want = min(want, self.budget - self.finished - outstanding)
        return max(want, 0)

    def assign(self) -> list[tuple[int, list[Task]]]:
        """Hand waiting tasks to ready workers, the one with the most free slots first. A
        worker emptied since the last call whose next task goes now has its hand-off timed."""
        sends = []
        emptied = self._emptied
        while self.pending and (worker := self._fullest()) is not None:
            room = self.capacity - self._held[worker]
            batch = [self.pending.popleft() for _ in range(min(room, len(self.pending)))]
            for task in batch:
                self.running[task.id] = (worker, task)
            if emptied and (previous_end := emptied.get(worker)) is not None and self._held[worker] == 0:
                self._timed[batch[0].id] = previous_end + self._round_cost
            self._set_held(worker, self._held[worker] + len(batch))
            sends.append((worker, batch))
        emptied.clear()
        self._round_cost = 0.0
        return sends

    def _fullest(self) -> int | None:
        """The ready worker with the most free slots (the longest-ready among equals), or None."""
        found = self._by_held.fullest(self.capacity - self._refill_at)
        return None if found is None else found[2]

    def _ready_slots(self) -> int:
        """The free slots of the ready workers (those with at least ``refill_at`` free)."""
        return self._by_held.free_slots(self.capacity, self.capacity - self._refill_at)

    def _set_held(self, worker: int, held: int) -> None:
        """The worker now holds ``held`` tasks."""
        self._by_held.move(worker, self._held[worker], held)
        self._held[worker] = held

    # -- state --------------------------------------------------------------------------
    @property
    def budget_spent(self) -> bool:
        return self.budget is not None and self.finished >= self.budget

    @property
    def idle(self) -> bool:
        """No task waits on the master and none is out on a worker."""
        return not self.pending and not self.running

    @property
    def in_flight(self) -> int:
        return len(self.running)


_ARRIVALS = count()
"""When each worker entered its bucket, across every :class:`ByHeld`."""


class ByHeld:
    """Workers in buckets by how many tasks they hold, each bucket in arrival order.

    A worker's free slots are capacity - held and it is ready while they reach
    ``refill_at``, so a change of capacity moves no worker: every per-task step looks at
    the few held counts a worker can have, never at every worker. OrderedDict, not dict: a
    dict's first key after many deletions from its front is found by a scan over the
    deleted slots, which made filling 100,000 workers quadratic."""

    __slots__ = ("buckets",)

    def __init__(self, workers: Iterable[int]) -> None:
        self.buckets: list[OrderedDict[int, int]] = [OrderedDict((worker, next(_ARRIVALS)) for worker in workers)]

    def move(self, worker: int, before: int, after: int) -> None:
        """The worker held ``before`` tasks and now holds ``after``: to that bucket's end."""
        self.remove(worker, before)
        self.add(worker, after)

    def remove(self, worker: int, held: int) -> None:
        """The worker, holding ``held`` tasks, leaves (for another pool's buckets)."""
        del self.buckets[held][worker]

    def add(self, worker: int, held: int) -> None:
        while len(self.buckets) <= held:
            self.buckets.append(OrderedDict())
        self.buckets[held][worker] = next(_ARRIVALS)

    def fullest(self, most_held: int) -> tuple[int, int, int] | None:
        """(held, arrival, worker): the worker holding the fewest tasks, at most
        ``most_held``, the longest there among equals (the earliest ``arrival``, which
        orders workers of several buckets too); None when every worker holds more."""
        buckets = self.buckets
        for held in range(min(most_held + 1, len(buckets))):
            if bucket := buckets[held]:
                worker = next(iter(bucket))
                return held, bucket[worker], worker
        return None

    def free_slots(self, capacity: int, most_held: int) -> int:
        """The free slots of the workers holding at most ``most_held`` tasks."""
        buckets = self.buckets
        return sum(len(buckets[held]) * (capacity - held) for held in range(min(most_held + 1, len(buckets))))


class PlacingDispatcher(Dispatcher):
    """The dispatcher of a study whose tasks may span several worker slots (``[model]
    ranks`` or ``nodes``): each task is placed on free slots of the job (:mod:`.placement`)
    and holds them until every slot that runs it has answered.

    Every slot runs one task at a time: the policy's prefetch and backlog do not apply
    (parallel tasks are long; holding a slot for a task that cannot start yet would idle
    it). ``shape_of(params, kind)`` says what a proposal of a kind (None: the objective
    kind) needs (it raises to refuse one, as ``check`` does); ``all_run[kind]`` is True
    for a Python model, whose function runs on every slot of its task, False for a program
    that the task's leader launches over them.

    A task's result is its leader's, made to span the slots' time (first start to last
    end) and failed if any other slot failed.
    """

    def __init__(
        self, hosts: dict[int, str], shape_of: Callable[[dict[str, Any], str | None], Shape],
        all_run: Mapping[str | None, bool], policy: Policy, budget: int | None, retries: int = 0,
        check: Callable[[dict[str, Any]], None] | None = None, gpus: dict[int, str | None] | None = None,
        kinds: frozenset[str] = frozenset(), kind_checks: Mapping[str, Callable[[dict[str, Any]], None]] | None = None,
        pools: Pools | None = None,
    ) -> None:
        super().__init__(hosts, policy, budget, retries, check, kinds, kind_checks)
        self.pools = pools
        self.placement = Placement(hosts, gpus)
        if pools is not None:
            for slot, pool in pools.pool_of.items():
                self.placement.moved(slot, pool)
        self.shape_of = shape_of
        self.all_run = all_run
        self._parts: dict[int, dict[int, Result]] = {}  # task id -> the answers of its slots so far
        self._first_waiting: int | None = None  # the oldest task that could not be placed
        self._passed = 0  # tasks started past it
        self._needs: Counter[tuple[Shape, frozenset[Any] | None]] = Counter()  # of the tasks waiting

    def number(self, params_list: Iterable[dict[str, Any] | Submission], algorithm_time: float = 0.0) -> list[Task]:
        """:meth:`Dispatcher.number`, each task sized by its kind's model section (``[model]``
        or ``[models.<kind>]``) from its point, or as the algorithm asked (a
        :class:`Submission` with a ``shape``: ``queue.submit(ranks=R)``)."""
        proposals = list(params_list)
        shapes = [self._shape(proposal) for proposal in proposals]
        for proposal, shape in zip(proposals, shapes):
            kind = proposal.kind if type(proposal) is Submission else None
            if (why := self.placement.never_fits(shape)) is None and self.pools is not None \
                    and shape.ranks > (most := self.pools.most_for(kind)):
                name = self.pools.objective if kind is None else kind
                why = f"it needs {shape.ranks} ranks and the pool of {name!r} is to hold {most} (resize it first)"
            if why is not None:
                params = proposal.params if type(proposal) is Submission else proposal
                raise AlgorithmError(f"the task at {params} can never run in this job: {why}; the run stops "
                                     "(finished tasks are kept: run it with more ranks, or smaller tasks, to resume)")
        numbered = [p.params if type(p) is Submission and p.kind is None else p for p in proposals]
        tasks = super().number(numbered, algorithm_time)
        for task, shape in zip(tasks, shapes):
            task.shape = shape
        return tasks

    def enqueue(self, tasks: Iterable[Task]) -> None:
        tasks = list(tasks)
        self._needs.update(map(self._need, tasks))
        super().enqueue(tasks)

    def withdraw_pending(self) -> None:
        self._needs.clear()
        super().withdraw_pending()

    def _need(self, task: Task) -> tuple[Shape, frozenset[Any] | None]:
        """What a task needs of the placement: its shape, on the pools that run its kind."""
        return task.shape or Shape(), None if self.pools is None else self.pools.pools_running(task.kind)

    def _shape(self, proposal: dict[str, Any] | Submission) -> Shape:
        if type(proposal) is not Submission:
            return self.shape_of(proposal, None)
        return proposal.shape if proposal.shape is not None else self.shape_of(proposal.params, proposal.kind)

    def wanted(self) -> int:
        """Proposals for the free slots. The tasks still waiting could not be placed in the
        last round, so they do not count against the free slots (a 4-rank task waiting
        must not leave 3 free slots idle: smaller tasks may pass it); but no more wait than
        the job has slots, and none are asked for while nothing may pass the oldest. (Counting
        each waiting task beyond the oldest against the free slots packed a mix of 1-, 2- and
        4-rank tasks worse: 81 % of the ideal against 84 %, in virtual time; fewer tasks to
        choose from fill fewer holes.)"""
        slots = len(self.placement.node_of)
        if self._nothing_may_pass():
            return 0
        free = self.placement.free_count
        if self.pools is not None:  # counts of free slots by pool: O(kinds), not O(slots)
            free_by_pool, running = self.placement.free_by_pool, self.pools.pools_running
            self.proposable = frozenset(kind for kind in (None, *self.kinds)
                                        if any(free_by_pool.get(pool, 0) for pool in running(kind)))
            free = sum(free_by_pool.get(pool, 0) for pool in frozenset().union(*map(running, self.proposable)))
        want = self.policy.to_ask(free, 0, len(self.running))
        return self._within_budget(min(want, slots - len(self.pending)))

    def _nothing_may_pass(self) -> bool:
        return bool(self.pending) and self.pending[0].id == self._first_waiting and \
            self._passed >= len(self.placement.node_of)

    def assign(self) -> list[tuple[int, list[Task]]]:
        """Place waiting tasks in order; one that cannot be placed now is passed by at most
        as many tasks as the job has slots before nothing passes it any more. A task needing
        what one before it could not get this round (its shape, on its pools) is not tried,
        and the round ends once no need of a waiting task can be met (slots only get fewer
        as a round places tasks): its cost follows the tasks placed, not the tasks waiting."""
        sends: list[tuple[int, list[Task]]] = []
        waiting: deque[Task] = deque()
        placement = self.placement
        limit = len(placement.node_of)
        unplaceable: set[tuple[Shape, frozenset[Any] | None]] = set()
        while self.pending and placement.free_count:
            task = self.pending.popleft()
            if waiting and waiting[0].id == self._first_waiting and self._passed >= limit:  # see _nothing_may_pass
                waiting.append(task)
                break
            need = self._need(task)
            if need in unplaceable or (taken := placement.take(*need)) is None:
                unplaceable.add(need)
                waiting.append(task)
                if len(unplaceable) == len(self._needs):  # every waiting task's need, unmet
                    break
                continue
            self._needs[need] -= 1
            if not self._needs[need]:
                del self._needs[need]
            if waiting:
                if waiting[0].id != self._first_waiting:
                    self._first_waiting, self._passed = waiting[0].id, 0
                self._passed += 1
            shape = need[0]
            gpus = placement.gpus_of(taken[0], shape.gpus) if shape.gpus else ()
            task = replace(task, group=group_for(*taken, shape.ranks, self.all_run[task.kind], gpus))
            self.running[task.id] = (task.group.leader, task)
            self._parts[task.id] = {}
            sends += [(runner, [task]) for runner in task.group.runners]
        self.pending.extendleft(reversed(waiting))
        return sends

    def complete(
        self, worker: int, results: Iterable[Result],
    ) -> tuple[list[tuple[Task, Result]], list[Result]]:
        final, retried = [], []
        for result in results:
            entry = self.running.get(result.task_id)
            if entry is None:
                continue
            task = entry[1]
            group, parts = task.group, self._parts[task.id]
            if group is None or worker not in group.runners or worker in parts:
                continue
            parts[worker] = result
            self.placement.give_back([worker])
            self._rebalance([worker])
            if len(parts) < len(group.runners):
                continue
            del self.running[task.id], self._parts[task.id]
            held = [slot for slot in group.slots if slot not in group.runners]
            self.placement.give_back(held)
            self._rebalance(held)
            if group.gpus:
                self.placement.give_back_gpus(group.hosts[0], group.gpus)
            merged = _merged(group.leader, parts)
            merged.slots, merged.hosts = list(group.slots), list(group.hosts)
            if group.gpus:
                merged.gpu = ",".join(group.gpus)
            if merged.status in RETRIED and task.attempt < self.retries:
                self.pending.appendleft(replace(task, attempt=task.attempt + 1, group=None))
                self._needs[self._need(task)] += 1
                retried.append(merged)
            else:
                final.append((task, merged))
        self._count_finished(final)
        return final, retried


    def resize(self, name: str, workers: int) -> tuple[int, int]:
        """Set the pool of the kind ``name`` to ``workers`` slots; returns (its size now,
        its target). Free slots move at once, the others as their tasks end."""
        assert self.pools is not None
        kind = self.pools.set_target(name, workers)
        self._needs = Counter(map(self._need, self.pending))  # a kind's first pool changes where its tasks may run
        for task in self.pending:
            if task.kind == kind and task.shape is not None and task.shape.ranks > self.pools.most_for(kind):
                raise AlgorithmError(f"resize({name!r}, {workers}): task {task.id} waits for {task.shape.ranks} "
                                     f"ranks of that pool, which would never start; resize once it has run")
        self._rebalance(self.placement.free_slots())
        return self.pools.size_of(kind), workers

    def _rebalance(self, free: list[int]) -> None:
        """Free slots move between pools toward their targets; the placement follows."""
        if self.pools is not None:
            for slot, _ in self.pools.rebalance(free):
                self.placement.moved(slot, self.pools.pool_of[slot])


def _merged(leader: int, parts: dict[int, Result]) -> Result:
    """One result from the answers of a task's slots: the leader's, spanning them all, and
    failed (with the first such slot's reason) when the leader succeeded but another did not."""
    result = parts[leader]
    result.started = min(part.started for part in parts.values())
    result.ended = max(part.ended for part in parts.values())
    if result.ok:
        for rank, part in parts.items():
            if not part.ok:
                result.status, result.objective = part.status, None
                result.error = f"rank {rank} of the task's {len(parts)}: {part.error}"
                break
    return result
