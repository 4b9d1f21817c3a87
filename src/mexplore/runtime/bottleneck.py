"""Is the algorithm, not the workers, what limits a run's throughput?

Each task costs the master ``algorithm_time`` seconds in the algorithm (``ask``, plus the
``tell`` and ``report`` calls since the previous ``ask``), and the master runs the algorithm
for one proposal at a time. ``workers`` workers that each take ``duration`` seconds per task
want a new task every ``duration / workers`` seconds. The *load* is the ratio of the two:
the fraction of the master's time the algorithm needs to keep every worker busy. At 1 or
more the workers wait for proposals; adding workers will not make the run faster.

Shared by the live progress (recent tasks) and ``mexplore results`` (the journal).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

BOUND = 1.0
"""At or above this load, the algorithm limits throughput."""
NEAR = 0.5
"""At or above this load, it will as soon as tasks get shorter or workers more numerous."""
RECENT = 50
"""How many of the latest tasks the verdict is based on: the algorithm's cost grows with
the number of results (Optuna's TPE), so the latest tasks tell the current state."""
AT_LEAST = 10
"""Fewer tasks than this say nothing yet: the first proposals (imports, start-up) cost more."""


def algorithm_load(costs: Iterable[tuple[float, float]], workers: int) -> tuple[float, float] | None:
    """``(load, seconds per task)`` from ``(algorithm_time, duration)`` pairs of tasks that
    ran; None with fewer than :data:`AT_LEAST` of them."""
    pairs = list(costs)
    if len(pairs) < AT_LEAST or workers < 1:
        return None
    algorithm = sum(a for a, _ in pairs) / len(pairs)
    duration = sum(d for _, d in pairs) / len(pairs)
    load = algorithm * workers / duration if duration > 0 else (math.inf if algorithm > 0 else 0.0)
    return load, algorithm


@dataclass(frozen=True)
class Verdict:
    bound: bool
    """True: the algorithm limits throughput now; False: it nearly does."""
    line: str


def verdict(costs: Iterable[tuple[float, float]], workers: int) -> Verdict | None:
    """Whether the algorithm limits (or nearly limits) throughput, with a line saying so;
    None when it does not: the usual case, where the workers' tasks dominate."""
    measured = algorithm_load(costs, workers)
    if measured is None or measured[0] < NEAR:
        return None
    load, seconds = measured
    share = f"{seconds * 1e3:.3g} ms of algorithm time per task, {load:.0%} of what keeps {workers} workers busy"
    if load >= BOUND:
        return Verdict(True, f"the algorithm limits throughput ({share}): workers wait for proposals")
    return Verdict(False, f"the algorithm nearly limits throughput ({share})")
