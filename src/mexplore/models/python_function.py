"""Python-function models: ``fn(params, ctx)``, imported once per worker and kept loaded.

Loading once matters: a training model can take a minute just to import its framework
(CANDLE measured it), so a worker pays that once, not per task.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from ..importing import load_target
from ..types import Outcome, Place, Result, Status, Task
from .context import Context, Pruned, Reporter, Saver
from .outcome import USER_ERRORS, interpret, recordable_text
from .spec import ModelSpec


class PythonFunctionModel:
    """Runs tasks through a user function; an exception becomes a ``failed`` result,
    :class:`Pruned` a ``pruned`` one. That includes ``KeyboardInterrupt`` and
    ``GeneratorExit`` raised by the function itself; a real stop signal reaches it as the
    worker's own ``Interrupted``, which passes through (see :data:`.outcome.USER_ERRORS`)."""

    def __init__(
        self, spec: ModelSpec, rank: int, host: str, gpu: str | None, saver: Saver | None,
        reporter: Reporter | None,
    ) -> None:
        assert spec.python is not None
        self.function = load_target(spec.python)
        if not callable(self.function):
            raise TypeError(f"{spec.python} is not callable")
        self.objectives = spec.objectives
        self.place = Place(rank, host, gpu)
        self.local_dir = Path(spec.local_dir)
        self.saver, self.reporter = saver, reporter

    def __call__(self, task: Task) -> Result:
        place = self.place
        ctx = Context(task.id, task.attempt, place.rank, place.host, self.local_dir, place.gpu, self.saver,
                      self.reporter)
        started = time.time()
        try:
            returned = self.function(task.params, ctx)
        except Pruned:
            outcome = Outcome(status=Status.PRUNED)
        except USER_ERRORS:  # the one boundary where user code may fail
            where = f"rank {place.rank} on {place.host}"
            outcome = Outcome.failed(recordable_text(f"{where}:\n{traceback.format_exc()}"))
        else:
            outcome = interpret(returned, self.objectives)
        return Result.ran(task, place, outcome, started, time.time())
