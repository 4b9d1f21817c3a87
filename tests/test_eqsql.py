"""mexplore.compat.eqsql: EMEWS EQ/SQL's task API over the IoC queue, without a database."""

from __future__ import annotations

import json

import pytest

from helpers import REPO, journal, run_cli, write_study
from mexplore.algorithms.base import StudyInfo
from mexplore.compat import eqsql
from mexplore.compat.eqsql import EQ_ABORT, EQ_TIMEOUT, ResultStatus, TaskStatus
from mexplore.queue.futures import TaskQueue
from mexplore.types import Result, Status


def served(queue, n):
    """What the engine does: hand out the n highest-priority tasks (returns their params)."""
    return queue.dispatch(range(1000, 1000 + n))


def test_futures_answer_as_eqsql_does_from_queued_to_complete():
    queue = TaskQueue(StudyInfo(budget=10))
    tasks = eqsql.init_task_queue(queue)
    _, futures = tasks.submit_tasks("exp", 0, [json.dumps({"x": i}) for i in range(4)], priority=1, tag="t")
    assert [f.eq_task_id for f in futures] == [1, 2, 3, 4] and futures[0].tag == "t"
    assert futures[0].result(timeout=0) == (ResultStatus.FAILURE, EQ_TIMEOUT)
    assert futures[0].status is TaskStatus.QUEUED and futures[0].worker_pool is None
    tasks.update_priorities(futures, [1, 5, 3, 0])
    assert [p for _, p in tasks.get_priorities(futures)] == [1, 5, 3, 0]
    futures[3].priority = 9
    assert served(queue, 2) == [{"x": 3}, {"x": 1}]
    assert futures[3].status is TaskStatus.RUNNING and futures[3].worker_pool == "default"
    assert tasks.cancel_tasks(futures) == (ResultStatus.SUCCESS, [1, 3])  # the running ones stay
    assert futures[0].status is TaskStatus.CANCELED and tasks.are_queues_empty()
    queue.resolve([Result(task_id=1000, status=Status.OK, params={"x": 3}, objective=0.5),
                   Result(task_id=1001, status=Status.FAILED, params={"x": 1}, error="boom")])
    assert futures[3].result() == (ResultStatus.SUCCESS, "0.5")
    assert futures[1].result() == (ResultStatus.FAILURE, EQ_ABORT) and futures[1].status is TaskStatus.COMPLETE
    assert futures[1].mexplore.result().error == "boom"


def test_as_completed_yields_in_batches_pops_and_stops_at_n():
    queue = TaskQueue(StudyInfo())
    tasks = eqsql.init_task_queue(queue)
    _, futures = tasks.submit_tasks("exp", 0, [json.dumps({"x": i}) for i in range(5)])
    served(queue, 5)
    queue.resolve([Result(task_id=1000 + i, status=Status.OK, params={"x": i}, objective=float(i), metrics={"m": i}) for i in range(5)])
    pending = list(futures)
    first = list(tasks.as_completed(pending, pop=True, n=3, batch_size=2))
    assert len(first) == 3 and len(pending) == 2
    assert tasks.pop_completed(pending) in futures and len(pending) == 1
    assert json.loads(futures[2].result()[1]) == {"value": 2.0, "m": 2}


def test_a_wait_that_outlasts_its_timeout_raises_as_eqsql_does():
    tasks = eqsql.init_task_queue(TaskQueue(StudyInfo()))
    _, future = tasks.submit_task("exp", 0, json.dumps({"x": 1}))
    with pytest.raises(TimeoutError, match="as_completed timed out after 0.01 seconds"):
        list(tasks.as_completed([future], timeout=0.01))


def test_init_task_queue_outside_a_run_says_where_it_works():
    with pytest.raises(RuntimeError, match="call it from the algorithm's run"):
        eqsql.init_task_queue("localhost", "user", 5432, "EQ_SQL")


@pytest.mark.mpi
def test_an_eqsql_script_runs_end_to_end_under_mpiexec(tmp_path):
    (tmp_path / "model.py").write_text(
        "def ackley(params, ctx):\n"
        "    if params['x'] > 1.5:\n"
        "        raise ValueError('outside the domain')\n"
        "    return params['x'] ** 2 + params['y'] ** 2\n")
    path = write_study(tmp_path, f'''
        [study]
        name = "eqsql"
        output = "out"
        [model]
        python = "model.py:ackley"
        [algorithm]
        name = "{REPO / 'tests' / 'models' / 'eqsql_me.py'}:run"
        seed = 3
    ''')
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path,
                   env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "eqsql-summary.json").read_text())
    assert summary["cancelled"] == [36, 37, 38, 39, 40] and set(summary["cancelled_statuses"]) == {"CANCELED"}
    records = {r["params"]["x"]: r for r in journal(tmp_path / "out")}
    assert len(records) == 35 and len(summary["results"]) == 35  # the withdrawn never ran
    for status, value in summary["results"].values():
        if status == "SUCCESS":
            assert any(r["objective"] == value for r in records.values())
        else:
            assert value == EQ_ABORT
    assert sum(r["status"] == "failed" for r in records.values()) == sum(
        status == "FAILURE" for status, _ in summary["results"].values()) > 0
