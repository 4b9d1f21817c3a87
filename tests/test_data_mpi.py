"""End to end under mpiexec: the cache, flushes, signals, kill -9, keep, reuse, nodes, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from helpers import REPO, journal, run_cli, start_run, wait_until, write_study
from mexplore.store.results_file import load_output, read_table

pytestmark = pytest.mark.mpi
MODELS = REPO / "tests" / "models"
ONE_FLOAT = 'x = { type = "float", low = 0.0, high = 1.0 }'


def study(tmp_path: Path, *, budget=24, model="saving.py:weights", cache="", algorithm="",
          space=ONE_FLOAT) -> Path:
    return write_study(tmp_path, f"""
        [study]
        name = "data"
        budget = {budget}
        objective = "loss"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{MODELS / model}"

        [algorithm]
        seed = 3
        {algorithm}

        [cache]
        {cache}

        [space]
        {space}
    """.replace("\n        ", "\n"))


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local"), **extra}


def start(path: Path, tmp_path: Path, until_finished: int, **extra: str) -> subprocess.Popen:
    return start_run(path, tmp_path, until_finished, env(tmp_path, **extra))


def flushed_tasks(output: Path) -> dict[int, str]:
    """task id -> flushed cache file holding it."""
    held = {}
    for path in sorted((output / "cache").glob("*.h5")):
        with h5py.File(path, "r") as cache:
            held.update({int(task): path.name for task in cache.get("tasks", {})})
    return held


def last_flush(output: Path) -> float | None:
    """When every worker last finished a periodic flush, as the master's status.json says
    (written atomically, so never seen half-written); None before the first."""
    try:
        return json.loads((output / "status.json").read_text())["last_flush"]
    except FileNotFoundError:
        return None


def linked_tasks(output: Path) -> list[int]:
    with h5py.File(output / "results.h5", "r") as results:
        return sorted(int(task) for task in results["tasks"])


def test_saved_outputs_reach_results_h5_whichever_worker_ran_them(tmp_path):
    done = run_cli("run", str(study(tmp_path, budget=12)), "-n", "3", cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    output = tmp_path / "out"
    assert sorted(p.name for p in (output / "cache").glob("*.h5")) == [f"{os.uname().nodename}-r{r}.h5"
                                                                    for r in (1, 2)]
    assert linked_tasks(output) == list(range(12))
    table = read_table(output)
    assert len(table) == 12 and set(table["status"]) == {"ok"}
    for task in (0, 11):
        x = table.loc[table["id"] == task, "p:x"].item()
        assert load_output(output, task, "weights").tolist() == [[x] * 3] * 4
        assert load_output(output, task, "note") == f"task {task}".encode()
        assert load_output(output, task, "log") == f"x={x}\n".encode()
    assert not list((tmp_path / "local").rglob("*cache*")), "node-local caches and their folders are removed once flushed"


def test_sigterm_mid_run_flushes_every_cache_exits_cleanly_and_resumes(tmp_path):
    path = study(tmp_path, budget=40, model="saving.py:slow")
    process = start(path, tmp_path, until_finished=4, SAVING_SLEEP="0.2")
    os.killpg(process.pid, signal.SIGTERM)  # as a scheduler does: every process of the job
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM after flushing" in err and "Traceback" not in err
    output = tmp_path / "out"
    finished = [r["id"] for r in journal(output)]
    assert 4 <= len(finished) < 40
    assert sorted(flushed_tasks(output)) == sorted(finished), "exactly the finished tasks are flushed"
    assert json.loads((output / "status.json").read_text())["state"] == "stopped by SIGTERM"
    assert not list((tmp_path / "local").rglob("cache/*/*"))

    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, env=env(tmp_path, SAVING_SLEEP="0"))
    assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in journal(output)]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert linked_tasks(output) == sorted(ids)


def test_kill_minus_9_then_resume_keeps_every_flushed_output(tmp_path):
    path = study(tmp_path, budget=60, model="saving.py:slow", cache="flush_every = 0.3")
    output = tmp_path / "out"
    # 60 tasks of 0.2 s on 2 workers: the run is far from its end when the kill comes.
    process = start(path, tmp_path, until_finished=12, SAVING_SLEEP="0.2")
    wait_until(lambda: last_flush(output) is not None, "every worker has made a periodic flush", process=process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    before = flushed_tasks(output)
    assert before, "the periodic flushes left files"
    assert len(journal(output)) < 60, "the run was not killed midway"

    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, env=env(tmp_path, SAVING_SLEEP="0"))
    assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in journal(output)]
    assert len(ids) == 60 and len(set(ids)) == 60, "exactly the budget, nothing twice"
    assert set(before) <= set(linked_tasks(output)), "an output flushed before the kill was lost"
    for task in before:
        assert load_output(output, task, "weights").shape == (1000,)


def test_keep_top_k_flushes_exactly_the_k_best(tmp_path):
    done = run_cli("run", str(study(tmp_path, budget=16, cache='keep = "top:3"')), "-n", "3",
                   cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    output = tmp_path / "out"
    best = sorted(journal(output), key=lambda r: r["objective"])[:3]
    assert sorted(flushed_tasks(output)) == sorted(r["id"] for r in best)
    assert linked_tasks(output) == sorted(r["id"] for r in best)


def test_keep_none_flushes_nothing(tmp_path):
    done = run_cli("run", str(study(tmp_path, budget=6, cache='keep = "none"')), "-n", "3",
                   cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not flushed_tasks(tmp_path / "out") and linked_tasks(tmp_path / "out") == []


def test_reuse_runs_each_point_once_in_this_run_and_after_resume(tmp_path):
    runs = tmp_path / "runs.txt"
    path = study(tmp_path, budget=12, model="saving.py:counted", cache="reuse = true",
                 algorithm='policy = "batch"\nbatch_size = 1',
                 space='x = { type = "categorical", choices = [0.25, 0.5, 0.75] }')
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path, env=env(tmp_path, RUNS_FILE=str(runs)))
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    ran = runs.read_text().splitlines()
    assert len(records) == 12 and len(ran) == len(set(ran)) <= 3
    reused = [r for r in records if "reused_from" in r]
    assert len(reused) == 12 - len(ran)
    first = {json.dumps(r["params"]): r["id"] for r in records if "reused_from" not in r}
    assert all(first[json.dumps(r["params"])] == r["reused_from"] for r in reused)

    done = run_cli("run", str(path), "-n", "2", "--set", "study.budget=20", cwd=tmp_path,
                   env=env(tmp_path, RUNS_FILE=str(runs)))
    assert done.returncode == 0, done.stderr
    assert len(journal(tmp_path / "out")) == 20
    assert runs.read_text().splitlines() == ran, "points of the resumed journal are not run again"


def test_two_simulated_nodes_each_flush_their_own_files(tmp_path):
    path = study(tmp_path, budget=20)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    argv = [sys.executable, "-m", "mexplore", "run", str(path), "--progress", "off"]
    groups = [("nodeA", 2), ("nodeB", 2)]  # ranks 0-1 on nodeA (master + worker), 2-3 on nodeB
    command = [str(mpiexec)]
    for node, ranks in groups:
        command += ["-n", str(ranks), "-env", "MEXPLORE_NODE_NAME", node,
                    "-env", "MEXPLORE_LOCAL_DIR", str(tmp_path / node), *argv, ":"]
    done = subprocess.run(command[:-1], cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    output = tmp_path / "out"
    files = sorted(p.name for p in (output / "cache").glob("*.h5"))
    assert files == ["nodeA-r1.h5", "nodeB-r2.h5", "nodeB-r3.h5"]
    hosts = {r["id"]: r["host"] for r in journal(output)}
    for task, name in flushed_tasks(output).items():
        assert name.startswith(hosts[task] + "-"), "a task's outputs are in its own node's file"
    assert linked_tasks(output) == list(range(20))


def test_command_artifacts_and_isolated_saves_are_cached(tmp_path):
    script = tmp_path / "model.sh"
    script.write_text('echo "trained $1" > "$MEXPLORE_ARTIFACTS_DIR/model.txt"\necho "MEXPLORE_RESULT $1"\n')
    path = write_study(tmp_path, f"""
        [study]
        name = "cmd"
        budget = 4
        output = "{tmp_path / 'out'}"
        [model]
        command = ["bash", "{script}", "{{x}}"]
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    for record in journal(tmp_path / "out"):
        text = load_output(tmp_path / "out", record["id"], "model.txt").decode()
        assert float(text.split()[1]) == pytest.approx(record["objective"])

    isolated = study(tmp_path, budget=3).read_text().replace("[model]\n", "[model]\nisolate = true\n")
    (tmp_path / "iso.toml").write_text(isolated.replace(str(tmp_path / "out"), str(tmp_path / "iso")))
    done = run_cli("run", str(tmp_path / "iso.toml"), "-n", "2", cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert load_output(tmp_path / "iso", 2, "note") == b"task 2"


GATED = """
import os
import time
from pathlib import Path

import numpy as np


def model(params, ctx):
    ctx.save("weights", np.arange(10.0) * params["x"])
    while ctx.task_id >= 3 and not Path(os.environ["GATE"]).exists():
        time.sleep(0.01)
    return params["x"]
"""


def test_status_reads_a_run_while_it_goes_on_and_after(tmp_path):
    # Tasks after the first three wait for a gate file, so the run is still going on when
    # `status` looks, however long a loaded machine takes to start it.
    (tmp_path / "gated.py").write_text(GATED)
    gate = tmp_path / "gate"
    path = study(tmp_path, budget=30, model=f"{tmp_path / 'gated.py'}:model")  # absolute: not under MODELS
    process = start(path, tmp_path, until_finished=3, GATE=str(gate))
    try:
        shown = run_cli("status", str(tmp_path / "out"), cwd=tmp_path)
    finally:  # also if `status` fails: the gated run must not wait forever
        gate.touch()
    process.communicate(timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "running (master pid" in shown.stdout and "/30" in shown.stdout and "best loss" in shown.stdout
    after = run_cli("status", str(tmp_path / "out"), cwd=tmp_path)
    assert "finished at" in after.stdout and "done 30/30 (30 ok)" in after.stdout
    assert "2 cache file(s)" in after.stdout
    missing = run_cli("status", str(tmp_path / "local"), cwd=tmp_path)
    assert missing.returncode == 2 and "holds no run" in missing.stderr


PRUNING = 'name = "optuna.tpe"\npruner = "median"\npruner_options = { n_startup_trials = 3 }\npolicy = "batch"'


def test_pruner_stops_hopeless_python_tasks_at_their_next_report(tmp_path):
    path = study(tmp_path, budget=16, model="saving.py:curve", algorithm=PRUNING)
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    pruned = [r for r in records if r["status"] == "pruned"]
    assert len(records) == 16 and pruned, "the median pruner stopped no task"
    assert all(len(r["reports"]) < 8 and r["objective"] is None for r in pruned)
    assert all(len(r["reports"]) == 8 for r in records if r["status"] == "ok")


def test_pruner_kills_a_command_models_process_group(tmp_path):
    script = tmp_path / "curve.sh"
    script.write_text('for e in 0 1 2 3 4 5 6 7; do sleep 0.03; '
                      'echo "MEXPLORE_REPORT $e $(awk "BEGIN { print $1 / ($e + 1) }")"; done\n'
                      'echo "MEXPLORE_RESULT $1"\n')
    path = study(tmp_path, budget=16, algorithm=PRUNING).read_text().replace(
        f'python = "{MODELS / "saving.py:weights"}"', f'command = ["bash", "{script}", "{{x}}"]')
    (tmp_path / "cmd.toml").write_text(path)
    done = run_cli("run", str(tmp_path / "cmd.toml"), "-n", "3", cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 16 and any(r["status"] == "pruned" for r in records)
