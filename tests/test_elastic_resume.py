"""Elastic resumes (issue 18 item 5): each session of a run may have another number of
workers. A run at 3 workers, stopped, resumed at 7, stopped, resumed at 1: the budget is met
exactly, no task runs twice, and every task's saved output is found by its id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from helpers import journal, wait_until, write_study
from mexplore import open_run

pytestmark = pytest.mark.mpi

MODEL = """\
import time

def work(params, ctx):
    time.sleep(0.02)
    ctx.save("x", str(params["x"]).encode())
    return params["x"] ** 2
"""

BUDGET = 80


def session(path, ranks, until=None):
    """``mexplore run -n RANKS``; with ``until``, stopped by SIGTERM (as a scheduler stops a
    job) once the journal holds that many tasks."""
    process = subprocess.Popen([sys.executable, "-m", "mexplore", "run", str(path), "-n", str(ranks), "--progress", "off"],
                               cwd=path.parent, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "MEXPLORE_LOCAL_DIR": str(path.parent / "local")})
    if until is not None:
        records = path.parent / "out" / "journal.jsonl"
        wait_until(lambda: records.exists() and len(records.read_text().splitlines()) >= until,
                   f"{until} tasks done at -n {ranks}", process=process)
        os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=180)
    assert process.returncode == (143 if until is not None else 0), err
    return err


def test_a_run_resumed_with_more_then_fewer_workers_meets_its_budget_exactly(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    path = write_study(tmp_path, f"""
        [study]
        name = "elastic"
        budget = {BUDGET}
        output = "out"
        [model]
        python = "model.py:work"
        [algorithm]
        name = "random"
        seed = 4
        [space]
        x = {{ type = "float", low = -1.0, high = 1.0 }}
    """)
    session(path, 4, until=10)
    after_three = len(journal(tmp_path / "out"))
    err = session(path, 8, until=after_three + 25)
    assert "7 worker(s)" in err
    after_seven = len(journal(tmp_path / "out"))
    assert "1 worker(s)" in session(path, 2)
    records = journal(tmp_path / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == BUDGET and len(set(ids)) == BUDGET and {r["status"] for r in records} == {"ok"}
    assert 10 <= after_three < after_seven < BUDGET
    assert len({r["rank"] for r in records}) > 3  # more workers than the first session's ran tasks
    run = open_run(tmp_path / "out")
    for record in records:
        assert run.output(record["id"], "x") == str(record["params"]["x"]).encode()
