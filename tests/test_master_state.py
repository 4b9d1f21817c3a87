"""The master's bookkeeping driven by scripted events: no MPI, no files, no algorithm."""

from mexplore.comms.messages import Flushed
from mexplore.queue.dispatch import Dispatcher
from mexplore.queue.keep import KeepPolicy
from mexplore.queue.master_state import (
    Ending,
    FlushesDone,
    Judge,
    MasterState,
    Notice,
    Record,
    ReserveIds,
    SendFlush,
    SendPrune,
)
from mexplore.queue.memo import Memo
from mexplore.queue.policies import Async
from mexplore.types import Result, Status


def state(workers=(1, 2), budget=4, **options):
    keep = options.pop("keep", KeepPolicy(None, "minimize"))
    return MasterState(Dispatcher(workers, Async(), budget, options.pop("retries", 0)), keep,
                       workers=len(workers), **options)


def ran(task_id, status=Status.OK, objective=1.0, **fields):
    """A worker's result: no params (the master puts them back)."""
    return Result(task_id=task_id, status=status, objective=objective if status is Status.OK else None, **fields)


def feed(s, *points):
    """The algorithm proposed ``points``: return the tasks sent to workers."""
    assert list(s.proposal_ids(len(points))) == list(range(s.dispatcher.next_id, s.dispatcher.next_id + len(points)))
    instructions = s.proposed(list(points))
    return instructions, s.assign()


def test_proposals_are_numbered_in_order_sent_and_recorded_with_their_params_and_reports():
    s = state()
    _, sends = feed(s, {"x": 1}, {"x": 2})
    assert sorted((send.worker, [t.id for t in send.tasks]) for send in sends) == [(1, [0]), (2, [1])]
    worker_of = {send.tasks[0].id: send.worker for send in sends}
    assert s.report(1, 0, 0.5) == [Judge(s.dispatcher.running[1][1], 0, 0.5)]
    [record] = s.results(worker_of[1], [ran(1)])
    assert isinstance(record, Record) and record.tell
    assert record.results[0].params == {"x": 2} and record.results[0].reports == [(0, 0.5)]
    assert s.dispatcher.finished == 1


def test_a_result_from_a_worker_that_does_not_hold_the_task_is_dropped():
    s = state()
    _, sends = feed(s, {"x": 1})
    other = 2 if sends[0].worker == 1 else 1
    assert s.results(other, [ran(0)]) == []
    assert len(s.results(sends[0].worker, [ran(0)])) == 1
    assert s.results(sends[0].worker, [ran(0)]) == []  # a duplicate counts once


def test_algorithm_time_is_billed_to_the_next_proposals_in_equal_shares():
    s = state()
    s.algorithm_took(0.3)
    s.algorithm_took(0.1)
    _, sends = feed(s, {"x": 1}, {"x": 2})
    assert [round(t.algorithm_time, 9) for send in sends for t in send.tasks] == [0.2, 0.2]
    feed(s, {"x": 3})  # both workers busy: it waits, and nothing was spent since
    assert s.dispatcher.pending[0].algorithm_time == 0.0


def test_a_failure_with_attempts_left_is_retried_with_a_notice_and_its_reports_dropped():
    s = state(workers=(1,), retries=1)
    feed(s, {"x": 1})
    s.report(0, 0, 9.0)
    [notice] = s.results(1, [ran(0, Status.TIMEOUT)])
    assert isinstance(notice, Notice) and "task 0 attempt 0 timeout; trying again" in notice.text
    [again] = s.assign()
    assert again.tasks[0].attempt == 1
    [record] = s.results(1, [ran(0, Status.FAILED, attempt=1, error="boom")])
    assert record.results[0].status is Status.FAILED and record.results[0].reports == []


def test_a_task_is_pruned_once_however_many_reports_follow():
    s = state()
    _, sends = feed(s, {"x": 1})
    assert len(s.report(0, 0, 5.0)) == 1
    assert s.prune(0) == [SendPrune(sends[0].worker, 0)]
    assert s.report(0, 1, 6.0) == [] and s.prune(0) == []  # judged and told once
    assert s.report(7, 0, 1.0) == []  # not running: nothing to judge


def test_abort_on_error_stops_asking_withdraws_waiting_tasks_and_ends_when_idle():
    s = state(workers=(1,), budget=None, abort_on_error=True)
    s.proposed([{"x": 1}, {"x": 2}, {"x": 3}])
    s.assign()
    s.results(1, [ran(0, Status.FAILED, error="Traceback...\nValueError: bad")])
    assert s.abort_reason == "task 0 failed: ValueError: bad"
    assert s.wanted() == 0
    assert s.ending(lambda: False) is Ending.ABORTED  # the two waiting tasks never ran
    assert s.dispatcher.pending == type(s.dispatcher.pending)()


def test_the_run_ends_when_idle_and_the_budget_is_spent_or_the_algorithm_finished():
    asked = []

    def finished():
        asked.append(True)
        return False

    s = state(workers=(1,), budget=1)
    feed(s, {"x": 1})
    assert s.ending(finished) is None and asked == []  # tasks in flight: not asked
    s.results(1, [ran(0)])
    assert s.ending(finished) is Ending.DONE and asked == []  # budget spent: not asked
    open_ended = state(workers=(1,), budget=None)
    assert open_ended.ending(lambda: True) is Ending.DONE


def test_the_first_stop_signal_wins_and_ends_the_run_at_once():
    s = state()
    feed(s, {"x": 1})
    s.signal(None)
    assert s.ending(lambda: False) is None
    s.signal(15)
    s.signal(10)
    assert s.stop_signal == 15 and s.ending(lambda: False) is Ending.SIGNALLED


def test_periodic_flushes_follow_the_clock_and_are_totalled_once_every_worker_answered():
    s = state(flush_every=10.0, keep=KeepPolicy(1, "minimize"))
    assert s.tick(100.0) == [] and s.tick(109.9) == []
    assert s.tick(110.0) == [SendFlush(frozenset())]
    assert s.tick(115.0) == []
    assert s.flushed(Flushed(rank=1, path="/out/cache/a.h5", nbytes=100)) == []
    warning, done = s.flushed(Flushed(rank=2, error="disk full"))
    assert "rank 2: disk full" in warning.text and done == FlushesDone(files=1, nbytes=100)
    assert state().tick(0.0) == []  # no flush_every: never


def test_keep_top_ranks_what_is_recorded_and_what_was_resumed():
    s = state(workers=(1,), budget=None, keep=KeepPolicy(1, "minimize"))
    s.resumed([Result(task_id=0, status=Status.OK, params={"x": 0}, objective=5.0)])
    feed(s, {"x": 1})
    s.results(1, [ran(1, objective=2.0)])
    s.flush_every = 1.0
    s.tick(0.0)
    assert s.tick(1.0) == [SendFlush(frozenset({1}))]


def test_reuse_answers_a_point_seen_before_without_a_worker():
    s = state(workers=(1,), budget=5, memo=Memo())
    s.resumed([Result(task_id=0, status=Status.OK, params={"x": 1, "y": 2}, objective=3.0)])
    instructions, sends = feed(s, {"y": 2, "x": 1}, {"x": 9, "y": 9})
    [answer] = [r for i in instructions if isinstance(i, Record) for r in i.results]
    assert (answer.task_id, answer.reused_from, answer.objective) == (1, 0, 3.0)
    assert [t.id for send in sends for t in send.tasks] == [2]  # only the new point runs
    assert s.dispatcher.finished == 2  # the resumed one and the reused one count


def test_results_arriving_while_workers_stop_are_recorded_but_not_told():
    s = state(workers=(1,))
    feed(s, {"x": 1})
    [record] = s.results(1, [ran(0)], tell=False)
    assert not record.tell and record.results[0].params == {"x": 1}



def test_task_ids_are_reserved_in_blocks_before_they_are_handed_out_and_never_reused():
    s = state(workers=(1,), budget=None, id_block=10)
    s.resumed([Result(task_id=4, status=Status.OK, params={"x": 0}, objective=1.0)], ids_reserved_below=7)
    assert list(s.proposal_ids(2)) == [7, 8]  # after every id the killed session may have used
    instructions, _ = feed(s, {"x": 1}, {"x": 2})
    assert instructions == [ReserveIds(19)]  # recorded before anything is sent
    assert feed(s, *({"x": i} for i in range(10)))[0] == []  # ids 9..18: inside the block
    assert feed(s, {"x": 3})[0] == [ReserveIds(30)]


def failed(task_id, error="KeyError: 'val_loss'"):
    return ran(task_id, Status.FAILED, error=f"Traceback...\n{error}")


def finish(s, worker, results):
    """For each result in turn: propose a task, hand it to ``worker``, answer it so."""
    for result in results:
        assert s.proposal_ids(1)[0] == result.task_id
        s.proposed([{"x": result.task_id}])
        s.assign()
        assert len(s.results(worker, [result])) == 1


def test_a_session_whose_first_tasks_all_fail_for_one_reason_stops_early_once_in_flight_ones_are_recorded():
    s = state(workers=(1,), budget=None, stop_early_after=3)
    s.proposed([{"x": i} for i in range(5)])
    s.assign()  # async: one task at a time on worker 1; four wait on the master
    for task_id in (0, 1):
        s.results(1, [failed(task_id)])
        s.assign()
    assert s.early_stop is None and s.ending(lambda: False) is None  # two failures say nothing yet
    assert s.dispatcher.pending
    s.results(1, [failed(2)])
    assert s.early_stop.text == "KeyError: 'val_loss'" and s.early_stop.task_ids == [0, 1, 2]
    assert s.wanted() == 0
    s.results(1, [failed(task_id) for task_id in list(s.dispatcher.running)])  # what was in flight
    assert s.ending(lambda: False) is Ending.FAILING
    assert not s.dispatcher.pending  # the waiting tasks never ran: a resume proposes again


def test_tasks_in_flight_finish_and_are_recorded_before_an_early_stop_ends_the_run():
    s = state(workers=(1, 2, 3), budget=None, stop_early_after=2)
    s.proposed([{"x": 0}, {"x": 1}, {"x": 2}])
    worker_of = {send.tasks[0].id: send.worker for send in s.assign()}
    s.results(worker_of[0], [failed(0)])
    s.results(worker_of[1], [failed(1)])
    assert s.early_stop is not None and s.wanted() == 0
    assert s.ending(lambda: False) is None  # task 2 still runs
    [record] = s.results(worker_of[2], [ran(2)])
    assert isinstance(record, Record) and record.results[0].task_id == 2
    assert s.ending(lambda: False) is Ending.FAILING


def test_no_early_stop_when_one_first_task_succeeds_or_the_reasons_differ_or_it_is_off():
    mixed = state(workers=(1,), budget=None, stop_early_after=3)
    finish(mixed, 1, [failed(0), ran(1), failed(2)])
    two_reasons = state(workers=(1,), budget=None, stop_early_after=3)
    finish(two_reasons, 1, [failed(0), failed(1, "OSError: no input"), failed(2)])
    off = state(workers=(1,), budget=None)
    finish(off, 1, [failed(i) for i in range(20)])
    for s in (mixed, two_reasons, off):
        assert s.early_stop is None and s.wanted() > 0 and s.ending(lambda: False) is None
    late = state(workers=(1,), budget=None, stop_early_after=3)
    finish(late, 1, [ran(0), failed(1), failed(2), failed(3), failed(4)])
    assert late.early_stop is None  # only the session's first tasks are judged


def test_resumed_failures_do_not_count_toward_the_first_tasks_of_a_session():
    s = state(workers=(1,), budget=None, stop_early_after=3)
    s.resumed([failed(i) for i in range(10)])
    finish(s, 1, [ran(10)])
    finish(s, 1, [failed(11), failed(12)])
    assert s.early_stop is None and s.succeeded == 1 and not s.none_succeeded


def test_none_succeeded_counts_the_whole_run():
    fresh = state(workers=(1,), budget=None)
    assert not fresh.none_succeeded  # nothing ran: nothing to say
    finish(fresh, 1, [ran(0, Status.PRUNED)])
    assert not fresh.none_succeeded  # stopped on purpose is not failing
    finish(fresh, 1, [failed(1)])
    assert fresh.none_succeeded
    resumed = state(workers=(1,), budget=None)
    resumed.resumed([ran(0)])
    finish(resumed, 1, [failed(1)])
    assert not resumed.none_succeeded


def test_id_blocks_grow_with_the_session_to_an_eighth_of_its_ids_and_no_further():
    """Each reservation is a synced write: a fast session reserves larger blocks (an eighth
    of the ids it handed out, at least ID_BLOCK, at most MAX_ID_BLOCK), and never hands out
    an id it has not reserved."""
    from mexplore.queue.master_state import ID_BLOCK, MAX_ID_BLOCK, ReserveIds

    s = state(workers=(1,), budget=None)
    s.resumed([], ids_reserved_below=5000)
    blocks, reserved = [], 5000
    for _ in range(2_000):
        ids = s.proposal_ids(500)
        for instruction in s.proposed([{"x": 0.0}] * 500):
            if isinstance(instruction, ReserveIds):  # reserved: the ids just numbered, then a block
                blocks.append(instruction.below - s.dispatcher.next_id)
                assert blocks[-1] <= max(ID_BLOCK, (s.dispatcher.next_id - 5000) // 8)
                reserved = instruction.below
        assert ids.stop <= reserved
        s.dispatcher.pending.clear()
    assert blocks[0] == ID_BLOCK and max(blocks) == MAX_ID_BLOCK and len(blocks) < 60


def test_results_a_proposal_missed_count_in_its_tasks_lag():
    """``unseen`` (an algorithm computing ahead: proposers) adds to the lag the dispatcher
    counts, the tasks proposed and not finished; ``computing``, the time computing them
    took outside the master's calls, is billed to them with the master's own."""
    s = state(workers=(1, 2), budget=None)
    feed(s, {"x": 1})
    s.algorithm_took(0.25)
    s.proposed([{"x": 2}, {"x": 3}], unseen=[2, 0], computing=0.75)
    assert sorted(task.algorithm_time for task in s.dispatcher.pending) == [0.5, 0.5]
    lags = {task.id: task.lag for _, task in s.dispatcher.running.values()} | {t.id: t.lag for t in s.dispatcher.pending}
    assert lags == {0: 0, 1: 1 + 2, 2: 1}
