"""Data by reference, on a worker: what ``ctx.get`` reads and ``ctx.share`` sends back.

The master sends the data of a task's refs with the task (once per worker and ref, see
:mod:`mexplore.queue.refs`); a worker keeps it for the run, unpickled on first use and
then handed to every task that asks (treat it as read-only). What a task shares leaves
with its result.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

from ..types import pickled


class WorkerRefs:
    """The refs a worker holds, and what its tasks shared since the last reply."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._objects: dict[str, Any] = {}
        self._shared: dict[int, dict[str, bytes]] = {}

    def received(self, data: dict[str, bytes]) -> None:
        self._data.update(data)

    def get(self, ref: str) -> Any:
        if ref not in self._objects:
            data = self._data.get(ref)
            if data is None:
                raise KeyError(f"{ref!r} did not come with this task: a task reads the refs its own params hold "
                               "(put the ref in the params of the task that reads it)")
            self._objects[ref] = pickle.loads(data)
        return self._objects[ref]

    def share(self, task_id: int, name: str, value: Any) -> None:
        self._shared.setdefault(task_id, {})[name] = pickled(value, f"ctx.share({name!r})")

    def discard(self, task_id: int) -> None:
        """A task interrupted by a stop signal: what it shared goes with it (it runs again)."""
        self._shared.pop(task_id, None)

    def take_shared(self, task_ids: Iterable[int]) -> dict[int, dict[str, bytes]]:
        """What these tasks shared, to send with their results (and forget here)."""
        if not self._shared:
            return {}
        return {task_id: shared for task_id in task_ids if (shared := self._shared.pop(task_id, None))}
