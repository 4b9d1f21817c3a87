"""The master's loop: the one place that talks to workers, the algorithm and the journal.

Each round: take in every result that has arrived (journal first, then the algorithm),
ask the algorithm for as many tasks as the policy has room for, hand them out, ask for a
flush when one is due, and, when a round did nothing, back off instead of spinning. The run
ends when nothing is in flight and either the budget is spent or the algorithm is finished,
or early, when a stop signal came (to the master or to any worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..algorithms.base import Algorithm
from ..algorithms.warm_start import WarmStart
from ..comms.backoff import Backoff
from ..comms.messages import (
    Flush, Flushed, Prune, Report, ResultBatch, Setup, SignalReceived, Stop, TaskBatch, WorkerFailed,
)
from ..comms.transport import MasterEnd
from ..errors import AlgorithmError, MexploreError, WorkerError
from ..queue.dispatch import Dispatcher
from ..store.journal import JournalWriter
from ..types import Result, Status, error_summary
from .keep import KeepPolicy
from .live import LiveStatus
from .memo import Memo, reused
from .progress import Progress
from .signals import StopSignals


def start_workers(end: MasterEnd, setup: Setup) -> None:
    for worker in end.workers:
        end.send(worker, setup)


def stop_workers(
    end: MasterEnd, stop: Stop, backoff: Backoff,
    record: Callable[[int, list[Result]], None] | None = None,
) -> list[Flushed]:
    """Tell every worker to leave, whether or not it was ever set up, and wait until each has
    made its final flush. Results that still come back meanwhile go to ``record``."""
    for worker in end.workers:
        end.send(worker, stop)
    answers: dict[int, Flushed] = {}
    while len(answers) < len(end.workers):
        got = end.poll()
        if got is None:
            backoff.wait()
            continue
        worker, message = got
        if isinstance(message, Flushed) and message.final:
            answers[worker] = message
        elif isinstance(message, ResultBatch) and record is not None:
            record(worker, message.results)
    end.close()
    return list(answers.values())


FAILURES = (Status.FAILED, Status.TIMEOUT, Status.LOST)


class RunAborted(MexploreError):
    """A task failed and the study says ``on_error = "abort"``; the journal holds it."""


class Master:
    """Drives one run; built by :mod:`.session`, which owns every piece it is given."""

    def __init__(
        self,
        end: MasterEnd,
        algorithm: Algorithm,
        dispatcher: Dispatcher,
        journal: JournalWriter,
        progress: Progress,
        backoff: Backoff,
        live: LiveStatus,
        keep: KeepPolicy,
        memo: Memo | None = None,
        signals: StopSignals | None = None,
        flush_every: float | None = None,
        abort_on_error: bool = False,
    ) -> None:
        self.end = end
        self.algorithm = algorithm
        self.dispatcher = dispatcher
        self.journal = journal
        self.progress = progress
        self.backoff = backoff
        self.live = live
        self.keep = keep
        self.memo = memo
        self.signals = signals or StopSignals()
        self.flush_every = flush_every
        self.abort_on_error = abort_on_error
        self.abort_reason: str | None = None
        self.stop_signal: int | None = None
        self._reports: dict[int, list[tuple[float, float]]] = {}
        self._next_flush = None if flush_every is None else time.monotonic() + flush_every
        self._flushed: dict[int, Flushed] = {}
        self._pruning: set[int] = set()
        self._unbilled = 0.0  # seconds in tell/report since the last ask: billed to its proposals

    def run(self) -> None:
        """Run until done, or until a stop signal (then :attr:`stop_signal` says which).
        Raises :class:`WorkerError` if a worker cannot go on, and :class:`RunAborted` once
        the tasks in flight are recorded, when a task failed under ``on_error = "abort"``."""
        dispatcher = self.dispatcher
        while True:
            received = self._receive()
            if self.stop_signal is None:
                self.stop_signal = self.signals.signum
            if self.stop_signal is not None:
                break
            if self.abort_reason is not None:
                dispatcher.withdraw_pending()
                if dispatcher.idle:
                    raise RunAborted(f'on_error = "abort": {self.abort_reason}')
            elif dispatcher.idle and (dispatcher.budget_spent or self.algorithm.finished):
                break
            sent = self.abort_reason is None and self._feed()
            self._flush_if_due()
            self.live.running(dispatcher.in_flight)
            if received or sent:
                self.backoff.reset()
            else:
                self.progress.idle(dispatcher.in_flight)
                self.backoff.wait()
        self.algorithm.close()

    def record(self, worker: int, results: list[Result], tell: bool = True) -> None:
        """Book results from ``worker``: journal first, then the algorithm (unless ``tell`` is
        False: results that come back while the workers stop) and the rest."""
        answered, retried = self.dispatcher.complete(worker, results)
        for result in retried:
            self._reports.pop(result.task_id, None)
            self.progress.note(f"task {result.task_id} attempt {result.attempt} {result.status.value}; "
                               "trying again")
        for task, result in answered:
            self._pruning.discard(task.id)
            result.params = task.params
            result.algorithm_time = task.algorithm_time
            result.reports = self._reports.pop(result.task_id, [])
            if self.abort_on_error and self.abort_reason is None and result.status in FAILURES:
                self.abort_reason = f"task {result.task_id} {result.status.value}: {error_summary(result.error)}"
        self._finished([result for _, result in answered], tell)

    def _finished(self, results: list[Result], tell: bool = True) -> None:
        self.journal.append(results)
        if tell:
            started = time.perf_counter()
            self.algorithm.tell(results)
            self._unbilled += time.perf_counter() - started
        self.keep.add(results)
        if self.memo is not None:
            self.memo.add(results)
        self.progress.update(results, self.dispatcher.in_flight)

    def _receive(self) -> bool:
        got = self.end.poll()
        if got is None:
            return False
        while got is not None:
            worker, message = got
            if isinstance(message, ResultBatch):
                self.record(worker, message.results)
            elif isinstance(message, Report):
                self._reports.setdefault(message.task_id, []).append((message.step, message.value))
                self._judge(message)
            elif isinstance(message, Flushed):
                self._took_flush(message)
            elif isinstance(message, SignalReceived):
                self.stop_signal = self.stop_signal or message.signum
            elif isinstance(message, WorkerFailed):
                raise WorkerError(f"rank {message.rank} on {message.host}: {message.error}")
            got = self.end.poll()
        return True

    def _feed(self) -> bool:
        wanted = self.dispatcher.wanted()
        if wanted and not self.algorithm.finished:
            started = time.perf_counter()
            proposals = self.algorithm.ask(wanted)
            self._unbilled += time.perf_counter() - started
            self._check(wanted, proposals)
            if proposals:
                cost, self._unbilled = self._unbilled / len(proposals), 0.0
                self.dispatcher.propose(self._run_needed(proposals, cost), cost)
        sends = self.dispatcher.assign()
        for worker, tasks in sends:
            self.end.send(worker, TaskBatch(tasks))
        return bool(sends)

    def _judge(self, report: Report) -> None:
        """Ask the algorithm whether a running task should stop; tell its worker once if so."""
        entry = self.dispatcher.running.get(report.task_id)
        if entry is None or report.task_id in self._pruning:
            return
        worker, task = entry
        started = time.perf_counter()
        prune = self.algorithm.report(task.params, report.step, report.value)
        self._unbilled += time.perf_counter() - started
        if prune:
            self._pruning.add(report.task_id)
            self.end.send(worker, Prune(report.task_id))

    def _run_needed(self, proposals: list[dict], cost: float) -> list[dict]:
        """With ``[cache] reuse``, answer points evaluated before from their recorded
        result; the rest must run. ``cost`` is the algorithm time of each proposal."""
        if self.memo is None:
            return proposals
        to_run, answered = [], []
        for params in proposals:
            earlier = self.memo.lookup(params)
            if earlier is None:
                to_run.append(params)
            else:
                answered.append(reused(self.dispatcher.answered_without_running(params, cost), earlier))
        if answered:
            self._finished(answered)
        return to_run

    def _flush_if_due(self) -> None:
        if self._next_flush is None or time.monotonic() < self._next_flush:
            return
        self._next_flush = time.monotonic() + self.flush_every
        flush = Flush(self.keep.chosen())
        for worker in self.end.workers:
            self.end.send(worker, flush)

    def _took_flush(self, flushed: Flushed) -> None:
        """A worker's periodic flush is done; once all have answered, the status says so."""
        if flushed.error:
            self.progress.note(f"warning: rank {flushed.rank}: {flushed.error}")
        self._flushed[flushed.rank] = flushed
        if len(self._flushed) == len(self.end.workers):
            self.live.flushed(sum(f.path is not None for f in self._flushed.values()),
                              sum(f.nbytes for f in self._flushed.values()))
            self._flushed = {}

    def _check(self, wanted: int, proposals: list) -> None:
        """Contract breaches that would overshoot the budget or wait forever."""
        algorithm = self.algorithm
        name = type(algorithm.algorithm if isinstance(algorithm, WarmStart) else algorithm).__name__
        if len(proposals) > wanted:
            raise AlgorithmError(
                f"{name}.ask({wanted}) returned {len(proposals)} parameter sets; ask(n) must return at most n"
            )
        if not proposals and self.dispatcher.idle and not (algorithm.finished or algorithm.thinks_in_background):
            raise AlgorithmError(
                f"{name}.ask({wanted}) proposed nothing while no task is running and it is not "
                "finished: the run would wait forever (set finished to True when done)"
            )
