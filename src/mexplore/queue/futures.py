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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from ..algorithms.base import Algorithm, StudyInfo
from ..errors import BudgetSpent
from ..space import Space, point_key
from ..store.results_file import load_output
from ..types import ResizePool, Result, Shape, Status, StopTask, Submission
from .refs import RefStore


class Future:
    """A submitted task's eventual :class:`Result`. ``task_id`` is None until a worker is
    about to get it. :attr:`status` says where it is: ``queued`` (waiting for a worker),
    ``running`` (handed to one) or ``done`` (a result, or it will never run)."""

    def __init__(self, queue: TaskQueue, params: dict[str, Any], priority: float, kind: str | None = None) -> None:
        self.params = params
        self.priority = priority
        self.kind = kind
        self.task_id: int | None = None
        self._queue = queue
        self._result: Result | None = None
        self._never: BudgetSpent | None = None  # set when the run ended before it ran
        self._reports: list[tuple[float, float]] = []
        self.shape: Shape | None = None  # the size submit was given, if any
        self._callbacks: list[Callable[[Future], None]] = []
        self._version = 0  # its live entry in the queue's heap; older entries are stale

    @property
    def status(self) -> str:
        if self._result is not None or self._never is not None:
            return "done"
        return "queued" if self.task_id is None else "running"

    def done(self) -> bool:
        return self._result is not None or self._never is not None

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the result; raises TimeoutError after ``timeout`` seconds, and
        :class:`~mexplore.errors.BudgetSpent` for a task the run ended without running."""
        with self._queue._changed:
            if not self._queue._changed.wait_for(self.done, timeout):
                raise TimeoutError("the task did not finish in time")
        if self._never is not None:
            raise self._never
        assert self._result is not None
        return self._result

    def reports(self) -> list[tuple[float, float]]:
        """The ``(step, value)`` pairs the task reported so far (``ctx.report``,
        ``MEXPLORE_REPORT``), also while it runs."""
        with self._queue._changed:
            return list(self._reports)

    def add_done_callback(self, callback: Callable[[Future], None]) -> None:
        """Call ``callback(future)`` once it is done (at once if it is): from the thread that
        finishes it, the master's, with the queue's lock held, so it must only hand the
        future on (put it in a queue.Queue), never wait."""
        with self._queue._changed:
            if not self.done():
                self._callbacks.append(callback)
                return
        callback(self)

    def _settle(self, result: Result | None = None, never: BudgetSpent | None = None) -> None:
        """It is done: with a result, or never to run. Called with the queue's lock held."""
        self._result, self._never = result, never
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def cancel(self) -> bool:
        """Withdraw the task if no worker has it yet; returns whether it was withdrawn."""
        return self._queue._cancel(self)

    def output(self, name: str) -> Any:
        """What the task shared as ``name`` (``ctx.share``): waits for the result, then
        reads the data by its ref. KeyError if the task shared no such thing."""
        shared = self.result().shared or {}
        if name not in shared:
            raise KeyError(f"task {self.task_id} shared no {name!r} (it shared: {', '.join(shared) or 'nothing'})")
        return self._queue.get(shared[name])

    def stop(self) -> bool:
        """Withdraw the task if it waits, or stop it if it runs: its worker raises
        :class:`~mexplore.errors.Stopped` in a Python model at its next ``ctx.report``, and
        kills a command's process group at once; it ends as ``cancelled``. Returns False
        for a task already done."""
        return self._queue._stop(self)


class TaskQueue:
    """What an imperative algorithm receives as ``queue``.

    Thread-safe: several threads (agents) may submit, wait, reprioritize and stop at once;
    every method takes the queue's one lock, and waits release it."""

    def __init__(self, info: StudyInfo | None = None, constants: Mapping[str, Any] | None = None) -> None:
        self.info = StudyInfo() if info is None else info
        """The study (objectives, directions, budget, workers, output, seed)."""
        self._constants = dict(constants or {})
        output = self.info.output
        self.refs = RefStore(None if output is None else partial(load_output, output))
        """Data by reference (:mod:`.refs`): the master sends it with the tasks whose params hold a ref."""
        self._changed = threading.Condition()
        self._heaps: dict[str | None, list[tuple[float, int, int, Future]]] = {}  # by kind: (-priority, order, version, future)
        self._queued = 0  # futures waiting in the heap (it also holds stale entries)
        self._order = itertools.count()
        self._dispatched: dict[int, Future] = {}  # by task id, until its result comes
        self._replayed: dict[str, list[Result]] = {}
        self._feeds: list[ResultFeed] = []
        self._steering: list[StopTask | ResizePool] = []  # the algorithm's requests, for the master
        self._taken = 0  # tasks handed out or answered from the journal: what the budget counts
        self._closed = False
        self._on_close: list[Callable[[], None]] = []
        self._pools: dict[str, int] = {}

    # -- the algorithm's side -----------------------------------------------------------
    def submit(self, params: dict[str, Any], priority: float = 0, kind: str | None = None, *,
               ranks: int | None = None, nodes: int | None = None, gpus: int | None = None) -> Future:
        """Queue one evaluation; higher ``priority`` runs first. Returns at once. The
        constants of ``[space]`` are added to ``params`` (a value given there wins).

        ``kind`` names an auxiliary kind (``[models.<kind>]``, a surrogate's training):
        its params are free-form (any JSON-able dict), and its tasks are outside the budget.
        ``ranks``, ``nodes`` and ``gpus`` size this task (docs/parallel-tasks.md), in a study
        whose tasks are placed (``[model] ranks`` set, even to 1); what is not given is the
        least: one rank, as few nodes as hold it, no GPU."""
        if kind is not None and kind not in self.info.kinds:
            known = ", ".join(self.info.kinds) or "none"
            raise ValueError(f"submit(kind={kind!r}): the study has no [models.{kind}] (its auxiliary kinds: {known})")
        shape = None if ranks is None and nodes is None and gpus is None else self._shape(ranks, nodes, gpus)
        constants = self._constants if kind is None else self.info.kind_constants.get(kind, {})
        future = Future(self, {**constants, **params}, priority, kind)
        future.shape = shape
        with self._changed:
            replayed = self._take_replayed(kind, future.params) if self._replayed else None
            if replayed is not None:
                future._settle(replayed)
                self._taken += kind is None
                self._to_feeds(replayed)
                self._changed.notify_all()
            elif self._closed:
                future._never = _never_runs(self.info)  # before anyone could wait on it
            else:
                self._push(future)
                self._queued += 1
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
        """Give every task of ``futures`` not yet handed to a worker this priority."""
        with self._changed:
            for future in futures:
                self._reprioritize(future, priority)

    def set_priorities(self, futures: Iterable[Future], priorities: Iterable[float]) -> None:
        """Give each task of ``futures`` not yet handed to a worker its own priority, in one
        call: O(log n) per future (10,000 at once take milliseconds)."""
        futures, priorities = list(futures), list(priorities)
        if len(futures) != len(priorities):
            raise ValueError(f"set_priorities got {len(futures)} futures and {len(priorities)} priorities")
        with self._changed:
            for future, priority in zip(futures, priorities):
                self._reprioritize(future, priority)

    def _shape(self, ranks: int | None, nodes: int | None, gpus: int | None) -> Shape:
        """A task's size as ``submit`` was given it; ValueError naming what is wrong."""
        if not self.info.placed:
            raise ValueError(f"submit(ranks={ranks}, nodes={nodes}, gpus={gpus}): this study's tasks are not placed "
                             "on worker slots; set [model] ranks (the default size, e.g. ranks = 1) to size them here")
        for name, value, least in (("ranks", ranks, 1), ("nodes", nodes, 0), ("gpus", gpus, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ValueError(f"submit({name}={value!r}): expected an integer >= {least}")
        return Shape(ranks=ranks or 1, nodes=nodes or 0, gpus=gpus or 0)

    def put(self, obj: Any) -> str:
        """Keep ``obj`` (any picklable object: arrays, bytes, a model) on the master and
        return its ref, a short string to put in tasks' params: a task reads the object
        with ``ctx.get(ref)``. It travels over MPI with the first task of each worker that
        needs it, never through params or the journal."""
        return self.refs.put(obj)

    def get(self, ref: str) -> Any:
        """The object a ref names: one you put, or one a task shared (``result.shared``)."""
        return self.refs.get(ref)

    def free(self, ref: str) -> None:
        """Drop a ref's data on the master, once no task to come needs it."""
        self.refs.free(ref)

    @property
    def budget_left(self) -> int | None:
        """Tasks the study's budget still allows (None without a budget): those not yet
        handed to a worker or answered from the journal of a resumed run."""
        if self.info.budget is None:
            return None
        with self._changed:
            return max(self.info.budget - self._taken, 0)

    @property
    def pools(self) -> dict[str, int]:
        """The workers of each pool now, by kind name, with ``(shared)`` for those no pool
        holds: as the master last told it (a resize shows once idle workers have moved).
        Empty in a study without ``[pools]``."""
        with self._changed:
            return dict(self._pools)

    def resize(self, kind: str, workers: int) -> None:
        """Give the pool of ``kind`` (``[pools]``) ``workers`` workers: idle ones move at
        once, busy ones as they finish their task. Returns at once."""
        known = (self.info.kind, *self.info.kinds)
        if kind not in known:
            raise ValueError(f"resize({kind!r}): expected one of the study's kinds {', '.join(map(str, known))}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"resize({kind!r}, {workers!r}): expected a worker count >= 0")
        with self._changed:
            self._steering.append(ResizePool(kind, workers))

    # -- the heaps, one per kind: lazy removal, so a priority change or a cancel costs O(log n)
    def _push(self, future: Future) -> None:
        """Put ``future`` in its kind's heap (again: an earlier entry of it becomes stale)."""
        future._version += 1
        entry = (-future.priority, next(self._order), future._version, future)
        heapq.heappush(self._heaps.setdefault(future.kind, []), entry)

    def _reprioritize(self, future: Future, priority: float) -> None:
        future.priority = priority
        if future.task_id is None and not future.done() and future._queue is self:
            self._push(future)  # the old entry is now stale
            heap = self._heaps[future.kind]
            if len(heap) > 2 * self._queued + 64:
                heap[:] = [entry for entry in heap if entry[2] == entry[3]._version]
                heapq.heapify(heap)

    def _pop(self, kinds: frozenset[str | None] | None = None) -> Future | None:
        """The highest-priority waiting future (of one of ``kinds``, None: any kind)."""
        best: list | None = None
        for kind, heap in self._heaps.items():
            if kinds is not None and kind not in kinds:
                continue
            while heap and not _live(heap[0]):
                heapq.heappop(heap)
            if heap and (best is None or heap[0] < best[0]):
                best = heap
        if best is None:
            return None
        self._queued -= 1
        return heapq.heappop(best)[3]

    def _take_replayed(self, kind: str | None, params: dict[str, Any]) -> Result | None:
        """A finished result of the resumed run for these params, each used once."""
        key = _replay_key(kind, params)
        copies = self._replayed.get(key)
        if not copies:
            return None
        result = copies.pop()
        if not copies:
            del self._replayed[key]
        return result

    # -- the engine's side --------------------------------------------------------------
    def dispatch(self, task_ids: range, kinds: frozenset[str | None] | None = None) -> list[dict[str, Any] | Submission]:
        """The highest-priority submitted points (of ``kinds`` only, when given: those
        some free worker runs), to become the tasks ``task_ids``: an auxiliary kind's as a
        :class:`~mexplore.types.Submission`."""
        taken: list[dict[str, Any] | Submission] = []
        with self._changed:
            while len(taken) < len(task_ids) and (future := self._pop(kinds)) is not None:
                future.task_id = task_ids[len(taken)]
                self._dispatched[future.task_id] = future
                if future.kind is None and future.shape is None:
                    taken.append(future.params)
                else:
                    taken.append(Submission(future.params, future.kind, future.shape))
                self._taken += future.kind is None
            if taken:
                self._changed.notify_all()  # their status is now running
        return taken

    def resolve(self, results: Iterable[Result]) -> None:
        """Finished results: each resolves the future of its task id (and reaches the feeds)."""
        with self._changed:
            for result in results:
                future = self._dispatched.pop(result.task_id, None)
                if future is not None:
                    future._settle(result)
                    self._to_feeds(result)
            self._changed.notify_all()

    def feed(self, kind: str | None = None) -> ResultFeed:
        """From now on, every result of ``kind`` (its name; None: every kind) that resolves
        a future, a resumed run's replayed ones included, in the order they come."""
        with self._changed:
            feed = ResultFeed(self, None if kind is None else _kind_key(kind, self.info))
            self._feeds.append(feed)
        return feed

    def wake(self) -> None:
        """Wake every wait on the queue, so it looks again at what it waits for."""
        with self._changed:
            self._changed.notify_all()

    def _to_feeds(self, result: Result) -> None:
        for feed in self._feeds:
            if feed.kind is None or feed.kind == (result.kind or ""):
                feed.items.append(result)

    def reported(self, task_id: int, step: float, value: float) -> None:
        """An intermediate value of a running task, for its future's :meth:`Future.reports`."""
        with self._changed:
            if (future := self._dispatched.get(task_id)) is not None:
                future._reports.append((step, value))

    @property
    def waiting(self) -> int:
        """Submitted tasks not yet handed to a worker."""
        return self._queued

    def waiting_of(self, kind: str | None) -> int:
        """Submitted tasks of ``kind`` (None: the objective kind) not yet handed to a worker."""
        with self._changed:
            return sum(_live(entry) for entry in self._heaps.get(kind, ()))

    def cancel_waiting(self) -> int:
        """Withdraw every task not yet handed to a worker; returns how many."""
        with self._changed:
            withdrawn = 0
            while (future := self._pop()) is not None:
                future._settle(_cancelled(future.params))
                withdrawn += 1
            self._changed.notify_all()
        return withdrawn

    def take_steering(self) -> list[StopTask | ResizePool]:
        """What the algorithm asked of the master since the last call: tasks to stop, pools to resize."""
        with self._changed:
            steering, self._steering = self._steering, []
        return steering

    def _cancel(self, future: Future) -> bool:
        with self._changed:
            if future.task_id is not None or future.done():
                return False
            future._version += 1  # its heap entry is stale
            self._queued -= 1
            future._settle(_cancelled(future.params))
            self._changed.notify_all()
            return True

    def _stop(self, future: Future) -> bool:
        with self._changed:
            if future.done():
                return False
            if future.task_id is None:
                return self._cancel(future)
            self._steering.append(StopTask(future.task_id))
            return True

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the run ends (budget spent, stopped, algorithm done), with
        the queue's lock held: it must only hand the news on, never wait."""
        with self._changed:
            if not self._closed:
                self._on_close.append(callback)
                return
        callback()

    def _close(self) -> None:
        """The run ends: every future not done will never run (waiting on it raises
        BudgetSpent), and new work is refused the same way."""
        with self._changed:
            self._closed = True
            for callback in self._on_close:
                callback()
            self._on_close.clear()
            never = _never_runs(self.info)
            while (future := self._pop()) is not None:
                future._settle(never=never)
            for future in self._dispatched.values():
                future._settle(never=never)
            self._dispatched.clear()
            self._changed.notify_all()


class ResultFeed:
    """Results as they come (:meth:`TaskQueue.feed`), taken in batches by a blocking wait."""

    def __init__(self, queue: TaskQueue, kind: str | None) -> None:
        self.queue, self.kind = queue, kind  # kind: "" for the objective kind, None for all
        self.items: deque[Result] = deque()

    def take(self, n: int, stop: Callable[[], bool]) -> list[Result] | None:
        """The next ``n`` results, waiting for them; None once ``stop()`` is true or the
        run has ended (then no more will come)."""
        with self.queue._changed:
            self.queue._changed.wait_for(lambda: len(self.items) >= n or stop() or self.queue._closed)
            if len(self.items) < n:
                return None
            return [self.items.popleft() for _ in range(n)]


def _kind_key(kind: str, info: StudyInfo) -> str:
    """How a feed names a kind: "" for the objective kind (whose results carry no kind)."""
    return "" if kind == info.kind else kind


def _live(entry: tuple[float, int, int, Future]) -> bool:
    """Whether a heap entry is its future's current one, for a future still waiting."""
    future = entry[3]
    return entry[2] == future._version and future.task_id is None and not future.done()


def _replay_key(kind: str | None, params: dict[str, Any]) -> str:
    """Which journaled result answers a submission: same kind, same params."""
    return point_key(params) if kind is None else f"{kind}\0{point_key(params)}"


def _cancelled(params: dict[str, Any]) -> Result:
    return Result(task_id=-1, status=Status.CANCELLED, params=params, error="cancelled")


def _never_runs(info: StudyInfo) -> BudgetSpent:
    spent = f"its budget of {info.budget} tasks is spent" if info.budget is not None else "it was stopped"
    return BudgetSpent(f"the run ended ({spent}) before this task ran: it never will")


_running = threading.local()


def running_queue() -> TaskQueue | None:
    """The queue of the imperative algorithm whose thread calls this (its ``run``), for
    faces that find it without being handed it, as EQ/SQL's ``init_task_queue`` does."""
    return getattr(_running, "queue", None)


class ImperativeAlgorithm(Algorithm):
    """Runs ``run(queue, space, options)`` in a master thread and serves its queue as ask/tell.

    On resume, the journal's results are kept aside: a deterministic ``run`` that submits
    the same points again gets them back at once, without a worker running them twice.

    Such a function is taken to learn from its results (the ``async`` policy then hands
    workers one task each) unless it says otherwise with an attribute: ``run.learns =
    False`` after its ``def``, for a sweep that submits points whatever comes back.
    """

    thinks_in_background = True
    steers = True
    proposes_kinds = True
    learns = property(lambda self: bool(getattr(self._run, "learns", True)))

    def __init__(
        self,
        run: Callable[[TaskQueue, Space, dict[str, Any]], Any],
        space: Space,
        info: StudyInfo | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space, info)
        self.queue = TaskQueue(self.info, space.constants)
        self.error: BaseException | None = None
        self._options = {**options, "seed": self.seed}
        self._run = run
        self._thread = threading.Thread(target=self._main, name="mexplore-algorithm", daemon=True)
        self._started = False

    def _main(self) -> None:
        _running.queue = self.queue
        try:
            self._run(self.queue, self.space, self._options)
        except BudgetSpent:  # it waited on a task the ended run never ran: a normal end
            pass
        except BaseException as exc:  # handed to the master, which stops the run with it
            self.error = exc

    @property
    def refs(self) -> RefStore:
        """The queue's data by reference, which the master sends with the tasks."""
        return self.queue.refs

    def replay(self, results: list[Result]) -> None:
        if any(result.shared for result in results):
            self.queue.refs.in_use = True  # replayed results hold refs of an earlier session
        for result in results:
            self.queue._replayed.setdefault(_replay_key(result.kind, result.params), []).append(result)

    @property
    def name(self) -> str:
        """How messages name it: the function's ``label(options)`` if it has one (what an
        EQ/Py module or a program is), else its name."""
        label = getattr(self._run, "label", None)
        return label(self._options) if callable(label) else getattr(self._run, "__name__", "run")

    def propose(self, task_ids: range) -> list[dict[str, Any] | Submission]:
        self._start()
        return self.queue.dispatch(task_ids)

    def _start(self) -> None:
        """Start the function's thread on the first proposal; raise what it raised."""
        if not self._started:
            self._started = True
            self._thread.start()
        if self.error is not None:
            raise self.error

    def tell(self, results: list[Result]) -> None:
        self.queue.resolve(results)

    def report(self, task_id: int, step: float, value: float) -> bool:
        self.queue.reported(task_id, step, value)
        return False

    def steering(self) -> list[StopTask | ResizePool]:
        return self.queue.take_steering()

    def pools_changed(self, sizes: Mapping[str, int]) -> None:
        with self.queue._changed:
            self.queue._pools = dict(sizes)

    def propose_kinds(self, task_ids: range, kinds: frozenset[str | None]) -> list[dict[str, Any] | Submission]:
        """:meth:`propose`, of the ``kinds`` some free worker runs (a study with ``[pools]``)."""
        self._start()
        return self.queue.dispatch(task_ids, kinds)

    @property
    def finished(self) -> bool:
        if self.error is not None:
            raise self.error
        return self._started and not self._thread.is_alive() and not self.queue.waiting

    def close(self) -> None:
        self.queue._close()
        if self._started:
            self._thread.join(timeout=10)
