"""Data by reference, on the master: bulky inputs and outputs never go through params or the journal.

``queue.put(obj)`` keeps ``obj`` pickled once and returns a *ref*, a short string such as
``mexplore-ref:put/3`` that a task's params may hold (it is JSON, so the journal records the
handle, not the data). When the master hands a task to a worker, it sends along, in the
same MPI message, the data of every ref in the task's params that this worker has not
received yet; the task reads it with ``ctx.get(ref)``. A task's ``ctx.share(name, value)``
comes back with its result the same way and becomes the ref ``mexplore-ref:task/<id>/<name>``
(``result.shared[name]``), which the algorithm reads with ``queue.get(ref)`` and may pass
to later tasks (a child trained from its parent's weights).

Data moves over MPI: worker to master to worker, never through the parallel filesystem per
task. Each worker receives each ref once. The master keeps the data until the run ends or
``queue.free(ref)``.

Refs are named deterministically: ``put/<n>`` in the order of the ``put`` calls, and
``task/<id>/<name>``. A resumed algorithm that replays its decisions therefore names them
the same. A shared output of an earlier session is read back from the run's output
directory (``ctx.share`` also saves it, as ``ctx.save`` does, when it can be saved).
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..types import REF_PREFIX, Task, output_ref, parse_output_ref, pickled, refs_in


class RefStore:
    """The master's refs: the data of each, pickled, and which worker already has which.
    Thread-safe: the algorithm's threads put and get while the master's loop sends."""

    def __init__(self, load_output: Callable[[int, str], Any] | None = None) -> None:
        self._data: dict[str, bytes] = {}
        self._sent: dict[int, set[str]] = {}  # worker -> refs it holds
        self._drop: dict[int, list[str]] = {}  # worker -> freed refs it still holds, to drop with its next tasks
        self._puts = 0
        self._lock = threading.Lock()
        self._load_output = load_output  # an earlier session's shared output, from the output directory
        self.in_use = False
        """True once a ref exists: only then does the master look for refs in the tasks it sends."""

    def put(self, obj: Any) -> str:
        """Keep ``obj`` (pickled now: later changes to it are not seen) and name it."""
        data = pickled(obj, "queue.put")
        with self._lock:
            ref = f"{REF_PREFIX}put/{self._puts}"
            self._puts += 1
            self._data[ref] = data
            self.in_use = True
        return ref

    def add_shared(self, task_id: int, name: str, data: bytes) -> str:
        """A task's ``ctx.share`` output, as it came back with its result."""
        ref = output_ref(task_id, name)
        with self._lock:
            self._data[ref] = data
            self.in_use = True
        return ref

    def held(self, ref: str) -> bytes | None:
        """A ref's data if this store holds it now (no looking in the output directory)."""
        with self._lock:
            return self._data.get(ref)

    def mark_sent(self, worker: int, ref: str) -> None:
        """``worker`` now holds ``ref`` (sent it another way than with a task: ``ctx.load``)."""
        with self._lock:
            self._sent.setdefault(worker, set()).add(ref)

    def get(self, ref: str) -> Any:
        """The object a ref names (a fresh copy each call)."""
        return pickle.loads(self._bytes(ref))

    def free(self, ref: str) -> None:
        """Forget a ref's data on the master; each worker that holds it drops it with the
        next tasks it is sent (one that gets no more tasks keeps it until the run ends)."""
        with self._lock:
            self._data.pop(ref, None)
            for worker, held in self._sent.items():
                if ref in held:
                    held.discard(ref)
                    self._drop.setdefault(worker, []).append(ref)

    def drops_for(self, worker: int) -> list[str]:
        """The freed refs ``worker`` holds, to send it with its next tasks (and forget here)."""
        with self._lock:
            return self._drop.pop(worker, [])

    @property
    def nbytes(self) -> int:
        """The data held, in bytes."""
        with self._lock:
            return sum(len(data) for data in self._data.values())

    def for_worker(self, worker: int, tasks: Iterable[Task]) -> dict[str, bytes]:
        """The data of the refs in ``tasks``' params that ``worker`` does not have yet. An
        earlier session's shared output that is not held is left out, not waited for: the
        worker asks for it when its task reads it (as ``ctx.load`` does), and the master
        looks for it in the output directory without holding up its loop."""
        with self._lock:
            sent = set(self._sent.setdefault(worker, set()))
        needed: dict[str, bytes] = {}
        for task in tasks:
            for ref in refs_in(task.params):
                if ref not in sent and ref not in needed:
                    data = self.held(ref)
                    if data is None and parse_output_ref(ref) is not None:
                        continue
                    needed[ref] = data if data is not None else self._bytes(ref)
        with self._lock:
            self._sent[worker].update(needed)
        return needed

    def _bytes(self, ref: str) -> bytes:
        with self._lock:
            data = self._data.get(ref)
        if data is not None:
            return data
        loaded = self._from_output(ref)
        with self._lock:
            self._data[ref] = loaded
        return loaded

    def _from_output(self, ref: str) -> bytes:
        """An earlier session's shared output, saved in the output directory (for the
        algorithm's ``queue.get``, on its own thread: it may wait)."""
        output = parse_output_ref(ref)
        if output is None or self._load_output is None:
            raise KeyError(f"{ref}: no such ref held by this run (a put of an earlier session is gone: put it again)")
        task_id, name = output
        deadline = time.monotonic() + OUTPUT_WAIT
        while True:
            try:
                return pickle.dumps(self._load_output(task_id, name), protocol=pickle.HIGHEST_PROTOCOL)
            except (KeyError, OSError) as error:
                if time.monotonic() > deadline:
                    raise KeyError(f"{ref}: task {task_id}'s shared output {name!r} is not held, and not in the "
                                   f"output directory after {OUTPUT_WAIT:.0f} s either ({error}); it is on the node "
                                   "that ran it until a worker of the same node and rank flushes it: resume with "
                                   "the ranks of the run that ran it") from None
            time.sleep(0.1)  # a resumed worker is flushing what a killed run left on its node


OUTPUT_WAIT = 120.0
"""How long an earlier session's shared output is waited for in the output directory (by
the algorithm's ``queue.get``, and the master's answer to a task that reads it): the
workers of a resumed run flush what a killed run left on their nodes as they start
(``runtime/worker.py``), and it may be needed at once."""
