"""Python-function models: ``fn(params, ctx)``, imported once per worker and kept loaded.

Loading once matters: a training model can take a minute just to import its framework
(CANDLE measured it), so a worker pays that once, not per task.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from ..importing import load_target
from ..types import Result, Status, Task
from .context import Context, Pruned, Reporter, Saver
from .outcome import interpret
from .spec import ModelSpec


class PythonFunctionModel:
    """Runs tasks through a user function; an exception becomes a ``failed`` result,
    :class:`Pruned` a ``pruned`` one."""

    def __init__(
        self, spec: ModelSpec, rank: int, host: str, gpu: str | None, saver: Saver | None,
        reporter: Reporter | None,
    ) -> None:
        assert spec.python is not None
        self.function = load_target(spec.python)
        if not callable(self.function):
            raise TypeError(f"{spec.python} is not callable")
        self.objectives = spec.objectives
        self.rank, self.host, self.gpu = rank, host, gpu
        self.local_dir = Path(spec.local_dir)
        self.saver, self.reporter = saver, reporter

    def __call__(self, task: Task) -> Result:
        ctx = Context(task.id, task.attempt, self.rank, self.host, self.local_dir, self.gpu, self.saver, self.reporter)
        started = time.time()
        try:
            returned = self.function(task.params, ctx)
        except Pruned:
            return Result(task.id, {}, Status.PRUNED, None, {}, None, started, time.time(),
                          self.rank, self.host, task.attempt, self.gpu)
        except (Exception, SystemExit):  # the one boundary where user code may fail
            ended = time.time()
            error = f"rank {self.rank} on {self.host}:\n{traceback.format_exc()}"
            return Result(task.id, {}, Status.FAILED, None, {}, error, started, ended,
                          self.rank, self.host, task.attempt, self.gpu)
        ended = time.time()
        status, objective, metrics, error = interpret(returned, self.objectives)
        return Result(task.id, {}, status, objective, metrics, error, started, ended,
                      self.rank, self.host, task.attempt, self.gpu)
