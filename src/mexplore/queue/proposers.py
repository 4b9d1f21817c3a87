"""``[algorithm] proposers = K``: an ``optuna.tpe`` or ``optuna.gp`` search whose proposals
are computed by K processes of their own, ahead of need, instead of by the master.

A model-based sampler takes tens of milliseconds per proposal once it holds thousands of
results (TPE: 44 ms at 5,000), and the master computes one at a time while the workers that
wait for it idle. A thread does not help: the sampler holds the GIL and is the limit
(docs/benchmarks.md). Here each process holds a copy of the algorithm with its own seed
and keeps one proposal ready. When a worker frees, the master hands out a ready proposal
at once and asks its process for the next. K processes make K proposals at a time, on
as many cores as the master's node spares.

Every process holds the same trials. Each task becomes a trial in every copy: its
proposer's own, and a running trial in the others (so TPE's constant liar keeps them apart).
Every result is told to every copy. What differs is the seed, and what each copy had
learned when it computed its proposal. A ready proposal may miss the results of the last
few moments; with one process per worker freeing at a time, that is at most K results.
Those it missed count in its task's ``lag``, as the tasks running when it was made do.
Runs with K > 1 are not repeatable, since which proposal a task gets depends on timing.

A process that dies is left out, with a warning; when none is left, the run stops with an
:class:`~mexplore.errors.AlgorithmError` (finished tasks are kept; a resume starts new
processes). The processes end with the run, and with the master if it is killed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace
from queue import Empty, SimpleQueue
from typing import Any

from ..algorithms.base import Ahead, Algorithm, StudyInfo
from ..errors import AlgorithmError
from ..node import helper_environment
from ..space import Space
from ..types import Result
from .proposer_process import FrameReader, send_frame

REAP_SECONDS = 10  # a process whose output closed has exited, or is about to


class Proposers(Algorithm):
    """The algorithm ``name`` computed by ``count`` proposer processes."""

    learns = True
    prunes = False
    thinks_in_background = True  # it may have nothing ready now and something soon

    def __init__(self, name: str, space: Space, info: StudyInfo, options: dict[str, Any], count: int) -> None:
        super().__init__(space, info)
        self._name = name
        self._ready: SimpleQueue[tuple[_Proposer, int, dict[str, Any], int, float]] = SimpleQueue()
        self._owners: dict[int, tuple[_Proposer, int]] = {}  # task id -> (its proposer, its trial there)
        self._told = 0  # results told, replayed or taught to every process so far
        self._ahead: dict[int, tuple[int, float]] = {}  # task id -> (results its proposal missed, seconds)
        self._proposers: list[_Proposer] = []
        try:
            for index in range(count):
                seed = None if info.seed is None else info.seed + index
                self._proposers.append(_Proposer(index, self._ready))
                self._proposers[-1].send(("start", name, space, replace(info, seed=seed), options))
            for proposer in self._proposers:
                proposer.wait_started()
        except BaseException:
            self.close()
            raise
        self._asked = False  # the first asks wait for the first propose: a replay or warm start goes first

    @property
    def name(self) -> str:
        return self._name

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        self._check_alive()
        if not self._asked:
            self._asked = True
            for proposer in self._proposers:
                proposer.send(("ask",))
        batch: list[dict[str, Any]] = []
        while len(batch) < len(task_ids):
            try:
                proposer, token, params, seen, seconds = self._ready.get_nowait()
            except Empty:
                break
            task_id = task_ids[len(batch)]
            self._owners[task_id] = (proposer, token)
            self._ahead[task_id] = (self._told - seen, seconds)
            proposer.send(("ask",))
            for other in self._proposers:
                if other is not proposer:
                    other.send(("pending", task_id, params))
            batch.append(params)
        return batch

    def computed_ahead(self, task_ids: range) -> Ahead:
        ahead = [self._ahead.pop(task_id, (0, 0.0)) for task_id in task_ids]
        return Ahead([missed for missed, _ in ahead], sum(seconds for _, seconds in ahead) / len(self._proposers))

    def tell(self, results: list[Result]) -> None:
        self._told += len(results)
        owners = [self._owners.pop(result.task_id, (None, 0)) for result in results]
        for proposer in self._proposers:
            proposer.send(("tell", [replace(result, task_id=token) if owner is proposer else result
                                    for result, (owner, token) in zip(results, owners)]))

    def replay(self, results: list[Result]) -> None:
        self._to_every("replay", results)

    def learn(self, results: list[Result]) -> None:
        self._to_every("learn", results)

    def _to_every(self, method: str, results: list[Result]) -> None:
        self._told += len(results)
        for proposer in self._proposers:
            proposer.send((method, results))

    def close(self) -> None:
        for proposer in self._proposers:
            proposer.stop()

    def _check_alive(self) -> None:
        """A proposer's error stops the run; one that died is left out while others live."""
        for proposer in list(self._proposers):
            if proposer.error is not None:
                raise AlgorithmError(f"algorithm {self._name!r}: proposer process {proposer.index} failed:\n"
                                     f"{proposer.error}")
            if proposer.ended:
                self._proposers.remove(proposer)
                print(f"mexplore: warning: proposer process {proposer.index} of {self._name} ended "
                      f"(exit status {proposer.process.returncode}); {len(self._proposers)} left", file=sys.stderr)
        if not self._proposers:
            raise AlgorithmError(f"algorithm {self._name!r}: every proposer process ended; the run stops "
                                 "(resume it to start new ones)")


class _Proposer:
    """One proposer process, and the two threads that talk to it so that the master never
    waits on its pipes: a writer (a process busy computing reads nothing) and a reader."""

    def __init__(self, index: int, ready: SimpleQueue[tuple[_Proposer, int, dict[str, Any], int, float]]) -> None:
        self.index = index
        self.error: str | None = None
        self.ended = False
        self._ready = ready
        self._started = threading.Event()
        self._outbox: SimpleQueue[Any] = SimpleQueue()
        self.process = subprocess.Popen([sys.executable, "-m", "mexplore.queue.proposer_process"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=helper_environment())
        self._threads = [threading.Thread(target=self._write, name=f"proposer-{index}-writer", daemon=True),
                         threading.Thread(target=self._read, name=f"proposer-{index}-reader", daemon=True)]
        for thread in self._threads:
            thread.start()

    def send(self, message: Any) -> None:
        self._outbox.put(message)

    def wait_started(self) -> None:
        self._started.wait()
        if self.error is not None:
            raise AlgorithmError(self.error)
        if self.ended:
            raise AlgorithmError(f"proposer process {self.index} ended as it started "
                                 f"(exit status {self.process.wait()}); its error output says why")

    def stop(self) -> None:
        """Close its input (it ends at once, or after the proposal it computes) and reap it."""
        self._outbox.put(None)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _reap(self) -> None:
        """Its output closed: wait (briefly) for it to exit, so that the warning names its exit
        status, not None (it had closed its pipe but not yet been reaped)."""
        try:
            self.process.wait(timeout=REAP_SECONDS)
        except subprocess.TimeoutExpired:  # it closed its output and lives on: reported as running
            pass

    def _write(self) -> None:
        fd = self.process.stdin.fileno()  # type: ignore[union-attr]
        try:
            while (message := self._outbox.get()) is not None:
                send_frame(fd, message)
        except OSError:  # it died: the reader sees it too
            pass
        finally:
            self.process.stdin.close()  # type: ignore[union-attr]

    def _read(self) -> None:
        reader = FrameReader(self.process.stdout.fileno())  # type: ignore[union-attr]
        try:
            while True:
                message = reader.next()
                if message[0] == "proposal":
                    self._ready.put((self, *message[1:]))
                elif message[0] == "ready":
                    self._started.set()
                else:  # ("error", text): it stops after sending it
                    self.error = message[1]
        except (EOFError, OSError):
            self._reap()
            self.ended = True
        finally:
            self._started.set()
            self.process.stdout.close()  # type: ignore[union-attr]
