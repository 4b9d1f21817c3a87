"""The IoC queue that an imperative, EMEWS-style algorithm drives from its own thread.

``run(queue, space, options)`` runs in a thread on the master. It calls ``queue.submit`` /
``queue.map`` / ``queue.as_completed`` as EQ/Py's ``OUT_put``/``IN_get`` or EQ/SQL's futures
would, but with dicts and :class:`~mexplore.types.Result` objects instead of strings or a
database. :class:`ImperativeAlgorithm` turns that thread into the engine's ask/tell: the
master's loop asks it for the highest-priority submitted tasks and tells it the results,
which resolve the futures.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..algorithms.base import Algorithm, StudyInfo
from ..space import Space, point_key
from ..types import Result, Status


class Future:
    """A submitted task's eventual :class:`Result`. ``task_id`` is None until a worker is
    about to get it."""

    def __init__(self, queue: TaskQueue, params: dict[str, Any], priority: float) -> None:
        self.params = params
        self.priority = priority
        self.task_id: int | None = None
        self._queue = queue
        self._result: Result | None = None

    def done(self) -> bool:
        return self._result is not None

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the result; raises TimeoutError after ``timeout`` seconds."""
        with self._queue._changed:
            if not self._queue._changed.wait_for(self.done, timeout):
                raise TimeoutError("the task did not finish in time")
        assert self._result is not None
        return self._result

    def cancel(self) -> bool:
        """Withdraw the task if no worker has it yet; returns whether it was withdrawn."""
        return self._queue._cancel(self)


class TaskQueue:
    """What an imperative algorithm receives as ``queue``. Safe to call from its thread only."""

    def __init__(self, info: StudyInfo | None = None) -> None:
        self.info = StudyInfo() if info is None else info
        """The study (objectives, directions, budget, workers, output, seed)."""
        self._changed = threading.Condition()
        self._heap: list[tuple[float, int, Future]] = []
        self._order = itertools.count()
        self._dispatched: dict[int, Future] = {}  # by task id, until its result comes
        self._replayed: dict[str, list[Result]] = {}
        self._closed = False

    # -- the algorithm's side -----------------------------------------------------------
    def submit(self, params: dict[str, Any], priority: float = 0) -> Future:
        """Queue one evaluation; higher ``priority`` runs first. Returns at once."""
        future = Future(self, dict(params), priority)
        with self._changed:
            replayed = self._take_replayed(future.params) if self._replayed else None
            if replayed is not None:
                future._result = replayed
            elif self._closed:
                future._result = _cancelled(future.params)
            else:
                heapq.heappush(self._heap, (-priority, next(self._order), future))
        return future

    def map(self, params_list: Iterable[dict[str, Any]], priority: float = 0) -> list[Result]:
        """Submit a whole batch and wait for all of it; results in submission order."""
        futures = [self.submit(p, priority) for p in params_list]
        return [f.result() for f in futures]

    def as_completed(self, futures: Iterable[Future], timeout: float | None = None) -> Iterator[Future]:
        """Yield futures as they finish (any order); TimeoutError if none does in time."""
        waiting = list(futures)
        while waiting:
            with self._changed:
                if not self._changed.wait_for(lambda pending=waiting: any(f.done() for f in pending), timeout):
                    raise TimeoutError("no task finished in time")
                ready = [f for f in waiting if f.done()]
                waiting = [f for f in waiting if not f.done()]
            yield from ready

    def set_priority(self, futures: Iterable[Future], priority: float) -> None:
        """Change the priority of tasks not yet handed to a worker."""
        with self._changed:
            for future in futures:
                future.priority = priority
            self._heap = [(-f.priority, n, f) for _, n, f in self._heap]
            heapq.heapify(self._heap)

    def _take_replayed(self, params: dict[str, Any]) -> Result | None:
        """A finished result of the resumed run for these params, each used once."""
        key = point_key(params)
        copies = self._replayed.get(key)
        if not copies:
            return None
        result = copies.pop()
        if not copies:
            del self._replayed[key]
        return result

    # -- the engine's side --------------------------------------------------------------
    def dispatch(self, task_ids: range) -> list[dict[str, Any]]:
        """The highest-priority submitted points, to become the tasks ``task_ids``."""
        taken = []
        with self._changed:
            while self._heap and len(taken) < len(task_ids):
                _, _, future = heapq.heappop(self._heap)
                future.task_id = task_ids[len(taken)]
                self._dispatched[future.task_id] = future
                taken.append(future.params)
        return taken

    def resolve(self, results: Iterable[Result]) -> None:
        """Finished results: each resolves the future of its task id."""
        with self._changed:
            for result in results:
                future = self._dispatched.pop(result.task_id, None)
                if future is not None:
                    future._result = result
            self._changed.notify_all()

    def _cancel(self, future: Future) -> bool:
        with self._changed:
            if future.task_id is not None or future.done():
                return False
            self._heap = [entry for entry in self._heap if entry[2] is not future]
            heapq.heapify(self._heap)
            future._result = _cancelled(future.params)
            self._changed.notify_all()
            return True

    def _close(self) -> None:
        """Cancel everything not yet dispatched and refuse new work (the budget is spent)."""
        with self._changed:
            self._closed = True
            for _, _, future in self._heap:
                future._result = _cancelled(future.params)
            self._heap.clear()
            for future in self._dispatched.values():
                future._result = _cancelled(future.params)
            self._dispatched.clear()
            self._changed.notify_all()


def _cancelled(params: dict[str, Any]) -> Result:
    return Result(task_id=-1, status=Status.CANCELLED, params=params, error="cancelled")


class ImperativeAlgorithm(Algorithm):
    """Runs ``run(queue, space, options)`` in a master thread and serves its queue as ask/tell.

    On resume, the journal's results are kept aside: a deterministic ``run`` that submits
    the same points again gets them back at once, without a worker running them twice.

    Such a function is taken to learn from its results (the ``async`` policy then hands
    workers one task each) unless it says otherwise with an attribute: ``run.learns =
    False`` after its ``def``, for a sweep that submits points whatever comes back.
    """

    thinks_in_background = True
    learns = property(lambda self: bool(getattr(self._run, "learns", True)))

    def __init__(
        self,
        run: Callable[[TaskQueue, Space, dict[str, Any]], Any],
        space: Space,
        info: StudyInfo | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space, info)
        self.queue = TaskQueue(self.info)
        self.error: BaseException | None = None
        self._options = {**options, "seed": self.seed}
        self._run = run
        self._thread = threading.Thread(target=self._main, name="mexplore-algorithm", daemon=True)
        self._started = False

    def _main(self) -> None:
        try:
            self._run(self.queue, self.space, self._options)
        except BaseException as exc:  # handed to the master, which stops the run with it
            self.error = exc

    def replay(self, results: list[Result]) -> None:
        for result in results:
            self.queue._replayed.setdefault(point_key(result.params), []).append(result)

    @property
    def name(self) -> str:
        return getattr(self._run, "__name__", "run")

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        if not self._started:
            self._started = True
            self._thread.start()
        if self.error is not None:
            raise self.error
        return self.queue.dispatch(task_ids)

    def tell(self, results: list[Result]) -> None:
        self.queue.resolve(results)

    @property
    def finished(self) -> bool:
        if self.error is not None:
            raise self.error
        return self._started and not self._thread.is_alive() and not self.queue._heap

    def close(self) -> None:
        self.queue._close()
        if self._started:
            self._thread.join(timeout=10)
