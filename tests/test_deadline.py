"""``mexplore run --walltime`` / ``--stop-at``: the run stops itself before a deadline as it
would on a scheduler's signal (every rank flushes, exit 142), and resumes exactly."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from helpers import journal, processes_of, run_cli, write_study

from mexplore.comms.launcher import find_mpiexec
from mexplore.errors import MexploreError
from mexplore.runtime.deadline import STOP_BEFORE_AT_MOST, stop_time

NOW = datetime(2026, 12, 1, 12, 0, 0).timestamp()


def test_a_walltime_keeps_a_tenth_for_the_flush_at_most_a_minute():
    assert stop_time("100s", None, None, now=NOW) == NOW + 90
    assert stop_time("2h", None, None, now=NOW) == NOW + 7200 - STOP_BEFORE_AT_MOST
    assert stop_time("1:00:00", None, "5m", now=NOW) == NOW + 3300


def test_stop_at_reads_a_clock_time_a_date_or_epoch_seconds():
    assert stop_time(None, "12:30", "0:00:10", now=NOW) == NOW + 1800 - 10
    assert stop_time(None, "11:00", "10s", now=NOW) == NOW + 23 * 3600 - 10  # past: tomorrow
    assert stop_time(None, "2026-12-01T13:00", "10s", now=NOW) == NOW + 3600 - 10
    assert stop_time(None, f"@{NOW + 600}", "10s", now=NOW) == NOW + 590
    assert stop_time(None, None, None, now=NOW) is None


@pytest.mark.parametrize(("walltime", "stop_at", "stop_before", "said"), [
    ("2h", "14:00", None, "give one"),
    (None, None, "1m", "needs --walltime or --stop-at"),
    ("30s", None, "1m", "leaves no time to run"),
    ("soon", None, None, "--walltime"),
    (None, "25:99", None, "expected a time of day"),
])
def test_bad_deadlines_are_refused_naming_the_option(walltime, stop_at, stop_before, said):
    with pytest.raises(MexploreError, match=said):
        stop_time(walltime, stop_at, stop_before, now=NOW)


MODEL = """
import os
import time


def model(params, ctx):
    if os.path.exists(params["slow"]):  # removed before the resume, which then takes no time
        time.sleep(0.2)
    return params["x"]
"""


def deadline_study(tmp_path: Path, budget: int, slow: Path) -> Path:
    """A study of ``budget`` tasks whose model sleeps while the file ``slow`` exists."""
    (tmp_path / "model.py").write_text(MODEL)
    return write_study(tmp_path, f"""
        [study]
        name = "deadline"
        budget = {budget}
        objective = "loss"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{tmp_path / 'model.py'}:model"

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        slow = "{slow}"
    """)


@pytest.mark.mpi
@pytest.mark.parametrize("launch", ["mexplore -n 3", "mpiexec -n 3 mexplore"])
def test_a_run_stops_itself_at_its_walltime_and_resumes_exactly(tmp_path: Path, launch: str):
    path = deadline_study(tmp_path, budget=200, slow=tmp_path / "slow")
    (tmp_path / "slow").touch()
    command = [sys.executable, "-m", "mexplore", "run", str(path), "--walltime", "5s", "--progress", "off"]
    command = command + ["-n", "3"] if launch.startswith("mexplore") else [find_mpiexec(), "-n", "3", *command]
    stopped = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert stopped.returncode == 128 + signal.SIGALRM, stopped.stderr
    assert "stopped at its deadline (--walltime or --stop-at) after flushing" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    first = journal(tmp_path / "out")
    assert len(first) < 200 and len({r["id"] for r in first}) == len(first)
    assert not processes_of(tmp_path)

    (tmp_path / "slow").unlink()
    resumed = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 200 and len({r["id"] for r in records}) == 200


@pytest.mark.mpi
def test_no_rank_keeps_its_deadline_timer_once_the_run_has_ended(tmp_path: Path):
    """Python puts back SIGALRM's default action as it exits, so a timer still armed then
    kills the rank on its way out. A scheduler's signal that stops the run just before the
    deadline did that to workers under Slurm, and the job then waited for them until its
    time limit: every rank disarms its timer when the run ends."""
    path = deadline_study(tmp_path, budget=4, slow=tmp_path / "not-there")
    rank = tmp_path / "rank.py"
    rank.write_text(f"""
import signal
import sys

from mexplore.cli.main import main

code = main(["run", {str(path)!r}, "--walltime", "10m", "--progress", "off"])
print("timer left", signal.getitimer(signal.ITIMER_REAL)[0], flush=True)
sys.exit(code)
""")
    done = subprocess.run([find_mpiexec(), "-n", "2", sys.executable, str(rank)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n").count("timer left 0.0") == 2, done.stdout
