"""A worker's bookkeeping, its inbox and the idle backoff, without MPI and without a clock:
time is a counter the tests move."""

import pytest

from mexplore.comms.backoff import Backoff
from mexplore.comms.inproc import InprocMasterEnd
from mexplore.comms.messages import (
    Flush,
    IntermediateValue,
    LoadOutput,
    OutputData,
    Prune,
    SendOutput,
    Stop,
    TaskBatch,
)
from mexplore.errors import Interrupted, Pruned
from mexplore.runtime.worker import Inbox
from mexplore.runtime.worker_state import MAX_REPLY_DELAY, ReplyRule, WorkerState
from mexplore.types import Result, Status, Task


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def tasks(*ids):
    return [Task(i, {"i": i}) for i in ids]


def done(task_id):
    return Result(task_id=task_id, status=Status.OK, objective=1.0)


# -- ReplyRule -----------------------------------------------------------------------------
def test_results_go_back_when_the_worker_holds_nothing_more():
    rule = ReplyRule(low_water=0, clock=Clock())
    assert rule.due(held=0)


def test_results_go_back_once_at_low_water_after_each_refill():
    clock = Clock()
    rule = ReplyRule(low_water=1, clock=clock)
    rule.ran(started=clock.now)
    assert rule.due(held=1)
    rule.sent(held=1)
    rule.ran(started=clock.now)
    assert not rule.due(held=1)  # said once since the refill; short tasks' results now share
    rule.refilled()
    assert rule.due(held=1)


def test_short_results_wait_to_share_a_message_until_the_oldest_is_too_old():
    clock = Clock()
    rule = ReplyRule(low_water=0, clock=clock)
    clock.now += 1e-4
    rule.ran(started=100.0)  # a 0.1 ms task
    assert not rule.due(held=5)
    clock.now += MAX_REPLY_DELAY
    assert rule.due(held=5)


def test_a_long_task_sends_its_result_at_once():
    clock = Clock()
    rule = ReplyRule(low_water=0, clock=clock)
    clock.now += 1.0
    rule.ran(started=100.0)  # the next one will take about as long: do not hold this result
    assert rule.due(held=5)


# -- WorkerState ----------------------------------------------------------------------------
def test_tasks_run_in_order_and_results_go_back_when_it_is_free():
    state = WorkerState(low_water=0, clock=Clock())
    state.received(tasks(1, 2))
    assert state.next_task().id == 1
    state.finished(done(1), started=100.0)
    assert state.results_to_send() == []  # task 2 is still held and the result is fresh
    assert state.next_task().id == 2
    state.finished(done(2), started=100.0)
    assert [r.task_id for r in state.results_to_send()] == [1, 2]
    assert state.next_task() is None and not state.done


def test_a_stop_lets_held_tasks_run_and_sends_results_at_once():
    state = WorkerState(low_water=0, clock=Clock())
    state.received(tasks(1, 2))
    state.next_task()
    state.finished(done(1), started=100.0)
    state.stopping(Stop())
    assert [r.task_id for r in state.results_to_send()] == [1]
    assert not state.done and state.next_task().id == 2
    assert state.done


def test_an_abandoning_stop_drops_what_is_held():
    state = WorkerState(low_water=0, clock=Clock())
    state.received(tasks(1, 2, 3))
    state.stopping(Stop(abandon=True))
    assert state.next_task() is None and state.done


def test_a_signal_drops_held_tasks_is_announced_once_and_flushes_results():
    state = WorkerState(low_water=0, clock=Clock())
    state.received(tasks(1, 2, 3))
    state.next_task()
    state.finished(done(1), started=100.0)
    assert state.signal() is True
    assert state.signal() is False
    assert [r.task_id for r in state.results_to_send()] == [1]
    assert state.next_task() is None and not state.done  # waits for the master's Stop
    state.stopping(Stop(abandon=True))
    assert state.done


# -- Inbox -----------------------------------------------------------------------------------
def an_inbox(master: InprocMasterEnd) -> Inbox:
    """A worker's inbox whose cache holds task 5's ``w`` only."""
    def serve(request: SendOutput) -> OutputData:
        if (request.task_id, request.name) == (5, "w"):
            return OutputData(5, "w", b"data", requester=request.requester)
        return OutputData(request.task_id, request.name, error="none here", requester=request.requester)

    return Inbox(master.worker_end(1), serve, Backoff(spin=0.0, cap=1e-4))


def test_a_request_for_an_output_is_answered_at_a_report_and_while_the_worker_waits_for_its_own_load():
    master = InprocMasterEnd(1)
    inbox = an_inbox(master)
    master.send(1, SendOutput(5, "w", requester=2))
    inbox.report(7, 0, 0.5)
    assert master.poll() == (1, IntermediateValue(7, 0, 0.5))
    assert master.poll() == (1, OutputData(5, "w", b"data", requester=2))
    master.send(1, SendOutput(5, "v", requester=3))     # asked while this worker waits for its own load
    master.send(1, OutputData(9, "x", b"nine"))
    assert inbox.load(9, "x").data == b"nine"
    assert master.poll() == (1, LoadOutput(9, "x"))
    assert master.poll() == (1, OutputData(5, "v", error="none here", requester=3))
    master.send(1, OutputData(9, "y", error="task 9 saved no 'y'"))
    with pytest.raises(KeyError, match="ctx.load\\(9, 'y'\\): task 9 saved no 'y'"):
        inbox.load(9, "y")
    master.send(1, SendOutput(5, "w", requester=2))
    assert inbox.poll() is None, "between tasks too: answered, not handed to the main loop"
    assert master.poll() == (1, LoadOutput(9, "y")) and master.poll()[1].data == b"data"
    master.send(1, OutputData(-1, "", stopping=True))
    with pytest.raises(Interrupted, match="the run is stopping"):
        inbox.load(9, "z")                                # dropped, to run again on resume


def test_reports_go_to_the_master_and_a_prune_of_the_running_task_raises():
    master = InprocMasterEnd(1)
    inbox = an_inbox(master)
    inbox.report(7, 0, 0.5)
    assert master.poll() == (1, IntermediateValue(7, 0, 0.5))
    master.send(1, Flush())
    master.send(1, Prune(7))
    with pytest.raises(Pruned, match="task 7 pruned after step 1"):
        inbox.report(7, 1, 0.9)
    assert inbox.poll() == Flush()  # kept for the main loop, in order
    assert inbox.poll() is None


def test_a_prune_of_another_task_or_a_finished_one_is_moot():
    master = InprocMasterEnd(1)
    inbox = an_inbox(master)
    master.send(1, Prune(3))
    master.send(1, TaskBatch(tasks(4)))
    inbox.report(7, 0, 0.5)  # not task 3: goes on
    assert inbox.poll() == TaskBatch(tasks(4))
    master.send(1, Prune(7))
    inbox.report(8, 0, 0.5)  # the prune of 7 is seen while 8 runs
    assert inbox.poll() is None  # between tasks it is forgotten
    inbox.report(7, 1, 0.5)


# -- Backoff ---------------------------------------------------------------------------------
def test_backoff_spins_then_sleeps_doubling_to_the_cap_and_reset_starts_over():
    clock, slept, yielded = Clock(), [], []
    backoff = Backoff(spin=1e-3, first_sleep=1e-5, cap=4e-5, clock=clock, sleep=slept.append,
                      yield_core=lambda: yielded.append(True))
    backoff.wait()
    clock.now += 5e-4
    backoff.wait()
    assert len(yielded) == 2 and slept == []  # within the spin: the core is yielded, no sleep
    clock.now += 1e-3
    for _ in range(4):
        backoff.wait()
    assert slept == [1e-5, 2e-5, 4e-5, 4e-5]
    backoff.reset()
    backoff.wait()
    assert len(yielded) == 3 and len(slept) == 4


def test_tasks_and_results_cross_between_ranks_with_every_field_whole(monkeypatch):
    """Task and Result pickle as the tuple of their fields (a compiled getter and setter,
    for speed): every field, set to something other than its default, comes back, and an
    earlier pickle (the default, slots as a dict) still loads."""
    import copy
    import dataclasses
    import pickle

    from mexplore.types import Group, Shape

    task = Task(id=7, params={"x": [1.5, "a"]}, attempt=2, priority=-1.0, algorithm_time=0.25, lag=3,
                shape=Shape(ranks=4, nodes=1, gpus=2), group=Group(slots=(3, 4), hosts=("h", "h"), runners=(3,)), kind="sim")
    result = Result(task_id=7, status=Status.PRUNED, params={"x": 1}, objective=[1.0, 2.0], metrics={"m": 2},
                    error="e", started=1.0, ended=2.0, rank=3, host="h", gpu="0", attempt=2,
                    reports=[(1.0, 0.5)], reused_from=4, algorithm_time=0.1, lag=5, slots=[3, 4], hosts=["h"],
                    kind="sim", shared={"w": "ref"})
    for item in (task, result):
        defaults = type(item)(**{f.name: getattr(item, f.name) for f in dataclasses.fields(item)
                                 if f.name in ("id", "params", "task_id", "status")})
        assert all(getattr(item, f.name) != getattr(defaults, f.name) for f in dataclasses.fields(item)
                   if f.name not in ("id", "params", "task_id", "status")), "a field left at its default"
        back = pickle.loads(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == item and type(back) is type(item)
        assert copy.deepcopy(item) == item
        assert pickle.loads(pickle.dumps(item, protocol=2)) == item
    monkeypatch.setattr(Task, "__reduce__", object.__reduce__)  # pickle's own way, as before
    earlier = pickle.dumps(task)
    monkeypatch.undo()
    assert b"_rebuilt_task" not in earlier and pickle.loads(earlier) == task
