"""End to end: external-command and isolated models under mpiexec, misbehaving on purpose."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import REPO, alive, journal, run_cli, write_study

pytestmark = pytest.mark.mpi
MODELS = REPO / "tests" / "models"


def command_study(folder: Path, modes: list[str], model: str, extra: str = "", budget: str = "") -> Path:
    return write_study(folder, f"""
        [study]
        name = "commands"
        {budget}
        output = "{folder / 'out'}"

        [model]
        {model}
        {extra}

        [algorithm]
        name = "grid"

        [space]
        mode = {{ type = "grid", values = {json.dumps(modes)} }}
    """)


def by_mode(output: Path) -> dict[str, dict]:
    return {r["params"]["mode"]: r for r in journal(output)}


MISBEHAVE = f'command = ["{sys.executable}", "{MODELS / "misbehave.py"}", "{{params_file}}"]'


def test_every_way_a_command_can_fail_is_recorded_and_the_run_goes_on(tmp_path):
    # No timeout in this run: writing 80 MB ("garbage") takes seconds on a loaded machine,
    # and a clock must not decide how a task that does finish ends. The hung model is
    # timed out in a run of its own, where a short timeout decides nothing: it never ends.
    modes = ["ok", "stdout", "exit1", "segv", "garbage", "nan", "noresult", "unparsable", "report"]
    path = command_study(tmp_path, modes, MISBEHAVE)
    env = {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = by_mode(tmp_path / "out")
    assert sorted(runs) == sorted(modes), "every task is recorded"
    status = {mode: run["status"] for mode, run in runs.items()}
    assert status == {
        "ok": "ok", "stdout": "ok", "exit1": "failed", "segv": "failed",
        "garbage": "ok", "nan": "failed", "noresult": "failed", "unparsable": "failed", "report": "ok",
    }
    assert runs["ok"]["metrics"] == {"answer": 42}
    assert runs["stdout"]["objective"] == 2.5  # the last MEXPLORE_RESULT line wins
    assert runs["exit1"]["error"].endswith("exit status 1") and "about to fail" in runs["exit1"]["error"]
    assert runs["segv"]["error"].endswith("killed by signal SIGSEGV")
    assert "is nan" in runs["nan"]["error"]
    assert "no result" in runs["noresult"]["error"]
    assert "neither a number nor JSON" in runs["unparsable"]["error"]
    assert runs["report"]["reports"] == [[0, 1.0], [1, 0.5], [2, 1 / 3]]

    [local] = (tmp_path / "local").glob("mexplore-commands-*")
    task_dir = local / "tasks" / str(runs["garbage"]["id"])
    for stream in ("stdout.txt", "stderr.txt"):
        assert (task_dir / stream).stat().st_size < 17 << 20, "output is bounded"
    assert b"more bytes dropped" in (task_dir / "stderr.txt").read_bytes()[-200:]


def test_a_hung_command_is_timed_out_with_its_children(tmp_path):
    path = command_study(tmp_path, ["hang"], MISBEHAVE, 'timeout = "2s"')
    env = {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path, env=env)
    assert done.returncode == 4, done.stderr  # its one task failed: no task finished ok
    [hang] = journal(tmp_path / "out")
    assert hang["status"] == "timeout" and "timed out after 2 s" in hang["error"]

    [local] = (tmp_path / "local").glob("mexplore-commands-*")
    child = int((local / "tasks" / str(hang["id"]) / "child.pid").read_text())
    assert not alive(child), "the hung model's child was killed with it"


NASTY = ["a b", 'q"uote\'s', "x; touch PWNED", "$(touch PWNED2)", "`touch PWNED3`", "line1\nline2", "{task_id}"]


def test_parameter_values_arrive_intact_and_are_never_executed(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "nasty"
        output = "{tmp_path / 'out'}"
        [model]
        command = ["{sys.executable}", "{MODELS / 'echo_args.py'}", "{{text}}", "--text={{text}}", "{{task_id}}"]
        [space]
        text = {{ type = "grid", values = {json.dumps(NASTY)} }}
    """)
    env = {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == len(NASTY)
    for record in records:
        text = record["params"]["text"]
        assert record["metrics"]["argv"] == [text, f"--text={text}", str(record["id"])]
        assert record["metrics"]["cwd"] == record["metrics"]["task_dir"]
    assert not list(tmp_path.rglob("PWNED*"))


def test_a_program_that_cannot_start_is_a_failed_task(tmp_path):
    path = command_study(tmp_path, ["a", "b"], 'command = ["./no-such-program", "{mode}"]')
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path)
    assert done.returncode == 4, done.stderr  # no task finished ok
    records = journal(tmp_path / "out")
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert "could not start './no-such-program'" in records[0]["error"]


def test_retries_are_counted(tmp_path):
    path = command_study(tmp_path, ["flaky", "exit1", "ok"], MISBEHAVE, "retries = 2")
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = by_mode(tmp_path / "out")
    assert (runs["flaky"]["status"], runs["flaky"]["attempt"], runs["flaky"]["objective"]) == ("ok", 1, 4.0)
    assert (runs["exit1"]["status"], runs["exit1"]["attempt"]) == ("failed", 2)
    assert (runs["ok"]["status"], runs["ok"]["attempt"]) == ("ok", 0)
    assert done.stderr.count("trying again") == 3
    assert len(journal(tmp_path / "out")) == 3


def test_on_error_abort_stops_cleanly_with_the_journal_intact(tmp_path):
    modes = ["ok", "stdout", "exit1", "ok2", "ok3", "ok4"]
    path = command_study(tmp_path, modes, MISBEHAVE, 'on_error = "abort"')
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path)
    assert done.returncode == 1
    assert 'on_error = "abort": task 2 failed: exit status 1' in done.stderr
    records = journal(tmp_path / "out")
    assert [r["params"]["mode"] for r in records][:3] == ["ok", "stdout", "exit1"]
    assert len(records) <= 4  # at most the one prefetched task after it
    assert (tmp_path / "out" / "results.csv").exists()


def test_isolated_python_functions_can_crash_and_time_out(tmp_path):
    # As for commands: no timeout where tasks end (an isolated child imports mexplore, which
    # takes seconds on a loaded machine); the hung function is timed out in a run of its own.
    path = command_study(tmp_path, ["fine", "segv", "raise"], f'python = "{MODELS / "isolated.py"}:model"',
                         "isolate = true")
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = by_mode(tmp_path / "out")
    assert runs["fine"]["status"] == "ok" and runs["fine"]["metrics"]["task"] == runs["fine"]["id"]
    assert runs["segv"]["error"].endswith("killed by signal SIGSEGV")
    assert "ValueError: isolated failure" in runs["raise"]["error"]
    assert runs["fine"]["metrics"]["pid"] not in {r["rank"] for r in runs.values()}

    hanging = tmp_path / "hanging"
    hanging.mkdir()
    path = command_study(hanging, ["hang"], f'python = "{MODELS / "isolated.py"}:model"',
                         'isolate = true\ntimeout = "2s"')
    done = run_cli("run", str(path), "-n", "2", cwd=hanging)
    assert done.returncode == 4, done.stderr  # its one task timed out: no task finished ok
    assert [r["status"] for r in journal(hanging / "out")] == ["timeout"]


def test_each_worker_gets_its_own_gpu(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "gpus"
        budget = 12
        output = "{tmp_path / 'out'}"
        [model]
        command = ["{sys.executable}", "{MODELS / 'echo_args.py'}"]
        [space]
        x = {{ type = "float", low = 0, high = 1 }}
    """)
    done = run_cli("run", str(path), "-n", "4", cwd=tmp_path, env={"MEXPLORE_GPUS_PER_NODE": "4"})
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert {r["rank"]: r["gpu"] for r in records} == {1: "1", 2: "2", 3: "3"}
    assert all(r["metrics"]["gpu"] == r["gpu"] for r in records)
    assert "gpu" in (tmp_path / "out" / "results.csv").read_text().splitlines()[0].split(",")
