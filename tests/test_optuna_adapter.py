"""The optuna.* algorithms: options, failures, multi-objective, resume, lazy import."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from helpers import small_space
from mexplore.algorithms.base import StudyInfo
from mexplore.errors import AlgorithmError
from mexplore.queue.build import build_algorithm
from mexplore.space import Float, Grid, Int, Space
from mexplore.testing import drive, journaled
from mexplore.types import Result, Status

State = optuna.trial.TrialState


def test_importing_the_registry_does_not_import_optuna_or_scipy():
    code = ("import sys, mexplore.algorithms.registry as r; r.resolve('optuna.tpe'); r.resolve('sobol');"
            "print(sorted({'optuna', 'scipy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_options_reach_the_sampler_and_tpe_lies_constantly_by_default():
    tpe = build_algorithm("optuna.tpe", small_space(), StudyInfo(seed=1), {"n_startup_trials": 3})
    assert tpe.study.sampler._n_startup_trials == 3 and tpe.study.sampler._constant_liar
    honest = build_algorithm("optuna.tpe", small_space(), StudyInfo(seed=1), {"constant_liar": False})
    assert not honest.study.sampler._constant_liar
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING


def test_a_bad_option_is_named():
    with pytest.raises(AlgorithmError, match="'optuna.tpe' has no option 'n_startup'"):
        build_algorithm("optuna.tpe", small_space(), StudyInfo(seed=1), {"n_startup": 3})
    with pytest.raises(AlgorithmError, match="optuna.nsga2.*population_size"):
        build_algorithm("optuna.nsga2", small_space(), StudyInfo(seed=1), {"population_size": 1})


def test_results_are_told_with_their_state():
    algorithm = build_algorithm("optuna.tpe", small_space(), StudyInfo(seed=1), {})
    a, b, c, d = algorithm.propose(range(10, 14))
    algorithm.tell([  # in any order: each result finds its trial by task id
        Result(task_id=11, params=b, status=Status.FAILED, error="boom"),
        Result(task_id=10, params=a, status=Status.OK, objective=2.5),
        Result(task_id=12, params=c, status=Status.PRUNED, reports=[(0, 3.0), (1, 2.0)]),
        Result(task_id=13, params=dict(d), status=Status.TIMEOUT),
    ])
    trials = algorithm.study.trials
    assert [t.state for t in trials] == [State.COMPLETE, State.FAIL, State.PRUNED, State.FAIL]
    assert trials[0].value == 2.5 and trials[2].intermediate_values == {0: 3.0, 1: 2.0}
    assert trials[0].params == {k: a[k] for k in trials[0].params}


def test_multi_objective_directions_reach_the_study():
    space = Space({"x": Float(0.0, 1.0)}, {})
    algorithm = build_algorithm("optuna.nsga2", space, StudyInfo(seed=1, directions=("minimize", "maximize")), {})
    assert algorithm.study.directions == [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]
    (point,) = algorithm.propose(range(1))
    algorithm.tell([Result(task_id=0, params=point, status=Status.OK, objective=[1.0, 2.0])])
    assert algorithm.study.trials[0].values == [1.0, 2.0]
    with pytest.raises(AlgorithmError, match="'optuna.cmaes' optimizes one objective"):
        build_algorithm("optuna.cmaes", space, StudyInfo(seed=1, directions=("minimize", "maximize")), {})


def test_gp_without_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(AlgorithmError, match="'optuna.gp' needs PyTorch.*pip install torch"):
        build_algorithm("optuna.gp", small_space(), StudyInfo(seed=1), {})


def test_log_int_with_a_step_is_refused_by_name():
    with pytest.raises(AlgorithmError, match="units.*log = true and step = 4"):
        build_algorithm("optuna.tpe", Space({"units": Int(4, 64, step=4, log=True)}, {}), StudyInfo(seed=1), {})


def test_replay_adds_the_journal_as_finished_trials():
    space = small_space()
    first = build_algorithm("optuna.tpe", space, StudyInfo(seed=1), {})
    results = drive(first, space, 12, outcomes=None)
    results[3].status, results[3].objective = Status.FAILED, None
    resumed = build_algorithm("optuna.tpe", space, StudyInfo(seed=1), {})
    resumed.replay(journaled(results))
    states = [t.state for t in resumed.study.trials]
    assert len(states) == 12 and states.count(State.FAIL) == 1 and states.count(State.COMPLETE) == 11
    assert all(space.contains(p) for p in resumed.propose(range(12, 16)))


def test_grid_ends_when_exhausted_and_resumes_without_repeating():
    space = Space({"a": Grid((1, 2, 3)), "b": Int(0, 3)}, {"k": "c"})
    grid = build_algorithm("optuna.grid", space, StudyInfo(seed=1), {})
    points = grid.propose(range(100))
    assert len(points) == 12 and grid.finished
    assert sorted((p["a"], p["b"]) for p in points) == [(a, b) for a in (1, 2, 3) for b in range(4)]
    resumed = build_algorithm("optuna.grid", space, StudyInfo(seed=1), {})
    done = [p for i, p in enumerate(points) if i % 3]  # a third were lost in flight
    resumed.replay(journaled([Result(task_id=i, params=p, status=Status.OK, objective=1.0) for i, p in enumerate(done)]))
    rest = resumed.propose(range(100, 200))
    assert sorted(map(str, rest)) == sorted(str(p) for i, p in enumerate(points) if i % 3 == 0)
    assert resumed.finished


def test_grid_refuses_float_ranges():
    with pytest.raises(AlgorithmError, match="optuna.grid.*x"):
        build_algorithm("optuna.grid", small_space(), StudyInfo(seed=1), {})
