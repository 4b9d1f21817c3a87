"""The master's loop: the one place that talks to workers, the algorithm and the journal.

It carries out what :class:`~mexplore.queue.master_state.MasterState` decides. Each round:
take in every message that has arrived, ask the algorithm for as many tasks as the policy
has room for, hand them out, flush when due, and, when a round did nothing, back off
instead of spinning. The run ends when nothing is in flight and either the budget is spent
or the algorithm is finished, or early, when a stop signal came (to the master or to any
worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..algorithms.base import Algorithm
from ..comms.backoff import Backoff
from ..comms.messages import (
    Flush,
    Flushed,
    IntermediateValue,
    Prune,
    ResultBatch,
    Setup,
    SignalReceived,
    Stop,
    TaskBatch,
    WorkerFailed,
)
from ..comms.transport import MasterEnd
from ..errors import AlgorithmError, MexploreError, WorkerError
from ..queue.master_state import (
    Ending,
    FlushesDone,
    Instruction,
    Judge,
    MasterState,
    Notice,
    Record,
    ReserveIds,
    SendFlush,
    SendPrune,
    SendTasks,
)
from ..store.journal import JournalWriter
from ..store.task_ids import write_reserved
from ..types import Result
from .live import LiveStatus
from .progress import Progress
from .signals import StopSignals

MASTER_BACKOFF_CAP = 100e-6
"""The master sleeps at most this long when idle: every result may wait this long (plus the
kernel's wake-up delay) to be seen, so it bounds the hand-off latency. The price: a waiting
master uses about a fifth of one core (docs/benchmarks.md)."""


def start_workers(end: MasterEnd, setup: Setup) -> None:
    for worker in end.workers:
        end.send(worker, setup)


def stop_workers(
    end: MasterEnd, stop: Stop, backoff: Backoff,
    late_results: Callable[[int, list[Result]], None] | None = None,
) -> list[Flushed]:
    """Tell every worker to leave, whether or not it was ever set up, and wait until each has
    made its final flush. Results that still come back meanwhile go to ``late_results``."""
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
        elif isinstance(message, ResultBatch) and late_results is not None:
            late_results(worker, message.results)
    end.close()
    return list(answers.values())


class RunAborted(MexploreError):
    """A task failed and the study says ``on_error = "abort"``; the journal holds it."""


@dataclass(slots=True)
class RunLog:
    """Where the master writes what happens: the output directory, with its journal (what
    finished, the source of truth) and ``status.json`` (what runs now), and the screen."""

    output: Path
    journal: JournalWriter
    progress: Progress
    live: LiveStatus


class Master:
    """Drives one run; built by :mod:`.session`, which owns every piece it is given."""

    def __init__(
        self, end: MasterEnd, algorithm: Algorithm, state: MasterState, log: RunLog,
        signals: StopSignals | None = None,
    ) -> None:
        self.end = end
        self.algorithm = algorithm
        self.state = state
        self.log = log
        self.signals = signals or StopSignals()
        self.backoff = Backoff(cap=MASTER_BACKOFF_CAP)

    @property
    def stop_signal(self) -> int | None:
        """The signal that stopped the run early, if one did."""
        return self.state.stop_signal

    def run(self) -> None:
        """Run until done, or until a stop signal (then :attr:`stop_signal` says which).
        Raises :class:`WorkerError` if a worker cannot go on, and :class:`RunAborted` once
        the tasks in flight are recorded, when a task failed under ``on_error = "abort"``."""
        state, live, progress, backoff = self.state, self.log.live, self.log.progress, self.backoff
        algorithm_finished = lambda: self.algorithm.finished  # noqa: E731 (asked only when needed)
        while True:
            received = self._receive()
            state.signal(self.signals.signum)
            ending = state.ending(algorithm_finished)
            if ending is Ending.ABORTED:
                raise RunAborted(f'on_error = "abort": {state.abort_reason}')
            if ending is not None:
                break
            sent = self._feed()
            if flush := state.tick(time.monotonic()):
                self.execute(flush)
            live.running(state.in_flight)
            if received or sent:
                backoff.reset()
            else:
                progress.idle(state.in_flight)
                backoff.wait()
        self.algorithm.close()

    def take_late_results(self, worker: int, results: list[Result]) -> None:
        """Results that come back while the workers stop: recorded, not told (the
        algorithm is closed)."""
        self.execute(self.state.results(worker, results, tell=False))

    def execute(self, instructions: Iterable[Instruction]) -> None:
        """Carry out what the state decided, in order."""
        for instruction in instructions:
            if isinstance(instruction, Record):
                self._record(instruction)
            elif isinstance(instruction, SendTasks):
                self.end.send(instruction.worker, TaskBatch(instruction.tasks))
            elif isinstance(instruction, Judge):
                self._judge(instruction)
            elif isinstance(instruction, SendPrune):
                self.end.send(instruction.worker, Prune(instruction.task_id))
            elif isinstance(instruction, SendFlush):
                for worker in self.end.workers:
                    self.end.send(worker, Flush(instruction.keep))
            elif isinstance(instruction, ReserveIds):
                write_reserved(self.log.output, instruction.below)
            elif isinstance(instruction, Notice):
                self.log.progress.note(instruction.text)
            elif isinstance(instruction, FlushesDone):
                self.log.live.flushed(instruction.files, instruction.nbytes)

    def _record(self, record: Record) -> None:
        """Journal first: a result counts as done once it is there; then the algorithm."""
        self.log.journal.append(record.results)
        if record.tell:
            started = time.perf_counter()
            self.algorithm.tell(record.results)
            self.state.algorithm_took(time.perf_counter() - started)
        self.log.progress.update(record.results, self.state.in_flight)

    def _judge(self, judge: Judge) -> None:
        started = time.perf_counter()
        stop = self.algorithm.report(judge.task.id, judge.step, judge.value)
        self.state.algorithm_took(time.perf_counter() - started)
        if stop:
            self.execute(self.state.prune(judge.task.id))

    def _receive(self) -> bool:
        got = self.end.poll()
        if got is None:
            return False
        state = self.state
        while got is not None:
            worker, message = got
            if isinstance(message, ResultBatch):
                self.execute(state.results(worker, message.results))
            elif isinstance(message, IntermediateValue):
                self.execute(state.report(message.task_id, message.step, message.value))
            elif isinstance(message, Flushed):
                self.execute(state.flushed(message))
            elif isinstance(message, SignalReceived):
                state.signal(message.signum)
            elif isinstance(message, WorkerFailed):
                raise WorkerError(f"rank {message.rank} on {message.host}: {message.error}")
            got = self.end.poll()
        return True

    def _feed(self) -> bool:
        wanted = self.state.wanted()
        if wanted and not self.algorithm.finished:
            started = time.perf_counter()
            proposals = self.algorithm.propose(self.state.proposal_ids(wanted))
            self.state.algorithm_took(time.perf_counter() - started)
            self._check(wanted, proposals)
            self.execute(self.state.proposed(proposals))
        sends = self.state.assign()
        self.execute(sends)
        return bool(sends)

    def _check(self, wanted: int, proposals: list) -> None:
        """Contract breaches that would overshoot the budget or wait forever."""
        algorithm = self.algorithm
        if len(proposals) > wanted:
            raise AlgorithmError(
                f"{algorithm.name}.ask({wanted}) returned {len(proposals)} parameter sets; ask(n) must return at most n"
            )
        if not proposals and self.state.dispatcher.idle and not (algorithm.finished or algorithm.thinks_in_background):
            raise AlgorithmError(
                f"{algorithm.name}.ask({wanted}) proposed nothing while no task is running and it is not "
                "finished: the run would wait forever (set finished to True when done)"
            )
