"""The master's loop: the one place that talks to workers, the algorithm and the journal.

It carries out what :class:`~mexplore.queue.master_state.MasterState` decides. Each round:
take in every message that has arrived, ask the algorithm for as many tasks as the policy
has room for, hand them out, flush when due, and, when a round did nothing, back off
instead of spinning. The run ends when nothing is in flight and either the budget is spent
or the algorithm is finished, or early: when a stop signal came (to the master or to any
worker), or when the tasks fail (``on_error``).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ..algorithms.base import Algorithm
from ..comms.backoff import Backoff
from ..comms.messages import (
    Flush,
    Flushed,
    IntermediateValue,
    LoadOutput,
    OutputData,
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
from ..queue.loads import OutputLoads
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
from ..queue.refs import RefStore
from ..store.disk import OutputUnwritable
from ..store.journal import JournalWriter
from ..store.results_file import load_output
from ..store.task_ids import TASK_IDS_NAME, write_reserved
from ..types import ResizePool, Result, StopTask, output_ref
from .live import LiveStatus
from .optuna_live import LiveOptunaExport
from .progress import Progress
from .signals import StopSignals

T = TypeVar("T")

MASTER_BACKOFF_CAP = 100e-6
"""The master sleeps at most this long when idle: every result may wait this long (plus the
kernel's wake-up delay) to be seen, so it bounds the hand-off latency. The price: a waiting
master uses about a fifth of one core (docs/benchmarks.md)."""


def start_workers(end: MasterEnd, setup: Setup) -> None:
    for worker in end.workers:
        end.send(worker, setup)


def stop_workers(
    end: MasterEnd, stop: Stop, backoff: Backoff,
    late_results: Callable[[int, list[Result]], None] | None = None, loads: OutputLoads | None = None,
) -> list[Flushed]:
    """Tell every worker to leave, whether or not it was ever set up, and wait until each has
    made its final flush. Results that still come back meanwhile go to ``late_results``. A
    task waiting in ``ctx.load`` (``loads``' askers, or one asking now) is told the run is
    stopping: it is dropped, and runs again on resume."""
    for worker, message in [] if loads is None else loads.give_up():
        end.send(worker, message)
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
        elif isinstance(message, LoadOutput):  # the task must not wait for an answer that never comes
            end.send(worker, OutputData(message.task_id, message.name, stopping=True))
    end.close()
    return list(answers.values())


class RunAborted(MexploreError):
    """A task failed and the study says ``on_error = "abort"``; the journal holds it."""


class TasksFailing(MexploreError):
    """The run's tasks fail: it stopped early because the session's first tasks all failed
    for one reason, or not one task of the run finished ok. Not an error of mexplore's: the
    run ended cleanly and resumes, but a script must not take it for a success."""


@dataclass(slots=True)
class RunLog:
    """Where the master writes what happens: the output directory, with its journal (what
    finished, the source of truth), ``status.json`` (what runs now) and, if asked, the
    Optuna journal file; and the screen."""

    output: Path
    journal: JournalWriter
    progress: Progress
    live: LiveStatus
    optuna: LiveOptunaExport | None = None
    """``[study] optuna_journal``: given each batch once it is journaled."""


class Master:
    """Drives one run; built by :mod:`.session`, which owns every piece it is given."""

    def __init__(
        self, end: MasterEnd, algorithm: Algorithm, state: MasterState, log: RunLog,
        signals: StopSignals | None = None,
    ) -> None:
        self.end = end
        self.algorithm = algorithm
        self._pools_told: dict[str, int] | None = None  # the pool sizes the algorithm was last told
        self.state = state
        self.log = log
        self.signals = signals or StopSignals()
        self.backoff = Backoff(cap=MASTER_BACKOFF_CAP)
        self.refs: RefStore | None = getattr(algorithm, "refs", None)  # data by reference, if the algorithm has any
        self.loads = OutputLoads(RefStore() if self.refs is None else self.refs, state.dispatcher.next_id,
                                 partial(load_output, log.output))
        """``ctx.load``: the outputs tasks ask for; with the algorithm's refs when it has them."""

    @property
    def stop_signal(self) -> int | None:
        """The signal that stopped the run early, if one did."""
        return self.state.stop_signal

    def run(self) -> Ending:
        """Run until done, a stop signal (then :attr:`stop_signal` says which) or an early
        stop (:meth:`failing` says why); returns which. Raises :class:`WorkerError` if a
        worker cannot go on, and :class:`RunAborted` once the tasks in flight are recorded,
        when a task failed under ``on_error = "abort"``."""
        state, live, progress, backoff = self.state, self.log.live, self.log.progress, self.backoff
        algorithm_finished = self._algorithm_finished
        while True:
            received = self._receive()
            state.signal(self.signals.signum)
            ending = state.ending(algorithm_finished)
            if ending is Ending.ABORTED:
                raise RunAborted(f'on_error = "abort": {state.abort_reason}')
            if ending is not None:
                break
            sent = self._feed()
            self._send(self.loads.look())
            if flush := state.tick(time.monotonic()):
                self.execute(flush)
            live.running(state.in_flight)
            if received or sent:
                backoff.reset()
            else:
                progress.idle(state.in_flight)
                backoff.wait()
        self.algorithm.close()
        return ending

    def failing(self) -> TasksFailing | None:
        """What to tell the user when the run's tasks fail (see :class:`TasksFailing`);
        None when some succeeded, or when a stop signal ended the run (it keeps 128 + N)."""
        state = self.state
        if state.stop_signal is not None:
            return None
        if (reason := state.early_stop) is not None:
            ids = ", ".join(str(i) for i in reason.task_ids)
            return TasksFailing(
                f"stopped early: the first {state.stop_early_after} tasks all failed for the same reason: "
                f"{reason.text} (tasks {ids}, …)\n"
                "fix the model or the study, then run it again on the same output: the run resumes where it "
                'stopped; to record failures and never stop early, set [model] on_error = "continue" '
                "(--set model.on_error=continue)"
            )
        if state.none_succeeded:
            shown = "reasons above; " if self.log.progress.mode != "off" else ""  # --progress off printed none
            return TasksFailing(
                f"no task finished ok: {state.failed} of the {state.dispatcher.finished} finished tasks failed "
                f"({shown}`mexplore results {self.log.output} --failed` lists them)"
            )
        return None

    def take_late_results(self, worker: int, results: list[Result]) -> None:
        """Results that come back while the workers stop: recorded, not told (the
        algorithm is closed). Dropped when the journal can no longer be written: not
        journaled, they are not done, and run again on resume."""
        if self.log.journal.broken is None:
            self.execute(self.state.results(worker, results, tell=False))

    def execute(self, instructions: Iterable[Instruction]) -> None:
        """Carry out what the state decided, in order."""
        for instruction in instructions:
            if isinstance(instruction, Record):
                self._record(instruction)
            elif isinstance(instruction, SendTasks):
                refs = self.refs
                if refs is not None and refs.in_use:
                    batch = TaskBatch(instruction.tasks, refs.for_worker(instruction.worker, instruction.tasks),
                                      refs.drops_for(instruction.worker))
                else:
                    batch = TaskBatch(instruction.tasks)
                self.end.send(instruction.worker, batch)
            elif isinstance(instruction, Judge):
                self._judge(instruction)
            elif isinstance(instruction, SendPrune):
                self.end.send(instruction.worker, Prune(instruction.task_id, instruction.stop))
            elif isinstance(instruction, SendFlush):
                for worker in self.end.workers:
                    self.end.send(worker, Flush(instruction.keep))
            elif isinstance(instruction, ReserveIds):
                self._reserve(instruction.below)
            elif isinstance(instruction, Notice):
                self.log.progress.note(instruction.text)
            elif isinstance(instruction, FlushesDone):
                self.log.live.flushed(instruction.files, instruction.nbytes)

    def _reserve(self, below: int) -> None:
        """Record that ids below ``below`` may be handed out, before any is: a resume must
        never reuse one. If that cannot be written, no task may start: the run stops."""
        try:
            write_reserved(self.log.output, below)
        except OSError as error:
            raise OutputUnwritable(self.log.output / TASK_IDS_NAME, error, "The run stopped; every task "
                                   "journaled before is kept, the tasks in flight run again on resume") from None

    def _record(self, record: Record) -> None:
        """Journal first: a result counts as done once it is there; then the algorithm."""
        self.log.journal.append(record.results)
        self.loads.finished(record.results)
        if self.log.optuna is not None:
            self.log.optuna.add(record.results)
        if record.tell:
            self._call_algorithm("tell", self.algorithm.tell, record.results)
        self.log.progress.update(record.results, self.state.in_flight)

    def _judge(self, judge: Judge) -> None:
        if self._call_algorithm("report", self.algorithm.report, judge.task.id, judge.step, judge.value):
            self.execute(self.state.prune(judge.task.id))

    def _call_algorithm(self, method: str, call: Callable[..., T], *args: object) -> T:
        """Call the algorithm, timing it (its cost is billed to the tasks); an exception
        from its own code stops the run cleanly, as a contract breach does: finished tasks
        are kept and the run resumes once the algorithm is fixed."""
        started = time.perf_counter()
        try:
            return call(*args)
        except MexploreError:
            raise
        except Exception as error:
            raise self._failed(method, error) from error
        finally:
            self.state.algorithm_took(time.perf_counter() - started)

    def _algorithm_finished(self) -> bool:
        """Whether the algorithm is done; an algorithm whose thread raised says so here as
        well as in ``propose``, whichever the master asks first (not timed: it is a flag)."""
        try:
            return self.algorithm.finished
        except MexploreError:
            raise
        except Exception as error:
            raise self._failed("finished", error) from error

    def _failed(self, method: str, error: Exception) -> AlgorithmError:
        where = "".join(traceback.format_exception(error)).rstrip()
        return AlgorithmError(
            f"algorithm {self.algorithm.name!r} raised {type(error).__name__} in {method}(): {error}; the "
            "run stops (finished tasks are kept: fix the algorithm and run again to resume)\n" + where)

    def _receive(self) -> bool:
        got = self.end.poll()
        if got is None:
            return False
        state = self.state
        while got is not None:
            worker, message = got
            if isinstance(message, ResultBatch):
                if message.shared:
                    self._take_shared(message)
                self.execute(state.results(worker, message.results))
            elif isinstance(message, IntermediateValue):
                self.execute(state.report(message.task_id, message.step, message.value))
            elif isinstance(message, LoadOutput):
                self._send(self.loads.request(worker, message.task_id, message.name))
            elif isinstance(message, OutputData):
                self._send(self.loads.answered(message))
            elif isinstance(message, Flushed):
                self.execute(state.flushed(message))
            elif isinstance(message, SignalReceived):
                state.signal(message.signum)
            elif isinstance(message, WorkerFailed):
                raise WorkerError(f"rank {message.rank} on {message.host}: {message.error}")
            got = self.end.poll()
        return True

    def _send(self, messages: list[tuple[int, Any]]) -> None:
        for worker, message in messages:
            self.end.send(worker, message)

    def _take_shared(self, batch: ResultBatch) -> None:
        """What tasks shared (``ctx.share``) becomes refs their results name; the data is
        kept when the algorithm has a ref store (an imperative algorithm's queue)."""
        for result in batch.results:
            named = batch.shared.get(result.task_id)
            if named:
                result.shared = {name: output_ref(result.task_id, name) if self.refs is None
                                 else self.refs.add_shared(result.task_id, name, data) for name, data in named.items()}

    def _feed(self) -> bool:
        if self.algorithm.steers:
            for request in self._call_algorithm("steering", self.algorithm.steering):
                self._steer(request)
        pools = self.state.dispatcher.pools
        if pools is not None and (sizes := pools.named_sizes()) != self._pools_told:
            self._pools_told = sizes  # workers move between pools as they free up: tell the algorithm
            self.algorithm.pools_changed(sizes)
        wanted = self.state.wanted()
        if wanted and not self.algorithm.finished:
            task_ids = self.state.proposal_ids(wanted)
            proposals = self._propose(task_ids)
            self._check(wanted, proposals)
            ahead = self.algorithm.computed_ahead(task_ids[:len(proposals)])
            missed, computing = (None, 0.0) if ahead is None else (ahead.missed, ahead.seconds)
            self.execute(self.state.proposed(proposals, missed, computing))
        sends = self.state.assign()
        self.execute(sends)
        return bool(sends)

    def _propose(self, task_ids: range) -> list:
        """The algorithm's proposals for ``task_ids``; with pools, of the kinds a free
        worker runs only (an algorithm that cannot choose proposes only when its kind,
        the objective one, can run)."""
        dispatcher = self.state.dispatcher
        if dispatcher.pools is None:
            return self._call_algorithm("propose", self.algorithm.propose, task_ids)
        kinds = dispatcher.proposable  # as the round's wanted() found them
        if self.algorithm.proposes_kinds:
            return self._call_algorithm("propose", self.algorithm.propose_kinds, task_ids, kinds)
        return self._call_algorithm("propose", self.algorithm.propose, task_ids) if None in kinds else []

    def _steer(self, request: StopTask | ResizePool) -> None:
        """Carry out what the algorithm asked: stop a running task, resize a pool."""
        if isinstance(request, StopTask):
            self.execute(self.state.prune(request.task_id, stop=True))
            return
        dispatcher = self.state.dispatcher
        if dispatcher.pools is None:
            raise AlgorithmError(f"queue.resize({request.kind!r}, {request.workers}): the study has no [pools]")
        now, target = dispatcher.resize(request.kind, request.workers)
        self.log.progress.note(f"pool {request.kind}: {target} worker(s) asked, {now} now; pools: "
                               f"{dispatcher.pools.describe()}")

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
