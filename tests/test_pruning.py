"""Pruning without MPI: the algorithm hook, the optuna pruners, and the study keys."""

from __future__ import annotations

import pytest
from helpers import REPO

from mexplore.algorithms.base import StudyInfo
from mexplore.config import load_study
from mexplore.errors import AlgorithmError, StudyFileError
from mexplore.queue.build import build_algorithm
from mexplore.runtime.session import check_study
from mexplore.space import Float, Space
from mexplore.types import Result, Status

SPACE = Space(parameters={"x": Float(0.0, 1.0)}, constants={})


def test_optuna_median_pruner_stops_a_trial_worse_than_the_median():
    algorithm = build_algorithm("optuna.tpe", SPACE, StudyInfo(seed=1), {
        "pruner": "median", "pruner_options": {"n_startup_trials": 2}})
    finished = algorithm.propose(range(2))
    for task_id in range(2):
        for step in range(3):
            assert not algorithm.report(task_id, step, 1.0), "no pruning before n_startup_trials"
    algorithm.tell([Result(task_id=i, params=p, status=Status.OK, objective=1.0) for i, p in enumerate(finished)])
    [hopeless] = algorithm.propose(range(2, 3))
    assert algorithm.report(2, 0, 9.0)
    algorithm.tell([Result(task_id=2, params=hopeless, status=Status.PRUNED, objective=None, reports=[(0, 9.0)])])
    assert [t.state.name for t in algorithm.study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]


def test_without_a_pruner_nothing_is_pruned():
    algorithm = build_algorithm("optuna.tpe", SPACE, StudyInfo(seed=1), {})
    algorithm.propose(range(1))
    assert not algorithm.report(0, 0, 1e9)
    assert not build_algorithm("random", SPACE, StudyInfo(seed=1), {}).report(0, 0, 1.0)


def test_pruner_errors_name_the_algorithm_and_what_is_expected():
    with pytest.raises(AlgorithmError, match="'random' does not prune"):
        build_algorithm("random", SPACE, StudyInfo(seed=1), {"pruner": "median", "pruner_options": {}})
    with pytest.raises(AlgorithmError, match="unknown pruner 'medium'; expected one of median"):
        build_algorithm("optuna.tpe", SPACE, StudyInfo(seed=1), {"pruner": "medium", "pruner_options": {}})
    with pytest.raises(AlgorithmError, match="rejected \\[algorithm.pruner_options\\]"):
        build_algorithm("optuna.tpe", SPACE, StudyInfo(seed=1), {"pruner": "median", "pruner_options": {"steps": 1}})
    with pytest.raises(AlgorithmError, match="single-objective studies only"):
        build_algorithm("optuna.nsga2", SPACE, StudyInfo(seed=1, directions=("minimize", "minimize")),
                        {"pruner": "median", "pruner_options": {}})


def test_study_keys_reach_the_algorithm_before_any_rank_starts():
    study = load_study(REPO / "studies" / "quickstart.toml",
                       ['algorithm.name="optuna.tpe"', 'algorithm.pruner="hyperband"'])
    assert study.to_dict()["algorithm"]["pruner"] == "hyperband"
    check_study(study)
    with pytest.raises(StudyFileError, match=r"quickstart.toml: \[algorithm\] algorithm 'random' does not prune"):
        check_study(load_study(REPO / "studies" / "quickstart.toml", ['algorithm.pruner="median"']))
