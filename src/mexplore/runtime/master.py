"""The master's loop: the one place that talks to workers, the algorithm and the journal.

Each round: take in every result that has arrived (journal first, then the algorithm),
ask the algorithm for as many tasks as the policy has room for, hand them out, and, when a
round did nothing, back off instead of spinning. The run ends when nothing is in flight and
either the budget is spent or the algorithm is finished.
"""

from __future__ import annotations

from ..algorithms.base import Algorithm
from ..comms.backoff import Backoff
from ..comms.messages import Report, ResultBatch, Setup, Stop, TaskBatch, WorkerFailed
from ..comms.transport import MasterEnd
from ..errors import AlgorithmError, MexploreError, WorkerError
from ..queue.dispatch import Dispatcher
from ..store.journal import JournalWriter
from ..types import Result, Status, error_summary
from .progress import Progress


def start_workers(end: MasterEnd, setup: Setup) -> None:
    for worker in end.workers:
        end.send(worker, setup)


def stop_workers(end: MasterEnd) -> None:
    """Tell every worker to leave, whether or not it was ever set up, and finish sending."""
    for worker in end.workers:
        end.send(worker, Stop())
    end.close()


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
        abort_on_error: bool = False,
    ) -> None:
        self.end = end
        self.algorithm = algorithm
        self.dispatcher = dispatcher
        self.journal = journal
        self.progress = progress
        self.backoff = backoff
        self.abort_on_error = abort_on_error
        self.abort_reason: str | None = None
        self._reports: dict[int, list[tuple[float, float]]] = {}

    def run(self) -> None:
        """Run until done. Raises :class:`WorkerError` if a worker cannot go on, and
        :class:`RunAborted` once the tasks in flight are recorded, when a task failed
        under ``on_error = "abort"``."""
        dispatcher = self.dispatcher
        while True:
            received = self._receive()
            if self.abort_reason is not None:
                dispatcher.withdraw_pending()
                if dispatcher.idle:
                    raise RunAborted(f'on_error = "abort": {self.abort_reason}')
            elif dispatcher.idle and (dispatcher.budget_spent or self.algorithm.finished):
                break
            sent = self.abort_reason is None and self._feed()
            if received or sent:
                self.backoff.reset()
            else:
                self.progress.idle(dispatcher.in_flight)
                self.backoff.wait()
        self.algorithm.close()

    def _receive(self) -> bool:
        got = self.end.poll()
        if got is None:
            return False
        while got is not None:
            worker, message = got
            if isinstance(message, ResultBatch):
                self._record(worker, message.results)
            elif isinstance(message, Report):
                self._reports.setdefault(message.task_id, []).append((message.step, message.value))
            elif isinstance(message, WorkerFailed):
                raise WorkerError(f"rank {message.rank} on {message.host}: {message.error}")
            got = self.end.poll()
        return True

    def _record(self, worker: int, results: list[Result]) -> None:
        answered, retried = self.dispatcher.complete(worker, results)
        for result in retried:
            self._reports.pop(result.task_id, None)
            self.progress.note(f"task {result.task_id} attempt {result.attempt} {result.status.value}; "
                               "trying again")
        for task, result in answered:
            result.params = task.params
            result.reports = self._reports.pop(result.task_id, [])
            if self.abort_on_error and self.abort_reason is None and result.status in FAILURES:
                self.abort_reason = f"task {result.task_id} {result.status.value}: {error_summary(result.error)}"
        finished = [result for _, result in answered]
        self.journal.append(finished)
        self.algorithm.tell(finished)
        self.progress.update(finished, self.dispatcher.in_flight)

    def _feed(self) -> bool:
        wanted = self.dispatcher.wanted()
        if wanted and not self.algorithm.finished:
            proposals = self.algorithm.ask(wanted)
            self._check(wanted, proposals)
            self.dispatcher.propose(proposals)
        sends = self.dispatcher.assign()
        for worker, tasks in sends:
            self.end.send(worker, TaskBatch(tasks))
        return bool(sends)

    def _check(self, wanted: int, proposals: list) -> None:
        """Contract breaches that would overshoot the budget or wait forever."""
        name = type(self.algorithm).__name__
        if len(proposals) > wanted:
            raise AlgorithmError(
                f"{name}.ask({wanted}) returned {len(proposals)} parameter sets; ask(n) must return at most n"
            )
        algorithm = self.algorithm
        if not proposals and self.dispatcher.idle and not (algorithm.finished or algorithm.thinks_in_background):
            raise AlgorithmError(
                f"{name}.ask({wanted}) proposed nothing while no task is running and it is not "
                "finished: the run would wait forever (set finished to True when done)"
            )
