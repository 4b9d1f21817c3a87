"""What a worker needs to build the study's model: picklable, sent once in the Setup message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """One model, either a Python function (``python``) or an external program (``command``).

    ``isolate`` runs a Python function in a child process per task, like a command, so it
    can be timed out and can crash without taking the worker along. ``timeout`` (seconds)
    applies to anything that runs in a child process. ``launcher`` starts a command placed
    on several worker slots (``mpiexec -n {ranks}``...): None for the bundled ``mpiexec``,
    empty when the command starts its ranks itself. ``mpiexec`` is the ``{mpiexec}`` it may
    name (the bundled one, found on the master).
    """

    objectives: tuple[str, ...]
    local_dir: str
    python: str | None = None
    command: tuple[str, ...] | None = None
    isolate: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    launcher: tuple[str, ...] | None = None
    mpiexec: str = "mpiexec"
