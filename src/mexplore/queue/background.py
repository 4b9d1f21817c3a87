"""An ask/tell algorithm run on a thread of its own, off the master loop's critical path.

TPE takes 44 ms per proposal at 5,000 results. Called from the master loop, four workers
freeing at once cost 176 ms in which no result is received or journaled, no task already
proposed is sent, and the first of the four proposals waits for the last. With
``[algorithm] background = true`` the master hands the algorithm its work through a
queue and goes on: :meth:`Background.propose` returns the proposals computed so far (none
at first) and asks for the rest, which a thread computes one at a time, each sent as soon
as it is ready; ``tell`` queues the results ahead of any later proposal, so a proposal
sees exactly what it would have seen in the loop (the lag does not grow).

The wrapped algorithm is called from that one thread only (``report``, which must answer
at once, waits for the proposal in progress), so it needs no locks of its own. The
thread's time is billed to the proposals as the master bills its own calls
(:meth:`take_thread_seconds`), so ``algorithm_time``, the note that workers waited for
the algorithm, and the policy's view of the algorithm's load stay true. It
numbers its proposals itself; this wrapper maps the engine's task ids to those numbers
in both directions. An exception in the thread stops the run at the master's next call,
with the traceback.
"""

from __future__ import annotations

import queue as queues
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..algorithms.base import Algorithm
from ..types import Result

_STOP = object()


class Background(Algorithm):
    """Runs ``inner`` on a thread: proposals are computed there, one at a time, on demand."""

    thinks_in_background = True

    def __init__(self, inner: Algorithm) -> None:
        super().__init__(inner.space, inner.info)
        self.inner = inner
        self.learns, self.prunes = inner.learns, inner.prunes
        self._work: queues.Queue[Any] = queues.Queue()
        self._ready: deque[tuple[int, dict[str, Any]]] = deque()  # (inner id, params)
        self._computing = 0  # proposals asked of the thread and not ready yet
        self._inner_ids: dict[int, int] = {}  # engine task id -> the inner algorithm's id
        self._next_inner = 0
        self._lock = threading.Lock()  # guards _ready, _computing, _error
        self._calling = threading.Lock()  # held while the inner algorithm runs
        self._error: BaseException | None = None
        self._seconds = 0.0  # the thread's time in the inner algorithm, not yet billed
        self._exhausted = False  # the inner algorithm proposed nothing when asked
        self._thread = threading.Thread(target=self._serve, name="mexplore-algorithm", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.inner.name

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        self._raise_from_thread()
        with self._lock:
            taken = [self._ready.popleft() for _ in range(min(len(task_ids), len(self._ready)))]
            missing = len(task_ids) - len(taken) - self._computing
            if missing > 0 and not self._exhausted:
                self._computing += missing
                for _ in range(missing):
                    self._work.put(("propose", None))
        for task_id, (inner_id, _) in zip(task_ids, taken):
            self._inner_ids[task_id] = inner_id
        return [params for _, params in taken]

    def tell(self, results: list[Result]) -> None:
        self._raise_from_thread()
        self._work.put(("tell", [self._as_inner(result) for result in results]))
        with self._lock:
            self._exhausted = False  # a result may give it something to propose again

    def report(self, task_id: int, step: float, value: float) -> bool:
        self._raise_from_thread()
        inner_id = self._inner_ids.get(task_id)
        if inner_id is None:
            return False
        with self._calling:
            return self.inner.report(inner_id, step, value)

    def replay(self, results: list[Result]) -> None:
        with self._calling:
            self.inner.replay(results)

    def learn(self, results: list[Result]) -> None:
        with self._calling:
            self.inner.learn(results)

    def pools_changed(self, sizes: Mapping[str, int]) -> None:
        with self._calling:
            self.inner.pools_changed(sizes)

    @property
    def finished(self) -> bool:
        with self._lock:
            return self.inner.finished and not self._ready and not self._computing

    def close(self) -> None:
        self._work.put(_STOP)
        self._thread.join()
        self.inner.close()
        self._raise_from_thread()

    def take_thread_seconds(self) -> float:
        with self._lock:
            seconds, self._seconds = self._seconds, 0.0
        return seconds

    def _as_inner(self, result: Result) -> Result:
        inner_id = self._inner_ids.pop(result.task_id, None)
        return result if inner_id is None else replace(result, task_id=inner_id)

    def _serve(self) -> None:
        while (item := self._work.get()) is not _STOP:
            what, results = item
            try:
                started = time.perf_counter()
                with self._calling:
                    if what == "tell":
                        self.inner.tell(results)
                    else:
                        inner_id = self._next_inner
                        proposed = [] if self.inner.finished else self.inner.propose(range(inner_id, inner_id + 1))
                with self._lock:
                    self._seconds += time.perf_counter() - started
                    if what == "tell":
                        continue
                    self._computing -= 1
                    if proposed:
                        self._next_inner += 1
                        self._ready.append((inner_id, proposed[0]))
                    else:  # nothing now: asked again only after a result
                        self._exhausted = True
            except BaseException as error:  # noqa: BLE001  (handed to the master's thread)
                with self._lock:
                    self._error = error
                return

    def _raise_from_thread(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error
