"""End to end: `mexplore run` starting real MPI ranks (mpiexec from the mpich wheel)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, journal, run_cli, start_run, wait_until, write_study

pytestmark = pytest.mark.mpi
MODELS = REPO / "tests" / "models"


def study(tmp_path: Path, *, budget="budget = 24", algorithm='name = "random"', space=None,
          model="toy.py:quadratic", objective="loss") -> Path:
    space = space or 'x = { type = "float", low = 0.0, high = 1.0 }\ny = { type = "float", low = 0.0, high = 1.0 }'
    return write_study(tmp_path, f"""
        [study]
        name = "e2e"
        {budget}
        objective = "{objective}"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{MODELS / model}"

        [algorithm]
        seed = 11
        {algorithm}

        [space]
        {space}
    """.replace("\n        ", "\n"))


def under_users_mpiexec(ranks: int, path: Path, folder: Path) -> subprocess.CompletedProcess:
    """`mpiexec -n RANKS python -m mexplore run PATH`, as a user would launch it by hand."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    return subprocess.run(
        [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "mexplore", "run", str(path)],
        cwd=folder, capture_output=True, text=True, timeout=60,
    )


def ids_once(records):
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "a task id appears twice"
    return ids


@pytest.mark.parametrize("ranks,policy", [(2, "async"), (3, "queue"), (4, "batch")])
def test_budget_is_met_exactly_and_every_id_once(tmp_path, ranks, policy):
    path = study(tmp_path, algorithm=f'name = "random"\npolicy = "{policy}"\nbacklog = 3')
    done = run_cli("run", str(path), "-n", str(ranks), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert sorted(ids_once(records)) == list(range(24))
    assert {r["status"] for r in records} == {"ok"}
    assert {r["rank"] for r in records} <= set(range(1, ranks))
    csv = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert len(csv) == 25 and csv[0].startswith("id,status,loss,p:x,p:y,m:rank")


def result_set(output: Path):
    return sorted((json.dumps(r["params"], sort_keys=True), r["objective"]) for r in journal(output))


@pytest.mark.parametrize("algorithm,space", [
    ('name = "random"', None),
    ('name = "grid"\noptions = { repeats = 2 }',
     'x = { type = "grid", values = [0.0, 0.5, 1.0] }\nlevel = { type = "int", low = 0, high = 3 }'),
])
def test_seeded_study_gives_the_same_results_at_2_and_4_ranks(tmp_path, algorithm, space):
    outputs = []
    for ranks in (2, 4):
        folder = tmp_path / f"n{ranks}"
        folder.mkdir()
        budget = "budget = 24" if space is None else ""
        path = study(folder, budget=budget, algorithm=algorithm, space=space)
        done = run_cli("run", str(path), "-n", str(ranks), cwd=folder)
        assert done.returncode == 0, done.stderr
        outputs.append(result_set(folder / "out"))
    assert len(outputs[0]) == 24
    assert outputs[0] == outputs[1]


def test_failing_model_gives_failed_rows_and_the_run_goes_on(tmp_path):
    path = study(tmp_path, budget="", algorithm='name = "grid"',
                 space='x = { type = "grid", values = [0, 1, 2, 3, 4, 5] }', model="toy.py:flaky",
                 objective="objective")
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    by_x = {r["params"]["x"]: r for r in journal(tmp_path / "out")}
    assert sorted(by_x) == [0, 1, 2, 3, 4, 5]
    assert [by_x[x]["status"] for x in range(6)] == ["ok", "failed", "failed", "failed", "ok", "ok"]
    assert "model blew up at x=1" in by_x[1]["error"] and "RuntimeError" in by_x[1]["error"]
    assert f"rank {by_x[1]['rank']} on {by_x[1]['host']}" in by_x[1]["error"]
    assert "nan" in by_x[2]["error"]
    assert "expected a number" in by_x[3]["error"]
    top = run_cli("results", str(tmp_path / "out"), "--top", "2", cwd=tmp_path)
    assert "6 tasks (3 failed, 3 ok)" in top.stdout and "failures by reason (3 tasks):" in top.stdout
    lines = top.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["id"])
    assert lines[header + 1].split()[:2] == ["0", "0.0"]


def test_kill_minus_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    path = study(tmp_path, budget="budget = 40",
                 space='x = { type = "float", low = 0.0, high = 1.0 }\nsleep = 0.05')
    process = start_run(path, tmp_path, until_finished=12)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    before = journal(tmp_path / "out")
    assert 12 <= len(before) < 40, "the run was not killed midway"
    # what a kill mid-write leaves (atomic_path's temporary names), and one a live writer holds
    (tmp_path / "out" / "cache").mkdir(exist_ok=True)
    abandoned = [tmp_path / "out" / f".results.csv.part-{process.pid}-0a1b2c3d",
                 tmp_path / "out" / "cache" / f".vm-r1.h5.part-{process.pid}-4e5f6a7b"]
    writing = tmp_path / "out" / f".status.json.part-{os.getpid()}-8c9d0e1f"
    for partial in (*abandoned, writing):
        partial.write_bytes(b"half a file")

    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [partial for partial in abandoned if partial.exists()], "a killed writer's temporary file is left"
    assert writing.exists(), "a live writer's temporary file was taken from it"
    assert f"resuming after {len(before)} finished tasks" in done.stderr
    after = journal(tmp_path / "out")
    assert len(after) == 40
    ids_once(after)
    assert after[: len(before)] == before
    params = [json.dumps(r["params"], sort_keys=True) for r in after]
    assert len(set(params)) == 40, "a point ran twice"
    csv_rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 41


def test_malformed_study_is_rejected_before_any_rank_starts(tmp_path):
    path = study(tmp_path, budget="budgt = 10")
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 2
    message = done.stderr.strip()
    assert str(path) in message and "study.budgt" in message and "did you mean 'budget'" in message
    assert not (tmp_path / "out").exists()


def test_under_users_mpiexec_a_bad_study_gives_one_message(tmp_path):
    path = study(tmp_path, algorithm='name = "random"\npolicy = "fast"')
    done = under_users_mpiexec(3, path, tmp_path)
    assert done.returncode != 0
    assert done.stderr.count("algorithm.policy") == 1, done.stderr


def test_under_users_mpiexec_one_rank_is_refused(tmp_path):
    path = study(tmp_path)
    done = under_users_mpiexec(1, path, tmp_path)
    assert done.returncode == 2 and "needs at least 2 ranks" in done.stderr


def test_algorithm_errors_come_before_any_rank_starts(tmp_path):
    path = study(tmp_path, algorithm='name = "grid"')  # x and y are float ranges
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot enumerate float parameter(s) x, y" in done.stderr
    assert not (tmp_path / "out").exists()


def test_under_users_mpiexec_the_given_ranks_are_used(tmp_path):
    path = study(tmp_path)
    done = under_users_mpiexec(4, path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 worker(s)" in done.stderr
    assert len(journal(tmp_path / "out")) == 24


def test_imperative_algorithm_drives_the_queue(tmp_path):
    path = study(tmp_path, budget="", algorithm=f'name = "{MODELS / "algorithms.py"}:halving"')
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 12
    assert sum(r["params"]["y"] == 0.3 for r in records) == 4


def test_a_model_that_cannot_load_stops_the_run_with_its_error(tmp_path):
    # It parses (a file that does not is refused before any rank starts), but its import fails.
    (tmp_path / "needs.py").write_text("import no_such_package\n\n\ndef model(params, ctx):\n    return 0\n")
    path = study(tmp_path, model=str(tmp_path / "needs.py:model"))
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert "could not load the model" in done.stderr and "ModuleNotFoundError" in done.stderr


def test_an_algorithm_that_raises_ends_the_run_cleanly_and_keeps_the_journal(tmp_path):
    """Its exception is the algorithm's bug, told with its traceback; the workers flush and
    the tables are written, instead of MPI_Abort."""
    path = study(tmp_path, algorithm=f'name = "{MODELS / "algorithms.py"}:Explodes"')
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "raised ValueError in propose(): the algorithm broke" in done.stderr
    assert "aborting the MPI job" not in done.stderr
    assert len(journal(tmp_path / "out")) >= 1 and (tmp_path / "out" / "results.csv").exists()


def test_single_rank_runs_in_process(tmp_path):
    path = study(tmp_path, budget="budget = 10")
    done = run_cli("run", str(path), "-n", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {r["rank"] for r in journal(tmp_path / "out")} == {1}


def test_ctrl_c_stops_every_rank_and_the_run_resumes(tmp_path):
    path = study(tmp_path, budget="budget = 30",
                 space='x = { type = "float", low = 0.0, high = 1.0 }\nsleep = 0.05')
    process = start_run(path, tmp_path, until_finished=6)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode != 0
    # Ctrl-C reaches mpiexec's proxy too, which may kill the ranks before the master's
    # one-line message gets out; when the message comes, nothing else may come with it.
    assert "Traceback" not in err
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(r["id"] for r in journal(tmp_path / "out"))[-1] >= 29
    assert len(journal(tmp_path / "out")) == 30


def test_local_ranks_share_the_cores_for_numpy_threads_unless_the_user_chose(monkeypatch):
    from mexplore.cli import run

    for name in run.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(run.os, "cpu_count", lambda: 8)
    run.share_cores(3)
    assert run.os.environ["OMP_NUM_THREADS"] == "2"
    run.share_cores(16)
    assert run.os.environ["OMP_NUM_THREADS"] == "2"  # already set: left alone
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    run.share_cores(16)
    assert "OMP_NUM_THREADS" not in run.os.environ


def _catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGTERM installed (``SigCgt`` in /proc)."""
    try:
        fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
    except FileNotFoundError:
        return False
    return bool(int(fields.get("SigCgt", "0"), 16) & (1 << (signal.SIGTERM - 1)))


def test_a_sigterm_while_the_run_starts_stops_it_as_one_later_does(tmp_path):
    """From the moment `mexplore run` handles signals (its first step), a TERM is kept:
    here it comes while the study is checked, before any rank starts."""
    path = study(tmp_path)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "mexplore", "run", str(path), "-n", "3", "--progress", "off"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    wait_until(lambda: _catches_sigterm(launcher.pid), "the launcher handles SIGTERM", process=launcher)
    os.killpg(launcher.pid, signal.SIGTERM)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    again = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(journal(tmp_path / "out")) == 24


# --- checked before any rank starts ----------------------------------------------------


@pytest.mark.parametrize("ranks", ["0", "-3"])
def test_no_ranks_or_fewer_are_refused(tmp_path, ranks):
    done = run_cli("run", str(study(tmp_path)), "-n", ranks, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert f"mexplore: error: -n {ranks}: expected at least 1 rank" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_misspelled_model_function_is_refused_with_the_close_names(tmp_path):
    path = study(tmp_path, model="toy.py:quadratc")
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert (f"mexplore: error: {path}: model.python = '{MODELS / 'toy.py'}:quadratc': expected a function the "
            "file defines (toy.py defines no 'quadratc' at its top level; did you mean 'quadratic'?)") in done.stderr
    assert not (tmp_path / "out").exists()  # no rank started, nothing written


def test_a_misspelled_algorithm_class_is_refused_with_the_close_names(tmp_path):
    path = study(tmp_path, algorithm=f'name = "{MODELS / "algorithms.py"}:Explode"')
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert f"{path}: algorithm.name = '{MODELS / 'algorithms.py'}:Explode'" in done.stderr
    assert "algorithms.py defines no 'Explode' at its top level; did you mean 'Explodes'?" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source,name,said", [
    (("def branin(p, c): pass\nclass Algo: pass\nimport numpy as np\nfrom os import path as p2\n"
      "if True:\n    helper = 1\ntry:\n    import torch\nexcept ImportError:\n    torch = None\n"
      "for i in range(3):\n    pass\n"), "branin", ""),
    ("def branin(p, c): pass\nclass Algo: pass\n", "brannin",
     "m.py defines no 'brannin' at its top level; did you mean 'branin'?"),
    ("def f():\n    inner = 1\nsquares = [q for q in range(3)]\n", "inner", "m.py defines no 'inner' at its top level"),
    ("def f():\n    inner = 1\nsquares = [q for q in range(3)]\n", "q", "m.py defines no 'q' at its top level"),
    ("from numpy import *\n", "anything", ""),  # the import decides: the name may well be there
    ("def __getattr__(name):\n    return len\n", "anything", ""),
    ("globals()['made'] = len\n", "made", ""),
])
def test_a_files_top_level_names_are_read_without_running_it(tmp_path, source, name, said):
    from mexplore.importing import undefined_name

    (tmp_path / "m.py").write_text(source + "raise SystemExit('the file ran')\n")
    assert undefined_name(tmp_path / "m.py", name) == said


def test_a_model_file_that_does_not_parse_is_refused_before_any_rank_starts(tmp_path):
    path = study(tmp_path, model="broken.py:model")
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "model.python = " in done.stderr and "broken.py does not parse: '(' was never closed" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_output_another_run_holds_is_refused_before_any_rank_starts(tmp_path, capsys):
    from mexplore.cli import run
    from mexplore.runtime.entry import OUTPUT_IN_USE
    from mexplore.store.lock import OutputLock

    output = tmp_path / "out"
    output.mkdir()
    with OutputLock.acquire(output):  # this test process is the other run
        assert run._output_in_use(output) == OUTPUT_IN_USE  # the probe itself, before exec
        said = f"mexplore: error: {output} is in use by another run (pid {os.getpid()} on "
        assert said in capsys.readouterr().err
        done = run_cli("run", str(study(tmp_path)), "-n", "3", cwd=tmp_path, timeout=60)
        assert done.returncode == OUTPUT_IN_USE
        assert said in done.stderr and done.stderr.count("\n") == 1  # one line, from one process
    assert run._output_in_use(output) is None and os.listdir(output) == []  # the probe leaves nothing
