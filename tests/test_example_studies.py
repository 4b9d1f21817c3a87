"""The ready-made studies in studies/ run as shipped (small, so the suite stays fast)."""

from __future__ import annotations

import shutil

import pytest

from helpers import REPO, journal, run_cli

pytestmark = pytest.mark.mpi


def run_study(name: str, tmp_path, *extra: str) -> list[dict]:
    output = tmp_path / name
    env = {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}
    done = run_cli("run", f"studies/{name}.toml", "-n", "3", "-o", str(output), "--progress", "off",
                   *extra, cwd=REPO, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    return journal(output)


def test_quickstart(tmp_path):
    records = run_study("quickstart", tmp_path)
    assert len(records) == 60 and {r["status"] for r in records} == {"ok"}
    assert min(r["objective"] for r in records) < 2.0  # Branin's minimum is 0.398


def test_bash_model(tmp_path):
    records = run_study("bash-model", tmp_path)
    assert len(records) == 30 and {r["status"] for r in records} == {"ok"}
    assert all(set(r["metrics"]) == {"distance"} for r in records)


def test_python_script_model_reports_every_epoch(tmp_path):
    records = run_study("script-model", tmp_path, "--set", "study.budget=6")
    assert len(records) == 6 and {r["status"] for r in records} == {"ok"}
    assert all(len(r["reports"]) == 40 for r in records)
    assert all(r["reports"][-1][1] == pytest.approx(r["objective"]) for r in records)


@pytest.mark.skipif(shutil.which("cc") is None, reason="the C simulation needs a C compiler (cc)")
def test_compiled_simulation_sweep_marks_the_unstable_time_step_failed(tmp_path):
    records = run_study("sim-sweep", tmp_path)
    assert len(records) == 12
    failed = [(r["params"]["nx"], r["params"]["dt"]) for r in records if r["status"] == "failed"]
    assert failed == [(81, 0.002)]  # alpha dt / dx^2 = 1.28 > 1/2: the scheme blows up
    assert all("is nan" in r["error"] for r in records if r["status"] == "failed")
    [local] = (tmp_path / "local").glob("mexplore-sim-sweep-*")
    assert (local / "bin" / "heat").exists()


def test_mpi_simulation_gives_the_same_field_at_every_rank_count(tmp_path):
    records = run_study("heat-mpi", tmp_path)
    assert len(records) == 8 and {r["status"] for r in records} == {"ok"}, [r.get("error") for r in records]
    checksums: dict[tuple, set] = {}
    for record in records:
        params = record["params"]
        assert record["metrics"]["ranks"] == params["ranks"] == len(record["slots"])
        checksums.setdefault((params["nx"], params["dt"]), set()).add(record["metrics"]["checksum"])
    assert all(len(values) == 1 for values in checksums.values()), "the decomposition changed the answer"


def test_data_parallel_training_reaches_the_same_network_at_every_rank_count(tmp_path):
    records = run_study("mlp-data-parallel", tmp_path, "-n", "5", "--set", "space.epochs=2")
    assert len(records) == 6 and {r["status"] for r in records} == {"ok"}, [r.get("error") for r in records]
    losses: dict[float, list[float]] = {}
    for record in records:
        assert len(record["slots"]) == record["params"]["ranks"]
        losses.setdefault(record["params"]["lr"], []).append(record["objective"])
    for values in losses.values():
        assert max(values) - min(values) <= 1e-9 * abs(values[0]), "the rank count changed the training"


def test_active_learning_trains_its_surrogate_on_its_own_pool(tmp_path):
    records = run_study("active-learning", tmp_path, "-n", "5", "--set", "study.budget=24")
    simulations = [r for r in records if "kind" not in r]
    trainings = [r for r in records if r.get("kind") == "train"]
    assert len(simulations) == 24 and trainings and {r["status"] for r in records} == {"ok"}
    assert len({r["rank"] for r in trainings}) == 1 and trainings[0]["rank"] not in {r["rank"] for r in simulations}


def test_population_based_training_passes_weights_from_parents_to_children(tmp_path):
    records = run_study("mlp-pbt", tmp_path, "--set", "study.budget=8", "--set", "algorithm.options.generations=2")
    assert len(records) == 8 and {r["status"] for r in records} == {"ok"}
    shared = {ref for r in records for ref in (r.get("shared") or {}).values()}
    children = [r for r in records if "parent" in r["params"]]
    assert len(children) == 4 and {r["params"]["parent"] for r in children} <= shared
    assert (tmp_path / "mlp-pbt" / "journal.jsonl").stat().st_size < 20_000, "weights never enter the journal"
