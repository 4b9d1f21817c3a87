"""Warm starts: ``[algorithm] initial`` points run first; ``from`` tells the algorithm an
earlier run's results. Config checks, the wrapper's logic, and whole runs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO, journal, run_cli, write_study

from mexplore.algorithms.base import Ahead, Algorithm, StudyInfo
from mexplore.algorithms.warm_start import WarmStart
from mexplore.config import load_study
from mexplore.errors import StudyFileError
from mexplore.queue.build import build_algorithm
from mexplore.runtime.entry import run_inproc
from mexplore.space import Categorical, Float, Int, Space
from mexplore.testing import AlgorithmConformance
from mexplore.testing.conformance import MIXED_SPACE
from mexplore.types import Result, Status


def study_file(tmp_path, algorithm_lines: str, name: str = "warm", budget: int = 8, objective: str = "loss"):
    return write_study(tmp_path, f"""
        [study]
        name = "{name}"
        budget = {budget}
        objective = "{objective}"
        output = "{tmp_path / name}"
        [model]
        python = "{REPO / 'tests/models/toy.py'}:quadratic"
        [algorithm]
        seed = 3
        {algorithm_lines}
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        y = {{ type = "int", low = 0, high = 4 }}
        level = 0
    """, name=f"{name}.toml")


def error_of(path) -> str:
    with pytest.raises(StudyFileError) as caught:
        load_study(path)
    return str(caught.value)


# --------------------------------------------------------------------------- the study file

def test_inline_points_are_completed_and_typed(tmp_path):
    study = load_study(study_file(tmp_path, 'initial = [{ x = 1, y = 2 }, { x = 0.25, y = 0, level = 0 }]'))
    assert study.algorithm.initial == ({"x": 1.0, "y": 2, "level": 0}, {"x": 0.25, "y": 0, "level": 0})
    assert type(study.algorithm.initial[0]["x"]) is float
    assert study.to_dict()["algorithm"]["initial"][0] == {"x": 1.0, "y": 2, "level": 0}


@pytest.mark.parametrize("points, key, says", [
    ('[{ x = 2.0, y = 1 }]', "algorithm.initial.0.x", "a number in [0.0, 1.0]"),
    ('[{ x = 0.5, y = 1 }, { x = 0.5, y = true }]', "algorithm.initial.1.y", "an integer in [0, 4]"),
    ('[{ x = 0.5 }]', "algorithm.initial.0.y", "a point names every parameter"),
    ('[{ x = 0.5, y = 1, z = 3 }]', "algorithm.initial.0.z", "a parameter of [space]"),
    ('[{ x = 0.5, y = 1, level = 2 }]', "algorithm.initial.0.level", "the constant of [space]"),
    ('"points.toml"', "algorithm.initial", "a file of points ending in .csv, .jsonl or .txt"),
    ('"missing.csv"', "algorithm.initial", "a readable file of points"),
])
def test_a_bad_point_names_the_study_the_key_and_what_was_expected(tmp_path, points, key, says):
    message = error_of(study_file(tmp_path, f"initial = {points}"))
    assert "warm.toml" in message and key in message and says in message


def test_points_from_csv_and_jsonl_files(tmp_path):
    (tmp_path / "points.csv").write_text("x,y\n0.5,1\n1,4\n")
    (tmp_path / "points.jsonl").write_text('{"x": 0.5, "y": 1}\n\n{"x": 1, "y": 4, "level": 0}\n')
    for name in ("points.csv", "points.jsonl"):
        study = load_study(study_file(tmp_path, f'initial = "{tmp_path / name}"'))
        assert study.algorithm.initial == ({"x": 0.5, "y": 1, "level": 0}, {"x": 1.0, "y": 4, "level": 0})
        assert study.to_dict()["algorithm"]["initial"] == str(tmp_path / name)


def test_a_bad_line_in_a_points_file_is_named_with_its_line(tmp_path):
    (tmp_path / "points.csv").write_text("x,y\n0.5,1\n0.5,9\n")
    message = error_of(study_file(tmp_path, f'initial = "{tmp_path / "points.csv"}"'))
    assert "points.csv line 3: y = 9 is not an integer in [0, 4]" in message
    (tmp_path / "points.jsonl").write_text('{"x": 0.5, "y": 1}\n{"x": 0.5, "y": \n')
    message = error_of(study_file(tmp_path, f'initial = "{tmp_path / "points.jsonl"}"'))
    assert "points.jsonl line 2" in message and "one JSON object per line" in message


def test_csv_cells_are_read_as_their_parameter_types():
    from mexplore.config.points_file import csv_cell

    space = Space({"a": Categorical((1, "1", True)), "b": Int(0, 3), "c": Float(0, 1)}, {"k": 0.5})
    assert [csv_cell(space, "a", text) for text in ("1", "true")] == [1, True]
    assert (csv_cell(space, "b", "2"), csv_cell(space, "c", "0.5"), csv_cell(space, "k", "0.5")) == (2, 0.5, 0.5)
    assert csv_cell(space, "b", "two") == "two"  # left as text, for the point check to name


def test_from_must_be_a_run_of_the_same_objectives(tmp_path):
    earlier = load_study(study_file(tmp_path, "", name="before"))
    assert run_inproc(lambda: earlier, "off", workers=1) == 0
    assert error_of(study_file(tmp_path, f'from = "{tmp_path / "nothing"}"')).count("no readable run record") == 1
    mismatch = error_of(study_file(tmp_path, f'from = "{tmp_path / "before"}"', objective="cost"))
    assert "algorithm.from" in mismatch and "that run has objective ['loss']" in mismatch
    itself = error_of(study_file(tmp_path, f'from = "{tmp_path / "warm"}"'))
    assert "the study's own output" in itself
    assert "did you mean 'from'" in error_of(study_file(tmp_path, 'fro = "x"'))


# --------------------------------------------------------------------------- the wrapper

class Recorder(Algorithm):
    """A stand-in algorithm that proposes x = 0.9 (one dict object, as often as asked) and
    records what it is told and taught."""

    def __init__(self):
        super().__init__(Space({"x": Float(0, 1)}, {}))
        self.told, self.learned, self.replayed = [], [], []

    def ask(self, n):
        return [{"x": 0.9}] * n  # the same object n times: pairing must not rely on identity

    def tell(self, results):
        self.told += results

    def learn(self, results):
        self.learned += results

    def replay(self, results):
        self.replayed += results

    def report(self, task_id, step, value):
        return True


def ok(params, task_id=0):
    return Result(task_id=task_id, params=params, status=Status.OK, objective=params["x"])


def test_initial_points_go_first_and_their_results_are_learned_not_told():
    inner = Recorder()
    warm = WarmStart(inner, [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}], earlier=[ok({"x": 0.5})])
    assert [r.params for r in inner.learned] == [{"x": 0.5}]
    first = warm.propose(range(0, 2))
    second = warm.propose(range(2, 5))
    assert first == [{"x": 0.1}, {"x": 0.2}] and second == [{"x": 0.3}, {"x": 0.9}, {"x": 0.9}]
    assert warm.report(0, 1, 0.5) is False and warm.report(3, 1, 0.5) is True
    warm.tell([ok(dict(first[1]), 1), ok(dict(second[2]), 4), ok(dict(first[0]), 0)])  # copies: ids pair them
    assert [r.params["x"] for r in inner.learned] == [0.5, 0.2, 0.1]
    assert [r.params["x"] for r in inner.told] == [0.9]


def test_a_resumed_warm_start_skips_the_initial_points_already_finished():
    inner = Recorder()
    warm = WarmStart(inner, [{"x": 0.1}, {"x": 0.2}, {"x": 0.1}], earlier=[])
    warm.replay([ok({"x": 0.1}), ok({"x": 0.9}), ok({"x": 0.7})])
    assert [r.params["x"] for r in inner.learned] == [0.1]
    assert [r.params["x"] for r in inner.replayed] == [0.9, 0.7]
    assert warm.propose(range(3, 6)) == [{"x": 0.2}, {"x": 0.1}, {"x": 0.9}]


def test_optuna_learns_foreign_results_as_trials():
    tpe = build_algorithm("optuna.tpe", Space({"x": Float(0, 1)}, {}), StudyInfo(seed=0), {})
    tpe.learn([ok({"x": 0.25}), Result(task_id=1, params={"x": 0.5}, status=Status.FAILED)])
    states = [t.state.name for t in tpe.study.trials]
    assert states == ["COMPLETE", "FAIL"] and tpe.study.best_value == 0.25
    tpe.close()


class TestWarmStartedRandom(AlgorithmConformance):
    """A warm-started algorithm is still an algorithm: the wrapper passes the suite, and a
    resume gives the very points of an uninterrupted run (``random`` replays exactly)."""

    name = "random"

    def make(self, info):
        points = [MIXED_SPACE.sample(np.random.default_rng(k)) for k in range(3)]
        return WarmStart(build_algorithm(self.name, MIXED_SPACE, info, {}), points, earlier=[])


class TestWarmStartedTPE(TestWarmStartedRandom):
    name = "optuna.tpe"
    resumes_exactly = False  # the sampler's random state is not in the journal


# --------------------------------------------------------------------------- whole runs

def test_initial_points_run_first_count_against_the_budget_and_survive_resume(tmp_path):
    path = study_file(tmp_path, 'initial = [{ x = 0.3, y = 0 }, { x = 0.9, y = 4 }, { x = 0.0, y = 1 }]', budget=2)
    assert run_inproc(lambda: load_study(path), "off", workers=1) == 0
    first = journal(tmp_path / "warm")
    assert [r["params"] for r in first] == [{"x": 0.3, "y": 0, "level": 0}, {"x": 0.9, "y": 4, "level": 0}]
    assert run_inproc(lambda: load_study(path, ["study.budget=6"]), "off", workers=2) == 0
    records = journal(tmp_path / "warm")
    assert len(records) == 6
    points = [(r["params"]["x"], r["params"]["y"]) for r in records]
    assert points.count((0.3, 0)) == 1 and points.count((0.9, 4)) == 1 and points.count((0.0, 1)) == 1


@pytest.mark.mpi
def test_tpe_warm_started_from_an_earlier_run_and_a_csv_under_mpi(tmp_path):
    before = study_file(tmp_path, "", name="before", budget=12)
    done = run_cli("run", str(before), "-n", "2", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "points.csv").write_text("x,y\n0.3,0\n")
    after = study_file(tmp_path, f'name = "optuna.tpe"\ninitial = "{tmp_path / "points.csv"}"\n'
                                 f'from = "{tmp_path / "before"}"', name="after", budget=4)
    run = run_cli("run", str(after), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"told optuna.tpe the 12 results of {tmp_path / 'before'}" in run.stderr
    assert "1 initial points first" in run.stderr
    records = sorted(journal(tmp_path / "after"), key=lambda r: r["id"])
    assert len(records) == 4 and records[0]["params"] == {"x": 0.3, "y": 0, "level": 0}
    assert all(r["status"] == "ok" for r in records)


def test_the_results_a_wrapped_algorithm_says_its_proposals_missed_reach_the_master():
    """``computed_ahead`` (``proposers``: proposals computed ahead of need) passes through
    the warm start, for the algorithm's own tasks and the initial points alike (the
    algorithm answers 0 for a task it did not propose)."""

    class ComputesAhead(Algorithm):
        def ask(self, n):
            return [{"x": 0.5}] * n

        def computed_ahead(self, task_ids):
            return Ahead([2 if task_id >= 1 else 0 for task_id in task_ids], 0.25)

    warm = WarmStart(ComputesAhead(Space({"x": Float(0.0, 1.0)}, {})), [{"x": 0.1}], [])
    assert warm.propose(range(0, 3)) == [{"x": 0.1}, {"x": 0.5}, {"x": 0.5}]
    assert warm.computed_ahead(range(0, 3)) == Ahead([0, 2, 2], 0.25)


def test_an_algorithm_with_the_hooks_earlier_name_is_refused_saying_the_new_one():
    """``unseen(task_ids)`` became ``computed_ahead``: an algorithm still defining it would
    have its tasks' lag silently short, so the class itself is refused."""
    with pytest.raises(TypeError, match=r"Old.unseen\(task_ids\) is now computed_ahead\(task_ids\)"):
        class Old(Algorithm):
            def ask(self, n):
                return [{}] * n

            def unseen(self, task_ids):
                return [0] * len(task_ids)
