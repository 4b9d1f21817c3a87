"""`mexplore new`: the scaffolded study and model run as written, fit their algorithm, and
nothing is ever overwritten."""

from __future__ import annotations

import csv
import importlib.util
import itertools

import pytest
from helpers import journal, run_cli

from mexplore.algorithms.registry import BUILTINS, NEEDS_A_SOURCE
from mexplore.cli.main import main
from mexplore.config import load_study
from mexplore.runtime.session import check_study
from mexplore.space import Categorical, Float, Grid


def new(tmp_path, name, *options):
    return main(["new", name, "--dir", str(tmp_path), *options])


def written(tmp_path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())


def ok_rows(output) -> list[dict]:
    with open(output / "results.csv", newline="") as file:
        return [row for row in csv.DictReader(file) if row["status"] == "ok"]


@pytest.mark.mpi
@pytest.mark.parametrize("model, algorithm", [("python", "random"), ("command", "optuna.tpe"), ("python", "grid")])
def test_a_scaffolded_study_runs_as_written(tmp_path, model, algorithm):
    assert new(tmp_path, "first", "--model", model, "--algorithm", algorithm) == 0
    done = run_cli("run", "studies/first.toml", "-n", "2", "--progress", "off", cwd=tmp_path,
                   env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}, timeout=120)
    assert done.returncode == 0, done.stderr
    output = tmp_path / "runs" / "first"
    records = journal(output)
    assert {r["status"] for r in records} == {"ok"}
    assert len(ok_rows(output)) == len(records)
    if algorithm == "grid":  # every combination of the grid, once
        points = {(r["params"]["lr"], r["params"]["momentum"], r["params"]["update"]) for r in records}
        assert len(records) == len(points) == 18
    else:
        assert len(records) == 30
    # the intermediate values arrive from both kinds of model: one per step
    assert all(len(r["reports"]) == r["params"]["steps"] for r in records)
    assert all(r["reports"][-1][1] == pytest.approx(r["objective"]) for r in records)


@pytest.mark.parametrize("model, algorithm", list(itertools.product(["python", "command"],
                                                                     sorted(set(BUILTINS) - set(NEEDS_A_SOURCE)))))
def test_every_builtin_gets_a_study_it_accepts(tmp_path, monkeypatch, model, algorithm):
    if algorithm == "optuna.gp" and importlib.util.find_spec("torch") is None:
        pytest.skip("optuna.gp needs PyTorch")
    assert new(tmp_path, "s", "--model", model, "--algorithm", algorithm) == 0
    monkeypatch.chdir(tmp_path)  # paths in a study are relative to where mexplore runs
    study = load_study("studies/s.toml")
    check_study(study)  # the algorithm accepts the space and the options
    assert study.algorithm.name == algorithm
    parameters = study.space.parameters
    if algorithm in ("grid", "optuna.grid"):
        assert study.study.budget is None and all(isinstance(p, (Grid, Categorical)) for p in parameters.values())
    else:
        assert study.study.budget and any(isinstance(p, Float) for p in parameters.values())
    assert study.study.objective == (("loss", "cost") if algorithm.startswith("optuna.nsga") else ("loss",))
    if algorithm == "optuna.cmaes":
        assert not any(isinstance(p, Categorical) for p in parameters.values())


def test_it_says_what_it_wrote_and_how_to_run_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "demo", "--model", "command", "--dir", "project"]) == 0
    assert written(tmp_path) == ["project/model-scripts/demo.py", "project/studies/demo.toml"]
    out = capsys.readouterr().out
    assert "wrote project/studies/demo.toml" in out and "wrote project/model-scripts/demo.py" in out
    assert "  cd project\n  mexplore run studies/demo.toml\n" in out


@pytest.mark.parametrize("existing", ["studies/demo.toml", "model-scripts/demo.py"])
def test_it_never_overwrites_and_then_writes_nothing(tmp_path, capsys, existing):
    (tmp_path / existing).parent.mkdir()
    (tmp_path / existing).write_text("mine\n")
    assert new(tmp_path, "demo") == 2
    assert f"{tmp_path / existing} already exists" in capsys.readouterr().err
    assert written(tmp_path) == [existing] and (tmp_path / existing).read_text() == "mine\n"


@pytest.mark.parametrize("name", ["my study", "..", "a/b", "x:y", ""])
def test_a_bad_name_is_refused(tmp_path, capsys, name):
    assert new(tmp_path, name) == 2
    assert f"study name {name!r}: expected letters, digits" in capsys.readouterr().err
    assert written(tmp_path) == []


def test_an_unknown_algorithm_is_refused_with_the_names(tmp_path, capsys):
    assert new(tmp_path, "demo", "--algorithm", "tpe") == 2
    err = capsys.readouterr().err
    assert "--algorithm 'tpe': expected one of grid, lhs, optuna.cmaes" in err
    assert "did you mean 'optuna.tpe'?" in err and "mexplore algorithms" in err
    assert written(tmp_path) == []
