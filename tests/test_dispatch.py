"""The master's bookkeeping (sans-I/O): budget, capacity, policies, resume, duplicates."""

from mexplore.queue.dispatch import Dispatcher
from mexplore.queue.policies import Async, Batch, Queue, make_policy
from mexplore.types import Result, Status


def ok(task_id: int) -> Result:
    return Result(task_id=task_id, params={}, status=Status.OK, objective=1.0)


def test_async_asks_one_per_free_worker_and_never_past_the_budget():
    d = Dispatcher([1, 2, 3], Async(), budget=4)
    assert d.wanted() == 3
    d.propose([{"i": i} for i in range(3)])
    sends = d.assign()
    assert sorted(w for w, _ in sends) == [1, 2, 3]
    assert all(len(tasks) == 1 for _, tasks in sends)
    assert d.wanted() == 0
    d.complete(1, [ok(sends[0][1][0].id)] if sends[0][0] == 1 else [ok(t.id) for w, ts in sends if w == 1 for t in ts])
    assert d.wanted() == 1  # budget 4: 1 finished + 2 running + 1 more
    d.propose([{"i": 3}])
    d.assign()
    for worker in (2, 3):
        d.complete(worker, [ok(t) for t, (w, _) in list(d.running.items()) if w == worker])
    assert d.wanted() == 0
    d.complete(1, [ok(t) for t in list(d.running)])
    assert d.finished == 4 and d.budget_spent and d.idle


def test_queue_policy_fills_backlog_in_one_message_per_worker():
    d = Dispatcher([1, 2], Queue(backlog=3), budget=None)
    assert d.wanted() == 8
    d.propose([{"i": i} for i in range(8)])
    sends = d.assign()
    assert sorted(len(tasks) for _, tasks in sends) == [4, 4]
    ids = [t.id for _, tasks in sends for t in tasks]
    assert ids == sorted(set(ids))


def test_batch_policy_waits_for_the_whole_batch():
    d = Dispatcher([1, 2], Batch(size=3), budget=None)
    assert d.wanted() == 3
    d.propose([{}, {}, {}])
    d.assign()
    assert len(d.pending) == 1 and d.wanted() == 0
    first = next(iter(d.running))
    worker = d.running[first][0]
    d.complete(worker, [ok(first)])
    assert d.wanted() == 0  # one pending, one running
    d.assign()
    while d.running:
        task_id, (worker, _) = next(iter(d.running.items()))
        d.complete(worker, [ok(task_id)])
        d.assign()
    assert d.wanted() == 3


def test_duplicate_and_foreign_results_are_never_counted():
    d = Dispatcher([1, 2], Async(), budget=10)
    d.propose([{}, {}])
    (w1, (t1,)), (w2, (t2,)) = d.assign()
    assert d.complete(w2, [ok(t1.id)]) == ([], [])  # t1 is not held by w2
    final, retried = d.complete(w1, [ok(t1.id), ok(t1.id)])
    assert len(final) == 1 and not retried
    assert d.finished == 1


def test_resume_counts_finished_tasks_and_continues_ids():
    d = Dispatcher([1], Async(), budget=5)
    d.resume([ok(0), ok(1), ok(4)])
    assert d.finished == 3 and d.next_id == 5
    assert d.wanted() == 1
    d.propose([{}])
    assert d.assign()[0][1][0].id == 5


def test_make_policy_names():
    assert make_policy("batch", 4).size == 4
    assert make_policy("queue", 4, backlog=2).capacity(None, None, 1) == 3
    assert make_policy("async", 4).capacity(None, None, 1) == 1
    assert make_policy("async", 4, learns=False) == Async(learns=False)


def test_queue_refills_a_worker_once_half_its_slots_are_free_in_one_message():
    d = Dispatcher([1], Queue(backlog=3), budget=None)  # capacity 4, refill at 2
    d.propose([{} for _ in range(d.wanted())])
    [(_, tasks)] = d.assign()
    assert len(tasks) == 4
    d.complete(1, [ok(tasks[0].id)])
    assert d.wanted() == 0 and d.assign() == []
    d.complete(1, [ok(tasks[1].id)])
    assert d.wanted() == 2
    d.propose([{}, {}])
    assert [len(batch) for _, batch in d.assign()] == [2]


def test_failed_tasks_are_retried_with_a_higher_attempt_then_recorded():
    d = Dispatcher([1], Async(), budget=2, retries=1)
    d.propose([{"i": 0}, {"i": 1}])
    [(_, (task,))] = d.assign()
    failed = Result(task_id=task.id, params={}, status=Status.TIMEOUT)
    assert d.complete(1, [failed]) == ([], [failed])
    assert d.finished == 0 and d.wanted() == 0  # the retry waits first in line
    [(_, batch)] = d.assign()
    again = batch[0]
    assert (again.id, again.attempt, again.params) == (task.id, 1, {"i": 0})
    final, retried = d.complete(1, [Result(task_id=again.id, params={}, status=Status.FAILED, attempt=1)])
    assert [t.id for t, _ in final] == [task.id] and not retried and d.finished == 1
