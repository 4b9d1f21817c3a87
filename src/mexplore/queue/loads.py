"""``ctx.load`` on the master: where a finished task's output is, and who waits for it.

A running task asks for what an earlier task saved (``ctx.save``) or shared (``ctx.share``)
as ``name``. The master answers

1. from the refs it holds: outputs tasks shared with an algorithm that has a queue, and
   every output loaded before (the children of one parent in population-based training ask
   for the same weights: the worker that ran the parent reads them once);
2. else by asking the worker that ran the task, which reads the output from its node-local
   cache and sends it back through the master. That worker answers between its tasks and
   at each ``ctx.report`` of the task it runs, so a worker deep in a long task that never
   reports keeps the asker waiting until that task ends;
3. else, for a task of an earlier session, from the output directory, where that session's
   outputs were flushed (at its end, or, after a ``kill -9``, by the resumed workers as they
   start).

Data moves over MPI, worker to master to worker; nothing per task goes through the
parallel filesystem. Sans-I/O: the master's loop sends what these methods return.
"""

from __future__ import annotations

import pickle
from array import array
from collections.abc import Callable, Iterable
from typing import Any

from ..comms.messages import OutputData, SendOutput
from ..types import Result, output_ref
from .refs import RefStore

Send = tuple[int, SendOutput | OutputData]
"""A message for the master to send, and the worker it goes to."""


class OutputLoads:
    """The master's side of ``ctx.load``. ``first_task_id`` is this session's first task id:
    lower ids are an earlier session's, whose outputs are in the output directory."""

    def __init__(self, refs: RefStore, first_task_id: int, load_output: Callable[[int, str], Any] | None) -> None:
        self.refs = refs
        self._first = first_task_id
        self._load_output = load_output
        self._ran_on = array("i")  # by task id - first: the worker that ran it, -1 while it has not
        self._waiting: dict[tuple[int, str], list[int]] = {}  # asked of the worker that ran it: the askers

    def finished(self, worker: int, results: Iterable[Result]) -> None:
        """``worker`` sent these results: it holds their tasks' saved outputs."""
        ran_on, first = self._ran_on, self._first
        for result in results:
            index = result.task_id - first
            if index >= len(ran_on):
                ran_on.extend([-1] * (index + 1 - len(ran_on)))
            ran_on[index] = worker

    def request(self, worker: int, task_id: int, name: str) -> list[Send]:
        """``worker`` asks for task ``task_id``'s ``name``: what to send, and to whom."""
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
        if owner >= 0:
            self._waiting[key] = [worker]
            return [(owner, SendOutput(task_id, name, worker))]
        if index >= 0:
            return [(worker, OutputData(task_id, name, error=(
                f"task {task_id} has not finished: ctx.load reads the outputs of finished tasks (give a task "
                "the id of one whose result came back)")))]
        return [(worker, self._from_output_directory(task_id, name))]

    def answered(self, answer: OutputData) -> list[Send]:
        """The worker that ran the task answered: the data (kept, for the next asker) or why
        not, for every worker waiting for it."""
        askers = self._waiting.pop((answer.task_id, answer.name), [])
        if answer.data is not None:
            ref = self.refs.add_shared(answer.task_id, answer.name, answer.data)
            for asker in askers:
                self.refs.mark_sent(asker, ref)
        return [(asker, OutputData(answer.task_id, answer.name, answer.data, answer.error)) for asker in askers]

    def _from_output_directory(self, task_id: int, name: str) -> OutputData:
        if self._load_output is None:
            return OutputData(task_id, name, error=f"task {task_id} is not of this run")
        try:
            value = self._load_output(task_id, name)
        except (KeyError, OSError) as error:
            return OutputData(task_id, name, error=(
                f"task {task_id} is an earlier session's, and its {name!r} is not in the output directory "
                f"({error.args[0] if error.args else error}); after a kill -9 it stays on the node that ran it "
                "until a worker of the same node and rank flushes it: resume with the ranks of the killed run"))
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.refs.add_shared(task_id, name, data)
        return OutputData(task_id, name, data)
