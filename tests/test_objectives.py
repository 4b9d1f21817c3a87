"""Direction and best_result: the one rule every room ranks results by."""

from __future__ import annotations

import math

import pytest

from mexplore.objectives import Direction, best_result, first_objective
from mexplore.types import Result, Status


def result(task_id, objective, status=Status.OK):
    return Result(task_id=task_id, status=status, objective=objective)


def test_a_direction_is_parsed_from_the_study_file_spelling_and_stays_a_string():
    assert Direction("minimize") is Direction.MINIMIZE
    assert Direction(Direction.MAXIMIZE) is Direction.MAXIMIZE
    assert Direction.MINIMIZE == "minimize"
    assert f"{Direction.MAXIMIZE}" == "maximize"  # a report's label prints the word
    with pytest.raises(ValueError):
        Direction("minimise")


@pytest.mark.parametrize(("direction", "sign", "ascending"), [("minimize", 1.0, True), ("maximize", -1.0, False)])
def test_sign_makes_smaller_better_and_ascending_puts_the_best_first(direction, sign, ascending):
    assert Direction(direction).sign == sign
    assert Direction(direction).ascending is ascending


def test_better_is_strict_in_both_directions():
    assert Direction.MINIMIZE.better(1.0, 2.0) and not Direction.MINIMIZE.better(2.0, 1.0)
    assert Direction.MAXIMIZE.better(2.0, 1.0) and not Direction.MAXIMIZE.better(1.0, 2.0)
    assert not Direction.MINIMIZE.better(1.0, 1.0) and not Direction.MAXIMIZE.better(1.0, 1.0)


def test_first_objective_counts_only_ok_results_with_a_finite_value():
    assert first_objective(result(0, [2.0, 9.0])) == 2.0
    assert first_objective(result(1, 3)) == 3.0
    for skipped in (result(2, 1.0, Status.FAILED), result(3, None), result(4, math.nan),
                    result(5, [math.inf]), result(6, []), result(7, 0.5, Status.PRUNED)):
        assert first_objective(skipped) is None


def test_best_result_skips_failed_and_nan_results():
    results = [result(0, 5.0), result(1, -9.0, Status.FAILED), result(2, math.nan), result(3, 2.0),
               result(4, [1.0, 100.0]), result(5, None, Status.TIMEOUT)]
    assert best_result(results, "minimize").task_id == 4
    assert best_result(results, Direction.MAXIMIZE).task_id == 0


def test_best_result_keeps_the_earliest_of_a_tie():
    results = [result(0, 3.0), result(1, 1.0), result(2, 1.0), result(3, 3.0)]
    assert best_result(results, "minimize").task_id == 1
    assert best_result(results, "maximize").task_id == 0


def test_best_result_of_nothing_that_counts_is_none():
    assert best_result([], "minimize") is None
    assert best_result((r for r in [result(0, math.nan), result(1, 1.0, Status.FAILED)]), "maximize") is None
