"""Typed messages between the master and the workers.

Each kind is its own slotted dataclass, so a handler dispatches on type instead of on integer
tags. Payloads are the shared :mod:`mexplore.types`; nothing here knows about studies.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..types import Result, Task


@dataclass(slots=True)
class Setup:
    """Master -> worker, once: what to run and how to batch replies.

    ``model`` is an opaque, picklable description the worker's model factory understands;
    ``reply_low_water``: reply as soon as no more than this many tasks wait locally;
    ``output_dir`` is where flushes go; ``local_name`` the study's folder under each
    node's local directory (which each worker finds itself: it differs per node);
    ``first_task_id``: this session's tasks have ids from it on (lower ones are an earlier
    session's, whose leftovers on the node may go). ``kinds`` describes the auxiliary
    kinds' models by name, built by a worker when it first gets a task of one.
    """

    model: Any
    reply_low_water: int = 0
    output_dir: str = ""
    local_name: str = "mexplore"
    first_task_id: int = 0
    kinds: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class WorkerFailed:
    """Worker -> master: this worker cannot go on (its model would not load, say)."""

    rank: int
    host: str
    error: str


@dataclass(slots=True)
class TaskBatch:
    """Master -> worker: tasks to run, in order, with the data of the refs in their params
    that this worker has not received yet (``queue.put``), pickled, by ref, and the refs the
    algorithm freed (``queue.free``) that this worker holds, to drop."""

    tasks: list[Task]
    refs: dict[str, bytes] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ResultBatch:
    """Worker -> master: finished tasks since the last reply, with what they shared
    (``ctx.share``), pickled, by task id and name."""

    results: list[Result]
    shared: dict[int, dict[str, bytes]] = field(default_factory=dict)


@dataclass(slots=True)
class IntermediateValue:
    """Worker -> master, while a task runs: an intermediate value (a loss after an epoch)."""

    task_id: int
    step: float
    value: float


@dataclass(slots=True)
class Prune:
    """Master -> worker: stop this running task; the algorithm's pruner judged it hopeless,
    or (``stop``) the algorithm asked for it (``future.stop()``: the task ends ``cancelled``)."""

    task_id: int
    stop: bool = False


@dataclass(slots=True)
class LoadOutput:
    """Worker -> master, while a task runs: it needs what task ``task_id`` saved or shared as
    ``name`` (``ctx.load``), and waits for the :class:`OutputData`."""

    task_id: int
    name: str


@dataclass(slots=True)
class SendOutput:
    """Master -> the worker that ran task ``task_id``: send what it saved as ``name``, from
    its node-local cache, for worker ``requester``."""

    task_id: int
    name: str
    requester: int


@dataclass(slots=True)
class OutputData:
    """An output on its way to a ``ctx.load``: from the worker that holds it to the master
    (for ``requester``), and from the master to that worker. ``data`` is the value pickled,
    or None, and then: ``local``, the asker holds it itself (it ran that task); ``stopping``,
    the run is stopping and will not answer; else ``error`` says why it cannot be had."""

    task_id: int
    name: str
    data: bytes | None = None
    error: str | None = None
    requester: int = -1
    local: bool = False
    stopping: bool = False


@dataclass(slots=True)
class Flush:
    """Master -> worker: copy the node-local cache to the output directory now.

    ``keep``: the task ids whose outputs are worth keeping (``top:K``), or None for all.
    """

    keep: Collection[int] | None = None


@dataclass(slots=True)
class Stop:
    """Master -> worker: no more work; finish what is held (or drop it, if ``abandon``),
    make the final flush with ``keep``, answer :class:`Flushed`, then leave the loop."""

    keep: Collection[int] | None = None
    abandon: bool = False


@dataclass(slots=True, kw_only=True)
class Flushed:
    """Worker -> master: a flush is done; ``path`` is None when there was nothing to keep,
    ``error`` says why it failed (the run goes on; the cache stays on the node). ``final``:
    the answer to :class:`Stop`, after which the worker leaves."""

    rank: int
    path: str | None = None
    tasks: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    final: bool = False


@dataclass(slots=True)
class SignalReceived:
    """Worker -> master: this worker got a signal (walltime is near): stop the run."""

    rank: int
    signum: int


Message = (Setup | WorkerFailed | TaskBatch | ResultBatch | IntermediateValue | Prune | LoadOutput | SendOutput
           | OutputData | Flush | Stop | Flushed | SignalReceived)
