"""The IoC queue (what an imperative algorithm drives), the policies that feed workers, and
the master's bookkeeping as a sans-I/O state machine."""

from .futures import Future, TaskQueue

__all__ = ["Future", "TaskQueue"]
