"""The default policy knows whether the algorithm learns: its choices, the measured hand-off
it bases them on, and the lag every task records; then the two cases end to end under
mpiexec, read from what the run records (study.toml's provenance, the journal)."""

import tomllib
from pathlib import Path

import pytest
from helpers import REPO, journal, run_cli, write_study

from mexplore.algorithms.base import Algorithm
from mexplore.algorithms.random import RandomSearch
from mexplore.algorithms.registry import resolve
from mexplore.algorithms.warm_start import WarmStart
from mexplore.queue.dispatch import HANDOFF_SAMPLES, Dispatcher
from mexplore.queue.futures import ImperativeAlgorithm
from mexplore.queue.keep import KeepPolicy
from mexplore.queue.master_state import MasterState, Record
from mexplore.queue.policies import (
    ALGORITHM_BOUND,
    MAX_BACKLOG,
    PREFETCH_SHARE,
    Async,
    Queue,
    describe,
    make_policy,
)
from mexplore.space import Float, Space
from mexplore.types import TABLE_COLUMNS, Result, Status

SPACE = Space(parameters={"x": Float(0.0, 1.0)}, constants={})
MODELS = REPO / "tests" / "models"


# -- the algorithms' declarations ----------------------------------------------------------
@pytest.mark.parametrize("name", ["grid", "random", "sobol", "lhs", "optuna.random", "optuna.qmc", "optuna.grid"])
def test_sweeps_and_fixed_designs_do_not_learn(name):
    assert resolve(name).learns is False


@pytest.mark.parametrize("name", ["optuna.tpe", "optuna.cmaes", "optuna.gp", "optuna.nsga2"])
def test_model_based_algorithms_learn(name):
    assert resolve(name).learns is True


def test_a_user_class_learns_unless_it_says_otherwise():
    class Mine(Algorithm):
        def ask(self, n):
            return [{"x": 0.5}] * n

    class Sweep(Mine):
        learns = False

    assert Mine(SPACE).learns is True and Sweep(SPACE).learns is False


def test_an_imperative_function_learns_unless_its_learns_attribute_says_otherwise():
    def adaptive(queue, space, options):
        pass

    def sweep(queue, space, options):
        pass

    sweep.learns = False
    assert ImperativeAlgorithm(adaptive, SPACE).learns is True
    assert ImperativeAlgorithm(sweep, SPACE).learns is False


def test_a_warm_start_learns_as_its_algorithm_does():
    assert WarmStart(RandomSearch(SPACE), [{"x": 0.1}], []).learns is False

    def adaptive(queue, space, options):
        pass

    assert WarmStart(ImperativeAlgorithm(adaptive, SPACE), [{"x": 0.1}], []).learns is True


# -- the choice -------------------------------------------------------------------------------
def test_a_learning_algorithm_gets_one_task_per_worker_unless_hand_offs_are_a_noticeable_share():
    policy = Async(learns=True)
    assert policy.capacity(None, None, 1) == 1  # nothing measured yet
    assert policy.capacity(0.050, 0.001, 1) == 1  # 50 ms tasks, 1 ms hand-offs: 2%
    assert policy.capacity(0.050, 0.050 * PREFETCH_SHARE * 1.2, 1) == 2
    # once prefetching, it stops only at half the share: no flapping on a noisy estimate
    assert policy.capacity(0.050, 0.050 * PREFETCH_SHARE * 0.8, 2) == 2
    assert policy.capacity(0.050, 0.050 * PREFETCH_SHARE * 0.4, 2) == 1


def test_an_algorithm_that_does_not_learn_queues_enough_tasks_to_hide_hand_offs():
    policy = Async(learns=False)
    assert policy.capacity(None, None, 1) == 1
    assert policy.capacity(0.00001, 0.0005, 1) == 1 + MAX_BACKLOG  # no-op tasks: the most
    assert policy.capacity(0.001, 0.0005, 1) == 1 + 2  # 4 hand-offs of work: 2 tasks
    assert policy.capacity(0.010, 0.001, 1) == 1 + 1  # at least one prefetched
    assert policy.capacity(10.0, 0.001, 1) == 1  # long tasks: nothing waits behind one


def test_the_backlog_rises_at_once_and_falls_only_once_a_quarter_would_do():
    policy = Async(learns=False)
    hand_off = 0.001
    at = lambda ideal, current: policy.capacity(4 * hand_off / ideal, hand_off, current)
    assert at(5, 1 + 8) == 1 + 8  # 5 tasks wanted, 8 held: kept
    assert at(2.5, 1 + 8) == 1 + 8
    assert at(12, 1 + 8) == 1 + 16  # more needed: up to the next power of two
    assert at(1.5, 1 + 8) == 1 + 2  # a quarter would do: down


def test_every_capacity_async_chooses_is_refilled_when_its_worker_replies():
    """A worker replies on falling to ``reply_low_water`` held tasks (sent once, at start):
    for any capacity the master must then see enough free slots to refill it, or the
    worker would run dry waiting."""
    policy = Async(learns=False)
    for capacity in range(1, MAX_BACKLOG + 2):
        freed_at_reply = capacity - min(capacity - 1, policy.reply_low_water)
        assert freed_at_reply >= policy.refill_at(capacity) >= 1


def test_a_worker_that_runs_dry_after_its_low_water_reply_is_refilled_at_once():
    """A worker replies at its low-water mark and again when it runs dry. When the master's
    answer to the first reply comes late (very short tasks), the second reply is what
    tells the master the worker is empty: the slots it frees must reach the refill mark,
    or the empty worker waits for the late refill and runs it before it gets more (with a
    backlog of 32 and a mark one too high, every refill carried 17 tasks into 33 slots)."""
    policies = [(Async(learns=False), capacity) for capacity in range(2, MAX_BACKLOG + 2)]
    policies += [(Queue(backlog), 1 + backlog) for backlog in range(1, 65)]
    for policy, capacity in policies:
        low_water = min(capacity - 1, policy.reply_low_water)
        assert low_water >= policy.refill_at(capacity), (policy, capacity)


def test_an_explicit_policy_still_wins():
    assert make_policy("queue", 4, backlog=0, learns=False) == Queue(0)
    assert make_policy("queue", 4, backlog=0).capacity(0.00001, 0.001, 1) == 1
    assert make_policy("batch", 4, learns=False).capacity(0.00001, 0.001, 1) == 1


def test_the_startup_line_names_the_choice():
    assert "it learns" in describe(Async(learns=True))
    assert "does not learn" in describe(Async(learns=False))


# -- the measured hand-off --------------------------------------------------------------------
def result(task_id: int, started: float, ended: float) -> Result:
    return Result(task_id=task_id, status=Status.OK, objective=1.0, started=started, ended=ended)


def test_the_hand_off_is_the_workers_wait_between_result_and_next_task_less_the_algorithm():
    d = Dispatcher([1], Async(learns=True), budget=None)
    d.propose([{}])
    [(_, (first,))] = d.assign()
    d.complete(1, [result(first.id, 100.0, 100.050)])
    d.propose([{}], algorithm_time=0.010)  # the algorithm took 10 ms to propose it
    [(_, (second,))] = d.assign()
    d.complete(1, [result(second.id, 100.050 + 0.010 + 0.002, 100.112)])
    assert d.handoff == pytest.approx(0.002)
    assert d.capacity == 1  # 2 ms of 50 ms


def test_long_hand_offs_make_a_learning_algorithm_prefetch():
    d = Dispatcher([1], Async(learns=True), budget=None)
    clock = 100.0
    for _ in range(3):
        d.propose([{}])
        [(_, (task,))] = d.assign()
        d.complete(1, [result(task.id, clock, clock + 0.010)])
        clock += 0.010 + 0.005  # 5 ms hand-offs on 10 ms tasks
    assert d.handoff == pytest.approx(0.005) and d.capacity == 2


def test_no_prefetch_while_the_algorithm_is_the_masters_bottleneck():
    """5 ms hand-offs on 10 ms tasks would call for prefetch, but an algorithm that takes
    4 ms per proposal for 2 workers needs 80% of the master: what workers wait for is the
    algorithm, and prefetching would only add lag."""
    d = Dispatcher([1, 2], Async(learns=True), budget=None)
    clock = 100.0
    for _ in range(20):
        d.propose([{}], algorithm_time=0.004)
        [(_, (task,))] = d.assign()
        d.complete(1, [result(task.id, clock, clock + 0.010)])
        clock += 0.010 + 0.004 + 0.005  # the task, the algorithm's 4 ms, a 5 ms hand-off
    assert d.handoff == pytest.approx(0.005)
    assert d.algorithm_load > ALGORITHM_BOUND and d.capacity == 1
    assert Async(learns=True).capacity(0.010, 0.005, 1, algorithm_load=0.2) == 2  # a fast one: prefetch


def test_a_worker_that_waited_for_a_proposal_is_not_timed():
    d = Dispatcher([1], Async(learns=True), budget=None)
    d.propose([{}])
    [(_, (first,))] = d.assign()
    d.complete(1, [result(first.id, 100.0, 100.050)])
    assert d.assign() == []  # the algorithm had nothing for it this round
    d.propose([{}])
    [(_, (second,))] = d.assign()
    d.complete(1, [result(second.id, 130.0, 130.050)])  # 30 s later: not a hand-off
    assert d.handoff is None and d.capacity == 1


def test_one_slow_round_does_not_switch_the_policy():
    d = Dispatcher([1], Async(learns=True), budget=None)
    clock = 100.0
    gaps = [0.001] * (HANDOFF_SAMPLES // 2) + [0.5] + [0.001] * 3  # one journal fsync of 0.5 s
    for gap in [0.0, *gaps]:
        d.propose([{}])
        [(_, (task,))] = d.assign()
        clock += gap
        d.complete(1, [result(task.id, clock, clock + 0.050)])
        clock += 0.050
    assert d.handoff == pytest.approx(0.001) and d.capacity == 1


def test_short_tasks_of_a_sweep_fill_a_backlog_refilled_in_halves():
    d = Dispatcher([1, 2], Async(learns=False), budget=None)
    d.propose([{}, {}])
    sends = d.assign()
    clock = {1: 100.0, 2: 100.0}
    for worker, (task,) in sends:
        d.complete(worker, [result(task.id, clock[worker], clock[worker] + 0.00001)])
    d.propose([{}, {}])
    for worker, (task,) in d.assign():
        d.complete(worker, [result(task.id, clock[worker] + 0.0005, clock[worker] + 0.00051)])
    assert d.capacity == 1 + MAX_BACKLOG
    assert d.wanted() == 2 * (1 + MAX_BACKLOG)
    d.propose([{}] * d.wanted())
    assert sorted(len(batch) for _, batch in d.assign()) == [1 + MAX_BACKLOG] * 2


# -- the lag ----------------------------------------------------------------------------------
def run_to(d: Dispatcher, tasks: int, length: float) -> list:
    """Drive ``d`` like the master loop, results of tasks of ``length`` seconds coming back
    a millisecond apart, until ``tasks`` tasks finished; return them."""
    done, clock = [], 100.0
    while len(done) < tasks:
        d.propose([{}] * d.wanted())
        d.assign()
        task_id, (worker, _) = next(iter(d.running.items()))
        clock += 0.001
        final, _ = d.complete(worker, [result(task_id, clock, clock + length)])
        done += [t for t, _ in final]
    return done


def test_one_task_per_worker_keeps_the_lag_below_the_number_of_workers():
    tasks = run_to(Dispatcher([1, 2, 3, 4], Async(learns=True), budget=None), 40, length=1.0)
    assert max(t.lag for t in tasks) == 3


def test_queued_tasks_are_decided_with_more_results_pending_than_workers():
    tasks = run_to(Dispatcher([1, 2, 3, 4], Async(learns=False), budget=None), 200, length=0.0001)
    assert max(t.lag for t in tasks) > 4


def test_the_lag_reaches_the_result_and_its_journal_line():
    s = MasterState(Dispatcher([1, 2], Async(), None), KeepPolicy(None, "minimize"), workers=2)
    s.proposed([{"x": 0.1}, {"x": 0.2}])
    s.assign()
    [record] = s.results(1, [Result(task_id=0, status=Status.OK, objective=1.0)])
    assert isinstance(record, Record)
    s.proposed([{"x": 0.3}])
    [send] = s.assign()
    [record] = s.results(send.worker, [Result(task_id=2, status=Status.OK, objective=1.0)])
    assert record.results[0].lag == 1  # task 1 was running when task 2 was proposed
    assert record.results[0].to_record()["lag"] == 1
    assert Result.from_record(record.results[0].to_record()).lag == 1
    assert "lag" in TABLE_COLUMNS


def test_no_more_tasks_are_out_than_it_takes_to_judge_the_first_ones():
    """However deep the policy's backlog, a model that cannot work stops the run after its
    first ``stop_early_after`` tasks, not after every task queued on the workers."""
    s = MasterState(Dispatcher([1, 2], Queue(backlog=32), None), KeepPolicy(None, "minimize"), workers=2,
                    stop_early_after=10)
    assert s.dispatcher.wanted() == 66 and s.wanted() == 10
    s.proposed([{"x": 0.5}] * 10)
    [send] = s.assign()  # all ten on one worker: its backlog has room
    s.results(send.worker, [Result(task_id=i, status=Status.OK, objective=1.0) for i in range(5)])
    assert s.wanted() == 0  # five judged, five out: enough for the other five
    s.results(send.worker, [Result(task_id=i, status=Status.OK, objective=1.0) for i in range(5, 10)])
    assert s.wanted() == 66  # judged: the policy runs free


# -- end to end, under mpiexec ------------------------------------------------------------------
def run_study(tmp_path: Path, algorithm: str, ranks: int, budget: int, sleep: float) -> tuple[str, list[dict], dict]:
    """Run a study with the default policy; return its stderr, journal and provenance."""
    path = write_study(tmp_path, f"""
        [study]
        name = "lag"
        budget = {budget}
        objective = "loss"
        output = "out"

        [model]
        python = "{MODELS / 'toy.py:quadratic'}"

        [algorithm]
        name = "{algorithm}"
        seed = 1

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        y = {{ type = "float", low = 0.0, high = 1.0 }}
        sleep = {sleep}
    """)
    done = run_cli("run", str(path), "-n", str(ranks), "--progress", "log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    as_run = tomllib.loads((tmp_path / "out" / "study.toml").read_text())
    return done.stderr, journal(tmp_path / "out"), as_run["provenance"]


@pytest.mark.mpi
def test_a_learning_algorithm_sees_all_but_the_running_tasks_results(tmp_path):
    err, records, provenance = run_study(tmp_path, "optuna.tpe", ranks=4, budget=24, sleep=0.1)
    workers = 3
    assert provenance["learns"] is True and "async: one task per worker, it learns" in err
    assert len(records) == 24 and all("lag" in r for r in records)
    assert max(r["lag"] for r in records) <= workers
    assert " lag=" in err  # on the progress line


@pytest.mark.mpi
def test_a_sweep_of_short_tasks_is_queued_ahead_of_the_workers(tmp_path):
    err, records, provenance = run_study(tmp_path, "random", ranks=3, budget=400, sleep=0.0)
    workers = 2
    assert provenance["learns"] is False and "async: tasks queued ahead, it does not learn" in err
    assert len(records) == 400
    assert max(r["lag"] for r in records) > workers
