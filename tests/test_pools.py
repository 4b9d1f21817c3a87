"""Worker pools (``[pools]``), as pure bookkeeping: who runs what, resizing, the budget."""

import pytest

from mexplore.queue.policies import Async
from mexplore.queue.pools import SHARED, PoolDispatcher, pool_sizes
from mexplore.types import Result, Status, Submission


def done(task_id: int) -> Result:
    return Result(task_id=task_id, params={}, status=Status.OK, objective=1.0)


def pools(**sizes) -> PoolDispatcher:
    return PoolDispatcher([1, 2, 3, 4], sizes, "simulate", Async(), budget=6, kinds=frozenset({"train"}))


def placed(dispatcher: PoolDispatcher) -> dict[int, list]:
    return {worker: [task.kind for task in tasks] for worker, tasks in dispatcher.assign()}


def test_a_pooled_kind_runs_on_its_workers_only_and_they_run_only_it():
    d = pools(train=1)
    assert d.pool_of == {1: "train", 2: SHARED, 3: SHARED, 4: SHARED}
    assert d.runnable() == frozenset({None, "train"})
    d.enqueue(d.number([Submission({"p": 1}, "train"), Submission({"p": 2}, "train"), {"x": 1}, {"x": 2}]))
    assert placed(d) == {1: ["train"], 2: [None], 3: [None]}
    assert [task.kind for task in d.pending] == ["train"], "the second training waits for the train worker"
    assert d.runnable() == frozenset({None}), "no free worker trains: the master asks for simulations only"


def test_when_every_kind_has_a_pool_the_rest_join_the_objective_kind():
    d = pools(train=1, simulate=1)
    d.enqueue(d.number([{"x": i} for i in range(3)]))
    assert sorted(placed(d)) == [2, 3, 4]


def test_resize_moves_idle_workers_at_once_and_busy_ones_as_they_free_up():
    d = pools(train=1)
    d.enqueue(d.number([{"x": i} for i in range(3)]))
    running = {worker: tasks[0].id for worker, tasks in d.assign()}
    assert sorted(running) == [2, 3, 4]
    assert d.resize("train", 3) == (1, 3), "every shared worker is busy: none moves yet"
    d.complete(2, [done(running[2])])
    assert d.sizes() == {"train": 2, SHARED: 2}
    d.complete(3, [done(running[3])])
    assert d.sizes() == {"train": 3, SHARED: 1}
    assert d.resize("train", 0) == (0, 0), "idle train workers go back to the shared ones at once"
    assert d.sizes() == {SHARED: 4}


def test_auxiliary_tasks_are_outside_the_budget():
    d = pools(train=1)
    d.enqueue(d.number([Submission({}, "train"), *({"x": i} for i in range(3))]))
    sends = d.assign()
    assert d.wanted() == 0, "every worker is busy"
    for worker, tasks in sends:
        d.complete(worker, [done(task.id) for task in tasks])
    assert d.finished == 3 and d.wanted() == 3, "6 budgeted, 3 done: the training did not count"


def test_pool_sizes_take_counts_and_fractions_and_refuse_too_many():
    assert pool_sizes({"train": 0.25, "simulate": 2}, 8) == {"train": 2, "simulate": 2}
    assert pool_sizes({"train": 0.01}, 8) == {"train": 1}, "a fraction above 0 gets a worker"
    with pytest.raises(ValueError, match="add up to 9 workers and the job has 8"):
        pool_sizes({"train": 5, "simulate": 4}, 8)
