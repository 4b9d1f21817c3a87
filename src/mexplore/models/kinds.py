"""A worker's models when a study has several task kinds (``[models.<kind>]``)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from ..types import Outcome, Place, Result, Task

Model = Callable[[Task], Result]


class ModelsByKind:
    """Runs each task with its kind's model: the objective kind's, built as the worker
    starts, or an auxiliary kind's, built from its spec the first time the worker gets a
    task of that kind (a worker that never trains never imports the trainer). A kind whose
    model cannot be built fails that task with the reason, not the worker: the objective
    kind's tasks go on."""

    def __init__(self, objective: Model, specs: dict[str, Any], build: Callable[[Any], Model], place: Place) -> None:
        self.objective, self.specs, self.build, self.place = objective, specs, build, place
        self._built: dict[str, Model] = {}

    def __call__(self, task: Task) -> Result:
        if task.kind is None:
            return self.objective(task)
        model = self._built.get(task.kind)
        if model is None:
            try:
                model = self._built[task.kind] = self.build(self.specs[task.kind])
            except Exception:
                now = time.time()
                reason = f"could not load the model of kind {task.kind!r}:\n{traceback.format_exc()}"
                return Result.ran(task, self.place, Outcome.failed(reason), now, now)
        return model(task)
