"""Algorithms in any language: ``[algorithm] command = ["Rscript", "me.R"]``.

The program runs as a child of the master and speaks JSON lines (docs/algorithm-protocol.md):
mexplore writes a ``start`` message (the study, its space, budget, workers, seed, output and
options) to its stdin, then a ``result`` message for each finished task, and a ``stop``
message when the run ends first (the budget is spent); the program writes ``submit``
(points, numbered 0, 1, ... across the run in the order submitted), ``priority``,
``cancel`` and ``done`` messages to its stdout. A stdout line that is not a JSON object is
the program's own output and is passed on to the master's stderr; its stderr is the
master's. It is an imperative algorithm like any other: the same budget, and on resume a
program that submits the same points gets their results from the journal at once.

A program that exits non-zero before ``done`` stops the run, naming its exit status;
finished tasks are kept. It runs in a process group of its own, ended with the run, and a
reaper (:mod:`mexplore.models.reaper`) ends it and its children should the master be killed.
"""

from __future__ import annotations

import json
import math
import os
import queue as queues
import signal
import subprocess
import sys
import threading
from importlib import resources
from typing import IO, Any

from ..comms.launcher import on_parent_death
from ..errors import AlgorithmError, BudgetSpent
from ..models.reaper import Reaper
from ..queue.futures import Future, TaskQueue
from ..space import Categorical, Float, Grid, Int, Space
from ..types import Status

STOP_GRACE = 10.0
"""Seconds a program has to exit once its stdin closes (after ``stop`` or ``done``)."""


def r_client() -> str:
    """The path of the R client library, ``source()``-d by R algorithms (also in ``$MEXPLORE_R_CLIENT``)."""
    return str(resources.files("mexplore.compat") / "mexplore.R")


def run_command(queue: TaskQueue, space: Space, options: dict[str, Any]) -> None:
    """A program in any language over JSON lines ([algorithm] command = ["Rscript", "me.R"])."""
    command = [_placeholders(word) for word in options["command"]]
    reaper = Reaper()
    program = _start(command, queue, reaper)
    try:
        session = _Session(queue, program, " ".join(command))
        session.send(start_message(queue, space, {k: v for k, v in options.items() if k != "command"}))
        queue.when_closed(session.stop)
        session.serve()
    finally:
        _kill_group(program)
        reaper.ended(program.pid)
        reaper.close()


run_command.label = lambda options: " ".join(options["command"])  # type: ignore[attr-defined]


def start_message(queue: TaskQueue, space: Space, options: dict[str, Any]) -> dict[str, Any]:
    """What the program is told first: enough to propose points without reading the study file."""
    info = queue.info
    return {
        "type": "start", "budget": info.budget, "workers": info.workers, "seed": info.seed,
        "output": None if info.output is None else str(info.output),
        "objectives": list(info.objectives), "directions": [str(d.value) for d in info.directions],
        "space": {name: _parameter(param) for name, param in space.parameters.items()},
        "constants": dict(space.constants), "kinds": list(info.kinds), "options": options,
    }


def _parameter(param: Float | Int | Categorical | Grid) -> dict[str, Any]:
    if isinstance(param, (Float, Int)):
        table: dict[str, Any] = {"type": "float" if isinstance(param, Float) else "int", "low": param.low,
                                 "high": param.high, "log": param.log}
        if isinstance(param, Int):
            table["step"] = param.step
        return table
    if isinstance(param, Categorical):
        return {"type": "categorical", "choices": list(param.choices)}
    return {"type": "grid", "values": list(param.values())}


def _placeholders(word: str) -> str:
    """``{python}``: this Python (the one mexplore runs in); ``{r_client}``: the R client's path."""
    return word.replace("{python}", sys.executable).replace("{r_client}", r_client())


def _start(command: list[str], queue: TaskQueue, reaper: Reaper) -> subprocess.Popen:
    """The program, in a process group of its own (a wrapper script's children end with
    it; Ctrl-C goes to the run, which ends it), known to a reaper that kills the group
    and every process carrying its mark should the master be killed."""
    env = {**os.environ, "MEXPLORE_R_CLIENT": r_client(), "PYTHONUNBUFFERED": "1", **reaper.environment}
    if queue.info.output is not None:
        env["MEXPLORE_OUTPUT"] = str(queue.info.output)
    reaper.start()
    try:
        program = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                   encoding="utf-8", errors="replace", env=env, start_new_session=True,
                                   preexec_fn=on_parent_death(signal.SIGKILL))
    except OSError as exc:
        reaper.close()
        raise AlgorithmError(f"[algorithm] command {command}: could not start: {exc.strerror or exc}") from None
    reaper.started(program.pid)  # its process group id: it leads a session of its own
    return program


def _kill_group(program: subprocess.Popen) -> None:
    """End the program's whole process group (its children too), then collect it."""
    try:
        os.killpg(program.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    program.wait()


class _Session:
    """One program's conversation: its stdout read on the algorithm's thread, its stdin
    written by a thread of its own from finished futures."""

    def __init__(self, queue: TaskQueue, program: subprocess.Popen, name: str) -> None:
        self.queue, self.program, self.name = queue, program, name
        self.futures: list[Future] = []
        self.outbox: queues.Queue[dict[str, Any] | None] = queues.Queue()
        self.stopped = False
        self.writer = threading.Thread(target=self._write, name="mexplore-algorithm-stdin", daemon=True)
        self.writer.start()

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put(message)

    def serve(self) -> None:
        """Read the program's messages until ``done`` or its end."""
        stdout: IO[str] = self.program.stdout  # type: ignore[assignment]
        done = False
        for line in stdout:
            try:
                message = _message(line)
            except ValueError as exc:
                raise self._refused(line, str(exc)) from None
            if message is None:
                print(f"algorithm: {line.rstrip()}", file=sys.stderr, flush=True)
                continue
            if message.get("type") == "done":
                done = True
                self.queue.cancel_waiting()  # the search is over: what waits does not run
                break
            self._handle(message, line)
        self.outbox.put(None)  # no more results: close its stdin
        self._reap(done)

    def _handle(self, message: dict[str, Any], line: str) -> None:
        kind = message.get("type")
        try:
            if kind == "submit":
                self._submit(message)
            elif kind == "priority":
                futures = self._futures(message["ids"])
                priorities = [_priority(value) for value in message["priorities"]]
                if len(priorities) != len(futures):
                    raise ValueError(f"{len(futures)} ids and {len(priorities)} priorities")
                self.queue.set_priorities(futures, priorities)
            elif kind == "cancel":
                for future in self._futures(message["ids"]):
                    future.stop()
            else:
                raise ValueError("expected a type of submit, priority, cancel or done")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._refused(line, f"{type(exc).__name__}: {exc}") from None

    def _futures(self, ids: Any) -> list[Future]:
        """The futures of the ids a message names: each the number of a submitted point."""
        if not isinstance(ids, list):
            raise TypeError("ids must be a list of point numbers")
        for i in ids:
            if type(i) is not int or not 0 <= i < len(self.futures):
                raise IndexError(f"unknown id {i!r}: the {len(self.futures)} points submitted so far are "
                                 f"numbered 0 to {len(self.futures) - 1}")
        return [self.futures[i] for i in ids]

    def _refused(self, line: str, why: str) -> AlgorithmError:
        self._abort()
        return AlgorithmError(f"[algorithm] command {self.name} sent {line.strip()[:300]!r}: {why} "
                              "(docs/algorithm-protocol.md)")

    def stop(self) -> None:
        """The run ended: tell the program (``stop``), then close its stdin."""
        self.outbox.put({"type": "stop", "reason": "the run ended (its budget is spent, or it was stopped)"})

    def _submit(self, message: dict[str, Any]) -> None:
        points = message["points"]
        if not isinstance(points, list) or not all(isinstance(point, dict) for point in points):
            raise ValueError("points must be a list of objects")
        priority = _priority(message.get("priority", 0))
        for point in points:
            future = self.queue.submit(point, priority, message.get("kind"))
            number = len(self.futures)
            self.futures.append(future)
            future.add_done_callback(lambda done, number=number: self.outbox.put(_result_message(number, done)))

    def _write(self) -> None:
        stdin: IO[str] = self.program.stdin  # type: ignore[assignment]
        while (message := self.outbox.get()) is not None:
            if message.get("type") == "stop" and self.stopped:
                continue
            self.stopped = self.stopped or message.get("type") == "stop"
            try:
                stdin.write(json.dumps(message, default=str) + "\n")
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):  # it exited, or stdin is closed
                break
            if self.stopped:
                break
        try:
            stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def _reap(self, done: bool) -> None:
        """Wait for the program to exit (killed after the grace time); a failure before
        ``done`` stops the run, unless the run was ending anyway."""
        try:
            status = self.program.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self._abort()
            status = self.program.wait()
        if not done and status != 0 and not self.stopped:
            how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
            raise AlgorithmError(f"[algorithm] command {self.name} {how} before it sent done (its stderr is "
                                 "above); finished tasks are kept: fix it and run again to resume")

    def _abort(self) -> None:
        _kill_group(self.program)


def _message(line: str) -> dict[str, Any] | None:
    """A protocol message, or None for a line of the program's own output. A line that
    starts as a message (``{"type"``) and cannot be read raises ValueError: the program
    would wait forever for an answer to it."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        if text.replace(" ", "").startswith('{"type"'):
            raise ValueError(f"a message that is not JSON ({type(exc).__name__})") from None
        return None
    return message if isinstance(message, dict) and "type" in message else None


def _priority(value: Any) -> float:
    """A priority from a message: a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"priority {value!r}: expected a finite number")
    return float(value)


def _result_message(number: int, future: Future) -> dict[str, Any]:
    """A finished task for the program; ``stop`` for one the ended run never ran."""
    try:
        result = future.result(0)
    except BudgetSpent:  # the run ended before it ran
        return {"type": "stop", "reason": "the run ended (its budget is spent, or it was stopped)"}
    return {
        "type": "result", "id": number, "task_id": result.task_id if result.task_id >= 0 else None,
        "status": str(result.status.value), "objective": _finite(result.objective),
        "metrics": _finite(result.metrics), "params": _finite(result.params),
        "error": result.error if result.status is not Status.OK else None,
    }


def _finite(value: Any) -> Any:
    """NaN and infinities, at any depth, as the strings "NaN", "Infinity", "-Infinity"
    (strict JSON, as in the journal)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    return value
