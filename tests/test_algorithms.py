"""Built-in algorithms and the registry, without MPI."""

import pytest

from helpers import small_space
from mexplore.algorithms.base import StudyInfo
from mexplore.algorithms.grid import GridSearch
from mexplore.algorithms.random import RandomSearch
from mexplore.algorithms.registry import resolve
from mexplore.errors import AlgorithmError
from mexplore.space import Grid, Int, Space
from mexplore.types import Result, Status


def finish(points, start=0):
    return [Result(task_id=start + i, params=dict(p), status=Status.OK, objective=0.0) for i, p in enumerate(points)]


def test_random_is_seeded_and_inside_the_space():
    space = small_space()
    a, b = RandomSearch(space, StudyInfo(seed=3)), RandomSearch(space, StudyInfo(seed=3))
    points = a.ask(50)
    assert points == b.ask(20) + b.ask(30)
    assert all(space.contains(p) for p in points)
    assert points != RandomSearch(space, StudyInfo(seed=4)).ask(50)


def test_floats_are_drawn_as_numpys_uniform_draws_them_on_either_path(monkeypatch):
    """A float parameter is ``rng.uniform(low, high)`` (log: of the logs), the same number
    from the same draw, whether the fast path (``low + (high - low) * random()``, taken where
    this numpy computes uniform that way) or numpy's own is taken: seeded points do not
    change with it."""
    import math

    import numpy as np

    from mexplore import space as space_module
    from mexplore.space import Float

    plain, log = Float(-3.7, 12.9), Float(1e-5, 0.3, log=True)
    numpys = np.random.default_rng(11)
    expected = [(numpys.uniform(-3.7, 12.9), math.exp(numpys.uniform(math.log(1e-5), math.log(0.3))))
                for _ in range(500)]
    for affine in (True, False):
        monkeypatch.setattr(space_module, "_uniform_is_affine", lambda affine=affine: affine)
        ours = np.random.default_rng(11)
        drawn = [(plain.sample(ours), log.sample(ours)) for _ in range(500)]
        assert drawn == expected and all(type(value) is float for pair in drawn for value in pair)


def test_random_resume_skips_finished_points_and_reruns_lost_ones():
    space = small_space()
    full = RandomSearch(space, StudyInfo(seed=1)).ask(10)
    resumed = RandomSearch(space, StudyInfo(seed=1))
    done = [p for i, p in enumerate(full[:6]) if i != 2]  # point 2 was in flight when killed
    resumed.replay(finish(done))
    assert resumed.ask(5) == [full[2], *full[6:10]]


def test_grid_enumerates_lazily_with_repeats_outermost():
    space = Space({"a": Grid((1, 2)), "b": Int(0, 2)}, {"c": "k"})
    grid = GridSearch(space, repeats=2)
    assert grid.size == 12
    points = grid.ask(100)
    assert len(points) == 12 and grid.finished
    assert points[0] == {"a": 1, "b": 0, "c": "k", "repeat": 0}
    assert [p["repeat"] for p in points] == [0] * 6 + [1] * 6


def test_grid_of_a_million_points_is_streamed():
    space = Space({f"p{i}": Grid(tuple(range(10))) for i in range(6)}, {})
    grid = GridSearch(space)
    assert grid.size == 10**6
    assert len(grid.ask(5)) == 5 and not grid.finished
    assert grid.ask(1)[0] == {"p0": 0, "p1": 0, "p2": 0, "p3": 0, "p4": 0, "p5": 5}


def test_grid_resume_skips_finished_points():
    space = Space({"a": Grid(tuple(range(5)))}, {})
    grid = GridSearch(space)
    grid.replay(finish([{"a": 0}, {"a": 3}]))
    assert [p["a"] for p in grid.ask(10)] == [1, 2, 4]


def test_grid_refuses_float_ranges_by_name():
    with pytest.raises(AlgorithmError, match="x"):
        GridSearch(small_space()).ask(1)


def test_grid_rejects_bad_repeats():
    with pytest.raises(AlgorithmError, match="repeats"):
        GridSearch(Space({"a": Grid((1,))}, {}), repeats=0)


def test_registry_resolves_names_paths_and_files(tmp_path):
    assert resolve("grid") is GridSearch
    assert resolve("mexplore.algorithms.random:RandomSearch") is RandomSearch
    plugin = tmp_path / "my_algo.py"
    plugin.write_text("def run(queue, space, options):\n    pass\n")
    assert callable(resolve(f"{plugin}:run"))


def test_registry_errors_name_the_algorithm(tmp_path):
    with pytest.raises(AlgorithmError, match="did you mean 'random'"):
        resolve("randon")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(AlgorithmError, match="boom at import"):
        resolve(f"{broken}:Algo")
