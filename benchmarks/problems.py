"""Test problems of the search-quality benchmarks, and the model mexplore's workers run on them.

Two families, each named by a short string that travels to workers as a constant of the
study's space:

- the classic problems ``branin`` (2-D), ``hartmann6`` and ``rosenbrock10`` (10-D, on
  [-5, 10]^10), with their known minima;
- COCO's BBOB suite (the ``coco-experiment`` package, imported as ``cocoex``), named
  ``bbob-f08-d05-i01`` (function 8, 5-D, instance 1): 24 noiseless functions on
  [-5, 5]^D whose optimum ``fopt`` differs per instance. COCO does not expose ``fopt``
  directly; it writes the optimum's location to a file (``_best_parameter``), and
  ``fopt`` is the function's value there.

``evaluate`` is the model (``fn(params, ctx)``): it sleeps a task length drawn uniformly
in [TASK_LOW, TASK_HIGH] from the run's seed and the task id, so a run's tasks last as a
real simulation's would and every variant sleeps the same durations, then returns the
function's value.
"""

from __future__ import annotations

import functools
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TASK_LOW, TASK_HIGH = 0.020, 0.060
"""Task lengths in seconds, as the issue's own measurement used: short enough for an hour's
benchmark, long enough that the master's hand-off is a small share of a task."""


@dataclass(frozen=True)
class Problem:
    """A box-bounded function to minimize and its known minimum."""

    name: str
    f: Callable[[np.ndarray], float]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    minimum: float

    @property
    def dimension(self) -> int:
        return len(self.lower)

    @property
    def budget(self) -> int:
        """Evaluations per run: 50 x D, COCO's usual budget for expensive optimization."""
        return 50 * self.dimension


def task_seconds(seed: int, task_id: int) -> float:
    """The length of task ``task_id`` of a run seeded ``seed``: the same for every variant."""
    return random.Random(seed * 1_000_003 + task_id).uniform(TASK_LOW, TASK_HIGH)


def branin(x: np.ndarray) -> float:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return float(a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s)


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


CLASSIC = {
    "branin": Problem("branin", branin, (-5.0, 0.0), (10.0, 15.0), 0.397887),
    "hartmann6": Problem("hartmann6", hartmann6, (0.0,) * 6, (1.0,) * 6, -3.32237),
    "rosenbrock10": Problem("rosenbrock10", rosenbrock, (-5.0,) * 10, (10.0,) * 10, 0.0),
}


def bbob_name(function: int, dimension: int, instance: int) -> str:
    return f"bbob-f{function:02d}-d{dimension:02d}-i{instance:02d}"


@functools.cache
def problem(name: str) -> Problem:
    """The problem ``name`` stands for (a classic one or ``bbob-fFF-dDD-iII``)."""
    if name in CLASSIC:
        return CLASSIC[name]
    try:
        _, function, dimension, instance = name.split("-")
        return _bbob(int(function[1:]), int(dimension[1:]), int(instance[1:]))
    except ValueError:
        raise ValueError(f"unknown problem {name!r}: expected one of {', '.join(CLASSIC)} "
                         "or bbob-fFF-dDD-iII") from None


def _bbob(function: int, dimension: int, instance: int) -> Problem:
    import cocoex

    suite = cocoex.Suite("bbob", f"instances:{instance}",
                         f"function_indices:{function} dimensions:{dimension}")
    coco = suite[0]
    return Problem(bbob_name(function, dimension, instance), lambda x: float(coco(x)),
                   tuple(map(float, coco.lower_bounds)), tuple(map(float, coco.upper_bounds)),
                   _fopt(coco))


def _fopt(coco) -> float:
    """The optimal value of a COCO problem: its value at the optimum COCO writes out."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            coco._best_parameter("print")
            xopt = np.loadtxt("._bbob_problem_best_parameter.txt", ndmin=1)
        finally:
            os.chdir(here)
    return float(coco(xopt))


def point(params: dict, dimension: int) -> np.ndarray:
    return np.array([params[f"x{i}"] for i in range(dimension)], dtype=float)


def evaluate(params: dict, ctx) -> float:
    """The model the benchmark's workers run: sleep the task's length, return f(x)."""
    chosen = problem(params["problem"])
    time.sleep(task_seconds(params["seed"], ctx.task_id))
    return chosen.f(point(params, chosen.dimension))
