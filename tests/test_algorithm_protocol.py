"""Algorithms in any language: ``[algorithm] command`` over the JSON-lines protocol (issue 15)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import pytest

from helpers import REPO, journal, killed_then_resumed, processes_of, run_cli, write_study

pytestmark = pytest.mark.mpi


def env_for(folder):
    return {"MEXPLORE_LOCAL_DIR": str(folder / "local")}


def run_shipped(name, folder):
    done = run_cli("run", f"studies/{name}.toml", "-n", "3", "-o", str(folder / "out"), "--progress", "off",
                   cwd=REPO, env=env_for(folder), timeout=180)
    assert done.returncode == 0, done.stderr
    return journal(folder / "out")


def r_with_jsonlite() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(jsonlite)"], capture_output=True).returncode == 0


def test_a_python_algorithm_program_with_the_client_meets_the_budget_and_improves(tmp_path):
    records = run_shipped("command-algorithm", tmp_path)
    assert len(records) == 60 and {r["status"] for r in records} == {"ok"}
    assert min(r["objective"] for r in records[2:]) < min(r["objective"] for r in records[:2])


@pytest.mark.skipif(not r_with_jsonlite(), reason="needs Rscript with jsonlite (Debian: r-base-core r-cran-jsonlite)")
def test_the_r_example_algorithm_runs_through_the_r_client(tmp_path):
    records = run_shipped("r-algorithm", tmp_path)
    assert len(records) == 60 and {r["status"] for r in records} == {"ok"}
    assert min(r["objective"] for r in records) < 1.0  # Branin's minimum is 0.398


def es_study(folder, extra=""):
    shutil.copy(REPO / "model-scripts" / "es.py", folder / "es.py")
    return write_study(folder, f'''
        [study]
        name = "es"
        output = "out"
        objective = "loss"
        budget = 40
        [model]
        python = "{REPO / 'model-scripts' / 'quickstart.py'}:branin"
        [algorithm]
        command = ["{{python}}", "{folder / 'es.py'}"]
        seed = 9
        {extra}
        [space]
        x = {{ type = "float", low = -5.0, high = 10.0 }}
        y = {{ type = "float", low = 0.0, high = 15.0 }}
    ''')


def points(output):
    return Counter(tuple(sorted(r["params"].items())) for r in journal(output))


def test_killed_with_its_algorithm_program_it_resumes_to_the_same_points(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    done = run_cli("run", str(es_study(reference)), "-n", "3", "--progress", "off", cwd=reference,
                   env=env_for(reference))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "killed"
    folder.mkdir()
    path = es_study(folder)
    again = killed_then_resumed(path, folder, 11, env=env_for(folder))  # waits for the program too: it is in the folder
    assert again.returncode == 0, again.stderr
    assert points(folder / "out") == points(reference / "out")


STEERING = '''
import json, os, sys
from mexplore.compat.client import Session

session = Session()
print("hello from the algorithm")  # not a protocol message: passed to the master's stderr
ids = session.submit([{"x": float(i), **session.constants} for i in range(8)], priority=1)
session.cancel(ids[6:])
session.set_priorities(ids[:6], [0, 1, 2, 3, 4, 5])
seen = [session.next_result() for _ in ids]
with open(os.path.join(os.environ["MEXPLORE_OUTPUT"], "seen.json"), "w") as file:
    json.dump({"start": session.study, "seen": seen}, file)
session.done()
'''


def test_the_protocol_submits_cancels_reprioritizes_and_passes_stray_lines_on(tmp_path):
    (tmp_path / "steer.py").write_text(STEERING)
    (tmp_path / "model.py").write_text("def f(params, ctx):\n    return params['x'] * params['scale']\n")
    path = write_study(tmp_path, f'''
        [study]
        name = "steer"
        output = "out"
        [model]
        python = "model.py:f"
        [algorithm]
        command = ["{{python}}", "{tmp_path / 'steer.py'}"]
        [algorithm.options]
        note = "handed over as is"
        [space]
        x = {{ type = "float", low = 0.0, high = 10.0 }}
        scale = 2
    ''')
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "algorithm: hello from the algorithm" in done.stderr
    saw = json.loads((tmp_path / "out" / "seen.json").read_text())
    assert saw["start"]["space"] == {"x": {"type": "float", "low": 0.0, "high": 10.0, "log": False}}
    assert saw["start"]["constants"] == {"scale": 2} and saw["start"]["options"]["note"] == "handed over as is"
    by_id = {result["id"]: result for result in saw["seen"]}
    assert {by_id[i]["status"] for i in (6, 7)} == {"cancelled"}
    assert all(by_id[i]["status"] == "ok" and by_id[i]["objective"] == 2 * i for i in range(6))
    assert sorted(r["params"]["x"] for r in journal(tmp_path / "out")) == [float(i) for i in range(6)]


def test_a_program_that_submits_nothing_is_warned_of(tmp_path):
    (tmp_path / "model.py").write_text("def f(params, ctx):\n    return params['x']\n")
    path = write_study(tmp_path, '''
        [study]
        name = "idle"
        output = "out"
        [model]
        python = "model.py:f"
        [algorithm]
        command = ["true"]
        [space]
        x = { type = "float", low = 0.0, high = 1.0 }
    ''')
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "warning: the algorithm 'true' finished without proposing a task" in done.stderr
    assert journal(tmp_path / "out") == []


def after_a_submit(message: str) -> str:
    """A program that submits one point (of a 0.5 s task), then sends ``message`` and waits."""
    return ('import sys\nfrom mexplore.compat.client import Session\ns = Session()\ns.submit([{"x": 1.0}])\n'
            f'print({message!r}, flush=True)\nsys.stdin.read()\n')


@pytest.mark.parametrize("program, says", [
    ('import sys\nfrom mexplore.compat.client import Session\ns = Session()\ns.map([{"x": 1.0}])\n'
     'sys.exit(3)\n', "exited with status 3 before it sent done"),
    ('from mexplore.compat.client import Session\ns = Session()\nprint(\'{"type": "submit", "points": 5}\')\n'
     'import sys; sys.stdout.flush(); sys.stdin.read()\n', "points must be a list of objects"),
    ('from mexplore.compat.client import Session\ns = Session()\nprint(\'{"type": "launch"}\', flush=True)\n'
     'import sys; sys.stdin.read()\n', "expected a type of submit, priority, cancel or done"),
    *((after_a_submit(message), says) for message, says in [
        ('{"type": "cancel", "ids": [-1]}', "unknown id -1"),
        ('{"type": "cancel", "ids": [true]}', "unknown id True"),
        ('{"type": "priority", "ids": [0], "priorities": [NaN]}', "expected a finite number"),
        ('{"type": "submit", "points": [{"x": ' + "[" * 100000 + "]" * 100000 + '}]}', "a message that is not JSON"),
    ]),
], ids=["exits-3", "points-not-a-list", "unknown-type", "negative-id", "boolean-id", "nan-priority",
        "nested-100000-deep"])  # short ids: pytest puts the test's id in the environment of every child
def test_a_failing_program_stops_the_run_naming_it_and_keeps_what_finished(tmp_path, program, says):
    (tmp_path / "bad.py").write_text(program)
    (tmp_path / "model.py").write_text("import time\ndef f(params, ctx):\n    time.sleep(params['x'] / 2)\n"
                                       "    return params['x']\n")
    path = write_study(tmp_path, f'''
        [study]
        name = "bad"
        output = "out"
        [model]
        python = "model.py:f"
        [algorithm]
        command = ["{{python}}", "{tmp_path / 'bad.py'}"]
        [space]
        x = {{ type = "float", low = 0.0, high = 10.0 }}
    ''')
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode != 0
    assert "bad.py" in done.stderr and says in done.stderr
    assert not processes_of(tmp_path)
    if "status 3" in says:
        assert [r["params"] for r in journal(tmp_path / "out")] == [{"x": 1.0}]


WRAPPED = '''
import json, os, sys, time
from mexplore.compat.client import Session

session = Session()
ids = session.submit([{"x": float(i)} for i in range(4)])
seen = [r["metrics"] for r in session.results()]  # until stop: the budget is 3
with open(os.path.join(os.environ["MEXPLORE_OUTPUT"], "seen.json"), "w") as file:
    json.dump(seen, file)
if os.environ.get("LINGER"):
    time.sleep(3600)  # ignores stop: the run must end it, and its wrapper
session.done()
'''


@pytest.mark.parametrize("linger", ["", "1"])
def test_a_wrapped_program_gets_every_result_and_stop_and_leaves_nothing_running(tmp_path, linger):
    (tmp_path / "prog.py").write_text(WRAPPED)
    (tmp_path / "wrap.sh").write_text(f'#!/bin/bash\nLINGER={linger} "$1" {tmp_path / "prog.py"}\necho wrapper done >&2\n')
    (tmp_path / "model.py").write_text(
        "def f(params, ctx):\n    return {'value': params['x'], 'deep': {'nan': float('nan'), 'l': [float('-inf')]}}\n")
    path = write_study(tmp_path, f'''
        [study]
        name = "wrapped"
        output = "out"
        objective = "value"
        budget = 3
        [model]
        python = "model.py:f"
        [algorithm]
        command = ["bash", "{tmp_path / 'wrap.sh'}", "{{python}}"]
        [space]
        x = {{ type = "float", low = 0.0, high = 10.0 }}
    ''')
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    seen = json.loads((tmp_path / "out" / "seen.json").read_text())
    assert seen == [{"deep": {"nan": "NaN", "l": ["-Infinity"]}}] * 3  # at any depth, strict JSON as in the journal
    assert not processes_of(tmp_path)
