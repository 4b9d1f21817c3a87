"""The imperative IoC queue, driven the way the master drives it, without MPI."""

import threading

import pytest

from helpers import small_space
from mexplore.algorithms.base import StudyInfo
from mexplore.queue.futures import ImperativeAlgorithm, TaskQueue
from mexplore.types import Result, Status


def serve(algorithm, rounds=200):
    """Play the master: ask, 'run' each task (objective = x), tell; until finished."""
    next_id = 0
    for _ in range(rounds):
        proposals = algorithm.propose(range(next_id, next_id + 4))
        results = [Result(task_id=next_id + i, params=dict(params), status=Status.OK, objective=float(params["x"]))
                   for i, params in enumerate(proposals)]
        next_id += len(proposals)
        algorithm.tell(results[::-1])  # in any order: futures are resolved by task id
        if algorithm.finished:
            return next_id
        threading.Event().wait(0.002)
    raise AssertionError("the algorithm never finished")


def test_map_submit_and_as_completed():
    seen = {}

    def run(queue, space, options):
        seen["batch"] = [r.objective for r in queue.map([{"x": i} for i in range(5)])]
        futures = [queue.submit({"x": 10 + i}) for i in range(3)]
        seen["completed"] = sorted(f.result().objective for f in queue.as_completed(futures))
        seen["options"] = options
        seen["workers"] = queue.info.workers

    count = serve(ImperativeAlgorithm(run, small_space(), StudyInfo(seed=5, workers=3), generations=2))
    assert count == 8
    assert seen["batch"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert seen["completed"] == [10.0, 11.0, 12.0]
    assert seen["options"] == {"generations": 2, "seed": 5}
    assert seen["workers"] == 3


def test_priority_orders_dispatch_and_cancel_withdraws():
    queue = TaskQueue()
    low = queue.submit({"x": 1}, priority=0)
    high = queue.submit({"x": 2}, priority=5)
    dropped = queue.submit({"x": 3}, priority=9)
    assert dropped.cancel()
    assert dropped.result(timeout=0).status is Status.CANCELLED
    queue.set_priority([low], 10)
    assert queue.dispatch(range(7, 17)) == [{"x": 1}, {"x": 2}]
    assert (low.task_id, high.task_id) == (7, 8)
    assert not high.cancel()  # already handed out


def test_close_cancels_what_is_left_so_the_thread_ends():
    def run(queue, space, options):
        futures = [queue.submit({"x": i}) for i in range(10)]
        for future in futures:
            future.result()

    algorithm = ImperativeAlgorithm(run, small_space())
    algorithm.propose(range(2))
    algorithm.close()
    assert algorithm.finished  # its thread has ended


def test_replayed_points_resolve_without_running():
    def run(queue, space, options):
        queue.map([{"x": i} for i in range(4)])

    algorithm = ImperativeAlgorithm(run, small_space())
    algorithm.replay([Result(task_id=0, params={"x": 0}, status=Status.OK, objective=0.0), Result(task_id=1, params={"x": 2}, status=Status.OK, objective=2.0)])
    assert serve(algorithm) == 2


def test_an_error_in_the_algorithm_reaches_the_master():
    def run(queue, space, options):
        raise ValueError("bad algorithm")

    algorithm = ImperativeAlgorithm(run, small_space())
    with pytest.raises(ValueError, match="bad algorithm"):
        for _ in range(1000):
            algorithm.propose(range(1))
            threading.Event().wait(0.001)


def test_a_point_run_twice_before_is_replayed_twice():
    def run(queue, space, options):
        queue.map([{"x": 1}, {"x": 1}, {"x": 2}])

    algorithm = ImperativeAlgorithm(run, small_space())
    algorithm.replay([Result(task_id=0, params={"x": 1}, status=Status.OK, objective=1.0), Result(task_id=1, params={"x": 1}, status=Status.OK, objective=1.0)])
    assert serve(algorithm) == 1


def test_closing_an_algorithm_that_never_started():
    algorithm = ImperativeAlgorithm(lambda queue, space, options: None, small_space())
    algorithm.close()
    assert not algorithm.finished
