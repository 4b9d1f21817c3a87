"""EMEWS EQ/SQL's task API over the IoC queue: no database, no worker pool to start.

An EQ/SQL model-exploration script submits JSON payloads to a PostgreSQL queue and waits on
futures while worker pools pop the tasks. Here the same calls drive the run's IoC queue:
the script's body becomes ``run(queue, space, options)`` (``[algorithm] name =
"me.py:run"``), and ``init_task_queue(...)`` returns this face over the run's queue (the
database arguments are accepted and ignored). What maps to what:

- ``submit_task(exp_id, eq_type, payload, priority, tag)``: ``payload`` is a JSON object,
  the task's params; ``eq_type`` picks the task kind (``eq_types={1: "train"}`` given to
  ``init_task_queue``; unmapped types are the study's objective kind);
- ``Future.result(delay, timeout)`` returns ``(ResultStatus.SUCCESS, json_text)``, the text
  being the objective (or an object of objectives and metrics); a task that failed, timed
  out or was stopped gives ``(ResultStatus.FAILURE, EQ_ABORT)``, and a wait that outlasts
  ``timeout`` ``(ResultStatus.FAILURE, EQ_TIMEOUT)``, as EQ/SQL does. ``future.mexplore``
  is the IoC queue's future, whose ``result()`` says why;
- priorities, ``as_completed``, ``pop_completed``, ``cancel_tasks``, ``get_status``,
  ``are_queues_empty`` behave as EQ/SQL documents them, without polling a database;
- ``stop_worker_pool`` and ``close`` do nothing: the run ends the workers. Tasks still
  waiting when ``run()`` returns still run (a database would keep them too); call
  ``clear_queues()`` first to withdraw them.

When the study's budget is spent, waiting on a task that will never run raises
:class:`~mexplore.errors.BudgetSpent`, which ends the script as a normal end of the run.
"""

from __future__ import annotations

import itertools
import json
import math
import weakref
from collections.abc import Generator, Iterable, Mapping
from enum import IntEnum
from typing import Any

from ..errors import BudgetSpent
from ..queue.futures import Future as QueueFuture
from ..queue.futures import TaskQueue as IoCQueue
from ..queue.futures import running_queue
from ..types import Status

EQ_ABORT = "EQ_ABORT"
EQ_TIMEOUT = "EQ_TIMEOUT"
EQ_STOP = "EQ_STOP"


class ResultStatus(IntEnum):
    SUCCESS = 0
    FAILURE = 1


class TaskStatus(IntEnum):
    QUEUED = 0
    RUNNING = 1
    COMPLETE = 2
    CANCELED = 3
    REQUEUED = 4


class Future:
    """One submitted task, as EQ/SQL's ``Future``: ``eq_task_id``, ``tag``, ``result()``,
    ``status``, ``priority`` (get and set), ``cancel()``, ``done()``, ``worker_pool``."""

    def __init__(self, queue: TaskQueue, eq_task_id: int, future: QueueFuture, tag: str | None, eq_type: int) -> None:
        self.eq_task_id, self.tag, self.eq_type = eq_task_id, tag, eq_type
        self.mexplore = future
        """The IoC queue's future of this task (its :class:`~mexplore.types.Result`, reports, stop)."""
        self._queue = queue

    def result(self, delay: float = 0.5, timeout: float | None = 2.0) -> tuple[ResultStatus, str]:
        """``(SUCCESS, json_text)`` once the task has run; ``(FAILURE, EQ_TIMEOUT)`` if it has
        not within ``timeout`` seconds (None: wait as long as it takes); ``delay`` is unused:
        nothing is polled."""
        try:
            result = self.mexplore.result(timeout)
        except TimeoutError:
            return ResultStatus.FAILURE, EQ_TIMEOUT
        if result.status is not Status.OK:
            return ResultStatus.FAILURE, EQ_ABORT
        return ResultStatus.SUCCESS, _payload(result.objective, result.metrics, self._queue.objectives)

    @property
    def status(self) -> TaskStatus:
        if not self.mexplore.done():
            return TaskStatus.QUEUED if self.mexplore.status == "queued" else TaskStatus.RUNNING
        return TaskStatus.CANCELED if self._cancelled() else TaskStatus.COMPLETE

    def _cancelled(self) -> bool:
        try:
            return self.mexplore.result(0).status is Status.CANCELLED
        except BudgetSpent:  # it never ran
            return True

    @property
    def worker_pool(self) -> str | None:
        """The pool (task kind) running or that ran the task; None while it waits."""
        if self.mexplore.status == "queued":
            return None
        return self.mexplore.kind or "default"

    @property
    def priority(self) -> int:
        return self.mexplore.priority

    @priority.setter
    def priority(self, new_priority: int) -> None:
        self._queue.update_priorities([self], new_priority)

    def cancel(self) -> bool:
        """Withdraw the task if no worker has it yet."""
        return self.mexplore.cancel()

    def done(self) -> bool:
        return self.mexplore.done()


class TaskQueue:
    """EQ/SQL's task queue (``LocalTaskQueue``'s calls) over the run's IoC queue."""

    def __init__(self, queue: IoCQueue, eq_types: Mapping[int, str] | None = None) -> None:
        self.queue = queue
        self.objectives = queue.info.objectives
        self._kinds = {int(eq_type): kind for eq_type, kind in (eq_types or {}).items()}
        for kind in self._kinds.values():
            if kind not in queue.info.kinds and kind != queue.info.kind:
                known = ", ".join(filter(None, (queue.info.kind, *queue.info.kinds))) or "none"
                raise ValueError(f"eq_types maps to {kind!r}, which is not a kind of the study (its kinds: {known})")
        self._ids = _task_ids.setdefault(queue, itertools.count(1))  # one numbering per run, however many faces

    def submit_task(self, exp_id: str, eq_type: int, payload: str, priority: int = 0,
                    tag: str | None = None) -> tuple[ResultStatus, Future]:
        """Queue one task whose params are the JSON object ``payload``."""
        params = json.loads(payload) if isinstance(payload, str) else payload
        if not isinstance(params, dict):
            raise ValueError(f"submit_task: the payload must be a JSON object of parameter values, not {payload!r}")
        kind = self._kinds.get(eq_type)
        future = self.queue.submit(params, priority, None if kind == self.queue.info.kind else kind)
        eq_task_id = next(self._ids)  # atomic: faces of one run share the count
        return ResultStatus.SUCCESS, Future(self, eq_task_id, future, tag, eq_type)

    def submit_tasks(self, exp_id: str, eq_type: int, payload: list[str], priority: int = 0,
                     tag: str | None = None) -> tuple[ResultStatus, list[Future]]:
        return ResultStatus.SUCCESS, [self.submit_task(exp_id, eq_type, p, priority, tag)[1] for p in payload]

    def as_completed(self, futures: list[Future], pop: bool = False, timeout: float | None = None,
                     n: int | None = None, batch_size: int = 1, sleep: float = 0) -> Generator[Future, None, None]:
        """Futures as they complete, ``batch_size`` at a time, at most ``n`` of them; with
        ``pop``, each is removed from ``futures`` as it is yielded. TimeoutError after
        ``timeout`` seconds without all of them; ``sleep`` is unused: nothing is polled."""
        if (n is not None and n < 1) or batch_size < 1:
            raise ValueError(f"as_completed(n={n!r}, batch_size={batch_size!r}): expected n >= 1 (or None) "
                             "and batch_size >= 1")
        by_inner = {id(f.mexplore): f for f in futures}
        wanted = len(futures) if n is None else min(n, len(futures))
        batch: list[Future] = []
        yielded = 0
        try:
            for inner in self.queue.as_completed([f.mexplore for f in futures], timeout):
                batch.append(by_inner[id(inner)])
                if len(batch) == batch_size or yielded + len(batch) == wanted:
                    for future in batch:
                        if pop:
                            futures.remove(future)
                        yield future
                    yielded += len(batch)
                    batch.clear()
                    if yielded == wanted:
                        return
        except TimeoutError:
            raise TimeoutError(f"as_completed timed out after {timeout} seconds") from None

    def pop_completed(self, futures: list[Future], timeout: float | None = None, sleep: float = 0) -> Future:
        """The first future of ``futures`` to complete, removed from the list."""
        return next(self.as_completed(futures, pop=True, timeout=timeout, n=1))

    def update_priorities(self, futures: list[Future], new_priority: int | list[int]) -> tuple[ResultStatus, list[int]]:
        """One priority for all, or one each; returns the ids of the tasks still waiting, whose
        priority changed."""
        futures = list(futures)
        priorities = list(new_priority) if isinstance(new_priority, Iterable) else [new_priority] * len(futures)
        if len(priorities) != len(futures):
            raise ValueError(f"update_priorities: {len(futures)} futures and {len(priorities)} priorities")
        waiting = [(f, p) for f, p in zip(futures, priorities) if f.mexplore.status == "queued"]
        self.queue.set_priorities([f.mexplore for f, _ in waiting], [p for _, p in waiting])
        return ResultStatus.SUCCESS, [f.eq_task_id for f, _ in waiting]

    def get_priorities(self, futures: Iterable[Future]) -> list[tuple[Future, int]]:
        return [(f, f.priority) for f in futures]

    def get_status(self, futures: Iterable[Future]) -> list[tuple[Future, TaskStatus]]:
        return [(f, f.status) for f in futures]

    def get_worker_pools(self, futures: Iterable[Future]) -> list[tuple[Future, str | None]]:
        return [(f, f.worker_pool) for f in futures]

    def cancel_tasks(self, futures: Iterable[Future]) -> tuple[ResultStatus, list[int]]:
        """Withdraw the tasks no worker has yet; returns the ids of those withdrawn."""
        return ResultStatus.SUCCESS, [f.eq_task_id for f in futures if f.cancel()]

    def are_queues_empty(self, eq_type: int | None = None) -> bool:
        """Whether no task (of ``eq_type``) waits for a worker."""
        if eq_type is None:
            return self.queue.waiting == 0
        kind = self._kinds.get(eq_type)
        return self.queue.waiting_of(None if kind == self.queue.info.kind else kind) == 0

    def stop_worker_pool(self, eq_type: int) -> ResultStatus:
        """Nothing to do: the run's end stops its workers."""
        return ResultStatus.SUCCESS

    def clear_queues(self) -> None:
        """Withdraw every waiting task."""
        self.queue.cancel_waiting()

    def close(self) -> None:
        """Nothing to close: there is no database connection."""


_task_ids: weakref.WeakKeyDictionary[IoCQueue, itertools.count] = weakref.WeakKeyDictionary()


def init_task_queue(*args: Any, eq_types: Mapping[int, str] | None = None, **kwargs: Any) -> TaskQueue:
    """The task queue of the run this algorithm serves, called from its ``run()`` (other
    threads pass the queue first: ``init_task_queue(queue)``). EQ/SQL's arguments
    (``host``, ``user``, ``port``, ``db_name``, ...) are accepted and ignored."""
    queue = args[0] if args and isinstance(args[0], IoCQueue) else running_queue()
    if queue is None:
        raise RuntimeError("init_task_queue serves a mexplore run: call it from the algorithm's run(queue, space, "
                           "options), started by mexplore run, or pass that queue: init_task_queue(queue)")
    return TaskQueue(queue, eq_types)


def _payload(objective: Any, metrics: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """A result as the text a worker pool would have reported: the objective, or an object
    of the objectives and metrics when there are metrics or several objectives."""
    if not metrics and not isinstance(objective, list):
        return json.dumps(_jsonable(objective))
    values = objective if isinstance(objective, list) else [objective]
    return json.dumps({**dict(zip(names, map(_jsonable, values))), **metrics})


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value
