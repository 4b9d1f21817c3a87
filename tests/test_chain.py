"""``mexplore submit --chain N`` against stand-in schedulers: N jobs, each after the one
before (``afterany``), recorded in chain.json; a finished study cancels the rest; ``mexplore
status`` shows the chain. The real thing runs on Slurm in tests/test_slurm.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_study
from mexplore.batch.chain import cancel_rest, record

MEXPLORE = Path(sys.executable).parent / "mexplore"
STUDY = """\
[study]
name = "chained"
budget = 8
output = "out"
[model]
python = "model.py:f"
[space]
x = { type = "float", low = -1.0, high = 1.0 }
"""


def stand_in(folder: Path, name: str, first_id: int, suffix: str = "") -> None:
    """``name`` on PATH: appends its arguments as one line to ``<name>.calls`` and prints
    the next job id (first_id, first_id + 1, ...)."""
    (folder / "bin").mkdir(exist_ok=True)
    script = folder / "bin" / name
    script.write_text(f'#!/bin/sh\necho "$*" >> "{folder / name}.calls"\n'
                      f'n=$(wc -l < "{folder / name}.calls")\necho "$(( {first_id} + n - 1 )){suffix}"\n')
    script.chmod(0o755)


def submit(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(MEXPLORE), "submit", "study.toml", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("site, command, depends, suffix", [
    ("frontier", "sbatch", "--dependency=afterany:{job}", ";frontier"),
    ("polaris", "qsub", "-W depend=afterany:{job}", ".polaris-pbs-01"),
])
def test_a_chain_queues_each_job_after_the_one_before_and_records_it(tmp_path, site, command, depends, suffix):
    (tmp_path / "model.py").write_text("def f(params, ctx):\n    return params['x']\n")
    write_study(tmp_path, STUDY)
    stand_in(tmp_path, command, 500, suffix)
    done = submit(tmp_path, "--site", site, "--nodes", "1", "--set", "site.account=P", "--chain", "3")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / f"{command}.calls").read_text().splitlines()
    ids = [f"{500 + i}{suffix}" if command == "qsub" else str(500 + i) for i in range(3)]
    script = tmp_path / "out" / ("submit.sbatch" if command == "sbatch" else "submit.pbs")
    assert calls[0].endswith(str(script)) and "afterany" not in calls[0]
    for i in (1, 2):
        assert depends.format(job=ids[i - 1]) in calls[i] and calls[i].endswith(str(script))
    assert json.loads((tmp_path / "out" / "chain.json").read_text())["jobs"] == ids
    assert f"submitted a chain of 3 jobs: {', '.join(ids)}" in done.stdout


def test_the_local_site_has_no_chain(tmp_path):
    (tmp_path / "model.py").write_text("def f(params, ctx):\n    return params['x']\n")
    write_study(tmp_path, STUDY)
    done = submit(tmp_path, "--site", "local", "--nodes", "1", "--chain", "2")
    assert done.returncode == 2 and "--chain 2: expected" in done.stderr and "local site" in done.stderr


def test_a_finished_job_cancels_only_the_jobs_after_it(tmp_path, monkeypatch):
    stand_in(tmp_path, "scancel", 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    record(tmp_path, "slurm", ["11", "12", "13", "14"])
    assert cancel_rest(tmp_path, "12") == ["13", "14"]
    assert cancel_rest(tmp_path, "99") == []  # a script resubmitted by hand is not in the chain
    assert cancel_rest(tmp_path, "14") == []
    assert (tmp_path / "scancel.calls").read_text().splitlines() == ["13 14"]
