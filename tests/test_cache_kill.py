"""The node-local cache under attack: ``kill -9`` of a whole MPI job at a random instant,
then a resume, over and over; every task journaled ``ok`` must have all its outputs.

Each trial starts ``mexplore run -n 3`` in its own session (as a batch job is), waits until
the journal holds a random number of results (polling the file, so a loaded machine only
makes it slower), SIGKILLs the process group, checks that no process of the job is left,
resumes with the same command to the end, and reads every ``ok`` task's outputs back
through ``load_output``. The saved outputs encode the task's id and point, so an output
attached to the wrong task is caught as surely as a lost one. Trials alternate, two by
two, between a Python model saving with ``ctx.save`` and a command model leaving files in
its ``artifacts/`` folder (whose program the kill must not leave running).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import journal, processes_of, run_cli, wait_until, write_study

from mexplore.store.results_file import load_output

pytestmark = pytest.mark.mpi
BUDGET = 40
TRIALS = int(os.environ.get("MEXPLORE_KILL_TRIALS", "10"))
"""Kills per run of the suite; a longer campaign: ``MEXPLORE_KILL_TRIALS=50 pytest tests/test_cache_kill.py``."""
FLUSH_EVERY = ("", "flush_every = 0.05", "", "flush_every = 0.2")
"""Trials cycle through these: no periodic flush (all outputs on the node when the kill
comes), and flushes frequent enough that some kills land in the middle of one."""

MODEL = """
import time

import numpy as np


def model(params, ctx):
    ctx.save("point", np.full(50, params["x"]))
    ctx.save("id", np.array([ctx.task_id]))
    ctx.save("note", f"task {ctx.task_id}".encode())
    time.sleep(0.02)
    return params["x"]
"""


COMMAND = """\
printf '%s' "$1" > "$MEXPLORE_ARTIFACTS_DIR/point"
printf 'task %s' "$MEXPLORE_TASK_ID" > "$MEXPLORE_ARTIFACTS_DIR/note"
sleep 0.02
echo "MEXPLORE_RESULT $1"
"""


def study(folder: Path, flush_every: str, seed: int, kind: str) -> Path:
    (folder / "model.py").write_text(MODEL)
    (folder / "model.sh").write_text(COMMAND)
    model = f'python = "{folder / "model.py"}:model"' if kind == "python" else \
        f'command = ["bash", "{folder / "model.sh"}", "{{x}}"]'
    return write_study(folder, f"""
        [study]
        name = "kill"
        budget = {BUDGET}
        objective = "loss"
        output = "{folder / 'out'}"

        [model]
        {model}

        [algorithm]
        seed = {seed}

        [cache]
        {flush_every}

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


def environment(folder: Path) -> dict[str, str]:
    return {"MEXPLORE_LOCAL_DIR": str(folder / "local")}


def finished_lines(output: Path) -> int:
    """Complete journal lines so far (the last one may be half-written while we read)."""
    try:
        return (output / "journal.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_at(path: Path, folder: Path, lines: int) -> int:
    """Start the run, SIGKILL its whole process group once the journal has ``lines``
    results; returns how many it had when the kill came."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMI_")}
    env.update(environment(folder))
    with open(folder / "killed-run.err", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "mexplore", "run", str(path), "-n", "3", "--progress", "off"],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )
    output = folder / "out"
    deadline = time.monotonic() + 120  # a ceiling for a hang, not a timing assumption
    while finished_lines(output) < lines and process.poll() is None:
        assert time.monotonic() < deadline, f"the run made no progress: {(folder / 'killed-run.err').read_text()}"
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    wait_until(lambda: not processes_of(folder), "every process of the killed job has gone")
    return finished_lines(output)


@pytest.mark.slow
def test_kill_minus_9_at_any_instant_then_resume_loses_no_output_of_an_ok_task(tmp_path):
    rng = random.Random(20261123)
    figures = []
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        kind = ("python", "command")[trial // 2 % 2]
        path = study(folder, FLUSH_EVERY[trial % len(FLUSH_EVERY)], seed=trial, kind=kind)
        killed_at = kill_at(path, folder, rng.randint(1, BUDGET - 4))
        where = f"trial {trial} ({kind}, {FLUSH_EVERY[trial % len(FLUSH_EVERY)] or 'no periodic flush'}), " \
                f"killed after {killed_at} results, files in {folder}"

        resumed = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=folder, env=environment(folder),
                          timeout=300)
        assert resumed.returncode == 0, f"{where}: the resume failed:\n{resumed.stderr}"
        assert "cannot be read" not in resumed.stderr, f"{where}: {resumed.stderr}"
        assert not processes_of(folder), f"{where}: processes of the resumed run are left"

        records = journal(folder / "out")
        ids = [record["id"] for record in records]
        assert len(records) == BUDGET and len(set(ids)) == BUDGET, f"{where}: ids {ids}"
        assert {record["status"] for record in records} == {"ok"}, where
        lost = []
        for record in records:
            task, x = record["id"], record["params"]["x"]
            try:
                point, note = (load_output(folder / "out", task, name) for name in ("point", "note"))
            except KeyError:
                lost.append(task)
                continue
            if kind == "python":
                assert point.tolist() == [x] * 50, f"{where}: task {task} holds another task's point"
                assert load_output(folder / "out", task, "id").tolist() == [task], where
            else:
                assert float(point) == pytest.approx(x, rel=1e-12), f"{where}: task {task} holds another's point"
            assert note == f"task {task}".encode(), f"{where}: task {task} holds {note!r}"
        assert not lost, f"{where}: the outputs of ok tasks {lost} are lost"
        assert not list((folder / "local").rglob("cache/*/*")), f"{where}: the node-local cache was not emptied"
        figures.append(killed_at)
    print(f"{TRIALS} kills after {figures} results of {BUDGET}; no output lost")
