"""The master's bookkeeping as a sans-I/O state machine: events in, instructions out.

:class:`MasterState` takes what happens to a run (results and intermediate reports from
workers, flush answers, stop signals, the algorithm's proposals and the time it spent,
the clock) and answers with typed instructions (send these tasks, prune that one, flush,
record these results, tell the user this). It never touches MPI, files or the algorithm,
so the tricky rules (budget, retries, abort, the early stop of a failing model, prune
once, reuse, billing, the flush schedule) are tested with scripted events in milliseconds. :mod:`mexplore.runtime.master`
is the thin loop that carries the instructions out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..comms.messages import Flushed
from ..failures import FailureTally, Reason, is_failure
from ..types import Result, Status, Task, error_summary
from .dispatch import Dispatcher
from .keep import KeepPolicy
from .memo import Memo, reused

STOP_EARLY_AFTER = 10
"""Under ``on_error = "record"``, a session whose first this-many finished tasks all failed
for one reason stops early: a model that cannot work (a misspelled objective key, a missing
input) should not spend the whole budget. Tasks of earlier sessions do not count, so a
resume after the model is fixed goes on."""
ID_BLOCK = 1024
"""Task ids reserved at a time (:class:`ReserveIds`) at least: a resume skips at most this
many, or an eighth of the ids the session handed out, up to ``MAX_ID_BLOCK``."""
MAX_ID_BLOCK = 65_536
"""The largest block: each reservation is a synced write, and at 30,000 tasks/s a block of
1024 cost the master 30 of them a second."""


# -- instructions ---------------------------------------------------------------------------
@dataclass(slots=True)
class SendTasks:
    """Hand ``tasks`` to ``worker``, to run in order."""

    worker: int
    tasks: list[Task]


@dataclass(slots=True)
class SendPrune:
    """Tell ``worker`` to stop the running task ``task_id``: pruned, or (``stop``) stopped
    by the algorithm, which makes it ``cancelled``."""

    worker: int
    task_id: int
    stop: bool = False


@dataclass(slots=True)
class SendFlush:
    """Ask every worker to flush its cache now, keeping the outputs of ``keep`` (None: all)."""

    keep: frozenset[int] | None


@dataclass(slots=True)
class Record:
    """These tasks are finished: journal them first, then (if ``tell``) tell the algorithm,
    then show them. ``tell`` is False for results that come back while the workers stop."""

    results: list[Result]
    tell: bool = True


@dataclass(slots=True)
class Judge:
    """Ask the algorithm whether the running ``task`` should stop after this intermediate
    value; if it says so, :meth:`MasterState.prune` gives the instruction to send."""

    task: Task
    step: float
    value: float


@dataclass(slots=True)
class ReserveIds:
    """Record durably, before any of them is handed out, that task ids below ``below`` may
    be in use, so a resume never gives one to another point."""

    below: int


@dataclass(slots=True)
class Notice:
    """A line for the user (a retry, a worker's failed flush)."""

    text: str


@dataclass(slots=True)
class FlushesDone:
    """Every worker has answered the last periodic flush: ``files`` written, ``nbytes`` in all."""

    files: int
    nbytes: int


Instruction = SendTasks | SendPrune | SendFlush | Record | Judge | ReserveIds | Notice | FlushesDone


class Ending(enum.Enum):
    """Why the loop should stop now (see :meth:`MasterState.ending`)."""

    DONE = "done"
    """Nothing in flight, and the budget is spent or the algorithm finished."""
    SIGNALLED = "signalled"
    """A stop signal came (to the master or a worker): the run stops, resumable."""
    ABORTED = "aborted"
    """A task failed under ``on_error = "abort"`` and what was in flight is recorded."""
    FAILING = "failing"
    """The session's first tasks all failed for one reason (:attr:`MasterState.early_stop`)
    and what was in flight is recorded: the run stops, resumable."""


class MasterState:
    """Everything the master remembers between events, besides the dispatcher's tasks.

    ``workers`` is how many answers a flush waits for; ``flush_every`` (seconds, or None)
    schedules periodic flushes from the first :meth:`tick`. ``stop_early_after`` (None:
    never) is how many of the session's first finished tasks, all failed for one reason,
    stop the run early.
    """

    def __init__(
        self, dispatcher: Dispatcher, keep: KeepPolicy, *, workers: int, memo: Memo | None = None,
        flush_every: float | None = None, abort_on_error: bool = False,
        stop_early_after: int | None = None, id_block: int = ID_BLOCK,
    ) -> None:
        self.dispatcher = dispatcher
        self.keep = keep
        self.memo = memo
        self.workers = workers
        self.flush_every = flush_every
        self.abort_on_error = abort_on_error
        self.abort_reason: str | None = None
        self.stop_early_after = stop_early_after
        self.early_stop: Reason | None = None
        """Why the run stops early: the one reason the session's first tasks all failed for."""
        self._first_failures: FailureTally | None = FailureTally() if stop_early_after else None
        self._first_seen = 0  # finished tasks of this session, until stop_early_after
        self.succeeded = 0  # tasks of the whole run (resumed ones included) that finished ok
        self.failed = 0  # and those that failed (see mexplore.failures.is_failure)
        self.stop_signal: int | None = None
        self._reports: dict[int, list[tuple[float, float]]] = {}  # per running task, until it ends
        self._pruning: set[int] = set()  # told to stop: judged once
        self._unbilled = 0.0  # algorithm seconds since the last proposals: billed to the next ones
        self._next_flush: float | None = None
        self._flushes: dict[int, Flushed] = {}
        self.id_block = id_block
        self.reserved_below = 0  # ids below it are recorded as possibly handed out
        self._first_id = 0  # the session's first task id

    # -- events -------------------------------------------------------------------------
    def resumed(self, results: list[Result], ids_reserved_below: int = 0) -> None:
        """The journal of the run being resumed: counted, ranked and remembered. New ids
        start after the journal's and after every id an earlier session reserved."""
        self.dispatcher.resume(results)
        first_id = max(self.dispatcher.next_id, ids_reserved_below)
        self.dispatcher.next_id = self.reserved_below = self._first_id = first_id
        self.keep.add(results)
        if self.memo is not None:
            self.memo.add(results)
        self._tally(results)

    def results(self, worker: int, results: Iterable[Result], tell: bool = True) -> list[Instruction]:
        """Results from ``worker``. Retried ones go back to the queue (with a notice); the
        rest are recorded with their task's params, algorithm time and reports."""
        answered, retried = self.dispatcher.complete(worker, results)
        out: list[Instruction] = []
        for result in retried:
            self._reports.pop(result.task_id, None)
            out.append(Notice(f"task {result.task_id} attempt {result.attempt} {result.status.value}; trying again"))
        final = []
        for task, result in answered:
            self._pruning.discard(task.id)
            result.attach(task, self._reports.pop(task.id, []))
            final.append(result)
            if self.abort_on_error and self.abort_reason is None and is_failure(result.status):
                self.abort_reason = f"task {result.task_id} {result.status.value}: {error_summary(result.error)}"
            self._judge_first(result)
        if final:
            out.append(self._finished(final, tell))
        return out

    def _judge_first(self, result: Result) -> None:
        """Count one of the session's first finished tasks; once there are
        ``stop_early_after`` of them, decide whether they all failed for one reason."""
        tally = self._first_failures
        if tally is None:
            return
        self._first_seen += 1
        if is_failure(result.status):
            tally.add(result.task_id, result.status, result.error)
        if self._first_seen == self.stop_early_after:
            if tally.total == self._first_seen and len(tally) == 1:
                self.early_stop = tally.most_common(1)[0]
            self._first_failures = None

    def report(self, task_id: int, step: float, value: float) -> list[Instruction]:
        """An intermediate value of a running task: kept for its result, and judged unless
        the task is already being stopped (or is no longer running)."""
        entry = self.dispatcher.running.get(task_id)
        if entry is None:
            return []
        self._reports.setdefault(task_id, []).append((step, value))
        if task_id in self._pruning:
            return []
        return [Judge(entry[1], step, value)]

    def prune(self, task_id: int, stop: bool = False) -> list[Instruction]:
        """The algorithm judged the task hopeless, or (``stop``) asked to stop it: tell its
        worker (every slot running a parallel task), once. A task no longer running is
        left alone: its result is on its way."""
        entry = self.dispatcher.running.get(task_id)
        if entry is None or task_id in self._pruning:
            return []
        self._pruning.add(task_id)
        group = entry[1].group
        return [SendPrune(worker, task_id, stop) for worker in (group.runners if group else (entry[0],))]

    def algorithm_took(self, seconds: float) -> None:
        """Time spent in the algorithm (ask, tell, report): billed to its next proposals."""
        self._unbilled += seconds

    def proposal_ids(self, n: int) -> range:
        """The task ids the next ``n`` proposals will get, in order."""
        return range(self.dispatcher.next_id, self.dispatcher.next_id + n)

    def proposed(
        self, proposals: list[dict[str, Any]], unseen: list[int] | None = None, computing: float = 0.0,
    ) -> list[Instruction]:
        """The algorithm's proposals become tasks, numbered as :meth:`proposal_ids` said
        (``unseen``: results each proposal missed; ``computing``: their cost outside the
        master's calls; :meth:`~.Algorithm.computed_ahead`). With
        ``[cache] reuse``, a point evaluated before is answered from its recorded result at
        once; the others wait for a worker."""
        if not proposals:
            return []
        cost, self._unbilled = (self._unbilled + computing) / len(proposals), 0.0
        tasks = self.dispatcher.number(proposals, cost)
        if unseen is not None:  # computed ahead of need: what it missed is lag too
            for task, missed in zip(tasks, unseen):
                task.lag += missed
        out: list[Instruction] = []
        if self.dispatcher.next_id > self.reserved_below:
            handed_out = self.dispatcher.next_id - self._first_id
            self.reserved_below = self.dispatcher.next_id + min(max(self.id_block, handed_out // 8), MAX_ID_BLOCK)
            out.append(ReserveIds(self.reserved_below))
        if self.memo is None:
            self.dispatcher.enqueue(tasks)
            return out
        answered = []
        for task in tasks:
            earlier = None if task.kind is not None else self.memo.lookup(task.params)
            if earlier is None:
                self.dispatcher.enqueue([task])
            else:
                self.dispatcher.answered_without_running(task)
                answered.append(reused(task, earlier))
        return out + [self._finished(answered, tell=True)] if answered else out

    def assign(self) -> list[SendTasks]:
        """Waiting tasks to ready workers, as the policy allows."""
        return [SendTasks(worker, tasks) for worker, tasks in self.dispatcher.assign()]

    def signal(self, signum: int | None) -> None:
        """A stop signal (``None``: none came); the first one is the one that counts."""
        if self.stop_signal is None:
            self.stop_signal = signum

    def tick(self, now: float) -> list[Instruction]:
        """The clock: a periodic flush when one is due (the first is ``flush_every`` after
        the first tick)."""
        if self.flush_every is None:
            return []
        if self._next_flush is None:
            self._next_flush = now + self.flush_every
        if now < self._next_flush:
            return []
        self._next_flush = now + self.flush_every
        return [SendFlush(self.keep.chosen())]

    def flushed(self, answer: Flushed) -> list[Instruction]:
        """A worker's periodic flush is done: a failure is a notice; once every worker has
        answered, the totals."""
        out: list[Instruction] = []
        if answer.error:
            out.append(Notice(f"warning: rank {answer.rank}: {answer.error}"))
        self._flushes[answer.rank] = answer
        if len(self._flushes) == self.workers:
            answers, self._flushes = self._flushes.values(), {}
            out.append(FlushesDone(sum(a.path is not None for a in answers), sum(a.nbytes for a in answers)))
        return out

    # -- decisions ----------------------------------------------------------------------
    def wanted(self) -> int:
        """How many proposals to ask the algorithm for now (none once the run aborts or
        stops early). Until the session's first ``stop_early_after`` tasks are judged, no
        more are out than it takes to judge them (or one per worker): a model that cannot
        work must not spend a policy's whole backlog before the run stops."""
        if self._stopping:
            return 0
        want = self.dispatcher.wanted()
        if self._first_failures is not None and self.stop_early_after is not None:
            dispatcher = self.dispatcher
            judging = max(self.workers, self.stop_early_after - self._first_seen)
            want = min(want, judging - len(dispatcher.running) - len(dispatcher.pending))
        return max(want, 0)

    def ending(self, algorithm_finished: Callable[[], bool]) -> Ending | None:
        """Whether the loop should stop now. ``algorithm_finished`` is asked only when
        nothing is in flight and the budget is not spent (it may be costly, or raise)."""
        dispatcher = self.dispatcher
        if self.stop_signal is not None:
            return Ending.SIGNALLED
        if self._stopping:
            dispatcher.withdraw_pending()
            if not dispatcher.idle:
                return None
            return Ending.ABORTED if self.abort_reason is not None else Ending.FAILING
        if dispatcher.idle and (dispatcher.budget_spent or algorithm_finished()):
            return Ending.DONE
        return None

    @property
    def none_succeeded(self) -> bool:
        """Tasks of the run (resumed ones included) failed and not one finished ``ok``. A run
        whose tasks were all pruned or cancelled, on purpose, is not counted as failing."""
        return self.failed > 0 and self.succeeded == 0

    @property
    def in_flight(self) -> int:
        return self.dispatcher.in_flight

    @property
    def _stopping(self) -> bool:
        return self.abort_reason is not None or self.early_stop is not None

    def _tally(self, results: list[Result]) -> None:
        statuses = [result.status for result in results]
        self.succeeded += statuses.count(Status.OK)
        self.failed += sum(map(is_failure, statuses))

    def _finished(self, results: list[Result], tell: bool) -> Record:
        self.keep.add(results)
        if self.memo is not None:
            self.memo.add(results)
        self._tally(results)
        return Record(results, tell)
