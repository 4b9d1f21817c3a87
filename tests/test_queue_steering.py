"""The IoC queue steering running tasks, end to end under mpiexec: an imperative algorithm
sees a running task's reports and stops it; the task ends ``cancelled`` and its program is
gone, for a command that never reports again and for a Python model at its next report."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import journal, processes_of, run_cli, write_study

pytestmark = pytest.mark.mpi

ALGORITHM = '''
import time


def steer(queue, space, options):
    slow = queue.submit({"x": 0.5, "seconds": 600.0})
    queue.map([{"x": 0.25, "seconds": 0.0}])            # the other worker runs this meanwhile
    while not slow.reports():                            # the slow task said it started
        time.sleep(0.01)
    seen = slow.status
    assert slow.stop()
    result = slow.result()
    queue.map([{"x": float(seen == "running" and result.status == "cancelled"), "seconds": 0.0}])
'''

COMMAND = '''
import sys
import time

x, seconds = float(sys.argv[1]), float(sys.argv[2])
print(f"MEXPLORE_REPORT 1 {x}", flush=True)
time.sleep(seconds)                                      # no report: stopped by the worker's poll
print(f"MEXPLORE_RESULT {x}")
'''

PYTHON = '''
import time


def model(params, ctx):
    deadline = time.monotonic() + params["seconds"]
    step = 0
    while True:
        step += 1
        ctx.report(step, params["x"])                    # a stop is raised here
        if time.monotonic() >= deadline:
            return params["x"]
        time.sleep(0.05)
'''


@pytest.mark.parametrize("kind", ["command", "python"])
def test_the_algorithm_stops_a_running_task_which_ends_cancelled(tmp_path: Path, kind: str) -> None:
    (tmp_path / "steer.py").write_text(ALGORITHM)
    (tmp_path / "model_cmd.py").write_text(COMMAND)
    (tmp_path / "model_py.py").write_text(textwrap.dedent(PYTHON))
    model = (f'command = ["{{python}}", "{tmp_path / "model_cmd.py"}", "{{x}}", "{{seconds}}"]' if kind == "command"
             else f'python = "{tmp_path / "model_py.py"}:model"')
    path = write_study(tmp_path, f"""
        [study]
        name = "steer"
        output = "{tmp_path / 'out'}"
        [model]
        {model}
        [algorithm]
        name = "{tmp_path / 'steer.py'}:steer"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        seconds = {{ type = "float", low = 0.0, high = 1000.0 }}
    """)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    records = {r["params"]["x"]: r for r in journal(tmp_path / "out")}
    assert records[0.5]["status"] == "cancelled" and records[0.5]["reports"], records[0.5]
    assert records[1.0]["status"] == "ok", "the algorithm saw it running, then cancelled"
    assert not processes_of(tmp_path), "the stopped program was killed"
