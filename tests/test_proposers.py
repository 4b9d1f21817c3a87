"""``[algorithm] proposers``: optuna.tpe computed ahead of need in processes of its own."""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    REPO,
    alive,
    journal,
    processes_of,
    run_cli,
    small_space,
    start_run,
    wait_until,
    write_study,
)

from mexplore.algorithms.base import StudyInfo
from mexplore.config import load_study
from mexplore.errors import AlgorithmError, StudyFileError
from mexplore.queue.proposers import Proposers
from mexplore.space import Float, Space
from mexplore.types import Result, Status

MODELS = REPO / "tests" / "models"
LINE = Space(parameters={"x": Float(-1.0, 1.0)}, constants={})


def proposers_in(folder: Path) -> list[int]:
    """Pids of live proposer processes started from ``folder`` (a run's working directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and b"mexplore.queue.proposer_process" in (entry / "cmdline").read_bytes()
                    and Path(os.readlink(entry / "cwd")) == folder and alive(int(entry.name))):
                found.append(int(entry.name))
        except OSError:  # it ended while we looked
            pass
    return found


def parent_of(pid: int) -> int | None:
    """The parent of process ``pid``; None once it has ended."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return None


def run_to(proposers: Proposers, tasks: int, objective=lambda params: (params["x"] - 0.3) ** 2) -> list[dict]:
    """Propose and tell one task at a time, as a master with one worker would, until ``tasks``
    are done; the proposals in order."""
    proposed: list[dict] = []
    deadline = time.monotonic() + 120
    while len(proposed) < tasks:
        batch = proposers.propose(range(len(proposed), len(proposed) + 1))
        if not batch:
            assert time.monotonic() < deadline, "no proposal came"
            time.sleep(0.001)
            continue
        proposers.tell([Result(task_id=len(proposed), params=batch[0], status=Status.OK, objective=objective(batch[0]))])
        proposed += batch
    return proposed


def test_the_processes_propose_in_turn_and_every_copy_hears_of_every_task():
    """Each task is a running trial in the copies that did not propose it ("pending"), and
    its result goes to every copy: to its proposer under that copy's own trial number."""
    proposers = Proposers("optuna.tpe", LINE, StudyInfo(seed=5), {"n_startup_trials": 5}, 2)
    sent: list[tuple[int, tuple]] = []
    for proposer in proposers._proposers:
        proposer.send = lambda message, send=proposer.send, index=proposer.index: (
            sent.append((index, message)), send(message))
    try:
        pids = [proposer.process.pid for proposer in proposers._proposers]
        assert all(alive(pid) for pid in pids)
        proposed = run_to(proposers, 30)
        owners = {}  # task id -> the index of the copy that proposed it
        for index, message in sent:
            if message[0] == "pending":
                owners[message[1]] = 1 - index
    finally:
        proposers.close()
    assert not any(alive(pid) for pid in pids)  # closed with the run
    assert sorted(owners) == list(range(30)) and set(owners.values()) == {0, 1}  # both proposed
    told = {(index, result.task_id) for index, message in sent if message[0] == "tell" for result in message[1]}
    for task in range(30):
        assert (1 - owners[task], task) in told  # the other copy: under the task's id
    assert sum(1 for index, task in told if task < 0) == 30  # the proposer: under its own (negative) number
    assert all(-1.0 <= point["x"] <= 1.0 for point in proposed)


def test_results_told_after_a_proposal_was_made_count_as_unseen_by_its_task():
    """A proposal computed ahead of need misses the results told after it was made; the
    task it becomes has them in ``missed`` (added to its lag), one that saw all has none."""
    proposers = Proposers("optuna.tpe", LINE, StudyInfo(seed=2), {"n_startup_trials": 1}, 1)
    try:
        [first] = take(proposers, 0)
        wait_until(lambda: proposers._ready.qsize() == 1, "the next proposal is made, before any result")
        proposers.tell([Result(task_id=0, params=first, status=Status.OK, objective=1.0)])
        take(proposers, 1)  # its ask goes after that result: the next proposal has seen it
        ahead = proposers.computed_ahead(range(0, 2))
        assert ahead.missed == [0, 1] and ahead.seconds > 0, "TPE's time in its process is billed to the tasks"
        take(proposers, 2)
        assert proposers.computed_ahead(range(2, 3)).missed == [0]
    finally:
        proposers.close()


def take(proposers: Proposers, task_id: int) -> list[dict]:
    """The next proposal, as task ``task_id``, once one is ready."""
    taken: list[dict] = []
    wait_until(lambda: bool(taken.extend(proposers.propose(range(task_id, task_id + 1))) or taken),
               f"a proposal for task {task_id}")
    return taken


def test_every_copy_learns_what_it_is_taught():
    """A warm start (``learn``) reaches every copy: with 300 results saying the optimum is at
    0.3, the proposals of both crowd there, where random points would spread over [-1, 1]."""
    proposers = Proposers("optuna.tpe", LINE, StudyInfo(seed=1), {}, 2)
    try:
        proposers.learn([Result(task_id=-1, params={"x": x}, status=Status.OK, objective=(x - 0.3) ** 2)
                         for x in (i / 150 - 1 for i in range(300))])
        later = run_to(proposers, 20)
    finally:
        proposers.close()
    assert sum(abs(point["x"] - 0.3) < 0.2 for point in later) >= 14  # random: 2 of 20


def test_an_option_the_sampler_refuses_is_named_and_no_process_is_left():
    with pytest.raises(AlgorithmError, match="'optuna.tpe' has no option 'n_startup'"):
        Proposers("optuna.tpe", small_space(), StudyInfo(seed=1), {"n_startup": 3}, 3)
    assert not [pid for pid in proposers_in(Path.cwd()) if parent_of(pid) == os.getpid()]  # others may run beside


def test_a_process_that_dies_is_left_out_and_when_none_is_left_the_run_stops(capsys):
    proposers = Proposers("optuna.tpe", LINE, StudyInfo(seed=2), {}, 2)
    try:
        first, second = proposers._proposers
        os.kill(first.process.pid, signal.SIGKILL)
        wait_until(lambda: first.ended, "the reader saw the kill")
        proposed = run_to(proposers, 6)  # the other goes on
        assert len(proposed) == 6
        assert "proposer process 0 of optuna.tpe ended (exit status -9); 1 left" in capsys.readouterr().err
        os.kill(second.process.pid, signal.SIGKILL)
        wait_until(lambda: second.ended, "the reader saw the kill")
        with pytest.raises(AlgorithmError, match="every proposer process ended"):
            run_to(proposers, 10)
    finally:
        proposers.close()


def test_a_process_whose_sampler_raises_stops_the_run_with_its_traceback():
    proposers = Proposers("optuna.tpe", LINE, StudyInfo(seed=2), {}, 2)
    try:
        run_to(proposers, 2)
        proposers.replay([Result(task_id=100, params=None, status=Status.OK, objective=1.0)])  # a broken record
        with pytest.raises(AlgorithmError, match=r"proposer process \d failed:\n.*Traceback"):
            run_to(proposers, 30)
    finally:
        proposers.close()


@pytest.mark.parametrize("algorithm, says", [
    ('name = "optuna.cmaes"', "only optuna.tpe and optuna.gp propose in processes"),
    ('name = "random"', "only optuna.tpe and optuna.gp propose in processes"),
    ('name = "optuna.tpe"\npruner = "median"', "1 with a pruner"),
])
def test_proposers_with_an_algorithm_or_pruner_that_cannot_is_refused_by_name(tmp_path, algorithm, says):
    path = write_study(tmp_path, f"""
        [study]
        name = "p"
        objective = "loss"
        [model]
        python = "{MODELS / 'toy.py:quadratic'}"
        [algorithm]
        {algorithm}
        proposers = 2
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """.replace("\n        ", "\n"))
    with pytest.raises(StudyFileError, match=r"algorithm.proposers = 2: expected 1 with") as error:
        load_study(path)
    assert says in str(error.value) and str(path) in str(error.value)


def tpe_study(folder: Path, budget: int, sleep: float = 0.0) -> Path:
    return write_study(folder, f"""
        [study]
        name = "proposers"
        budget = {budget}
        objective = "loss"
        output = "{folder / 'out'}"

        [model]
        python = "{MODELS / 'toy.py:quadratic'}"

        [algorithm]
        name = "optuna.tpe"
        proposers = 2
        seed = 3
        [algorithm.options]
        n_startup_trials = 4

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        y = {{ type = "float", low = 0.0, high = 1.0 }}
        sleep = {sleep}
    """.replace("\n        ", "\n"))


@pytest.mark.mpi
def test_a_run_with_proposers_spends_its_budget_exactly_and_leaves_no_process(tmp_path):
    done = run_cli("run", str(tpe_study(tmp_path, 30)), "-n", "4", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert sorted(record["id"] for record in records) == list(range(30))
    assert all(record["status"] == "ok" for record in records)
    assert "proposers = 2" in (tmp_path / "out" / "study.toml").read_text()
    assert not proposers_in(tmp_path)
    report = run_cli("results", str(tmp_path / "out"), cwd=tmp_path)
    assert "workers waited for the algorithm's proposals" in report.stdout, (
        "no-op tasks wait for TPE's proposals: its time in the processes is billed to the tasks\n" + report.stdout)


@pytest.mark.mpi
def test_the_proposers_end_with_a_killed_master_and_the_resume_spends_the_budget_exactly(tmp_path):
    """kill -9 of the master rank alone: its proposer processes go too (their parent is
    gone), mpiexec ends the job, and the resume finishes the budget with no task twice."""
    path = tpe_study(tmp_path, 40, sleep=0.05)
    job = start_run(path, tmp_path, until_finished=8)
    try:
        wait_until(lambda: len(proposers_in(tmp_path)) == 2, "both proposers run", process=job)
        master = {parent_of(pid) for pid in proposers_in(tmp_path)}
        assert len(master) == 1
        os.kill(master.pop(), signal.SIGKILL)
        wait_until(lambda: not proposers_in(tmp_path), "the proposers ended with their master", timeout=60)
        job.wait(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    resumed = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    ids = [record["id"] for record in journal(tmp_path / "out")]
    ok = [record for record in journal(tmp_path / "out") if record["status"] == "ok"]
    assert len(ids) == len(set(ids)) and len(ok) == 40
    assert not proposers_in(tmp_path)


@pytest.mark.mpi
def test_kill_minus_9_at_random_instants_then_resume_loses_repeats_and_leaves_nothing(tmp_path):
    """The whole job (mpiexec, the ranks, the proposers) killed at random instants, twice,
    then resumed: every task of the budget is in the journal once, ok, and no process of the
    job is left, proposers included. The seed is in the failure message to replay it."""
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    path = tpe_study(tmp_path, 60, sleep=0.05)
    kills = []
    for _ in range(2):
        done = len(journal(tmp_path / "out")) if (tmp_path / "out" / "journal.jsonl").exists() else 0
        job = start_run(path, tmp_path, until_finished=done + chance.randint(1, 6))
        instant = chance.uniform(0.0, 0.3)  # the attack's instant, past a random count of results
        time.sleep(instant)
        kills.append((done, round(instant, 3)))
        try:
            os.killpg(job.pid, signal.SIGKILL)
        except ProcessLookupError:  # it finished meanwhile on a slow machine: the resume still runs
            pass
        job.wait(timeout=60)
        wait_until(lambda: not processes_of(tmp_path) and not proposers_in(tmp_path),
                   f"every process of the job killed at {kills} (seed {seed}) is gone", timeout=60)
    assert len(journal(tmp_path / "out")) < 60, "the kills came after the run's end: no attack"
    resumed = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, f"seed {seed}, kills {kills}: {resumed.stderr}"
    records = journal(tmp_path / "out")
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)), f"seed {seed}, kills {kills}: a task twice"
    assert sum(record["status"] == "ok" for record in records) == 60, f"seed {seed}, kills {kills}"
    assert not processes_of(tmp_path) and not proposers_in(tmp_path)


if sys.platform != "linux":  # the tests read /proc
    pytestmark = pytest.mark.skip("needs Linux's /proc")
