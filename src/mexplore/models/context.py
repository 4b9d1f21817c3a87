"""``ctx``: what a Python model gets besides its parameters."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


def task_dir(local_dir: Path, task_id: int, attempt: int) -> Path:
    """A task's private folder on node-local storage; a retry gets a fresh one."""
    return local_dir / "tasks" / (str(task_id) if attempt == 0 else f"{task_id}.{attempt}")


@dataclass(eq=False)
class Context:
    """Where and as what this task runs.

    ``scratch_dir`` is a private folder on node-local storage, made on first use (so a
    model that never asks pays no mkdir). ``gpu`` is the GPU this worker was given (the
    visible-device variables are already set), or None.
    """

    task_id: int
    attempt: int
    rank: int
    host: str
    local_dir: Path
    gpu: str | None = None

    @cached_property
    def scratch_dir(self) -> Path:
        path = task_dir(self.local_dir, self.task_id, self.attempt)
        path.mkdir(parents=True, exist_ok=True)
        return path
