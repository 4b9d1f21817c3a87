"""Policies: how many tasks to ask the algorithm for, and how many a worker may hold.

Mechanism (who gets which task, the budget, the measurements) lives in :mod:`.dispatch`; a
policy answers four questions, so a new one is a few lines:

- ``capacity(typical, handoff, current, algorithm_load)``: how many tasks a worker may
  hold, given the typical task length and the typical hand-off (seconds a worker waits
  between sending a result and starting the task sent in reply, the algorithm's own time
  left out; see :class:`~.dispatch.Dispatcher`), both None until measured, the capacity
  now, and the share of the master's time the algorithm needs to feed every worker;
- ``refill_at(capacity)``: how many free slots a worker needs before it is sent more;
- ``reply_low_water``: a worker replies as soon as it holds this many tasks or fewer
  (sent once, at start-up, so it must suit every capacity the policy may choose);
- ``to_ask(free_slots, pending, in_flight)``: how many new tasks to ask the algorithm for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PREFETCH_SHARE = 0.25
"""A learning algorithm gets one task prefetched per worker only when the measured hand-off
exceeds this share of the typical task length (workers would idle over a fifth of the
time); below it, what prefetching saves is smaller than what deciding every task one
result per worker earlier costs a model-based search (issue 16: TPE's median best on
Rosenbrock, 8 workers, 100 evaluations: 405 with prefetch, 171 without)."""
ALGORITHM_BOUND = 0.5
"""A learning algorithm never gets prefetch when it needs this share of the master's time or
more to keep every worker fed: the master is then busy in ``ask`` most of the time, workers
wait behind other workers' proposals (which the measured hand-off cannot fully tell from
the master's own overhead), and prefetching adds lag while winning little or no throughput.
Issue 16: TPE on 10-D problems (9 ms per proposal, 8 workers, 40 ms tasks: a load of 1.8)
had switched prefetch on mid-run, doubling its lag to 15."""
NEGLIGIBLE_SHARE = 0.001
"""For an algorithm that does not learn, a hand-off below this share of the task length is
not worth hiding: no task waits behind another (at 1 ms hand-offs, tasks over 1 s)."""
HIDE = 4.0
"""An algorithm that does not learn keeps this many hand-offs' worth of tasks waiting on
each worker; it is refilled when half are left, so a refill has two hand-offs to arrive."""
MAX_BACKLOG = 32
"""The most tasks ``async`` keeps waiting on a worker (no-op tasks): a refill then carries
16 tasks or more in one message, which is what lifts very short tasks past 25,000 tasks/s."""


def half_refill(capacity: int) -> int:
    """Refill a worker of ``capacity`` slots once half of them are free, rounded down.

    Down, not up: a worker replies when it has run that many of a full load and again when
    it runs dry, and when the master's answer to the first reply comes late (very short
    tasks on a busy machine) the second reply carries the other half. Were that half one
    short of the refill mark, the master would not refill a worker it knows to be empty
    until the late answer had arrived and been run too: with a backlog of 32, every
    refill then carried 17 tasks into a worker of 33 slots, in two replies of 1 and 16
    results (measured 8.7 results per reply; 13 to 16 once rounded down)."""
    return max(1, capacity // 2)


ASYNC_LOW_WATER = 1 + MAX_BACKLOG - half_refill(1 + MAX_BACKLOG)
"""``async`` workers reply on falling to this many tasks, right for the largest backlog; for
a smaller one, ``refill_at`` asks for refills as small as one task, so none runs dry."""


@dataclass(frozen=True, slots=True)
class Async:
    """Ask for new tasks as soon as workers free; how far ahead depends on what is learned.

    ``learns`` is the algorithm's own declaration (:attr:`Algorithm.learns`).

    - An algorithm that learns gets one task per worker: each proposal sees every result
      but those of the tasks still running (its *lag* is at most workers - 1). Only when
      the measured hand-off exceeds ``PREFETCH_SHARE`` of the typical task length does
      each worker also hold its next task (lag up to 2 x workers - 1); it stops again
      below half that share. Never while the algorithm needs ``ALGORITHM_BOUND`` of the
      master's time or more: then the algorithm, not the hand-off, is what workers wait for.
    - One that does not learn loses nothing by deciding early, so each worker keeps
      ``HIDE`` hand-offs' worth of tasks waiting (a power of two up to ``MAX_BACKLOG``),
      refilled in one message once half are gone: workers never wait for the master,
      and very short tasks travel in batches. Hand-offs under ``NEGLIGIBLE_SHARE`` of the
      task length are not hidden: a task never waits behind a long one while another
      worker idles at the tail.

    Until a task length and a hand-off are measured (a worker's second task), each worker
    holds one task. The backlog moves up as soon as more is needed and down only once a
    quarter would do, so noisy task lengths do not make it flap.
    """

    learns: bool = True
    reply_low_water: int = ASYNC_LOW_WATER

    def capacity(self, typical: float | None, handoff: float | None, current: int, algorithm_load: float = 0.0) -> int:
        if typical is None or handoff is None:
            return 1
        if self.learns:
            share = PREFETCH_SHARE / 2 if current > 1 else PREFETCH_SHARE
            return 2 if handoff > share * typical and algorithm_load < ALGORITHM_BOUND else 1
        return 1 + _backlog(HIDE * handoff / max(typical, 1e-9), current - 1)

    def refill_at(self, capacity: int) -> int:
        return max(1, capacity - self.reply_low_water)

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return max(free_slots - pending, 0)


def _backlog(ideal: float, backlog: int) -> int:
    """The tasks to keep waiting for an ``ideal`` of ``ideal`` (fractional), coming from
    ``backlog``: 0 below the negligible share, else a power of two up to ``MAX_BACKLOG``.
    It rises once ``ideal`` exceeds ``backlog``, falls once it is a quarter of it, and
    leaves 0 only at twice the floor it fell below."""
    floor = HIDE * NEGLIGIBLE_SHARE
    if ideal < (2 * floor if backlog == 0 else floor):
        return 0
    if backlog / 4 < ideal <= backlog:
        return backlog
    return min(MAX_BACKLOG, 1 << max(0, math.ceil(math.log2(ideal))))


@dataclass(frozen=True, slots=True)
class Queue:
    """Keep ``backlog`` tasks waiting on every worker besides the one it runs.

    Nobody waits for the master, so very short tasks flow at full rate; the price is that
    tasks are decided up to ``backlog`` results earlier, which costs a model-based
    algorithm some information. Bad for long tasks of very different lengths: a task may
    wait behind a slow one on a busy worker while another worker idles at the tail.

    A worker is refilled once half its slots are free, in one message, and replies when
    half its tasks are done: very short tasks then travel in batches both ways instead of
    one message per task.
    """

    backlog: int = 8

    def capacity(self, typical: float | None, handoff: float | None, current: int, algorithm_load: float = 0.0) -> int:
        return 1 + self.backlog

    def refill_at(self, capacity: int) -> int:
        return half_refill(1 + self.backlog)

    @property
    def reply_low_water(self) -> int:
        return 1 + self.backlog - self.refill_at(1 + self.backlog)

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return max(free_slots - pending, 0)


@dataclass(frozen=True, slots=True)
class Batch:
    """Ask for ``size`` tasks, wait until every one is back, then ask again.

    Each decision sees every earlier result (what a generational algorithm wants); workers
    idle while the slowest task of a batch finishes.
    """

    size: int
    reply_low_water: int = 0

    def capacity(self, typical: float | None, handoff: float | None, current: int, algorithm_load: float = 0.0) -> int:
        return 1

    def refill_at(self, capacity: int) -> int:
        return 1

    def to_ask(self, free_slots: int, pending: int, in_flight: int) -> int:
        return self.size if pending == 0 and in_flight == 0 else 0


Policy = Async | Queue | Batch


def make_policy(
    name: str, n_workers: int, backlog: int = 8, batch_size: int | None = None, learns: bool = True,
) -> Policy:
    """Build the named policy; ``batch_size`` defaults to one task per worker, ``learns``
    (the algorithm's declaration) shapes ``async``."""
    if name == "async":
        return Async(learns)
    if name == "queue":
        return Queue(backlog)
    if name == "batch":
        return Batch(batch_size or n_workers)
    raise ValueError(f"unknown policy {name!r}: expected 'batch', 'async' or 'queue'")


def describe(policy: Policy) -> str:
    """How the startup line names what the policy will do."""
    if isinstance(policy, Async):
        return "async: one task per worker, it learns" if policy.learns else "async: tasks queued ahead, it does not learn"
    if isinstance(policy, Queue):
        return f"queue, backlog {policy.backlog}"
    return f"batch of {policy.size}"
