"""sobol and lhs: mapped onto every kind of parameter, seeded, space-filling, resumable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mexplore.algorithms.base import StudyInfo
from mexplore.algorithms.qmc import LatinHypercube, Sobol, to_space
from mexplore.errors import AlgorithmError
from mexplore.space import Categorical, Float, Int, Space
from mexplore.types import Result, Status

SPACE = Space({"x": Float(0.0, 1.0), "lr": Float(1e-4, 1.0, log=True), "n": Int(0, 9),
               "c": Categorical(("a", "b", "c", "d"))}, {"k": 1})


def test_unit_points_map_onto_each_kind_of_parameter():
    unit = np.array([[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.55, 0.5], [0.999999, 0.999999, 0.999999, 0.999999]])
    low, middle, high = to_space(SPACE, unit)
    assert low == {"x": 0.0, "lr": pytest.approx(1e-4), "n": 0, "c": "a", "k": 1}
    assert middle["lr"] == pytest.approx(1e-2) and middle["n"] == 5 and middle["c"] == "c"
    assert high["n"] == 9 and high["c"] == "d" and high["lr"] <= 1.0


def test_log_ints_cover_their_range_evenly_in_log_scale():
    space = Space({"n": Int(1, 1000, log=True)}, {})
    values = [p["n"] for p in to_space(space, np.linspace(0, 1, 1001, endpoint=False)[:, None])]
    assert min(values) == 1 and 990 < max(values) <= 1000
    assert sum(v < 32 for v in values) == pytest.approx(500, abs=5)  # sqrt(1000) ~ 31.6


@pytest.mark.parametrize("cls", [Sobol, LatinHypercube])
def test_seeded_and_inside_the_space(cls):
    a, b = cls(SPACE, StudyInfo(seed=3)), cls(SPACE, StudyInfo(seed=3))
    points = a.ask(300)
    assert points == b.ask(100) + b.ask(200)
    assert all(SPACE.contains(p) for p in points)
    assert points != cls(SPACE, StudyInfo(seed=4)).ask(300)


def test_sobol_fills_the_space_more_evenly_than_random():
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}, {})
    sobol = np.array([[p["x"], p["y"]] for p in Sobol(space, StudyInfo(seed=1)).ask(256)])
    counts = np.histogram2d(sobol[:, 0], sobol[:, 1], bins=16, range=[[0, 1], [0, 1]])[0]
    assert counts.max() == 1 == counts.min()  # 256 points, one per cell of a 16 x 16 grid


def test_each_latin_hypercube_puts_one_point_per_bin():
    points = LatinHypercube(SPACE, StudyInfo(seed=2), size=10).ask(20)
    for design in (points[:10], points[10:]):
        assert sorted(int(p["x"] * 10) for p in design) == list(range(10))
        assert sorted(int((math.log10(p["lr"]) + 4) / 4 * 10) for p in design) == list(range(10))


@pytest.mark.parametrize("cls", [Sobol, LatinHypercube])
def test_resume_skips_finished_points_and_reruns_lost_ones(cls):
    full = cls(SPACE, StudyInfo(seed=1)).ask(10)
    resumed = cls(SPACE, StudyInfo(seed=1))
    done = [p for i, p in enumerate(full[:6]) if i != 2]
    resumed.replay([Result(task_id=i, params=dict(p), status=Status.OK, objective=0.0) for i, p in enumerate(done)])
    assert resumed.ask(5) == [full[2], *full[6:10]]


def test_options_are_checked_by_name():
    with pytest.raises(AlgorithmError, match="lhs option size"):
        LatinHypercube(SPACE, size=0)
    with pytest.raises(AlgorithmError, match="lhs option optimization"):
        LatinHypercube(SPACE, optimization="best")
    with pytest.raises(AlgorithmError, match="sobol option scramble"):
        Sobol(SPACE, scramble="yes")
