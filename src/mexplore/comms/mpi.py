"""MPI transport: rank 0 is the master, every other rank a worker.

This is the only module that imports mpi4py. Sends are non-blocking (``isend``) so that a
large message to a worker busy in a long task can never stall the master; receives use
matched probes, so a poll that finds nothing returns at once and the caller backs off
instead of spinning inside MPI.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import mpi4py

mpi4py.rc.thread_level = "funneled"  # only the main thread of a rank calls MPI
from mpi4py import MPI  # noqa: E402

from .messages import Message  # noqa: E402

_PRUNE_AT = 64


class _Sends:
    """Keeps isend requests alive until they complete, pruning finished ones now and then."""

    def __init__(self) -> None:
        self._requests: list[Any] = []

    def add(self, request: Any) -> None:
        self._requests.append(request)
        if len(self._requests) >= _PRUNE_AT:
            self._requests = [r for r in self._requests if not r.Test()]

    def wait_all(self) -> None:
        MPI.Request.Waitall(self._requests)
        self._requests.clear()


class MpiMasterEnd:
    """The master's end on rank 0 of ``comm``. ``hosts`` maps each worker to the node it
    said it runs on and ``gpus`` to its GPU (or None), gathered once, as every rank starts:
    the resource map of the job."""

    def __init__(self, host: str, comm: Any = None) -> None:
        self.comm = comm or MPI.COMM_WORLD
        self.workers = list(range(1, self.comm.Get_size()))
        places = self.comm.gather((host, None), root=0)[1:]
        self.hosts: dict[int, str] = {worker: place[0] for worker, place in zip(self.workers, places)}
        self.gpus: dict[int, str | None] = {worker: place[1] for worker, place in zip(self.workers, places)}
        self._sends = _Sends()
        self._status = MPI.Status()

    def send(self, worker: int, message: Message) -> None:
        self._sends.add(self.comm.isend(message, dest=worker, tag=0))

    def poll(self) -> tuple[int, Message] | None:
        matched = self.comm.improbe(source=MPI.ANY_SOURCE, tag=0, status=self._status)
        if matched is None:
            return None
        return self._status.Get_source(), matched.recv()

    def close(self) -> None:
        self._sends.wait_all()


class MpiWorkerEnd:
    """A worker's end: every message goes to or comes from rank 0. ``host`` is this rank's
    node and ``gpu`` its GPU (or None), told to the master as the job starts."""

    def __init__(self, host: str, gpu: str | None = None, comm: Any = None) -> None:
        self.comm = comm or MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.comm.gather((host, gpu), root=0)
        self._sends = _Sends()

    def task_comm(self, ranks: tuple[int, ...], tag: int) -> Any:
        """A communicator of exactly the world ``ranks`` (in that order: the first is its
        rank 0), made by those ranks alone (``MPI_Comm_create_group``): a parallel task's
        ``ctx.comm``. Free it when the task ends."""
        group = self.comm.Get_group().Incl(list(ranks))
        try:
            return self.comm.Create_group(group, tag % 32768)
        finally:
            group.Free()

    def send(self, message: Message) -> None:
        self._sends.add(self.comm.isend(message, dest=0, tag=0))

    def poll(self) -> Message | None:
        matched = self.comm.improbe(source=0, tag=0)
        return None if matched is None else matched.recv()

    def wait_sent(self) -> None:
        self._sends.wait_all()  # the master polls all the time: a large send completes at once

    def close(self) -> None:
        self._sends.wait_all()


def world_rank() -> int:
    return MPI.COMM_WORLD.Get_rank()


def library_version() -> str:
    return MPI.Get_library_version().splitlines()[0].strip()


def abort_on_error(code: int = 1) -> None:
    """Report the exception being handled and abort every rank of the job.

    Called from an ``except`` block: a rank that dies alone would leave the others waiting
    forever for a message that will never come; ``MPI_Abort`` takes the whole job down.
    Ctrl-C is not a failure: it is reported in one line, without a traceback.
    """
    interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
    if not interrupted:
        traceback.print_exc()
        sys.stderr.write(f"mexplore: rank {world_rank()} failed; aborting the MPI job\n")
    else:
        sys.stderr.write("mexplore: interrupted; run the same command again to resume\n")
    sys.stderr.flush()
    sys.stdout.flush()
    MPI.COMM_WORLD.Abort(130 if interrupted else code)
