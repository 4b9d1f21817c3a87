"""Run one task on a worker: a Python function, or any external program."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from ..types import Result, Task
from .command import CommandModel
from .context import Context, Pruned, Reporter
from .gpu import assigned_gpu, visible_devices
from .process import GroupGuard
from .python_function import PythonFunctionModel
from .spec import ModelSpec

__all__ = ["ArtifactStore", "Context", "ModelSpec", "Pruned", "build_model"]


class ArtifactStore(Protocol):
    """The worker's node-local cache, as models use it (:class:`mexplore.store.cache.TaskCache`)."""

    def save(self, task_id: int, name: str, value: Any) -> None: ...
    def save_folder(self, task_id: int, folder: Any) -> None: ...
    def absorb(self, task_id: int, other: Any) -> None: ...


def build_model(
    spec: ModelSpec, rank: int, host: str, report: Reporter, cache: ArtifactStore | None = None,
    guard: GroupGuard | None = None, task_comm: Callable[[tuple[int, ...], int], Any] | None = None,
    refs: Any = None,
) -> Callable[[Task], Result]:
    """The worker's model factory: turns the spec from the Setup message into a callable.

    The worker's GPU is chosen here, before a Python model is imported, so a framework
    that reads ``CUDA_VISIBLE_DEVICES`` at import sees only that GPU. ``guard`` (the
    worker's :class:`~.reaper.Reaper`) is told each command's process group. ``task_comm``
    (the worker's MPI end, absent in-process) makes a parallel Python task's ``ctx.comm``; ``refs``
    (the worker's :class:`~.refs.WorkerRefs`) serves ``ctx.get`` and ``ctx.share``.
    """
    gpu = assigned_gpu()
    if spec.command is not None or spec.isolate:
        return CommandModel(spec, rank, host, gpu, report, cache, guard, refs)
    os.environ.update(visible_devices(gpu))
    return PythonFunctionModel(spec, rank, host, gpu, None if cache is None else cache.save, report, task_comm, refs)
