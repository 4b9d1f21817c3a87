"""``mexplore export OUTPUT --optuna FILE``: real runs written as Optuna journal files, loaded
back with Optuna and compared trial by trial with the journal."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from helpers import REPO, journal, run_cli, start_run, wait_until, write_study
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mexplore.objectives import Direction
from mexplore.store.optuna_export import ExportError, OptunaExporter, StudyHeader
from mexplore.types import Result, Status

pytestmark = pytest.mark.mpi

CURVE = """
import time

def curve(params, ctx):
    # a training curve: big x is hopeless (the pruner stops it); act = "bad" always fails
    if params["act"] == "bad":
        raise RuntimeError('act = "bad" is not supported')
    for epoch in range(6):
        time.sleep(0.03)
        ctx.report(epoch, params["x"] / (epoch + 1))
    return {"loss": params["x"] / 6, "width": params["n"] * 2.0}
"""

STATES = {"ok": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def load(path: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(path)))
    [summary] = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def export(output: Path, target: Path, *extra: str):
    return run_cli("export", str(output), "--optuna", str(target), *extra, cwd=output.parent)


def by_task(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {trial.user_attrs["task_id"]: trial for trial in study.trials}


def test_a_pruned_search_exports_every_trial_as_the_journal_has_it(tmp_path):
    (tmp_path / "curve.py").write_text(CURVE)
    path = write_study(tmp_path, f"""
        [study]
        name = "pruned"
        budget = 16
        objective = "loss"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{tmp_path / 'curve.py'}:curve"
        [algorithm]
        name = "optuna.tpe"
        pruner = "median"
        pruner_options = {{ n_startup_trials = 3 }}
        policy = "batch"
        seed = 3
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        lr = {{ type = "float", low = 1e-4, high = 1e-1, log = true }}
        n = {{ type = "int", low = 2, high = 10, step = 2 }}
        act = {{ type = "categorical", choices = ["relu", "bad"] }}
        epochs = 6
    """)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path,
                   env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert {r["status"] for r in records} == {"ok", "pruned", "failed"}, "the run should hold all three"

    exported = export(tmp_path / "out", tmp_path / "optuna.log")
    assert exported.returncode == 0, exported.stderr
    assert "16 trials" in exported.stdout and "optuna-dashboard" in exported.stdout
    study = load(tmp_path / "optuna.log")
    assert study.study_name == "pruned" and study.direction.name == "MINIMIZE"
    assert study.metric_names == ["loss"]
    assert study.user_attrs["mexplore.constants"] == {"epochs": 6}
    trials = by_task(study)
    assert sorted(trials) == sorted(r["id"] for r in records)
    for record in records:
        trial = trials[record["id"]]
        assert trial.state == STATES[record["status"]], record
        assert trial.params == {k: v for k, v in record["params"].items() if k != "epochs"}
        assert trial.distributions == {
            "x": FloatDistribution(0.0, 1.0), "lr": FloatDistribution(1e-4, 1e-1, log=True),
            "n": IntDistribution(2, 10, step=2), "act": CategoricalDistribution(["relu", "bad"])}
        assert trial.intermediate_values == {int(step): value for step, value in record["reports"]}
        assert trial.user_attrs["status"] == record["status"] and trial.user_attrs["rank"] == record["rank"]
        assert math.isclose(trial.user_attrs["duration"], record["ended"] - record["started"], abs_tol=1e-5)
        assert trial.datetime_start.timestamp() == pytest.approx(record["started"], abs=1e-3)
        if record["status"] == "ok":
            assert trial.values == [record["objective"]]
            assert trial.user_attrs["m:width"] == record["metrics"]["width"]
        else:
            assert trial.values is None
        if record["status"] == "failed":
            assert trial.user_attrs["error"] == 'RuntimeError: act = "bad" is not supported'


def test_a_multi_objective_run_keeps_both_values_and_directions(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "tradeoff"
        budget = 10
        objective = ["loss", "cost"]
        direction = ["minimize", "maximize"]
        output = "{tmp_path / 'out'}"
        [model]
        python = "{REPO / 'tests' / 'models' / 'report_models.py'}:tradeoff"
        [algorithm]
        name = "optuna.nsga2"
        seed = 2
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        waste = {{ type = "grid", values = [0.0, 0.5] }}
    """)
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path,
                   env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    exported = export(tmp_path / "out", tmp_path / "optuna.log")
    assert exported.returncode == 0, exported.stderr
    study = load(tmp_path / "optuna.log")
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.metric_names == ["loss", "cost"]
    trials = by_task(study)
    records = journal(tmp_path / "out")
    assert len(trials) == len(records) == 10
    for record in records:
        trial = trials[record["id"]]
        assert trial.state == TrialState.COMPLETE
        assert trial.values == record["objective"] and trial.params == record["params"]
        assert trial.distributions["waste"] == CategoricalDistribution([0.0, 0.5])
    assert {t.number for t in study.best_trials}, "Optuna finds a Pareto front in it"


def test_an_existing_file_is_refused_unless_replaced_and_never_left_half_written(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "small"
        budget = 4
        objective = "loss"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{REPO / 'tests' / 'models' / 'toy.py'}:quadratic"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    assert run_cli("run", str(path), "-n", "1", "--progress", "off", cwd=tmp_path).returncode == 0
    target = tmp_path / "optuna.log"
    target.write_text("somebody's own storage\n")
    refused = export(tmp_path / "out", target)
    assert refused.returncode == 2 and "exists; pass --replace" in refused.stderr
    assert target.read_text() == "somebody's own storage\n"
    replaced = export(tmp_path / "out", target, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert len(load(target).trials) == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    missing = export(tmp_path / "nothing", tmp_path / "other.log")
    assert missing.returncode == 2 and "holds no run" in missing.stderr
    assert not (tmp_path / "other.log").exists()


HEADER = StudyHeader(name="live", objectives=["loss"], directions=[Direction.MINIMIZE],
                     distributions={"x": FloatDistribution(0.0, 1.0)}, attrs={})


def result(task_id: int, x: float, status: Status = Status.OK) -> Result:
    return Result(task_id=task_id, status=status, params={"x": x},
                  objective=x if status is Status.OK else None, started=100.0 + task_id, ended=101.0 + task_id)


def test_the_exporter_adds_results_as_they_come_and_skips_tasks_it_holds(tmp_path):
    """The shape a live export needs: batches appended to an open file, and a reopened file
    (a resumed run) given everything again adds only what it lacks."""
    target = tmp_path / "live.log"
    exporter = OptunaExporter.open(target, HEADER)
    assert exporter.add([result(0, 0.5), result(1, 0.2, Status.TIMEOUT)]).states == {"COMPLETE": 1, "FAIL": 1}
    assert exporter.add([result(2, 1.7)]).outside == 1, "x = 1.7 is outside the distribution"
    again = OptunaExporter.open(target, HEADER)
    added = again.add([result(0, 0.5), result(1, 0.2, Status.TIMEOUT), result(3, 0.1)])
    assert (added.already, added.trials) == (2, 1)
    assert [(t.user_attrs["task_id"], t.state) for t in load(target).trials] == [
        (0, TrialState.COMPLETE), (1, TrialState.FAIL), (3, TrialState.COMPLETE)]
    nan = Result(task_id=4, status=Status.OK, params={"x": 0.3}, objective=math.nan, metrics={"m": math.inf})
    exporter.add([nan])
    trial = by_task(load(target))[4]
    assert trial.state == TrialState.FAIL and "not one finite number" in trial.user_attrs["error"]
    assert trial.user_attrs["m:m"] == "Infinity"
    with pytest.raises(ExportError, match="directions"):
        OptunaExporter.open(target, StudyHeader(**{**HEADER.__dict__, "directions": [Direction.MAXIMIZE]}))


def live_trials(path: Path) -> int:
    """Trials in the live file so far (0 before the master has created it)."""
    if not path.exists():
        return 0
    return len(load(path).trials)


def test_the_live_optuna_journal_follows_the_run_and_its_resume(tmp_path):
    (tmp_path / "curve.py").write_text(CURVE)
    body = f"""
        [study]
        name = "live"
        budget = {{budget}}
        objective = "loss"
        output = "{tmp_path / 'out'}"
        optuna_journal = true
        [model]
        python = "{tmp_path / 'curve.py'}:curve"
        [algorithm]
        name = "random"
        seed = 5
        [space]
        x = {{{{ type = "float", low = 0.0, high = 1.0 }}}}
        n = {{{{ type = "int", low = 2, high = 10, step = 2 }}}}
        act = {{{{ type = "categorical", choices = ["relu", "bad"] }}}}
    """
    path = write_study(tmp_path, body.format(budget=30))
    running = start_run(path, tmp_path, until_finished=3)
    live = tmp_path / "out" / "optuna-journal.log"
    wait_until(lambda: live_trials(live) >= 3, "the live file holds the first trials", process=running)
    assert running.wait(timeout=300) == 0, running.stderr.read()

    write_study(tmp_path, body.format(budget=40))  # a resume: the file goes on
    resumed = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    records = journal(tmp_path / "out")
    assert export(tmp_path / "out", tmp_path / "offline.log").returncode == 0
    trials, offline = by_task(load(live)), by_task(load(tmp_path / "offline.log"))
    assert sorted(trials) == sorted(r["id"] for r in records) == sorted(offline)
    for task, trial in trials.items():
        twin = offline[task]
        assert (trial.state, trial.params, trial.values, trial.distributions) == \
            (twin.state, twin.params, twin.values, twin.distributions), task
