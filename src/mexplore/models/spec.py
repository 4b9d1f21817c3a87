"""What a worker needs to build the study's model: picklable, sent once in the Setup message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """One model, either a Python function (``python``) or an external program (``command``).

    ``isolate`` runs a Python function in a child process per task, like a command, so it
    can be timed out and can crash without taking the worker along. ``timeout`` (seconds)
    applies to anything that runs in a child process.
    """

    objectives: tuple[str, ...]
    local_dir: str
    python: str | None = None
    command: tuple[str, ...] | None = None
    isolate: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
