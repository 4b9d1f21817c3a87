"""The master's bookkeeping as a sans-I/O state machine.

It owns task ids, the budget, the tasks waiting on the master and the tasks each worker
holds. It never touches MPI, files or the algorithm: the master loop feeds it events
(proposals, results, a resumed journal) and acts on what it returns, so the hard parts
(budget exactness, resume, lost tasks) are tested directly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from ..types import Result, Task
from .policies import Policy


class Dispatcher:
    """Tracks every task from proposal to result."""

    def __init__(self, workers: Iterable[int], policy: Policy, budget: int | None) -> None:
        self.policy = policy
        self.budget = budget
        self.finished = 0
        self.next_id = 0
        self.pending: deque[Task] = deque()
        self.running: dict[int, tuple[int, Task]] = {}
        self._held = {w: 0 for w in workers}
        self._free = {w: policy.capacity for w in self._held}

    # -- events -------------------------------------------------------------------------
    def resume(self, results: Iterable[Result]) -> None:
        """Count tasks a previous run finished; new ids continue after the largest."""
        for result in results:
            self.finished += 1
            self.next_id = max(self.next_id, result.task_id + 1)

    def propose(self, params_list: Iterable[dict[str, Any]]) -> None:
        """Queue the algorithm's proposals as new tasks."""
        for params in params_list:
            self.pending.append(Task(self.next_id, params))
            self.next_id += 1

    def complete(self, worker: int, results: Iterable[Result]) -> list[tuple[Task, Result]]:
        """Book results from ``worker``; returns each with the task it answers.

        A result for a task this worker does not hold (a duplicate, or a task recorded
        already) is dropped, so nothing is ever counted twice.
        """
        answered = []
        for result in results:
            entry = self.running.get(result.task_id)
            if entry is None or entry[0] != worker:
                continue
            del self.running[result.task_id]
            self._held[worker] -= 1
            self._free[worker] = self._free.get(worker, 0) + 1
            self.finished += 1
            answered.append((entry[1], result))
        return answered

    # -- decisions ----------------------------------------------------------------------
    def wanted(self) -> int:
        """How many new proposals to ask the algorithm for now."""
        in_flight = len(self.running)
        want = self.policy.to_ask(sum(self._free.values()), len(self.pending), in_flight)
        if self.budget is not None:
            want = min(want, self.budget - self.finished - in_flight - len(self.pending))
        return max(want, 0)

    def assign(self) -> list[tuple[int, list[Task]]]:
        """Hand waiting tasks to workers with free slots, the least loaded first."""
        sends = []
        while self.pending and self._free:
            worker = min(self._free, key=self._held.__getitem__)
            room = self._free.pop(worker)
            batch = [self.pending.popleft() for _ in range(min(room, len(self.pending)))]
            if room > len(batch):
                self._free[worker] = room - len(batch)
            self._held[worker] += len(batch)
            for task in batch:
                self.running[task.id] = (worker, task)
            sends.append((worker, batch))
        return sends

    # -- state --------------------------------------------------------------------------
    @property
    def budget_spent(self) -> bool:
        return self.budget is not None and self.finished >= self.budget

    @property
    def idle(self) -> bool:
        """No task waits on the master and none is out on a worker."""
        return not self.pending and not self.running

    @property
    def in_flight(self) -> int:
        return len(self.running)
