"""Command models die with their worker, and a resumed run never reuses a task id or folder.

Under real ``mpiexec``: a command model starts a grandchild and both wait a long time;
the job (or one worker, or the master) is killed with SIGKILL while they run. Every
process the models started must be gone soon after, and the resume that follows must give
its tasks ids the killed session never handed out.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from helpers import (
    alive,
    journal,
    processes_of,
    run_cli,
    start_run,
    wait_until,
    write_study,
)

MODEL = """\
#!/bin/bash
# Holds its task (and a grandchild) until the file $RELEASE exists; records both pids.
sleep 600 &
echo $! > "$PIDS/$MEXPLORE_TASK_ID.grandchild"
echo $$ > "$PIDS/$MEXPLORE_TASK_ID.child"
echo "$MEXPLORE_TASK_DIR" > "$PIDS/$MEXPLORE_TASK_ID.folder"
while [ ! -e "$RELEASE" ]; do sleep 0.05; done
kill %1
echo 1.0 > "$MEXPLORE_RESULT_FILE"
"""


def study(tmp_path: Path, budget: int = 6) -> Path:
    (tmp_path / "pids").mkdir()
    model = tmp_path / "hold.sh"
    model.write_text(MODEL)
    model.chmod(0o755)
    return write_study(tmp_path, f"""
        [study]
        name = "orphans"
        budget = {budget}
        objective = "objective"
        output = "{tmp_path / 'out'}"
        [model]
        command = ["{model}"]
        env = {{ PIDS = "{tmp_path / 'pids'}", RELEASE = "{tmp_path / 'release'}" }}
        [algorithm]
        name = "random"
        seed = 1
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


def model_pids(pids: Path) -> list[int]:
    return [int(text) for file in pids.glob("*.*child") if (text := file.read_text().strip())]


def rank_pid(study_path: Path, rank: int) -> int:
    """The pid of MPI rank ``rank`` of the job running ``study_path`` (from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(study_path).encode() in cmdline and f"PMI_RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no rank {rank} runs {study_path}")


@pytest.mark.mpi
@pytest.mark.parametrize("victim", ["job", "mpiexec", "worker", "master"])
def test_command_models_die_with_their_worker_and_resume_reuses_no_id(tmp_path, victim):
    path = study(tmp_path)
    pids = tmp_path / "pids"
    job = start_run(path, tmp_path, until_finished=0)
    wait_until(lambda: len(list(pids.glob("*.grandchild"))) >= 2 and len(model_pids(pids)) >= 4,
               "both workers run a model with its grandchild", process=job)
    started = model_pids(pids)
    handed_out = {int(file.name.split(".")[0]) for file in pids.glob("*.child")}
    if victim == "job":
        os.killpg(job.pid, signal.SIGKILL)
    elif victim == "mpiexec":  # `mexplore run` became mpiexec (exec): the launcher alone
        os.kill(job.pid, signal.SIGKILL)
    else:
        os.kill(rank_pid(path, 0 if victim == "master" else 1), signal.SIGKILL)
    job.wait(timeout=120)
    wait_until(lambda: not any(alive(pid) for pid in started), "every model process is gone", timeout=60)
    wait_until(lambda: "killed: its master" in run_cli("status", str(tmp_path / "out"), cwd=tmp_path).stdout,
               "mexplore status says at once that the run was killed", timeout=60)

    (tmp_path / "release").touch()
    for file in pids.iterdir():
        file.unlink()
    resumed = start_run(path, tmp_path, until_finished=0)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    records = journal(tmp_path / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == 6 and len(set(ids)) == 6 and all(r["status"] == "ok" for r in records)
    assert not handed_out & set(ids), "a resumed task took an id the killed session had handed out"
    folders = [Path(file.read_text().strip()).name for file in pids.glob("*.folder")]
    assert not handed_out & {int(name.split(".")[0]) for name in folders}
    reserved = json.loads((tmp_path / "out" / "task_ids.json").read_text())["reserved_below"]
    assert reserved > max(ids)


STRAY_MODEL = """
import subprocess
import sys


def model(params, ctx):
    if ctx.task_id == 0:  # a helper process the model never stops, in a session of its own
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", ctx.local_dir.as_posix()],
                         start_new_session=True)
    return params["x"]
"""


def test_a_process_a_python_model_leaves_running_does_not_keep_the_job_alive(tmp_path):
    """It holds the rank's stdout and stderr, which mpiexec waits for: the run would end
    only when the stray does (600 s; the ceiling below fails the test long before)."""
    (tmp_path / "model.py").write_text(STRAY_MODEL)
    path = write_study(tmp_path, f"""
        [study]
        name = "stray"
        budget = 6
        objective = "loss"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{tmp_path / 'model.py'}:model"

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=300,
                   env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    assert len(journal(tmp_path / "out")) == 6
    wait_until(lambda: not processes_of(tmp_path / "local"), "the stray process is gone", timeout=60)


def test_the_reaper_kills_a_program_it_was_never_told_of_by_its_mark(tmp_path):
    """The worker may be killed between starting a program and registering its group: the
    program still carries the worker's mark, and the reaper finds it by that."""
    import io
    import subprocess
    import sys

    from mexplore.models.reaper import Reaper, reap

    guard = Reaper()
    unregistered = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                    env={**os.environ, **guard.environment}, start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        marked = Path(f"/proc/{unregistered.pid}/environ")
        deadline = time.monotonic() + 60  # until it runs with the mark: between fork and exec it has none yet
        while guard.token.encode() not in marked.read_bytes():
            assert time.monotonic() < deadline, "the program never started"
            time.sleep(0.01)
        assert reap(io.StringIO(""), guard.token) == set()
        unregistered.wait(timeout=60)
        assert unregistered.returncode == -signal.SIGKILL
        assert other.poll() is None, "a process without the mark is left alone"
    finally:
        for process in (unregistered, other):
            process.kill()
            process.wait()
