"""Python-function models: ``fn(params, ctx)``, imported once per worker and kept loaded.

Loading once matters: a training model can take a minute just to import its framework
(CANDLE measured it), so a worker pays that once, not per task.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from ..errors import Interrupted
from ..importing import load_target
from ..types import Group, Outcome, Place, Result, Status, Task
from .context import Context, Pruned, Reporter, Saver, Stopped
from .outcome import interpret, recordable_text
from .spec import ModelSpec


class PythonFunctionModel:
    """Runs tasks through a user function; whatever it raises becomes a ``failed`` result
    (``KeyboardInterrupt``, ``GeneratorExit``, a ``BaseException`` of its own), except
    :class:`Pruned`, which makes it ``pruned``, and the worker's own :class:`Interrupted`
    (a real stop signal), which passes through. A model that ends the process itself with
    ``os._exit`` cannot be caught; it is named on stderr before the process goes.

    A task placed on several worker slots runs on each of them with ``ctx.comm``, made by
    ``task_comm(ranks, tag)`` (the worker's MPI end) from the task's ranks; only its leader
    sends reports and has its return value read; the others only fail the task if they
    raise, and still learn of a prune when they report."""

    def __init__(
        self, spec: ModelSpec, rank: int, host: str, gpu: str | None, saver: Saver | None,
        reporter: Reporter | None, task_comm: Callable[[tuple[int, ...], int], Any] | None = None,
        refs: Any = None,
    ) -> None:
        assert spec.python is not None
        self.function = load_target(spec.python)
        if not callable(self.function):
            raise TypeError(f"{spec.python} is not callable")
        self.objectives = spec.objectives
        self.place = Place(rank, host, gpu)
        self.local_dir = Path(spec.local_dir)
        self.saver, self.reporter = saver, reporter
        self.task_comm = task_comm
        self.refs = refs

    def __call__(self, task: Task) -> Result:
        place, group = self.place, task.group
        follower = group is not None and place.rank != group.leader
        reporter = self.reporter
        if follower and reporter is not None:
            reporter = partial(reporter, send=False)
        ctx = Context(task.id, task.attempt, place.rank, place.host, self.local_dir, place.gpu, self.saver,
                      reporter, refs=self.refs)
        started = time.time()
        try:
            with _ExitNamed(task, place), self._communicator(group, task.id) as ctx.comm:
                returned = self.function(task.params, ctx)
            outcome = Outcome(status=Status.OK) if follower else interpret(returned, self.objectives)
        except Pruned as stopped:
            outcome = Outcome(status=Status.CANCELLED if isinstance(stopped, Stopped) else Status.PRUNED)
        except Interrupted:
            raise
        except BaseException:  # the one boundary where user code may fail, with anything
            where = f"rank {place.rank} on {place.host}"
            outcome = Outcome.failed(recordable_text(f"{where}:\n{traceback.format_exc()}"))
        return Result.ran(task, place, outcome, started, time.time())

    def _communicator(self, group: Group | None, task_id: int) -> AbstractContextManager[Any]:
        """The task's communicator while it runs (None for a task of one slot, or with no
        MPI: then a plain ``nullcontext``, the cheapest, since that is every task of most runs)."""
        if group is None or self.task_comm is None:
            return nullcontext()
        return self._task_communicator(group, task_id)

    @contextmanager
    def _task_communicator(self, group: Group, task_id: int) -> Iterator[Any]:
        comm = self.task_comm(group.runners, task_id)  # type: ignore[misc]  # checked by _communicator
        try:
            yield comm
        finally:
            comm.Free()


class _ExitNamed:
    """While the model runs, ``os._exit`` first says which task on which rank called it:
    the call ends the worker, and mpiexec then the whole job, with no word of why. A
    process the model forked (multiprocessing) exits through it silently, as before. (A
    class, not a generator: it is entered once per task, and costs a third as much.)"""

    __slots__ = ("task", "place", "real_exit", "worker")

    def __init__(self, task: Task, place: Place) -> None:
        self.task, self.place = task, place

    def __enter__(self) -> None:
        self.real_exit, self.worker = os._exit, os.getpid()
        os._exit = self.named_exit

    def __exit__(self, *exception: object) -> None:
        os._exit = self.real_exit

    def named_exit(self, status: int) -> NoReturn:
        if os.getpid() == self.worker:
            sys.stderr.write(f"mexplore: rank {self.place.rank} on {self.place.host}: the model called "
                             f"os._exit({status}) in task {self.task.id}, which ends the worker and the MPI job; a "
                             "model that ends its process must run with [model] isolate = true\n")
            sys.stderr.flush()
        self.real_exit(status)
