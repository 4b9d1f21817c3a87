"""``mexplore submit`` against a real Slurm: the private one-node cluster of ``tests/slurm.py``.

A job runs a study to its end; a job whose walltime is shorter than its study gets
``--signal``'s SIGUSR1 from Slurm, flushes and exits 138, and the same script submitted
again resumes to completion; the shipped Slurm sites' directives and launcher options are
judged by ``sbatch --test-only`` and ``srun --test-only``. Skipped, saying why, where Slurm
is not installed or the tests do not run as root.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from helpers import journal, write_study
from slurm import NODE, PARTITION, SlurmCluster

from mexplore.batch import SHIPPED_SITES
from mexplore.config.site import load_site

pytestmark = pytest.mark.xdist_group("slurm")  # one test process starts the cluster and runs them all

MEXPLORE = Path(sys.executable).parent / "mexplore"
SLURM_SITES = ("frontier", "perlmutter")

MODEL = """\
import time

def wait(params, ctx):
    time.sleep(params["seconds"])
    ctx.save("x", str(params["x"]).encode())
    return params["x"] ** 2
"""

STUDY = """\
[study]
name = "slurm"
budget = {budget}
output = "out"

[model]
python = "model.py:wait"

[algorithm]
name = "random"
seed = 3

[space]
x = {{ type = "float", low = -1.0, high = 1.0 }}
seconds = {seconds}
"""


def submit(slurm: SlurmCluster, project: Path, *args: str) -> subprocess.CompletedProcess:
    """``mexplore submit study.toml ARGS`` in ``project``, as a user would, against the cluster."""
    return subprocess.run([str(MEXPLORE), "submit", "study.toml", *args], cwd=project, env=slurm.env,
                          capture_output=True, text=True, timeout=120, check=False)


def job_id(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.split("submitted job ", 1)[1].split()[0]


def flushed_tasks(output: Path) -> set[int]:
    """Task ids whose saved output is in the flushed cache files."""
    ids: set[int] = set()
    for path in (output / "cache").glob("*.h5"):
        with h5py.File(path, "r") as file:
            ids.update(int(name) for name in file.get("tasks", {}))
    return ids


@pytest.mark.mpi
@pytest.mark.slow
def test_a_job_stopped_by_slurms_signal_flushes_and_its_script_resumes_to_the_end(
        slurm: SlurmCluster, tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    # 2 workers x 0.25 s tasks: about 50 s of work, more than the 45 s after which Slurm has
    # surely sent SIGUSR1 to a 1-minute job with stop_before 15 s (it checks every 30 s).
    write_study(tmp_path, STUDY.format(budget=400, seconds=0.25))
    site = slurm.write_site(tmp_path)
    first = job_id(submit(slurm, tmp_path, "--site", str(site), "--nodes", "1", "--walltime", "1m"))
    output = tmp_path / "out"
    stopped = slurm.wait_finished(first)
    log = (output / "logs" / f"slurm-{first}.out").read_text()
    # Slurm's SIGUSR1 (138) or the run's own deadline at the same moment (142), whichever came first
    assert (stopped.state, stopped.exit_code) in {("FAILED", "138:0"), ("FAILED", "142:0")}, log
    assert "stopped by SIGUSR1 after flushing" in log or "stopped at its deadline" in log
    records = journal(output)
    assert 0 < len(records) < 400
    assert {r["id"] for r in records if r["status"] == "ok"} <= flushed_tasks(output)

    # The same script again, from elsewhere, with more time (sbatch's options win over its lines).
    script = output / "submit.sbatch"
    second = slurm.command("sbatch", "--parsable", "--time=5", str(script)).stdout.strip().split(";")[0]
    finished = slurm.wait_finished(second)
    assert (finished.state, finished.exit_code) == ("COMPLETED", "0:0"), \
        (output / "logs" / f"slurm-{second}.out").read_text()
    everything = journal(output)
    ids = [r["id"] for r in everything]
    assert len(ids) == 400 and len(set(ids)) == 400
    assert {r["status"] for r in everything} == {"ok"}
    assert everything[:len(records)] == records  # only appended to
    assert set(ids) <= flushed_tasks(output)


@pytest.mark.mpi
@pytest.mark.slow
def test_a_chain_of_jobs_finishes_a_study_longer_than_one_job_and_cancels_the_rest(
        slurm: SlurmCluster, tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    # 200 tasks of 0.25 s on 2 workers: 25 s of work. Each 1-minute job stops itself 50 s
    # before its end (and Slurm signals it about then): at most 10 s of work a job, so the
    # study needs three jobs or more; a chain of 8 leaves room for a slow machine.
    write_study(tmp_path, STUDY.format(budget=200, seconds=0.25))
    site = slurm.write_site(tmp_path)
    done = submit(slurm, tmp_path, "--site", str(site), "--nodes", "1", "--walltime", "1m",
                  "--set", "site.stop_before=50s", "--chain", "8")
    assert done.returncode == 0, done.stderr
    output = tmp_path / "out"
    jobs = json.loads((output / "chain.json").read_text())["jobs"]
    assert len(jobs) == 8 and f"submitted a chain of 8 jobs: {', '.join(jobs)}" in done.stdout
    ended = [slurm.wait_finished(job, timeout=900) for job in jobs]
    states = [(job.state, job.exit_code) for job in ended]
    ran = [state for state in states if state[0] != "CANCELLED"]
    logs = "\n".join(path.read_text() for path in sorted((output / "logs").glob("*.out")))
    why = f"{states}\n{logs}"  # a string, shown whole (a tuple's repr is cut, and so was a TIMEOUT's log)
    assert len(ran) >= 3 and ran[-1] == ("COMPLETED", "0:0"), why
    assert set(ran[:-1]) <= {("FAILED", "142:0"), ("FAILED", "138:0")}, why
    assert states[len(ran):] == [("CANCELLED", "0:0")] * (8 - len(ran)), why  # cancelled, never run
    assert "cancelled the rest of its chain" in logs
    records = journal(output)
    ids = [r["id"] for r in records]
    assert len(ids) == 200 and len(set(ids)) == 200 and {r["status"] for r in records} == {"ok"}
    status = subprocess.run([str(MEXPLORE), "status", str(output)], env=slurm.env, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert f"chain of 8 slurm jobs: {jobs[0]} (ended)" in status


@pytest.mark.parametrize("name", SLURM_SITES)
def test_a_shipped_slurm_sites_directives_and_launcher_are_accepted_by_slurm(
        slurm: SlurmCluster, tmp_path: Path, name: str) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    write_study(tmp_path, STUDY.format(budget=4, seconds=0.0))
    done = submit(slurm, tmp_path, "--site", name, "--nodes", "1", "--set", "site.account=P", "--dry-run")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "out" / "submit.sbatch"
    judged = slurm.command("sbatch", "--test-only", str(script))
    assert "to start at" in judged.stderr

    site = load_site(SHIPPED_SITES / f"{name}.toml", ["site.account=P"])
    launcher = shlex.split(site.launch_command({"nodes": 1, "ranks": site.ranks_per_node,
                                                "ranks_per_node": site.ranks_per_node,
                                                "gpus_per_node": site.gpus_per_node}))
    assert launcher[0] == "srun"
    partition = [f"--partition={site.queue}"] if site.queue else []
    step = slurm.command("srun", "--test-only", *partition, *launcher[1:], "true")
    assert "to start at" in step.stderr

    assert site.task_launcher is not None and site.task_launcher[0] == "srun"
    places = {"{nodes}": "1", "{ranks}": "2", "{hosts}": NODE}
    task_step = [places.get(item, item) for item in site.task_launcher]
    step = slurm.command("srun", "--test-only", *partition, *task_step[1:], "true")
    assert "to start at" in step.stderr


def test_slurm_refuses_what_the_test_cluster_does_not_offer(slurm: SlurmCluster, tmp_path: Path) -> None:
    """The control for the test above: --test-only does judge features and options."""
    for options, said in ((["-C", "nosuch"], "Invalid feature specification"),
                          (["--bogus"], "unrecognized option"),
                          (["-p", PARTITION, "-c", "999"], "Requested node configuration is not available")):
        done = subprocess.run(["sbatch", "--test-only", *options, "--wrap=true"], env=slurm.env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0 and said in done.stderr, done.stderr


@pytest.mark.mpi
def test_a_command_of_several_ranks_starts_through_the_sites_task_launcher_in_the_job(
        slurm: SlurmCluster, tmp_path: Path) -> None:
    """The worker ranks are a job step (srun); each parallel task is a nested step of its own
    ranks (srun --overlap), with no variable of the workers' step leaking into it."""
    program = Path(__file__).parent / "models" / "mpi_program.py"
    write_study(tmp_path, f"""
        [study]
        name = "nested"
        budget = 6
        output = "out"
        [model]
        command = ["{{python}}", "{program}", "{tmp_path / 'ranks.log'}", "0.1"]
        ranks = "{{n}}"
        [algorithm]
        name = "random"
        seed = 1
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        n = {{ type = "categorical", choices = [1, 2] }}
    """)
    site = slurm.write_site(tmp_path)
    site.write_text(site.read_text() + 'task_launcher = ["srun", "--overlap", "-n", "{ranks}", "--mpi=pmi2"]\n')
    job = job_id(submit(slurm, tmp_path, "--site", str(site), "--nodes", "1"))
    finished = slurm.wait_finished(job)
    log = (tmp_path / "out" / "logs" / f"nested-{job}.out").read_text()
    assert (finished.state, finished.exit_code) == ("COMPLETED", "0:0"), log
    records = journal(tmp_path / "out")
    assert len(records) == 6 and {r["status"] for r in records} == {"ok"}, [r.get("error") for r in records]
    assert {r["params"]["n"] for r in records} == {1, 2}
    for record in records:
        assert record["metrics"]["size"] == record["params"]["n"] == len(record["slots"])
