"""Run one task on a worker. Today: Python functions (``python = "file.py:fn"``)."""

from __future__ import annotations

from collections.abc import Callable

from ..types import Result, Task
from .context import Context
from .python_function import PythonFunctionModel, PythonModelSpec

__all__ = ["Context", "PythonFunctionModel", "PythonModelSpec", "build_model"]


def build_model(spec: object, rank: int, host: str) -> Callable[[Task], Result]:
    """The worker's model factory: turns the spec from the Setup message into a callable."""
    if isinstance(spec, PythonModelSpec):
        return PythonFunctionModel(spec, rank, host)
    raise TypeError(f"unknown model spec {spec!r}")
