"""The conformance suite every algorithm passes, ours and users' alike.

Subclass :class:`AlgorithmConformance` in a test file under a name pytest collects
(``TestMine``), set ``algorithm`` (any name a study accepts) or override
:meth:`~AlgorithmConformance.make`, and run pytest. The algorithm is driven by
:func:`drive`, a small in-process stand-in for the master: no MPI, no files, only the
public ask/tell interface, so a failure points at the algorithm and not at the engine.
"""

from __future__ import annotations

import json
import math
import time
import unittest
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..algorithms.base import Algorithm, StudyInfo
from ..objectives import Direction
from ..space import Categorical, Float, Grid, Int, ProposalCheck, Space, point_key
from ..types import Result, Status

MIXED_SPACE = Space(
    parameters={
        "x": Float(-2.0, 3.0),
        "lr": Float(1e-4, 1e-1, log=True),
        "units": Int(16, 128, step=16),
        "depth": Int(1, 64, log=True),
        "act": Categorical(("relu", "tanh", "gelu")),
        "noise": Grid((0.0, 0.1, 0.2)),
    },
    constants={"epochs": 3},
)
"""A space with every kind of parameter and a constant (the default ``space``)."""


def objective(space: Space, params: dict[str, Any], objectives: int = 1) -> float | list[float]:
    """A deterministic test objective: distance of the point from the middle of the space
    (in log scale where the parameter is), plus the position among choices; further
    objectives, where asked for, pull the other way."""
    total = 0.0
    for name, param in space.parameters.items():
        value = params[name]
        if isinstance(param, Float):
            low, high, value = ((math.log(param.low), math.log(param.high), math.log(value))
                                if param.log else (param.low, param.high, value))
            total += ((value - (low + high) / 2) / (high - low)) ** 2
        elif isinstance(param, Int):
            total += ((value - param.low) / max(1, param.high - param.low) - 0.3) ** 2
        else:
            total += 0.1 * param.values().index(value)
    return total if objectives == 1 else [total, *(k / (1.0 + total) for k in range(1, objectives))]


@dataclass
class Outcomes:
    """What every ``n``-th task returns instead of a value: failures, prunes and the like."""

    every: dict[Status, int] = field(default_factory=dict)

    def status(self, index: int) -> Status:
        for status, n in self.every.items():
            if index % n == n - 1:
                return status
        return Status.OK


def drive(
    algorithm: Algorithm, space: Space, budget: int, *, in_flight: int = 4, objectives: int = 1,
    order_seed: int = 0, outcomes: Outcomes | None = None, stop_after: int | None = None, first_id: int = 0,
) -> list[Result]:
    """Run ``algorithm`` as the master would, with ``in_flight`` simulated workers: ask for
    free slots, finish tasks in an order drawn from ``order_seed`` (so results come back in
    any order, sometimes several at once), tell them, until ``budget`` tasks finished or the
    algorithm is finished. Returns the results in the order they were told.

    Every contract check fails with an AssertionError that says what was wrong: more points
    than asked, a point outside the space, or nothing proposed while nothing runs and the
    algorithm is not finished. ``stop_after`` ends the run after that many results, with
    the tasks in flight lost, as a killed job would. Task ids start at ``first_id`` (after
    those of a journal the algorithm replayed). The algorithm is not closed.
    """
    rng = np.random.default_rng(order_seed)
    outcomes = outcomes or Outcomes()
    name = algorithm.name
    check = ProposalCheck(space, name)  # the engine's own rules, so the suite and a run agree
    running: list[tuple[int, dict[str, Any]]] = []  # (task id, point)
    told: list[Result] = []
    asked = 0
    waited_since: float | None = None
    limit = budget if stop_after is None else min(budget, stop_after)
    while len(told) < limit:
        room = min(in_flight - len(running), budget - asked)
        if room > 0 and not algorithm.finished:
            proposals = algorithm.propose(range(first_id + asked, first_id + asked + room))
            assert isinstance(proposals, list), f"{name}.ask({room}) returned {type(proposals).__name__}, not a list"
            assert len(proposals) <= room, f"{name}.ask({room}) returned {len(proposals)} points"
            for point in proposals:
                assert not (why := check.problem(point)), f"{name} proposed {why}"
            running.extend((first_id + asked + i, point) for i, point in enumerate(proposals))
            asked += len(proposals)
        if not running:
            if algorithm.finished:
                break
            assert algorithm.thinks_in_background, (
                f"{name} proposed nothing while no task runs and it is not finished: a run would wait forever")
            waited_since = waited_since or time.monotonic()
            assert time.monotonic() - waited_since < 10, f"{name} proposed nothing for 10 s"
            time.sleep(0.001)
            continue
        waited_since = None
        done = [running.pop(int(rng.integers(len(running)))) for _ in range(int(rng.integers(1, len(running) + 1)))]
        results = []
        for task_id, params in done:
            status = outcomes.status(len(told) + len(results))
            value = objective(space, params, objectives) if status is Status.OK else None
            results.append(Result(
                task_id=task_id, params=params, status=status, objective=value,
                error=None if status is Status.OK else f"simulated {status.value}",
                reports=[(0, 1.0), (1, 0.5)] if status is Status.PRUNED else [],
            ))
        results = results[: limit - len(told)]
        algorithm.tell(results)
        told.extend(results)
    return told


def journaled(results: list[Result]) -> list[Result]:
    """``results`` as a resumed run gets them: through the journal's JSON, so new dicts."""
    return [Result.from_record(json.loads(json.dumps(r.to_record()))) for r in results]


class AlgorithmConformance:
    """Checks any algorithm must pass. Subclass as ``class TestMine(AlgorithmConformance)``.

    Set ``algorithm`` to a name a study accepts (``"random"``, ``"pkg.mod:Name"``,
    ``"algorithms/mine.py:Mine"``) with ``options``, or override :meth:`make`. Adjust the
    class attributes below to the algorithm's nature.
    """

    algorithm: str = ""
    options: dict[str, Any] = {}
    space: Space = MIXED_SPACE
    """The space to search; a sweep needs one without float ranges."""
    directions: tuple[str, ...] = ("minimize",)
    """One per objective; two or more make the simulated model return a list."""
    budget = 40
    in_flight = 4
    deterministic = True
    """Same seed and same results told in the same order give the same points. False for
    algorithms that decide on timing (imperative ones taking results as they come)."""
    resumes_exactly = True
    """A run interrupted and resumed from its journal proposes the very points an
    uninterrupted run does. False for algorithms whose state cannot be rebuilt from results
    alone (a sampler's random state advanced by the interrupted run); those are only checked
    to go on sensibly: valid points, up to the budget, no crash."""

    def info(self, seed: int) -> StudyInfo:
        """The study the suite simulates: its directions, budget, workers and ``seed``."""
        return StudyInfo(directions=tuple(Direction(d) for d in self.directions), budget=self.budget,
                         workers=self.in_flight, seed=seed)

    def make(self, info: StudyInfo) -> Algorithm:
        """A fresh algorithm for ``info``; by default built from ``algorithm`` as a study would."""
        from ..queue.build import build_algorithm

        if not self.algorithm:
            raise unittest.SkipTest(f"{type(self).__name__}: set algorithm = '...' or override make()")
        return build_algorithm(self.algorithm, self.space, info, dict(self.options))

    def run(self, seed: int = 1, **kwargs: Any) -> list[Result]:
        """Drive a fresh algorithm over the budget (see :func:`drive` for ``kwargs``)."""
        algorithm = self.make(self.info(seed))
        try:
            return drive(algorithm, self.space, self.budget, in_flight=kwargs.pop("in_flight", self.in_flight),
                         objectives=len(self.directions), **kwargs)
        finally:
            algorithm.close()

    def test_respects_the_space_and_the_asked_count(self) -> None:
        results = self.run(in_flight=1)
        results += self.run(in_flight=7, order_seed=1)
        assert results, f"{self.algorithm or type(self).__name__} proposed no point at all"

    def test_handles_failed_and_pruned_results(self) -> None:
        outcomes = Outcomes({Status.FAILED: 3, Status.PRUNED: 5, Status.TIMEOUT: 7, Status.LOST: 11})
        self.run(outcomes=outcomes)  # drive() checks every proposal made after them

    def test_accepts_results_in_any_order(self) -> None:
        for order_seed in (2, 3):
            self.run(in_flight=8, order_seed=order_seed)

    def test_is_deterministic_under_a_seed(self) -> None:
        if not self.deterministic:
            raise unittest.SkipTest("deterministic = False: proposals depend on timing")
        first, second = self.run(seed=5, order_seed=4), self.run(seed=5, order_seed=4)
        assert [r.params for r in first] == [r.params for r in second], "same seed, same results, other points"

    def test_resumes_from_a_journal(self) -> None:
        whole = self.run(seed=7, in_flight=3)
        algorithm = self.make(self.info(7))
        try:  # killed halfway: the tasks in flight are lost, as a real job's would be
            before = drive(algorithm, self.space, self.budget, in_flight=3, objectives=len(self.directions),
                           stop_after=len(whole) // 2)
        finally:
            algorithm.close()
        resumed = self.make(self.info(7))
        try:
            resumed.replay(journaled(before))
            after = drive(resumed, self.space, self.budget - len(before), in_flight=3,
                          objectives=len(self.directions), first_id=max((r.task_id for r in before), default=-1) + 1)
        finally:
            resumed.close()
        if self.resumes_exactly:
            assert sorted(point_key(r.params) for r in before + after) == sorted(
                point_key(r.params) for r in whole), (
                "the resumed run evaluated other points than an uninterrupted one; if this algorithm cannot "
                "retrace a run from its results alone, set resumes_exactly = False in the test class")
        else:
            assert len(before) + len(after) == len(whole), "the resumed run stopped early"
