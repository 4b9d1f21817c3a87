"""The Python client of mexplore's algorithm protocol (docs/algorithm-protocol.md).

For an algorithm that runs as its own program (``[algorithm] command = ["{python}", "me.py"]``):
in another Python, in a container, or as a model for a client in another language. It needs
the standard library only, so it can be copied next to the algorithm::

    from mexplore.compat.client import Session

    session = Session()                       # reads the start message
    while True:
        points = propose(session.space, ...)
        results = session.map(points)         # None once the run has ended (budget spent)
        if results is None:
            break
        learn(results)
    session.done()
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any


class Session:
    """One algorithm's side of the protocol: the study it serves, and the calls to drive it.

    Results come as dicts (``id``, ``status``, ``objective``, ``metrics``, ``params``,
    ``error``, ``task_id``); ``id`` numbers submitted points 0, 1, ... in submission order.
    Once mexplore says ``stop`` (the budget is spent) :attr:`stopped` is True, and the calls
    that wait return None.
    """

    def __init__(self, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
        self._in = sys.stdin if stdin is None else stdin
        self._out = sys.stdout if stdout is None else stdout
        self.stopped = False
        self._submitted = 0
        self._early: dict[int, dict[str, Any]] = {}  # results read while waiting for others
        start = self._read()
        if start is None or start.get("type") != "start":
            raise RuntimeError(f"expected mexplore's start message on stdin, got {start!r}")
        self.study: dict[str, Any] = start
        self.space: dict[str, dict[str, Any]] = start["space"]
        self.constants: dict[str, Any] = start["constants"]
        self.budget: int | None = start["budget"]
        self.workers: int = start["workers"]
        self.seed: int | None = start["seed"]
        self.options: dict[str, Any] = start["options"]

    def submit(self, points: Iterable[dict[str, Any]], priority: float = 0, kind: str | None = None) -> list[int]:
        """Queue points as tasks (higher priority first); returns their ids."""
        points = list(points)
        message: dict[str, Any] = {"type": "submit", "points": points, "priority": priority}
        if kind is not None:
            message["kind"] = kind
        self._send(message)
        first, self._submitted = self._submitted, self._submitted + len(points)
        return list(range(first, self._submitted))

    def results(self) -> Iterator[dict[str, Any]]:
        """Results as they come, until the run stops."""
        while (result := self.next_result()) is not None:
            yield result

    def next_result(self) -> dict[str, Any] | None:
        """The next finished task, waiting for it; None once the run has stopped."""
        if self._early:
            return self._early.pop(next(iter(self._early)))
        while not self.stopped:
            message = self._read()
            if message is None or message.get("type") == "stop":
                self.stopped = True
            elif message.get("type") == "result":
                return message
        return None

    def map(self, points: Iterable[dict[str, Any]], priority: float = 0) -> list[dict[str, Any]] | None:
        """Submit points and wait for all their results, in the order given; None if the run
        stops first."""
        ids = self.submit(points, priority)
        wanted = set(ids)
        got: dict[int, dict[str, Any]] = {i: self._early.pop(i) for i in list(self._early) if i in wanted}
        while len(got) < len(ids):
            message = self._read() if not self.stopped else None
            if message is None or message.get("type") == "stop":
                self.stopped = True
                return None
            if message.get("type") == "result":
                (got if message["id"] in wanted else self._early)[message["id"]] = message
        return [got[i] for i in ids]

    def set_priorities(self, ids: list[int], priorities: list[float]) -> None:
        self._send({"type": "priority", "ids": list(ids), "priorities": list(priorities)})

    def cancel(self, ids: list[int]) -> None:
        """Withdraw waiting tasks, stop running ones; each ends with status cancelled."""
        self._send({"type": "cancel", "ids": list(ids)})

    def done(self) -> None:
        """The search is over: tasks still waiting do not run."""
        self._send({"type": "done"})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._out.write(json.dumps(message) + "\n")
            self._out.flush()
        except BrokenPipeError:
            if not self.stopped:  # after stop, mexplore may have stopped reading: nothing is lost
                raise

    def _read(self) -> dict[str, Any] | None:
        line = self._in.readline()
        return json.loads(line) if line.strip() else None
