"""The Python API: ``mexplore.run`` starts real MPI jobs (a subprocess, as from a notebook),
``mexplore.open_run`` reads runs back, finished or going on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import journal, processes_of, wait_until, write_study

import mexplore
from mexplore.api import describe_exit
from mexplore.comms.launcher import find_mpiexec
from mexplore.errors import StudyFileError

pytestmark = pytest.mark.mpi

SAVING = """
import numpy as np

def train(params, ctx):
    ctx.save("weights", np.full(3, params["x"]))
    if params["x"] > 0.8:
        raise ValueError(f"x = {params['x']:.3f} diverges")
    return {"loss": (params["x"] - 0.3) ** 2, "x_seen": params["x"]}
"""

GATED = """
import os
import time
from pathlib import Path

def model(params, ctx):
    # tasks after the first three wait for a gate file: the run is still going when the test looks
    while ctx.task_id >= 3 and not Path(os.environ["GATE"]).exists():
        time.sleep(0.01)
    return params["x"]
"""


def dict_study(budget: int, **model: str) -> dict:
    return {
        "study": {"name": "api", "budget": budget, "objective": "loss", "output": "out"},
        "model": model or {"python": "model-scripts/train.py:train"},
        "algorithm": {"name": "random", "seed": 5},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}, "epochs": 3},
    }


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder as a notebook would have: the working directory, a model script in
    model-scripts/, node-local data under the test's folder."""
    (tmp_path / "model-scripts").mkdir()
    (tmp_path / "model-scripts" / "train.py").write_text(SAVING)
    (tmp_path / "gated.py").write_text(GATED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEXPLORE_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("GATE", str(tmp_path / "gate"))
    return tmp_path


def test_a_dict_study_runs_and_resumes_with_a_bigger_budget(project, capsys):
    run = mexplore.run(dict_study(budget=8), ranks=2, progress="log")
    assert "mexplore: study 'api'" in capsys.readouterr().err, "the job's progress reaches our stderr"
    assert run.path == project / "out"
    assert (project / "out" / "study-input.toml").exists()  # the dict, written where every node sees it
    table = run.table
    assert sorted(table["id"]) == list(range(8))
    assert run.study["study"]["budget"] == 8 and run.study["space"]["epochs"] == 3
    ok = table[table["status"] == "ok"]
    best = run.best(3)
    assert list(best["loss"]) == sorted(ok["loss"])[:3]
    assert not run.failed.empty and list(run.failed["id"]) == list(table.loc[table["p:x"] > 0.8, "id"])
    assert all("diverges" in error for error in run.failed["error"])
    task = int(best["id"].iloc[0])
    np.testing.assert_array_equal(run.output(task, "weights"), np.full(3, best["p:x"].iloc[0]))
    with pytest.raises(KeyError, match="no saved output 'bias'"):
        run.output(task, "bias")
    assert len(run.sessions) == 1

    resumed = mexplore.run(dict_study(budget=8), ranks=2, set={"study.budget": 12}, progress="off")
    ids = list(resumed.table["id"])
    assert len(ids) == len(set(ids)) == 12 and set(range(8)) < set(ids)  # a session has its own ids
    assert resumed.study["study"]["budget"] == 12
    assert len(resumed.sessions) == 2
    assert repr(resumed).startswith("<mexplore Run 'api' in ") and " ok" in repr(resumed)


def test_a_failing_run_raises_with_its_exit_code_and_last_lines(project):
    every_task_diverges = {"space.x": {"type": "float", "low": 0.9, "high": 1.0}, "model.on_error": "abort"}
    with pytest.raises(mexplore.RunFailed) as failed:
        mexplore.run(dict_study(budget=6), ranks=2, set=every_task_diverges, output="elsewhere", progress="off")
    assert failed.value.code == 1 and failed.value.output == project / "elsewhere"
    records = journal(project / "elsewhere")
    assert records and all(r["params"]["x"] >= 0.9 for r in records)
    assert any("diverges" in line for line in failed.value.stderr_tail)
    assert "exit code 1" in str(failed.value) and "diverges" in str(failed.value)


def test_a_bad_study_dict_is_refused_before_any_rank_starts(project):
    study = dict_study(budget=4)
    study["space"]["x"]["high"] = -1.0
    with pytest.raises(StudyFileError, match=r"^the study dict: space\.x\.high = -1\.0: expected a number > low"):
        mexplore.run(study, ranks=2)
    with pytest.raises(StudyFileError, match=r"study\.budget"):
        mexplore.run(dict_study(budget=4), set={"study.budget": "many"})
    assert not (project / "out").exists()


def test_describe_exit_names_the_codes_a_run_ends_with():
    assert "refused" in describe_exit(2)
    assert "holds the output" in describe_exit(3)
    assert "none finished ok" in describe_exit(4)
    assert "SIGTERM" in describe_exit(143)


def test_open_run_reads_a_run_while_it_goes_on(project):
    ran: dict[str, mexplore.Run] = {}
    worker = threading.Thread(target=lambda: ran.setdefault("run", mexplore.run(
        dict_study(budget=10, python=str(project / "gated.py") + ":model"), ranks=3, progress="off")))
    worker.start()
    try:
        wait_until(lambda: (project / "out" / "journal.jsonl").exists()
                   and len(journal(project / "out")) >= 3, "three tasks finished")
        snapshot = mexplore.open_run(project / "out")
        assert 3 <= len(snapshot.table) < 10 and snapshot.study["study"]["name"] == "api"
    finally:  # also when an assertion fails: the gated run must not wait forever
        (project / "gate").touch()
        worker.join(timeout=120)
    assert len(ran["run"].table) == 10
    assert len(snapshot.table) < 10, "a Run is a snapshot until refreshed"
    assert len(snapshot.refresh().table) == 10


DRIVER = (
    # a notebook kernel handles Ctrl-C; a process started from a non-interactive shell's
    # background job inherits SIGINT ignored (as CI may run the suite), so the driver asks
    # for Python's own handler, as the kernel has
    "import signal, sys, mexplore\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "mexplore.run(sys.argv[1], ranks=3, progress='log')\n"
)


def gated_study(project: Path) -> Path:
    return write_study(project, f"""
        [study]
        name = "stoppable"
        budget = 10
        objective = "loss"
        output = "{project / 'out'}"
        [model]
        python = "{project / 'gated.py'}:model"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


def start_driver(project: Path, path: Path) -> subprocess.Popen:
    """A script calling ``mexplore.run`` (as a notebook's kernel does), once three tasks
    finished and the others wait at the gate."""
    (project / "driver.py").write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, "driver.py", str(path)], cwd=project, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    wait_until(lambda: (project / "out" / "journal.jsonl").exists()
               and len(journal(project / "out")) >= 3, "three tasks finished", process=driver)
    return driver


def test_ctrl_c_in_the_caller_stops_the_job_cleanly_and_the_same_call_resumes(project):
    path = gated_study(project)
    driver = start_driver(project, path)
    os.kill(driver.pid, signal.SIGINT)  # to the caller alone, as a notebook's stop button does
    try:
        _, err = driver.communicate(timeout=600)  # a ceiling for a hang: a loaded machine takes minutes
    finally:  # a failure must not leave the gated job running for ever
        for pid in processes_of(path) if driver.returncode is None else ():
            os.kill(pid, signal.SIGKILL)
    assert driver.returncode == -signal.SIGINT, err  # the KeyboardInterrupt is raised again
    assert "stopped by SIGTERM after flushing" in err and "KeyboardInterrupt" in err
    wait_until(lambda: processes_of(path) == [], "every rank ended", timeout=120)
    assert len(journal(project / "out")) < 10

    (project / "gate").touch()
    resumed = mexplore.run(path, ranks=3, launcher=f"{find_mpiexec()} -n {{ranks}}", progress="off")
    ids = list(resumed.table["id"])
    assert len(ids) == len(set(ids)) == 10


def test_a_killed_caller_leaves_no_rank_behind(project):
    """A notebook kernel killed outright (a restart) cannot pass a signal on: the kernel
    stops the job for it (SIGTERM), so the ranks flush and end, and the run resumes."""
    path = gated_study(project)
    driver = start_driver(project, path)
    os.kill(driver.pid, signal.SIGKILL)
    driver.communicate(timeout=30)
    wait_until(lambda: processes_of(path) == [], "every rank ended", timeout=60)
    assert 3 <= len(journal(project / "out")) < 10
    (project / "gate").touch()
    assert len(mexplore.run(path, ranks=3, progress="off").table) == 10
