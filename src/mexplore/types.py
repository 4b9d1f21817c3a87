"""The shared vocabulary every room speaks: tasks, results and their status.

Slotted dataclasses keep messages small and fast to pickle on the master's hot path; the
status enum replaces stringly-typed flags. Standard library only.
"""

from __future__ import annotations

import enum
import json
import math
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

REF_PREFIX = "mexplore-ref:"
"""What starts a ref: a handle, in a task's params, to data passed by reference (``queue.put``)."""


def refs_in(value: Any) -> Iterable[str]:
    """The refs in a task's params: strings with the ref prefix, at any depth of lists and dicts."""
    if isinstance(value, str):
        if value.startswith(REF_PREFIX):
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from refs_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from refs_in(item)


def pickled(value: Any, what: str) -> bytes:
    """``value`` pickled to travel by reference; ``what`` (``queue.put``, ``ctx.share('w')``)
    names the call in the TypeError that says why something cannot travel."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise TypeError(f"{what}: a {type(value).__name__} cannot be pickled ({type(exc).__name__}: {exc}); refs "
                        "carry data (arrays, bytes, dicts, a model's weights), not open files, locks, generators "
                        "or lambdas") from None


@dataclass(frozen=True, slots=True)
class JsonValue:
    """A value to save as JSON text (a shared dict or list): the cache keeps the text, and
    reading the output gives the value back."""

    text: str


def json_text(value: Any) -> str | None:
    """``value`` as JSON text, or None when JSON would not give it back as it is: not a JSON
    value (a set, an object), or one JSON changes (a tuple, int keys, NaN)."""
    try:
        text = json.dumps(value, allow_nan=False)
        return text if json.loads(text) == value else None
    except (TypeError, ValueError, RecursionError):
        return None


def output_ref(task_id: int, name: str) -> str:
    """The ref of what task ``task_id`` shared as ``name`` (``ctx.share``)."""
    return f"{REF_PREFIX}task/{task_id}/{name}"


def parse_output_ref(ref: str) -> tuple[int, str] | None:
    """(task id, name) of an :func:`output_ref`; None for any other ref (``queue.put``'s)."""
    kind, _, rest = ref.removeprefix(REF_PREFIX).partition("/")
    task_id, _, name = rest.partition("/")
    return (int(task_id), name) if kind == "task" and task_id.isascii() and task_id.isdecimal() and name else None


TABLE_COLUMNS = (
    "id", "kind", "status", "started", "ended", "duration", "rank", "host", "gpu", "attempt", "error",
    "algorithm_time", "lag", "slots", "hosts",
)
"""Columns every row of the results table has besides objectives, ``p:`` params and ``m:``
metrics; an objective may not take one of these names."""


class Status(str, enum.Enum):
    """What became of a task. Only ``ok`` results carry a trustworthy objective."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    PRUNED = "pruned"
    CANCELLED = "cancelled"
    LOST = "lost"


Objective = float | list[float] | None


@dataclass(frozen=True, slots=True)
class Shape:
    """What a parallel task needs: ``ranks`` worker slots, on ``nodes`` whole nodes (0: on
    one node when it fits there, else on as few whole nodes as hold it), and ``gpus``
    distinct GPUs of one node (each worker slot owns one; 0: no requirement)."""

    ranks: int = 1
    nodes: int = 0
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class Group:
    """The worker slots a parallel task was placed on. ``slots`` are world ranks, the
    leader first; ``hosts`` their nodes, in the same order. ``runners`` are the slots the
    task is sent to: all of them for a Python model (each runs the function with the
    task's communicator), the leader alone for a program it launches over them. ``gpus``
    are the GPUs the task was given (``Shape.gpus`` of them, owned by its slots)."""

    slots: tuple[int, ...]
    hosts: tuple[str, ...]
    runners: tuple[int, ...]
    gpus: tuple[str, ...] = ()

    @property
    def leader(self) -> int:
        return self.slots[0]


@dataclass(slots=True)
class Task:
    """One evaluation of the model at one parameter set.

    ``algorithm_time`` is what proposing it cost the master: its share of the ``ask`` that
    returned it, plus of every ``tell`` and ``report`` since the ``ask`` before (with
    ``proposers``, plus its proposal's computing time over the number of processes). ``lag`` is
    how many tasks were proposed and not yet finished when it was: results its proposal
    could not see (what prefetching costs an algorithm that learns).

    ``shape`` and ``group`` are set only in a study whose tasks may span several worker
    slots: what the task needs, and where it was placed (a task going back to the queue
    for a retry is placed again).

    ``kind`` names the auxiliary model (``[models.<kind>]``) the task runs; None for the
    study's objective kind, the one its budget counts."""

    id: int
    params: dict[str, Any]
    attempt: int = 0
    priority: float = 0.0
    algorithm_time: float = 0.0
    lag: int = 0
    shape: Shape | None = None
    group: Group | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class StopTask:
    """An algorithm's request (``future.stop()``): stop the running task ``task_id``."""

    task_id: int


@dataclass(frozen=True, slots=True)
class ResizePool:
    """An algorithm's request (``queue.resize``): give the pool of ``kind`` (its name, the
    objective kind's included) ``workers`` workers."""

    kind: str
    workers: int


@dataclass(frozen=True, slots=True)
class Submission:
    """A proposal that says more than its params: of an auxiliary kind
    (``queue.submit(params, kind="train")``: ``params`` for the ``kind`` model, free-form,
    outside the budget and the ``[space]`` check), or of its own size
    (``queue.submit(params, ranks=8)``: ``shape``). Other proposals stay plain dicts."""

    params: dict[str, Any]
    kind: str | None = None
    shape: Shape | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """Where a task ran: the worker's rank, its host and the GPU it was given (if any)."""

    rank: int
    host: str
    gpu: str | None = None


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What a model's run came to, before it is stamped with where and when it ran."""

    status: Status
    objective: Objective = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failed(cls, error: str, metrics: dict[str, Any] | None = None, status: Status = Status.FAILED) -> Outcome:
        return cls(status=status, metrics=metrics or {}, error=error)


_RECORD_NAMES = {"task_id": "id"}
"""Fields whose journal key differs from the attribute name."""


@dataclass(slots=True, kw_only=True)
class Result:
    """What came back from one task, with where and when it ran.

    ``objective`` is a float (one objective), a list (several) or None (the task did not
    produce one: failed, cancelled...). ``error`` holds the reason or the remote traceback.
    ``reports`` holds the intermediate ``(step, value)`` pairs the model reported while it
    ran. ``reused_from`` is the task whose result this one took instead of running
    (``[cache] reuse``). ``algorithm_time`` is the master's seconds in the algorithm to
    propose it, and ``lag`` the tasks pending when it was proposed (see :class:`Task`).
    ``slots`` and ``hosts`` are the worker ranks a parallel task held and their nodes
    (None for a task of one slot, whose ``rank`` and ``host`` say it). ``kind`` is the
    auxiliary kind the task ran (None: the objective kind). ``shared`` maps what the task
    shared (``ctx.share``) to the refs the algorithm reads them by (``queue.get``).

    Build one with a named constructor: :meth:`ran` on a worker, :meth:`for_task` on the
    master, :meth:`from_record` from the journal. Every field has a default and a journal
    key (:meth:`to_record`), so adding a field is a change to this class alone.
    """

    task_id: int
    status: Status
    params: dict[str, Any] = field(default_factory=dict)
    objective: Objective = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    rank: int = -1
    host: str = ""
    gpu: str | None = None
    attempt: int = 0
    reports: list[tuple[float, float]] = field(default_factory=list)
    reused_from: int | None = None
    algorithm_time: float = 0.0
    lag: int = 0
    slots: list[int] | None = None
    hosts: list[str] | None = None
    kind: str | None = None
    shared: dict[str, str] | None = None

    @classmethod
    def ran(cls, task: Task, place: Place, outcome: Outcome, started: float, ended: float) -> Result:
        """A worker's result of ``task``. It leaves ``params`` out to keep the reply small:
        the master puts the task's own back (:meth:`attach`)."""
        return cls(task_id=task.id, status=outcome.status, objective=outcome.objective,
                   metrics=outcome.metrics, error=outcome.error, started=started, ended=ended,
                   rank=place.rank, host=place.host, gpu=place.gpu, attempt=task.attempt)

    @classmethod
    def for_task(cls, task: Task, status: Status, **fields: Any) -> Result:
        """A result the master makes itself for ``task`` (cancelled, answered from an
        earlier result...): the task's id, params, attempt, algorithm time and lag, then ``fields``."""
        return cls(task_id=task.id, status=status, params=task.params, attempt=task.attempt,
                   algorithm_time=task.algorithm_time, lag=task.lag, kind=task.kind, **fields)

    def attach(self, task: Task, reports: list[tuple[float, float]]) -> None:
        """Make a worker's result whole on the master, which owns it once received: the
        task's params, algorithm time and lag, and the reports that came while it ran. (In
        place: this runs once per task on the master's hot path.)"""
        self.params, self.algorithm_time, self.lag, self.reports = task.params, task.algorithm_time, task.lag, reports
        self.kind = task.kind

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready form written to the journal (one line per finished task).
        ``reused_from``, ``slots``, ``hosts``, ``kind`` and ``shared`` are written only when set."""
        record = _record_of(self)
        record["status"] = self.status.value
        record["algorithm_time"] = round(self.algorithm_time, 7)
        for optional in ("reused_from", "slots", "hosts", "kind", "shared"):
            if record[optional] is None:
                del record[optional]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Result:
        """Inverse of :meth:`to_record`; used when a journal is replayed on resume. A key
        an older journal lacks takes the field's default."""
        values = {name: record[key] for name, key in zip(_FIELD_NAMES, _RECORD_KEYS)
                  if record.get(key) is not None}
        values["task_id"] = int(record["id"])
        values["status"] = Status(record["status"])
        values["reports"] = [tuple(pair) for pair in values.get("reports", [])]
        return cls(**values)


_FIELD_NAMES = tuple(item.name for item in fields(Result))
_RECORD_KEYS = tuple(_RECORD_NAMES.get(name, name) for name in _FIELD_NAMES)


def _compile_record_of() -> Callable[[Result], dict[str, Any]]:
    """A function returning ``{journal key: field value}`` for every field of :class:`Result`,
    compiled once from the fields as one dict display: the master builds a journal line per
    task, and this is twice as fast as building the dict in a loop."""
    entries = ", ".join(f"{key!r}: result.{name}" for name, key in zip(_FIELD_NAMES, _RECORD_KEYS))
    namespace: dict[str, Any] = {}
    exec(f"def record_of(result):\n    return {{{entries}}}\n", namespace)  # noqa: S102 (our own field names)
    return namespace["record_of"]


_record_of = _compile_record_of()


def _pickled_as_values(cls: type, name: str) -> Callable[[tuple[Any, ...]], Any]:
    """Make ``cls`` (a dataclass with slots, sent between ranks once per task) pickle as the
    tuple of its field values, rebuilt by a function compiled for its fields, which this
    module must hold as ``name`` (pickle finds it there). Two to three times faster each way
    than pickle's own way for slots (a dict of their names, then a lookup and a set per field),
    and a third smaller: the master and the workers do it for every task and result."""
    attributes = "".join(f"item.{field_.name}, " for field_ in fields(cls))
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(f"def values(item):\n    return ({attributes})\n"  # noqa: S102 (our own field names)
         f"def rebuilt(values):\n    item = new(cls)\n    {attributes}= values\n    return item\n", namespace)
    values, rebuilt = namespace["values"], namespace["rebuilt"]
    rebuilt.__module__, rebuilt.__name__, rebuilt.__qualname__ = __name__, name, name
    cls.__reduce__ = lambda item: (rebuilt, (values(item),))
    return rebuilt


_rebuilt_task = _pickled_as_values(Task, "_rebuilt_task")
_rebuilt_result = _pickled_as_values(Result, "_rebuilt_result")


def is_finite_number(value: object) -> bool:
    """True for real numbers that are not NaN or infinite (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def error_summary(error: str | None) -> str | None:
    """The last non-empty line of an error text: a traceback's exception, or the reason an
    external model failed. The journal keeps the whole text."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else None
