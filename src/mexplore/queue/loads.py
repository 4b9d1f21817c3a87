"""``ctx.load`` on the master: where a finished task's output is, and who waits for it.

A running task asks for what an earlier task saved (``ctx.save``) or shared (``ctx.share``)
as ``name``. The master answers

1. from the refs it holds: outputs tasks shared with an algorithm that has a queue, and
   every output loaded before (the children of one parent in population-based training ask
   for the same weights: the worker that ran the parent reads them once);
2. else by asking the worker that ran the task, which reads the output from its node-local
   cache and sends it back through the master (or, when the asker ran it, by telling it
   so: it reads its own cache). That worker answers between its tasks and at each
   ``ctx.report`` of the task it runs, so a worker deep in a long task that never reports
   keeps the asker waiting until that task ends. Only a task that finished ``ok`` is
   asked for, on the worker of the attempt that did (a retried task's failed attempt may
   have saved something else on another worker);
3. else, for a task of an earlier session, from the output directory, where that session's
   outputs were flushed (at its end, or, after a ``kill -9``, by the resumed workers as they
   start). A task with no output there at all may have them on their way: a worker of
   the node that holds them flushes them before its first task, while others may already
   run theirs. The master asks the directory again every :data:`RETRY_EVERY` seconds, up
   to :data:`OUTPUT_WAIT`, without holding up its loop, and only then answers that they are
   not there. A name the task did not save, beside others it did, is answered at once.

Data moves over MPI, worker to master to worker; nothing per task goes through the
parallel filesystem. Sans-I/O: the master's loop sends what these methods return.
"""

from __future__ import annotations

import pickle
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any

from ..comms.messages import OutputData, SendOutput
from ..store.results_file import NoOutputsFlushed
from ..types import Result, Status, output_ref
from .refs import OUTPUT_WAIT, RefStore

RETRY_EVERY = 0.2
"""Seconds between two looks in the output directory for an earlier session's output."""

Send = tuple[int, SendOutput | OutputData]
"""A message for the master to send, and the worker it goes to."""


class OutputLoads:
    """The master's side of ``ctx.load``. ``first_task_id`` is this session's first task id:
    lower ids are an earlier session's, whose outputs are in the output directory."""

    def __init__(
        self, refs: RefStore, first_task_id: int, load_output: Callable[[int, str], Any] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refs = refs
        self._first = first_task_id
        self._load_output = load_output
        self._clock = clock
        self._ran_on = array("i")  # by task id - first: the worker that ran it, -1 while it has not
        self._waiting: dict[tuple[int, str], list[int]] = {}  # asked of the worker that ran it: the askers
        self._looking: dict[tuple[int, str], tuple[list[int], float]] = {}  # not in the output yet: askers, since
        self._next_look = 0.0
        self._earlier: set[int] = set()  # the earlier sessions' tasks whose outputs may be there

    def earlier(self, results: Iterable[Result]) -> None:
        """The earlier sessions' results (a resumed run): only those that finished ok, or
        shared something (a pruned task may have), are looked for in the output directory;
        any other id is answered at once."""
        self._earlier.update(result.task_id for result in results if result.status is Status.OK or result.shared)

    def finished(self, results: Iterable[Result]) -> None:
        """These tasks are done (journaled): the worker that ran each one that finished
        ``ok`` (its leader, for a task of several ranks) holds its saved outputs."""
        ran_on, first = self._ran_on, self._first
        for result in results:
            index = result.task_id - first
            if result.status is not Status.OK or result.rank < 0 or index < 0:
                continue
            if index >= len(ran_on):
                ran_on.extend([-1] * (index + 1 - len(ran_on)))
            ran_on[index] = result.rank

    def request(self, worker: int, task_id: int, name: str) -> list[Send]:
        """``worker`` asks for task ``task_id``'s ``name``: what to send, and to whom."""
        if type(task_id) is not int or type(name) is not str:  # checked by ctx.load: a guard, never a crash
            return [(worker, OutputData(task_id, name, error="expected an integer task id and a name"))]
        ref = output_ref(task_id, name)
        data = self.refs.held(ref)
        if data is not None:
            self.refs.mark_sent(worker, ref)
            return [(worker, OutputData(task_id, name, data))]
        key = (task_id, name)
        if key in self._waiting:  # already asked of the worker that ran it
            self._waiting[key].append(worker)
            return []
        index = task_id - self._first
        owner = self._ran_on[index] if 0 <= index < len(self._ran_on) else -1
        if owner == worker:
            return [(worker, OutputData(task_id, name, local=True))]
        if owner >= 0:
            self._waiting[key] = [worker]
            return [(owner, SendOutput(task_id, name, worker))]
        if index >= 0:
            return [(worker, OutputData(task_id, name, error=(
                f"task {task_id} has not finished ok: ctx.load reads the outputs of tasks that did (give a task "
                "the id of one whose result came back ok)")))]
        if task_id not in self._earlier:
            return [(worker, OutputData(task_id, name, error=(
                f"no task {task_id} finished ok before this session (ids of this session start at {self._first})")))]
        if key in self._looking:
            self._looking[key][0].append(worker)
            return []
        answer = self._from_output_directory(task_id, name, final=False)
        if answer is not None:
            if answer.data is not None:
                self.refs.mark_sent(worker, ref)
            return [(worker, answer)]
        self._looking[key] = ([worker], self._clock())
        return []

    def look(self) -> list[Send]:
        """Look in the output directory for the earlier session's outputs asked for: the
        answers for those found, or given up on. Call it each round: it looks at most every
        :data:`RETRY_EVERY` seconds, and costs nothing while no output is looked for."""
        if not self._looking or (now := self._clock()) < self._next_look:
            return []
        self._next_look = now + RETRY_EVERY
        sends: list[Send] = []
        for key, (askers, since) in list(self._looking.items()):
            answer = self._from_output_directory(*key, final=now - since >= OUTPUT_WAIT)
            if answer is not None:
                del self._looking[key]
                if answer.data is not None:
                    for asker in askers:
                        self.refs.mark_sent(asker, output_ref(*key))
                sends += [(asker, answer) for asker in askers]
        return sends

    def give_up(self) -> list[Send]:
        """The run is stopping: every worker still waiting for an output is told so (its
        task is dropped, to run again on resume), and later answers are dropped."""
        askers = [asker for waiting in self._waiting.values() for asker in waiting]
        askers += [asker for waiting, _ in self._looking.values() for asker in waiting]
        self._waiting.clear()
        self._looking.clear()
        return [(asker, OutputData(-1, "", stopping=True)) for asker in askers]

    def answered(self, answer: OutputData) -> list[Send]:
        """The worker that ran the task answered: the data (kept, for the next asker) or why
        not, for every worker waiting for it."""
        askers = self._waiting.pop((answer.task_id, answer.name), [])
        if answer.data is not None:
            ref = self.refs.add_shared(answer.task_id, answer.name, answer.data)
            for asker in askers:
                self.refs.mark_sent(asker, ref)
        return [(asker, OutputData(answer.task_id, answer.name, answer.data, answer.error)) for asker in askers]

    def _from_output_directory(self, task_id: int, name: str, final: bool) -> OutputData | None:
        """The output read from the output directory; if it is not there, None, or when
        ``final`` the answer that says so."""
        if self._load_output is None:
            return OutputData(task_id, name, error=f"task {task_id} is not of this run")
        try:
            value = self._load_output(task_id, name)
        except Exception as error:  # KeyError: not there; OSError: a file being written; else a bad name
            reason = error.args[0] if isinstance(error, KeyError) and error.args else error
            if not isinstance(error, (NoOutputsFlushed, OSError)):
                return OutputData(task_id, name, error=f"task {task_id} is an earlier session's: {reason}")
            if not final:
                return None
            return OutputData(task_id, name, error=(
                f"task {task_id} is an earlier session's, and its outputs are not in the output directory after "
                f"{OUTPUT_WAIT:.0f} s ({reason}); after a kill -9 they stay on the node that ran it until a "
                "worker of the same node and rank flushes them: resume with the ranks of the killed run"))
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.refs.add_shared(task_id, name, data)
        return OutputData(task_id, name, data)
