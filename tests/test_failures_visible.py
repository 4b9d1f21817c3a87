"""Failures are on screen, end to end under mpiexec: the reason at the first failure, counts
per reason, an early stop for a model that cannot work (and a resume once it is fixed), exit
status 4 when no task succeeds, and the reasons in `mexplore results` and `mexplore status`."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
from helpers import REPO, journal, run_cli, start_run, write_study

from mexplore.runtime.progress import LIVE_REASONS, Progress
from mexplore.types import Result, Status

MODELS = REPO / "tests" / "models"
MISSING = "the model returned no 'val_loss' (its keys: loss, rank)"


def study(tmp_path: Path, *, budget: int, objective: str = "val_loss", on_error: str = "record",
          model: str = "toy.py:quadratic", space: str = 'x = { type = "float", low = 0.0, high = 1.0 }') -> Path:
    return write_study(tmp_path, f"""
        [study]
        name = "failing"
        budget = {budget}
        objective = "{objective}"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{MODELS / model}"
        on_error = "{on_error}"

        [algorithm]
        name = "random"
        seed = 3

        [space]
        {space}
    """.replace("\n        ", "\n"))


def run(path: Path, *overrides: str) -> tuple[int, str]:
    done = run_cli("run", str(path), "-n", "3", "--progress", "log",
                   *[item for key in overrides for item in ("--set", key)], cwd=path.parent)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


@pytest.mark.mpi
def test_a_misspelled_objective_stops_early_with_its_reason_and_resumes_once_fixed(tmp_path):
    path = study(tmp_path, budget=40)
    code, err = run(path)
    assert code == 4, err
    assert err.count(MISSING) >= 3  # at the first failure, in the summary, in the closing lines
    first = next(line for line in err.splitlines() if MISSING in line)
    assert first.startswith("mexplore: task ") and "failed (reason 1)" in first  # the first failure, at once
    assert "mexplore: stopped early: the first 10 tasks all failed for the same reason" in err
    assert 'on_error = "continue"' in err and "run it again on the same output" in err
    assert "waited for the algorithm" not in err  # no task succeeded: nothing to say about speed
    stopped = journal(tmp_path / "out")
    assert 10 <= len(stopped) < 40 and all(r["status"] == "failed" for r in stopped)

    shown = run_cli("results", str(tmp_path / "out"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"failures by reason ({len(stopped)} tasks):" in shown.stdout
    assert f"{len(stopped)} × {MISSING} (tasks " in shown.stdout and "--failed` lists every failed task" in shown.stdout
    listed = run_cli("results", str(tmp_path / "out"), "--failed", cwd=tmp_path)
    rows = [line for line in listed.stdout.splitlines() if line.rstrip().endswith(MISSING)]
    assert listed.returncode == 0 and len(rows) == len(stopped)
    status = run_cli("status", str(tmp_path / "out"), cwd=tmp_path)
    assert "stopped early" in status.stdout and f"{len(stopped)} × {MISSING}" in status.stdout

    # The model's author fixes the cause; the same output resumes and goes on to the end.
    code, err = run(path, "study.objective=loss")
    assert code == 0, err
    after = journal(tmp_path / "out")
    assert len(after) == 40 and after[: len(stopped)] == stopped
    assert all(r["status"] == "ok" for r in after[len(stopped):])
    assert "stopped early" not in err and f"reason 1: {len(stopped)} ×" in err  # the earlier failures, summed up
    ok = run_cli("results", str(tmp_path / "out"), "--status", "ok", cwd=tmp_path)
    assert sum(" ok " in line for line in ok.stdout.splitlines()) == 40 - len(stopped)


@pytest.mark.mpi
def test_with_on_error_continue_the_budget_is_spent_and_no_success_exits_4(tmp_path):
    path = study(tmp_path, budget=14, on_error="continue")
    code, err = run(path)
    assert code == 4, err
    assert len(journal(tmp_path / "out")) == 14
    assert err.count("failed (reason 1)") == 1 and "stopped early" not in err
    assert "mexplore: finished: 14/14 done, failed=14 (reason 1: 14)" in err
    assert f"reason 1: 14 × {MISSING} (tasks " in err
    assert "mexplore: no task finished ok: 14 of the 14 finished tasks failed" in err


@pytest.mark.mpi
def test_each_distinct_reason_is_shown_once_and_counted(tmp_path):
    space = 'x = { type = "grid", values = [0, 1, 2, 3, 4, 5] }'
    path = study(tmp_path, budget=6, objective="objective", model="toy.py:flaky", space=space)
    path.write_text(path.read_text().replace('name = "random"', 'name = "grid"'))
    code, err = run(path)
    assert code == 0, err  # three tasks succeeded: failures are shown, the run is no failure
    reasons = [line for line in err.splitlines() if "(reason " in line and line.startswith("mexplore: task ")]
    assert len(reasons) == 3 and sorted(line.split("(reason ")[1][0] for line in reasons) == ["1", "2", "3"]
    assert any("model blew up at x=1" in line for line in reasons)
    assert "failures by reason, most frequent first:" in err and "no task finished ok" not in err


@pytest.mark.mpi
def test_a_signal_keeps_its_exit_status_when_every_task_failed(tmp_path):
    path = study(tmp_path, budget=400, on_error="continue",
                 space='x = { type = "float", low = 0.0, high = 1.0 }\nsleep = 0.05')
    process = start_run(path, tmp_path, until_finished=3)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "no task finished ok" not in err


def test_the_progress_shows_each_reason_once_counts_them_and_bounds_the_lines():
    def failed(task_id, error):
        return Result(task_id=task_id, status=Status.FAILED, error=f"Traceback ...\n{error}", rank=1)

    stream = io.StringIO()
    earlier = [failed(0, "OSError: no mesh")]
    progress = Progress(100, ("loss",), "minimize", mode="log", resumed=earlier, stream=stream)
    progress.update([failed(1, "KeyError: 'val_loss'"), failed(2, "KeyError: 'val_loss'")], running=1)
    progress.update([failed(3, "OSError: no mesh"), Result(task_id=4, status=Status.TIMEOUT, rank=1)], running=0)
    assert stream.getvalue().splitlines() == [
        "mexplore: task 1 failed (reason 2): KeyError: 'val_loss'",  # reason 1 came with the resumed journal
        "mexplore: task 4 timeout (reason 3): timeout",
    ]
    assert "failed=5 (reason 1: 2, reason 2: 2, reason 3: 1) running=0" in progress.summary()
    many = [failed(10 + i, f"ValueError: case {i}") for i in range(LIVE_REASONS + 5)]
    progress.update(many, running=0)
    assert f"failed={5 + len(many)} (reason 1: 2, reason 2: 2, reason 3: 1, others: {len(many)}) " in progress.summary()
    progress.close(completed=False)
    lines = stream.getvalue().splitlines()
    assert sum("ValueError: case" in line for line in lines[:-8]) == LIVE_REASONS - 3  # labels 4..20
    assert any(f"more than {LIVE_REASONS} reasons" in line for line in lines)
    summary = lines[lines.index("mexplore: failures by reason, most frequent first:") + 1:]
    assert summary[:2] == ["mexplore:   reason 1: 2 × OSError: no mesh (tasks 0, 3)",
                           "mexplore:   reason 2: 2 × KeyError: 'val_loss' (tasks 1, 2)"]
    assert summary[-1].endswith("more reasons: `mexplore results OUTPUT --failed` lists them")
