"""Python-function models: ``fn(params, ctx)``, imported once per worker and kept loaded.

Loading once matters: a training model can take a minute just to import its framework
(CANDLE measured it), so a worker pays that once, not per task.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..importing import load_target
from ..types import Result, Status, Task
from .context import Context
from .outcome import interpret


@dataclass(frozen=True, slots=True)
class PythonModelSpec:
    """What a worker needs to build the model: picklable, sent once in the Setup message."""

    target: str
    objectives: tuple[str, ...]
    local_dir: str


class PythonFunctionModel:
    """Runs tasks through a user function; an exception becomes a ``failed`` result."""

    def __init__(self, spec: PythonModelSpec, rank: int, host: str) -> None:
        self.function = load_target(spec.target)
        if not callable(self.function):
            raise TypeError(f"{spec.target} is not callable")
        self.objectives = spec.objectives
        self.rank, self.host = rank, host
        self.local_dir = Path(spec.local_dir)

    def __call__(self, task: Task) -> Result:
        ctx = Context(task.id, task.attempt, self.rank, self.host, self.local_dir)
        started = time.time()
        try:
            returned = self.function(task.params, ctx)
        except (Exception, SystemExit):  # the one boundary where user code may fail
            ended = time.time()
            error = f"rank {self.rank} on {self.host}:\n{traceback.format_exc()}"
            return self._result(task, Status.FAILED, None, {}, error, started, ended)
        ended = time.time()
        status, objective, metrics, error = interpret(returned, self.objectives)
        return self._result(task, status, objective, metrics, error, started, ended)

    def _result(
        self, task: Task, status: Status, objective: Any, metrics: dict[str, Any],
        error: str | None, started: float, ended: float,
    ) -> Result:
        return Result(
            task.id, {}, status, objective, metrics, error,
            started, ended, self.rank, self.host, task.attempt,
        )
