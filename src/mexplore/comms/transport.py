"""The transport seam: what the master and a worker need from whatever carries messages.

Two implementations: :mod:`.mpi` (the real one, the only importer of mpi4py) and
:mod:`.inproc` (threads and queues, for unit tests and single-rank runs). The master and
worker loops are written against these protocols only.
"""

from __future__ import annotations

from typing import Protocol

from .messages import Message


class MasterEnd(Protocol):
    """The master's side: talks to every worker, never blocks. ``hosts`` names each
    worker's node, ``gpus`` its GPU (None: none)."""

    workers: list[int]
    hosts: dict[int, str]
    gpus: dict[int, str | None]

    def send(self, worker: int, message: Message) -> None: ...

    def poll(self) -> tuple[int, Message] | None:
        """The next message from any worker with its sender, or None at once if none waits."""
        ...

    def close(self) -> None:
        """Complete outstanding sends; called once after the last :meth:`send`."""
        ...


class WorkerEnd(Protocol):
    """A worker's side: talks to the master only, never blocks."""

    rank: int

    def send(self, message: Message) -> None: ...

    def poll(self) -> Message | None: ...

    def wait_sent(self) -> None:
        """Complete this end's sends now. A large message moves only while its sender calls
        into the transport, and a worker about to run a task calls nothing until it ends:
        data it sends (a shared output, another task's ``ctx.load``) would wait that long."""
        ...

    def close(self) -> None: ...
