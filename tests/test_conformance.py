"""Every built-in algorithm, and the worked example, pass mexplore.testing's conformance suite."""

from __future__ import annotations

import importlib.util

import pytest

from helpers import REPO
from mexplore.space import Categorical, Grid, Int, Space
from mexplore.testing import AlgorithmConformance

GRID_SPACE = Space(
    {"a": Grid((0.0, 0.5, 1.0)), "b": Int(1, 7, step=3), "c": Categorical(("x", "y"))}, {"k": 1},
)
"""18 points, fewer than the budget, so the sweeps' end is checked too."""


class TestGrid(AlgorithmConformance):
    algorithm = "grid"
    space = GRID_SPACE


class TestGridRepeats(AlgorithmConformance):
    algorithm = "grid"
    options = {"repeats": 3}
    space = GRID_SPACE


class TestRandom(AlgorithmConformance):
    algorithm = "random"


class TestSobol(AlgorithmConformance):
    algorithm = "sobol"


class TestLatinHypercube(AlgorithmConformance):
    algorithm = "lhs"
    options = {"size": 16}


class OptunaConformance(AlgorithmConformance):
    resumes_exactly = False  # the sampler's random state is not in the journal


class TestOptunaTPE(OptunaConformance):
    algorithm = "optuna.tpe"
    options = {"n_startup_trials": 8}


class TestOptunaTPEMultiObjective(OptunaConformance):
    algorithm = "optuna.tpe"
    options = {"n_startup_trials": 8}
    directions = ("minimize", "maximize")


class TestOptunaCmaEs(OptunaConformance):
    algorithm = "optuna.cmaes"
    options = {"n_startup_trials": 8}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="optuna.gp needs PyTorch, not installed here (pip install torch)")
class TestOptunaGP(OptunaConformance):
    algorithm = "optuna.gp"
    options = {"n_startup_trials": 8}


class TestOptunaNSGA2(OptunaConformance):
    algorithm = "optuna.nsga2"
    options = {"population_size": 8}
    directions = ("minimize", "minimize")


class TestOptunaNSGA3(OptunaConformance):
    algorithm = "optuna.nsga3"
    options = {"population_size": 8}
    directions = ("minimize", "maximize", "minimize")


class TestOptunaQMC(OptunaConformance):
    algorithm = "optuna.qmc"


class TestOptunaRandom(OptunaConformance):
    algorithm = "optuna.random"


class TestOptunaGrid(AlgorithmConformance):
    algorithm = "optuna.grid"
    space = GRID_SPACE


class TestEvolutionExample(AlgorithmConformance):
    algorithm = str(REPO / "model-scripts" / "evolution.py") + ":evolve"
    options = {"population": 6, "evaluations": 30}
    deterministic = False  # it breeds from whichever result comes first
    resumes_exactly = False


# -- the suite itself catches what it should ----------------------------------------------
class _Broken(AlgorithmConformance):
    """Drives a deliberately faulty algorithm; the tests below expect the suite to fail it."""

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def make(self, info):
        from mexplore.algorithms.random import RandomSearch

        fault = self.fault

        class Faulty(RandomSearch):
            calls = 0

            def ask(self, n):
                points = super().ask(n)
                Faulty.calls += 1
                if fault == "too many":
                    return points + super().ask(1)
                if fault == "outside" and Faulty.calls > 3:
                    points[0]["x"] = 99.0
                if fault == "unseeded":
                    points[0]["x"] = float(__import__("random").uniform(-1, 1))
                if fault == "stuck":
                    return []
                return points

            def tell(self, results):
                if fault == "fails on failures" and any(not r.ok for r in results):
                    raise ValueError("objective is None")

        return Faulty(self.space, info)


@pytest.mark.parametrize("fault, check", [
    ("too many", "test_respects_the_space_and_the_asked_count"),
    ("outside", "test_respects_the_space_and_the_asked_count"),
    ("stuck", "test_respects_the_space_and_the_asked_count"),
    ("unseeded", "test_is_deterministic_under_a_seed"),
    ("unseeded", "test_resumes_from_a_journal"),
    ("fails on failures", "test_handles_failed_and_pruned_results"),
])
def test_the_suite_fails_faulty_algorithms(fault, check):
    with pytest.raises((AssertionError, ValueError)):
        getattr(_Broken(fault), check)()
