"""The IoC queue (what an imperative algorithm drives), the policies that feed workers, and
the master's bookkeeping as a sans-I/O state machine."""

from .agents import Agents, agent, on_results
from .futures import Future, TaskQueue

__all__ = ["Agents", "Future", "TaskQueue", "agent", "on_results"]
