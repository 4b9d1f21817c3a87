"""Agents: a Colmena-style campaign as a class of methods, each running in its own thread.

::

    class Campaign(Agents):
        def setup(self):                                  # before any agent starts
            self.population = [self.space.sample(self.rng) for _ in range(8)]

        @agent
        def explore(self):                                # runs in its own thread
            for result in self.queue.map(self.population):
                ...

        @on_results(kind="simulate", every=8)             # called with each 8 new results
        def retrain(self, results):
            self.queue.submit({...}, kind="train")

``[algorithm] name = "campaign.py:Campaign"`` runs it. The rules:

- each ``@agent`` method runs once, in a thread of its own, and waits on the queue
  (``result()``, ``map``, ``as_completed``) rather than sleeping;
- each ``@on_results`` method is called, in a thread of its own, with every ``every`` new
  results of ``kind`` (the objective kind's name, an auxiliary kind's, or None: any), in
  the order they finish, a resumed run's replayed results included;
- the campaign ends when every ``@agent`` method has returned, or one calls ``self.done()``;
  the handlers are then stopped (a batch not yet full is dropped), and tasks still queued
  run to their end. At the budget, waits raise ``BudgetSpent``, which ends an agent quietly;
- an exception in any agent or handler stops the run, with its traceback.

Agents share one thread-safe :class:`~.futures.TaskQueue`. This is the shape of Colmena's
``BaseThinker`` (``@agent``, ``@result_processor``), without a task server or Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import BudgetSpent
from ..space import Space
from .futures import TaskQueue

_ROLE = "_mexplore_agent_role"


def agent(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Run this method in a thread of its own when the campaign starts."""
    setattr(method, _ROLE, ("agent",))
    return method


def on_results(kind: str | None = None, every: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Call this method with each ``every`` new results of ``kind`` (None: of any kind)."""
    if every < 1:
        raise ValueError(f"on_results(every={every}): expected an integer >= 1")

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        setattr(method, _ROLE, ("results", kind, every))
        return method

    return mark


class Agents:
    """Base class of a campaign of agents (see the module). Subclass it, mark methods with
    :func:`agent` and :func:`on_results`; ``self.queue``, ``self.space``, ``self.options``
    and ``self.rng`` (seeded from the study's seed) are there from :meth:`setup` on."""

    learns = True
    """Like a ``run`` function: an agent that only sweeps may set False."""

    def __init__(self, queue: TaskQueue, space: Space, options: dict[str, Any]) -> None:
        self.queue, self.space, self.options = queue, space, options
        self.rng = np.random.default_rng(options.get("seed"))
        self._done = threading.Event()

    def setup(self) -> None:
        """Called once before the agents start; submit the first tasks here if you like."""

    def done(self) -> None:
        """End the campaign: no agent is started any more, handlers stop."""
        self._done.set()
        self.queue.wake()

    @property
    def stopping(self) -> bool:
        """True once the campaign is ending: loops in agents should check it."""
        return self._done.is_set()

    @classmethod
    def run(cls, queue: TaskQueue, space: Space, options: dict[str, Any]) -> None:
        """The campaign as an imperative algorithm's ``run(queue, space, options)``."""
        campaign = cls(queue, space, options)
        campaign.setup()
        _Crew(campaign).run()


def as_run_function(campaign: type[Agents]) -> Callable[[TaskQueue, Space, dict[str, Any]], None]:
    """The campaign class as the ``run(queue, space, options)`` function an imperative
    algorithm drives, named after the class and saying whether it learns."""

    def run(queue: TaskQueue, space: Space, options: dict[str, Any]) -> None:
        campaign.run(queue, space, options)

    run.__name__ = campaign.__name__
    run.learns = campaign.learns  # type: ignore[attr-defined]
    return run


class _Crew:
    """The threads of one campaign, and the first exception any of them raised."""

    def __init__(self, campaign: Agents) -> None:
        self.campaign = campaign
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.agents: list[threading.Thread] = []
        self.handlers: list[threading.Thread] = []
        self._agents_left = 0  # @agent methods still running (under the queue's lock)
        for name in dir(type(campaign)):
            role = getattr(getattr(type(campaign), name), _ROLE, None)
            if role is None:
                continue
            method = getattr(campaign, name)
            if role[0] == "agent":
                self.agents.append(self._thread(name, self._agent, method))
            else:
                feed = campaign.queue.feed(role[1])
                self.handlers.append(self._thread(name, self._handle, method, feed, role[2]))
        if not self.agents:
            raise TypeError(f"{type(campaign).__name__} has no @agent method: the campaign would never start")

    def _thread(self, name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
        return threading.Thread(target=self._guarded, args=(target, *args), name=f"mexplore-agent-{name}", daemon=True)

    def _guarded(self, target: Callable[..., Any], *args: Any) -> None:
        try:
            target(*args)
        except BudgetSpent:  # the run ended under it: a normal end
            pass
        except BaseException as error:  # the first one stops the run, with its traceback
            with self._lock:
                if self.error is None:
                    self.error = error
            self.campaign.done()

    def _agent(self, method: Callable[[], Any]) -> None:
        try:
            method()
        finally:  # the campaign's main thread waits for the last one
            with self.campaign.queue._changed:
                self._agents_left -= 1
                self.campaign.queue._changed.notify_all()

    def _handle(self, method: Callable[[list[Any]], Any], feed: Any, every: int) -> None:
        while (batch := feed.take(every, lambda: self.campaign.stopping)) is not None:
            method(batch)

    def run(self) -> None:
        self._agents_left = len(self.agents)
        for thread in (*self.handlers, *self.agents):
            thread.start()
        queue, campaign = self.campaign.queue, self.campaign
        with queue._changed:
            queue._changed.wait_for(lambda: campaign.stopping or self._agents_left == 0)
        campaign.done()
        if self.error is not None:
            raise self.error
