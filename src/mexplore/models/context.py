"""``ctx``: what a Python model gets besides its parameters."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


@dataclass(eq=False)
class Context:
    """Where and as what this task runs.

    ``scratch_dir`` is a private folder on node-local storage, made on first use (so a
    model that never asks pays no mkdir).
    """

    task_id: int
    attempt: int
    rank: int
    host: str
    local_dir: Path

    @cached_property
    def scratch_dir(self) -> Path:
        path = self.local_dir / "tasks" / str(self.task_id)
        path.mkdir(parents=True, exist_ok=True)
        return path
