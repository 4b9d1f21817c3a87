"""studies/evolution.toml, the worked example of a custom (imperative) algorithm, runs as shipped."""

import pytest

from helpers import REPO, journal, run_cli

pytestmark = pytest.mark.mpi


def test_evolution_study_runs_and_improves_on_its_first_population(tmp_path):
    output = tmp_path / "evolution"
    done = run_cli("run", "studies/evolution.toml", "-n", "3", "-o", str(output), "--progress", "off",
                   cwd=REPO, env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}, timeout=180)
    assert done.returncode == 0, done.stderr
    records = journal(output)
    assert len(records) == 120 and {r["status"] for r in records} == {"ok"}
    first = min(r["objective"] for r in records[:16])
    assert min(r["objective"] for r in records[16:]) < first  # breeding found better points
