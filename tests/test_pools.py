"""Worker pools (``[pools]``), as pure bookkeeping: who runs what, resizing, the budget."""

import random

import pytest

from mexplore.errors import AlgorithmError
from mexplore.queue.dispatch import PlacingDispatcher
from mexplore.queue.policies import Async, Queue
from mexplore.queue.pools import SHARED, PoolDispatcher, Pools, pool_sizes
from mexplore.types import Result, Shape, Status, Submission


def done(task_id: int) -> Result:
    return Result(task_id=task_id, params={}, status=Status.OK, objective=1.0)


def pools(**sizes) -> PoolDispatcher:
    return PoolDispatcher([1, 2, 3, 4], sizes, "simulate", Async(), budget=6, kinds=frozenset({"train"}))


def placed(dispatcher: PoolDispatcher) -> dict[int, list]:
    return {worker: [task.kind for task in tasks] for worker, tasks in dispatcher.assign()}


def test_a_pooled_kind_runs_on_its_workers_only_and_they_run_only_it():
    d = pools(train=1)
    assert d.pools.pool_of == {1: "train", 2: SHARED, 3: SHARED, 4: SHARED}
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
    assert d.pools.sizes() == {"train": 2, SHARED: 2}
    d.complete(3, [done(running[3])])
    assert d.pools.sizes() == {"train": 3, SHARED: 1}
    assert d.resize("train", 0) == (0, 0), "idle train workers go back to the shared ones at once"
    assert d.pools.sizes() == {SHARED: 4}


def test_auxiliary_tasks_are_outside_the_budget():
    d = pools(train=1)
    d.enqueue(d.number([Submission({}, "train"), *({"x": i} for i in range(3))]))
    sends = d.assign()
    assert d.wanted() == 0, "every worker is busy"
    for worker, tasks in sends:
        d.complete(worker, [done(task.id) for task in tasks])
    assert d.finished == 3 and d.wanted() == 3, "6 budgeted, 3 done: the training did not count"


def test_what_the_pools_buckets_decide_is_what_a_look_at_every_worker_decides():
    """Each pool's workers are kept in buckets by the tasks they hold, so that a round costs
    the same with 10 workers or 10,000; over random proposals, results and resizes, what
    they ask for is what a look at every ready worker finds, and every task goes to a
    ready worker that runs its kind, never beyond its slots."""
    chance = random.Random(5)
    policy = Queue(backlog=3)
    d = PoolDispatcher(range(1, 25), {"train": 4, "fit": 3}, "simulate", policy, budget=None,
                       kinds=frozenset({"train", "fit", "plot"}))
    kinds = (None, "train", "fit", "plot")
    outstanding = {}
    for step in range(3000):
        ready = [w for w, held in d._held.items() if held <= d.capacity - d._refill_at]
        room = {kind: sum(d.capacity - d._held[w] for w in ready if d.pools.runs(w, kind)) for kind in kinds}
        waiting = {kind: sum(task.kind == kind for task in d.pending) for kind in kinds}
        runnable = frozenset(kind for kind in kinds if room[kind] > waiting[kind])
        expected = max(sum(d.capacity - d._held[w] for w in ready if any(d.pools.runs(w, k) for k in runnable))
                       - sum(waiting[kind] for kind in runnable), 0) if runnable else 0
        assert d.wanted() == expected and d.proposable == runnable, f"step {step}"
        roll = chance.random()
        if roll < 0.02:
            d.resize(chance.choice(["train", "fit", "plot", "simulate"]), chance.randint(0, 8))
        elif roll < 0.5 and outstanding:
            worker = chance.choice(list(outstanding))
            tasks = outstanding.pop(worker)
            back = chance.randint(1, len(tasks))
            d.complete(worker, [done(task.id) for task in tasks[:back]])
            if tasks[back:]:
                outstanding[worker] = tasks[back:]
        else:
            kind = chance.choice(kinds)
            d.enqueue(d.number([{"x": step} if kind is None else Submission({}, kind)] * chance.randint(1, 6)))
            for worker, tasks in d.assign():
                assert worker in ready and all(d.pools.runs(worker, task.kind) for task in tasks)
                outstanding.setdefault(worker, []).extend(tasks)
                assert len(outstanding[worker]) == d._held[worker] <= d.capacity
        for pool, workers in d._pool_by_held.items():
            for held, bucket in enumerate(workers.buckets):
                assert all(d.pools.pool_of[w] == pool and d._held[w] == held for w in bucket)
        assert sum(len(bucket) for workers in d._pool_by_held.values() for bucket in workers.buckets) == 24


def test_pool_sizes_take_counts_and_fractions_and_refuse_too_many():
    assert pool_sizes({"train": 0.25, "simulate": 2}, 8) == {"train": 2, "simulate": 2}
    assert pool_sizes({"train": 0.01}, 8) == {"train": 1}, "a fraction above 0 gets a worker"
    with pytest.raises(ValueError, match="add up to 9 workers and the job has 8"):
        pool_sizes({"train": 5, "simulate": 4}, 8)


# -- pools of worker slots, for kinds of several ranks ----------------------------------------
def placed_pools(**sizes) -> PlacingDispatcher:
    """Two nodes of 4 slots (ranks 1-4 on a, 5-8 on b); simulations of one rank, trainings
    of ``n`` ranks."""
    hosts = {rank: "a" if rank <= 4 else "b" for rank in range(1, 9)}
    kinds = frozenset({"train"})
    return PlacingDispatcher(hosts, lambda params, kind: Shape(ranks=params.get("n", 1)),
                             {None: True, "train": True}, Async(), budget=20, kinds=kinds,
                             pools=Pools(hosts, sizes, "simulate", kinds))


def test_a_kind_of_several_ranks_is_placed_on_its_pools_slots_only():
    d = placed_pools(train=4)
    assert d.wanted() and d.proposable == frozenset({None, "train"})
    d.enqueue(d.number([Submission({"n": 3}, "train"), Submission({"n": 2}, "train"),
                        *({"x": i} for i in range(6))]))
    sends = d.assign()
    by_task = {}
    for worker, tasks in sends:
        by_task.setdefault(tasks[0].id, set()).add(worker)
    assert by_task[0] <= {1, 2, 3, 4} and len(by_task[0]) == 3, "the training on the train pool's slots"
    assert 1 not in by_task, "the second training waits: one train slot is left"
    simulations = [workers for task_id, workers in by_task.items() if task_id >= 2]
    assert len(simulations) == 4 and set().union(*simulations) == {5, 6, 7, 8}, "simulations never on train slots"
    assert d.wanted() == 1 and d.proposable == frozenset({"train"}), "only a train slot is free"


def test_resize_moves_free_slots_at_once_and_held_ones_as_their_tasks_end():
    d = placed_pools(train=2)
    d.enqueue(d.number([Submission({"n": 2}, "train"), *({"x": i} for i in range(6))]))
    running = {worker: tasks[0].id for worker, tasks in d.assign()}
    assert d.resize("train", 4) == (2, 4), "every shared slot is busy: none moves yet"
    d.complete(3, [done(running[3])])
    assert d.pools.sizes() == {"train": 3, SHARED: 5}
    assert d.resize("train", 0) == (2, 0), "the free train slot goes back at once, the two held later"
    assert d.pools.pool_of[3] == SHARED and d.pools.pool_of[1] == "train", "slot 1 holds the training"


def test_a_resize_while_tasks_wait_leaves_none_waiting_that_could_run():
    """A kind's first pool changes the slots its waiting tasks may run on. A round that ends
    once every waiting task's need is unmet must count those needs anew, else it stopped
    before a training that two free shared slots could run (found by a review's fuzzing)."""
    hosts = {rank: "a" if rank <= 4 else "b" for rank in range(1, 9)}
    d = PlacingDispatcher(hosts, lambda params, kind: Shape(ranks=params.get("n", 1)), {None: True, "train": True},
                          Async(), budget=None, kinds=frozenset({"train"}),
                          pools=Pools(hosts, {}, "simulate", frozenset({"train"})))
    d.enqueue(d.number([{"n": 1}] * 8))
    on = {worker: tasks[0].id for worker, tasks in d.assign()}
    d.enqueue(d.number([{"n": 2}]))       # waits: every slot is busy
    d.resize("simulate", 2)               # the simulations get a pool of their own
    d.enqueue(d.number([{"n": 2}]))
    for slot in (1, 2):                   # they join the simulations' pool: the first 2-rank one starts
        d.complete(slot, [done(on[slot])])
    assert [task.id for _, (task,) in d.assign()] == [8, 8]
    for slot in (5, 6):                   # they stay shared
        d.complete(slot, [done(on[slot])])
    d.enqueue(d.number([Submission({"n": 2}, "train")]))
    assert {task.id for _, (task,) in d.assign()} == {10}, "the training runs on the two free shared slots"


def test_a_task_larger_than_its_pool_is_refused_naming_the_pool():
    d = placed_pools(train=2)
    with pytest.raises(AlgorithmError, match="needs 3 ranks and the pool of 'train' is to hold 2"):
        d.number([Submission({"n": 3}, "train")])


def test_a_resize_that_leaves_a_waiting_task_too_large_for_its_pool_is_refused():
    d = placed_pools(train=4)
    d.enqueue(d.number([*({"x": i} for i in range(4)), Submission({"n": 3}, "train"), Submission({"n": 3}, "train")]))
    d.assign()
    assert [task.kind for task in d.pending] == ["train"], "one training runs, the other waits"
    with pytest.raises(AlgorithmError, match="task 5 waits for 3 ranks of that pool, which would never start"):
        d.resize("train", 2)


def test_a_pool_split_over_nodes_spreads_a_task_no_node_of_it_could_hold():
    """Slots join a pool as they free up, so a pool of 4 may hold 2 slots on each node: a
    4-rank task then spreads over both, rather than waiting for one node that never comes."""
    d = placed_pools(train=2)                         # slots 1 and 2, on node a
    d.enqueue(d.number([{"x": 0}, {"x": 1}]))
    assert sorted(worker for worker, _ in d.assign()) == [3, 4], "the rest of node a"
    d.resize("train", 4)                              # two free slots of node b join
    pool = sorted(slot for slot, kind in d.pools.pool_of.items() if kind == "train")
    assert pool[:2] == [1, 2] and all(slot > 4 for slot in pool[2:]) and len(pool) == 4
    d.enqueue(d.number([Submission({"n": 4}, "train")]))
    sends = d.assign()
    [task] = {tasks[0].id: tasks[0] for _, tasks in sends}.values()
    assert sorted(task.group.slots) == pool and set(task.group.hosts) == {"a", "b"}


def test_hand_offs_are_timed_with_pools_so_short_tasks_get_a_backlog():
    """The pools' dispatcher times a worker's wait between its result and its next task as
    the plain one does: without it the hand-off stayed unknown and ``async`` kept one task
    per worker whatever the tasks' length."""
    d = PoolDispatcher([1, 2], {"simulate": 1}, "simulate", Async(learns=False), budget=None)
    clock = 100.0
    for _ in range(5):
        d.enqueue(d.number([{"x": 0}] * d.wanted()))
        for worker, tasks in d.assign():
            d.complete(worker, [Result(task_id=task.id, params={}, status=Status.OK, objective=1.0,
                                       started=clock + 0.001 + 0.0001 * at, ended=clock + 0.0011 + 0.0001 * at)
                                for at, task in enumerate(tasks)])
        clock += 0.01
    assert d.handoff is not None and d.capacity > 1, "1 ms hand-offs on 0.1 ms tasks: a backlog hides them"


def test_with_every_kind_pooled_ties_go_to_the_worker_ready_longest():
    """Every kind pooled: the objective kind runs on its pool and on the shared workers; of
    two equally free workers of both, the one ready longest gets the next task."""
    d = PoolDispatcher([1, 2, 3], {"train": 1, "simulate": 1}, "simulate", Async(), budget=None,
                       kinds=frozenset({"train"}))
    assert d.pools.pool_of == {1: "train", 2: None, 3: SHARED}
    d.enqueue(d.number([{"x": 0}, {"x": 1}]))
    sends = d.assign()
    assert [worker for worker, _ in sends] == [2, 3]
    d.complete(3, [done(sends[1][1][0].id)])  # 3 is ready again before 2
    d.complete(2, [done(sends[0][1][0].id)])
    d.enqueue(d.number([{"x": 2}]))
    assert [worker for worker, _ in d.assign()] == [3], "3 has waited longer than 2"
