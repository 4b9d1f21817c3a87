"""The imperative IoC queue, driven the way the master drives it, without MPI."""

import threading

import pytest
from helpers import small_space

from mexplore.algorithms.base import StudyInfo
from mexplore.errors import BudgetSpent
from mexplore.queue.futures import ImperativeAlgorithm, TaskQueue
from mexplore.types import ResizePool, Result, Status, StopTask


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
    algorithm.replay([Result(task_id=0, params={"x": 0, "epochs": 3}, status=Status.OK, objective=0.0),
                      Result(task_id=1, params={"x": 2, "epochs": 3}, status=Status.OK, objective=2.0)])
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
    algorithm.replay([Result(task_id=0, params={"x": 1, "epochs": 3}, status=Status.OK, objective=1.0),
                      Result(task_id=1, params={"x": 1, "epochs": 3}, status=Status.OK, objective=1.0)])
    assert serve(algorithm) == 1


def test_closing_an_algorithm_that_never_started():
    algorithm = ImperativeAlgorithm(lambda queue, space, options: None, small_space())
    algorithm.close()
    assert not algorithm.finished


def test_constants_of_the_space_are_added_to_submitted_points():
    def run(queue, space, options):
        queue.map([{"x": 0.5}, {"x": 0.25, "epochs": 3}])

    algorithm = ImperativeAlgorithm(run, small_space())
    proposals: list = []
    for _ in range(500):
        proposals += algorithm.propose(range(len(proposals), len(proposals) + 2))
        if len(proposals) == 2:
            break
        threading.Event().wait(0.002)
    assert proposals == [{"epochs": 3, "x": 0.5}, {"epochs": 3, "x": 0.25}]
    algorithm.close()


def test_a_future_goes_queued_running_done_and_keeps_its_reports():
    queue = TaskQueue(StudyInfo(budget=5))
    future = queue.submit({"x": 1})
    assert future.status == "queued" and queue.budget_left == 5
    assert queue.dispatch(range(3, 4)) == [{"x": 1}]
    assert future.status == "running" and queue.budget_left == 4
    queue.reported(3, 1, 0.5)
    queue.reported(3, 2, 0.25)
    assert future.reports() == [(1, 0.5), (2, 0.25)]
    queue.resolve([Result(task_id=3, params={"x": 1}, status=Status.OK, objective=0.1)])
    assert future.status == "done" and future.result().objective == 0.1
    assert future.reports() == [(1, 0.5), (2, 0.25)]


def test_stop_withdraws_a_waiting_task_and_asks_the_master_to_stop_a_running_one():
    queue = TaskQueue()
    running, waiting = queue.submit({"x": 1}, priority=1), queue.submit({"x": 2})
    queue.dispatch(range(10, 11))
    assert waiting.stop() and waiting.result().status is Status.CANCELLED
    assert running.stop() and queue.take_steering() == [StopTask(10)] and queue.take_steering() == []
    queue.resolve([Result(task_id=10, params={"x": 1}, status=Status.CANCELLED)])
    assert not running.stop(), "a task that is done cannot be stopped"
    assert queue.dispatch(range(11, 12)) == [], "the withdrawn task is never handed out"


def test_set_priorities_reorders_many_waiting_tasks_at_once():
    queue = TaskQueue()
    futures = [queue.submit({"x": i}) for i in range(10_000)]
    queue.set_priorities(futures, [i % 100 for i in range(10_000)])  # highest: x = 99, 199, ...
    queue.set_priorities(futures[:3], [1000, 1001, 1002])
    first = queue.dispatch(range(5))
    assert [p["x"] for p in first] == [2, 1, 0, 99, 199]
    assert len(queue.dispatch(range(5, 20_000))) == 9_995, "each waiting task handed out exactly once"
    with pytest.raises(ValueError, match="2 futures and 1 priorities"):
        queue.set_priorities(futures[:2], [1])


def test_when_the_run_ends_waiting_on_a_task_that_never_ran_raises_budget_spent():
    seen = []

    def run(queue, space, options):
        futures = [queue.submit({"x": i}) for i in range(10)]
        try:
            futures[-1].result()
        except BudgetSpent as spent:
            seen.append(str(spent))
            raise
        seen.append("never")

    algorithm = ImperativeAlgorithm(run, small_space(), StudyInfo(budget=2))
    algorithm.propose(range(2))
    algorithm.close()
    assert algorithm.finished, "its thread ended, and BudgetSpent is not an algorithm error"
    assert seen == ["the run ended (its budget of 2 tasks is spent) before this task ran: it never will"]
    with pytest.raises(BudgetSpent):
        algorithm.queue.submit({"x": 0.5}).result(timeout=0)


def test_agents_in_several_threads_share_one_queue():
    queue = TaskQueue()
    futures: list = []
    lock = threading.Lock()

    def agent(start):
        mine = [queue.submit({"x": start + i}) for i in range(500)]
        queue.set_priorities(mine, range(500))
        with lock:
            futures.extend(mine)

    threads = [threading.Thread(target=agent, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    handed = []
    while any(thread.is_alive() for thread in threads) or queue.waiting:
        handed += queue.dispatch(range(len(handed), len(handed) + 7))
    for thread in threads:
        thread.join()
    assert sorted(p["x"] for p in handed) == sorted(f.params["x"] for f in futures)
    assert len(handed) == 2000


def test_dispatch_takes_only_the_kinds_asked_for_by_priority_and_resize_is_a_request():
    queue = TaskQueue(StudyInfo(kinds=("train",), kind="simulate"))
    low = queue.submit({"x": 1}, priority=1)
    train = queue.submit({"points": [1, 2]}, priority=9, kind="train")
    high = queue.submit({"x": 2}, priority=5)
    assert queue.dispatch(range(2), frozenset({None})) == [{"x": 2}, {"x": 1}], "no free worker trains"
    assert (high.task_id, low.task_id, train.status) == (0, 1, "queued")
    [submission] = queue.dispatch(range(2, 4), frozenset({None, "train"}))
    assert (submission.kind, submission.params) == ("train", {"points": [1, 2]})
    queue.resize("train", 2)
    assert queue.take_steering() == [ResizePool("train", 2)]
    with pytest.raises(ValueError, match="expected one of the study's kinds simulate, train"):
        queue.resize("trian", 1)
    with pytest.raises(ValueError, match="no \\[models.infer\\]"):
        queue.submit({}, kind="infer")


def test_submit_sizes_a_task_only_where_tasks_are_placed():
    placed = TaskQueue(StudyInfo(placed=True))
    placed.submit({"x": 1}, ranks=4, gpus=2)
    [submission] = placed.dispatch(range(1))
    assert (submission.kind, submission.shape.ranks, submission.shape.nodes, submission.shape.gpus) == (None, 4, 0, 2)
    with pytest.raises(ValueError, match="submit\\(ranks=0\\): expected an integer >= 1"):
        placed.submit({"x": 1}, ranks=0)
    with pytest.raises(ValueError, match="not placed on worker slots; set \\[model\\] ranks"):
        TaskQueue().submit({"x": 1}, ranks=2)
