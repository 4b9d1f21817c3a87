"""``ctx``: what a Python model gets besides its parameters."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import Pruned, Stopped
from .refs import keep_shared

__all__ = ["Context", "Pruned", "Reporter", "Saver", "Stopped", "task_dir"]

Saver = Callable[[int, str, Any], None]
"""``saver(task_id, name, value)``: stores a task's output in the worker's node-local cache."""
Reporter = Callable[..., None]
"""``reporter(task_id, step, value, send=True)``: sends an intermediate value to the master
(``send=False``: only looks for a prune, as the other ranks of a parallel task do); raises
:class:`Pruned` when the master has asked to stop that task."""


def task_dir(local_dir: Path, task_id: int, attempt: int) -> Path:
    """A task's private folder on node-local storage; a retry gets a fresh one."""
    return local_dir / "tasks" / (str(task_id) if attempt == 0 else f"{task_id}.{attempt}")


def remove_task_dirs_below(local_dir: Path, first_task_id: int) -> None:
    """Remove the task folders of ids below ``first_task_id``: an earlier session's, left on
    this node by a killed run (its tasks in flight run again under new ids). Every worker
    of the node may do it at once; none of this session's folders is touched."""
    folders = local_dir / "tasks"
    if not folders.is_dir():
        return
    for folder in folders.iterdir():
        task_id = folder.name.partition(".")[0]
        if task_id.isdigit() and int(task_id) < first_task_id:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass(eq=False)
class Context:
    """Where and as what this task runs.

    ``scratch_dir`` is a private folder on node-local storage, made on first use (so a
    model that never asks pays no mkdir). ``gpu`` is the GPU this worker was given (the
    visible-device variables are already set), or None. :meth:`save` keeps an output;
    :meth:`report` sends an intermediate value.

    ``comm`` is, for a task of several ranks (``[model] ranks``), an mpi4py communicator of
    exactly the task's ranks, made for it and freed after it: its rank 0 is the task's
    leader, whose return value is the result. None for a task of one rank.
    """

    task_id: int
    attempt: int
    rank: int
    host: str
    local_dir: Path
    gpu: str | None = None
    saver: Saver | None = field(default=None, repr=False)
    reporter: Reporter | None = field(default=None, repr=False)
    comm: Any = field(default=None, repr=False)
    refs: Any = field(default=None, repr=False)  # the worker's WorkerRefs

    def report(self, step: float, value: float) -> None:
        """Tell the master an intermediate value (a validation loss after an epoch). With a
        ``pruner``, raises :class:`Pruned` when the master decided, after an earlier report,
        that this task should stop.

        On a task of several ranks it is a collective of ``comm``: every rank calls it at
        the same step, and they raise :class:`Pruned` together. The master's word reaches
        each rank on its own; were each to act on it alone, one rank could stop while the
        others went on into a collective it never joins, and the task would hang."""
        if self.reporter is None:
            return
        if self.comm is None or self.comm.Get_size() == 1:
            self.reporter(self.task_id, float(step), float(value))
            return
        try:
            self.reporter(self.task_id, float(step), float(value))
            heard = ""
        except Stopped:
            heard = "stopped"
        except Pruned:
            heard = "pruned"
        heard_by_any = set(self.comm.allgather(heard))
        if "stopped" in heard_by_any:
            raise Stopped(f"task {self.task_id} was stopped at step {step}")
        if "pruned" in heard_by_any:
            raise Pruned(f"task {self.task_id} was pruned at step {step}")

    def save(self, name: str, value: Any) -> None:
        """Keep ``value`` (a numpy array, ``bytes``, or the path of a file or folder) as
        ``name`` for this task in the worker's node-local cache. It reaches the output
        directory at the next flush (``<output>/cache/``, linked from ``results.h5``)."""
        if self.saver is None:
            raise RuntimeError("ctx.save needs a worker's cache; this Context has none")
        self.saver(self.task_id, name, value)

    def get(self, ref: str) -> Any:
        """The data a ref in this task's params names (``queue.put`` on the master, or an
        earlier task's ``ctx.share``). It came with the task, over MPI; the worker keeps it,
        so treat it as read-only: later tasks get the same object."""
        if self.refs is None:
            raise RuntimeError("ctx.get needs a worker's refs: refs reach Python models run by mexplore "
                               "(in their worker, or with isolate = true)")
        return self.refs.get(ref)

    def load(self, task_id: int, name: str) -> Any:
        """What finished task ``task_id`` saved (:meth:`save`) or shared (:meth:`share`) as
        ``name``: a parent's weights for incremental or population-based training, when the
        params name the parent by its id. It comes over MPI from the worker that ran that
        task (read from its node-local cache), through the master, which keeps it for the
        next task that asks; an earlier session's comes from the output directory. A saved
        array comes back an array, bytes and files as ``bytes``, a folder as a dict. Treat it
        as read-only: this worker keeps it for its later tasks. KeyError says why it cannot
        be had (no such output, a task not finished).

        On a task of several ranks it is a collective of ``comm``, as :meth:`report` is:
        every rank calls it, one rank gets the output (a rank that ran the parent reads its
        own cache; else the leader asks the master) and broadcasts it. Were each rank to ask
        alone, a rank of this task holding the output would be asked while it waits in the
        task's next collective, and never answer."""
        if self.refs is None:
            raise RuntimeError("ctx.load needs a worker's refs: it works in Python models run by mexplore")
        if type(task_id) is not int or not isinstance(name, str) or not name:
            raise TypeError(f"ctx.load({task_id!r}, {name!r}): expected a task id (an int) and an output's name")
        if self.comm is None or self.comm.Get_size() == 1:
            return self.refs.load(task_id, name)
        holders = self.comm.allgather(self.refs.holds(task_id, name))
        root = holders.index(True) if True in holders else 0
        loaded: tuple[Any, BaseException | None] = (None, None)
        if self.comm.Get_rank() == root:
            try:
                loaded = (self.refs.load(task_id, name), None)
            except BaseException as error:  # every rank raises it (a stop too), not the root alone
                loaded = (None, error)
        value, error = self.comm.bcast(loaded, root=root)
        if error is not None:
            raise error
        return value

    def share(self, name: str, value: Any) -> None:
        """Send ``value`` (any picklable object) back with this task's result, by reference:
        the algorithm reads it with ``queue.get(result.shared[name])`` and may pass that ref
        to later tasks. A numpy array or bytes is also saved, as :meth:`save` does, and a
        JSON value (dict, list, str, number) as JSON, so it outlives the run (and a resumed
        run finds it there); any other object lives as long as the run."""
        if self.refs is None:
            raise RuntimeError("ctx.share needs a worker's refs: refs reach Python models run by mexplore "
                               "(in their worker, or with isolate = true)")
        self.refs.share(self.task_id, name, value)
        if self.saver is not None:
            keep_shared(self.saver, self.task_id, name, value)

    @cached_property
    def scratch_dir(self) -> Path:
        path = task_dir(self.local_dir, self.task_id, self.attempt)
        path.mkdir(parents=True, exist_ok=True)
        return path
