"""Did workers wait for the algorithm? Measured from when tasks ran, not guessed from costs.

A worker between two tasks is idle for a *gap*: from the end of its previous task to the
start of its next. Part of a gap is the hand-off (messages, the journal line), part may be
the master computing proposals: the master runs the algorithm one call at a time, so while
it spends ``a`` seconds in ``ask``/``tell``, every idle worker waits up to ``a`` seconds
more. Each task records its share of that time (``algorithm_time``), and a task that starts
inside a gap was proposed, at the latest, just before it started, so the algorithm time of
the tasks that start inside a gap bounds what the gap owes to the algorithm:

    waited = min(gap, algorithm time of the tasks that started in the gap)

Summed over every gap of the latest tasks and divided by the workers' time over the same
stretches (gaps plus tasks), this is the share of the workers' time spent waiting for
proposals. It cannot blame the algorithm for what it did not cost: a fast toy model whose
gaps are all hand-off, a pause between two sessions of a resumed run, or a slow start.

The note is shown only when that share is noticeable (:data:`NOTICEABLE`) and some of
the tasks succeeded (when none does, the model is what needs fixing). What to do depends
on the *load*, the master's seconds of algorithm per task times the workers, over the
seconds a task takes: at 1 or more the algorithm cannot keep up however the tasks are
handed out (a cheaper algorithm, proposals computed by processes of their own with
``proposers``, one ``ask`` for many proposals with ``policy = "batch"``, or fewer
workers); below 1 it could, but the workers wait for each proposal in turn (``policy = "queue"`` makes proposals ahead of need).

Shared by the live progress (recent tasks) and ``mexplore results`` (the journal).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol

NOTICEABLE = 0.2
"""The note is shown when workers waited for proposals this share of their time or more."""
RECENT = 50
"""At least this many of the latest tasks are looked at (more with many workers, see
:func:`window`): the algorithm's cost grows with the number of results (Optuna's TPE), so
the latest tasks tell the current state."""
AT_LEAST = 10
"""Fewer gaps than this say nothing yet."""


@dataclass(frozen=True, slots=True)
class Span:
    """When one task ran, on which worker rank, and what proposing it cost the master."""

    rank: int
    started: float
    ended: float
    algorithm_time: float
    ok: bool


class Timed(Protocol):
    """What :func:`measure` reads of a task: a :class:`Span`, or a finished task's
    :class:`~mexplore.types.Result` itself: the progress line keeps the latest results as
    they are, since making a Span of each cost a few percent of the master's loop."""

    @property
    def rank(self) -> int: ...
    @property
    def started(self) -> float: ...
    @property
    def ended(self) -> float: ...
    @property
    def algorithm_time(self) -> float: ...
    @property
    def ok(self) -> bool: ...


def window(workers: int) -> int:
    """How many of the latest tasks to look at: enough that each worker has run several."""
    return max(RECENT, 4 * workers)


@dataclass(frozen=True)
class Waiting:
    """What :func:`measure` found in a run's latest tasks."""

    share: float
    """Of the workers' time, the share spent waiting for proposals."""
    algorithm: float
    """Mean seconds of algorithm per task."""
    load: float
    """Algorithm seconds per task times the workers, over a task's mean seconds (inf for
    tasks that take no measurable time)."""


def measure(spans: Iterable[Timed], workers: int) -> Waiting | None:
    """How long workers waited for the algorithm (module docstring); None with fewer than
    :data:`AT_LEAST` gaps to tell."""
    ordered = sorted(spans, key=lambda span: span.started)
    if not ordered or workers < 1:
        return None
    starts = [span.started for span in ordered]
    cumulative = [0.0, *accumulate(span.algorithm_time for span in ordered)]
    previous: dict[int, Timed] = {}
    waited = timeline = 0.0
    gaps = 0
    for span in ordered:
        before = previous.get(span.rank)
        previous[span.rank] = span
        if before is None:  # a worker's first task here: what came before it is unknown
            continue
        gap = max(span.started - before.ended, 0.0)
        # algorithm time of the tasks that started in (before.ended, span.started]
        spent = cumulative[bisect_right(starts, span.started)] - cumulative[bisect_right(starts, before.ended)]
        waited += min(gap, spent)
        timeline += gap + (span.ended - span.started)
        gaps += 1
    if gaps < AT_LEAST:
        return None
    algorithm = cumulative[-1] / len(ordered)
    duration = sum(span.ended - span.started for span in ordered) / len(ordered)
    load = algorithm * workers / duration if duration > 0 else float("inf")
    return Waiting(waited / timeline if timeline > 0 else 0.0, algorithm, load)


@dataclass(frozen=True)
class Verdict:
    """Workers waited for proposals: by how much, and what to do about it."""

    waiting: Waiting
    line: str


def verdict(spans: Iterable[Timed], workers: int) -> Verdict | None:
    """A line when workers waited for proposals a noticeable share of the time and some
    task succeeded; None otherwise: the usual case, where the tasks take the time."""
    spans = list(spans)
    if not any(span.ok for span in spans):
        return None
    waiting = measure(spans, workers)
    if waiting is None or waiting.share < NOTICEABLE:
        return None
    said = (f"workers waited for the algorithm's proposals {waiting.share:.0%} of the time "
            f"({waiting.algorithm * 1e3:.3g} ms of algorithm per task, {workers} worker{'s' if workers != 1 else ''})")
    if waiting.load >= 1:
        advice = ("it cannot keep up: use a cheaper algorithm (or cheaper [algorithm.options]), "
                  "proposers = 2 or more for optuna.tpe and optuna.gp (processes of their own), "
                  'policy = "batch" if one ask(n) costs little more than ask(1), longer tasks, or fewer '
                  "workers; more workers will not make the run faster")
    else:
        advice = 'it could keep up: policy = "queue" makes proposals before workers need them'
    return Verdict(waiting, f"{said}: {advice}")
