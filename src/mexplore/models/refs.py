"""Data by reference, on a worker: what ``ctx.get`` reads and ``ctx.share`` sends back.

The master sends the data of a task's refs with the task (once per worker and ref, see
:mod:`mexplore.queue.refs`); a worker keeps it for the run, unpickled on first use and
then handed to every task that asks (treat it as read-only). What a task shares leaves
with its result.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from ..types import JsonValue, json_text, output_ref, parse_output_ref, pickled, refs_in


class Outputs(Protocol):
    """Where ``ctx.load`` finds a finished task's output that came with no task
    (``runtime.worker.NodeOutputs``)."""

    def local(self, task_id: int, name: str) -> Any:
        """From this worker's own cache; KeyError when it is not to be read there."""
        ...

    def remote(self, task_id: int, name: str) -> tuple[Any, bytes | None]:
        """Through the master: the value, and its pickled bytes when it came so."""
        ...


class WorkerRefs:
    """The refs a worker holds, and what its tasks shared since the last reply. ``outputs``
    finds an output for ``ctx.load`` that came with no task (None: not available here)."""

    def __init__(self, outputs: Outputs | None = None) -> None:
        self._outputs = outputs
        self._data: dict[str, bytes] = {}
        self._objects: dict[str, Any] = {}
        self._shared: dict[int, dict[str, bytes]] = {}

    def received(self, data: dict[str, bytes]) -> None:
        self._data.update(data)

    def drop(self, refs: Iterable[str]) -> None:
        """Refs the algorithm freed: their data and objects go (tasks to come do not use them)."""
        for ref in refs:
            self._data.pop(ref, None)
            self._objects.pop(ref, None)

    def get(self, ref: str) -> Any:
        if ref not in self._objects:
            data = self._data.get(ref)
            if data is None:
                if (output := parse_output_ref(ref)) is not None and self._outputs is not None:
                    return self.load(*output)  # an earlier session's, which the master does not hold
                raise KeyError(f"{ref!r} did not come with this task: a task reads the refs its own params hold "
                               "(put the ref in the params of the task that reads it)")
            self._objects[ref] = pickle.loads(data)
        return self._objects[ref]

    def holds(self, task_id: int, name: str) -> bool:
        """Whether this worker has task ``task_id``'s output ``name`` without asking the
        master: held already, or in its own cache (then read, and held)."""
        ref = output_ref(task_id, name)
        if ref in self._objects or ref in self._data:
            return True
        if self._outputs is None:
            return False
        try:
            self._objects[ref] = self._outputs.local(task_id, name)
        except KeyError:
            return False
        return True

    def load(self, task_id: int, name: str) -> Any:
        """Task ``task_id``'s output ``name``: held already (it came with a task as a ref, or
        was loaded before), else from this worker's cache or through the master, and then
        kept for the run like a ref's data."""
        ref = output_ref(task_id, name)
        if not self.holds(task_id, name):
            if self._outputs is None:
                raise RuntimeError("ctx.load needs the worker's link to the master, which a task run with "
                                   "isolate = true does not have: have the algorithm pass the output by ref "
                                   "(the task's result.shared), which ctx.get reads")
            self._objects[ref], data = self._outputs.remote(task_id, name)
            if data is not None:
                self._data[ref] = data  # the master counts this worker as holding it: a child may need it
        return self.get(ref)

    def share(self, task_id: int, name: str, value: Any) -> None:
        self._shared.setdefault(task_id, {})[name] = pickled(value, f"ctx.share({name!r})")

    def discard(self, task_id: int) -> None:
        """A task interrupted by a stop signal: what it shared goes with it (it runs again)."""
        self._shared.pop(task_id, None)

    def held_for(self, params: Any) -> dict[str, bytes]:
        """The data of the refs ``params`` hold, for a task run in a child (``isolate``) or
        a program: a task's output that did not come with the task is loaded first."""
        held = {}
        for ref in refs_in(params):
            if ref not in self._data and ref not in self._objects and self._outputs is not None \
                    and (output := parse_output_ref(ref)) is not None:
                self.load(*output)
            if ref in self._data:
                held[ref] = self._data[ref]
            elif ref in self._objects:  # read from this worker's own cache
                held[ref] = self._data[ref] = pickled(self._objects[ref], ref)
        return held

    def shared_by_child(self, task_id: int, shared: dict[str, bytes]) -> None:
        """What a task run in a child shared: it leaves with the task's result."""
        if shared:
            self._shared.setdefault(task_id, {}).update(shared)

    def take_shared(self, task_ids: Iterable[int]) -> dict[int, dict[str, bytes]]:
        """What these tasks shared, to send with their results (and forget here)."""
        if not self._shared:
            return {}
        return {task_id: shared for task_id in task_ids if (shared := self._shared.pop(task_id, None))}


def keep_shared(save: Callable[[int, str, Any], None], task_id: int, name: str, value: Any) -> None:
    """A shared value is also saved (as ``ctx.save`` does), so it outlives the run and a
    resumed run reads it back: an array or bytes as it is, a dict, list, str or number as
    JSON. Anything else lives as long as the run."""
    if isinstance(value, (bytes, bytearray)) or hasattr(value, "dtype"):
        save(task_id, name, value)
    elif (text := json_text(value)) is not None:
        save(task_id, name, JsonValue(text))


REFS_FILE = "refs.pickle"
"""In an isolated task's folder: the data of its refs, written by the worker for the child."""
SHARED_FILE = "shared.pickle"
"""In an isolated task's folder: what the child shared, read back by the worker."""


class FileRefs:
    """``ctx.get`` and ``ctx.share`` in a child process (``isolate = true``): the refs its
    params hold come in ``refs.pickle`` of the task's folder, what it shares goes out in
    ``shared.pickle``, written when the task ends (:meth:`close`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        file = folder / REFS_FILE
        self._refs = WorkerRefs()
        if file.exists():
            self._refs.received(pickle.loads(file.read_bytes()))

    def get(self, ref: str) -> Any:
        return self._refs.get(ref)

    def share(self, task_id: int, name: str, value: Any) -> None:
        self._refs.share(task_id, name, value)

    def load(self, task_id: int, name: str) -> Any:
        return self._refs.load(task_id, name)  # says why a child cannot

    def close(self, task_id: int) -> None:
        shared = self._refs.take_shared([task_id]).get(task_id)
        if shared:
            (self.folder / SHARED_FILE).write_bytes(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL))
