"""Several task kinds (``[models.<kind>]``): an auxiliary kind's tasks run on the workers
beside the objective kind's, outside the budget, the ``[space]`` check and the best."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import journal, killed_then_resumed, run_cli, write_study

from mexplore import read_table
from mexplore.config import load_study
from mexplore.errors import StudyFileError
from mexplore.store.run import load_run

MODELS = '''
import os
import time

import numpy as np


def simulate(params, ctx):
    time.sleep(float(os.environ.get("SIMULATE_SECONDS", "0")))
    return {"y": (params["x"] - 0.3) ** 2}


def train(params, ctx):
    """A surrogate: a quadratic fitted to what the simulations gave (free-form params)."""
    time.sleep(float(os.environ.get("TRAIN_SECONDS", "0")))
    return {"coef": np.polyfit(params["xs"], params["ys"], 2).tolist(), "points": len(params["xs"])}
'''

STEER = '''
import numpy as np


def steer(queue, space, options):
    rng = np.random.default_rng(options["seed"])
    first = queue.map([space.sample(rng) for _ in range(6)])
    fit = queue.submit({"xs": [r.params["x"] for r in first], "ys": [r.objective for r in first]},
                       kind="train").result()
    assert fit.ok and fit.kind == "train", fit
    # best first: a worker idle while they are submitted takes the first one at once, whatever
    # the priorities of those not yet submitted (under load the thread may pause in between)
    candidates = sorted((space.sample(rng) for _ in range(50)), key=lambda c: np.polyval(fit.metrics["coef"], c["x"]))
    futures = [queue.submit(c, priority=-np.polyval(fit.metrics["coef"], c["x"])) for c in candidates]
    for future in futures:
        future.result()  # BudgetSpent once the 12 simulations are done: the function ends
'''


def study(folder: Path, extra: str = "") -> Path:
    (folder / "models.py").write_text(MODELS)
    (folder / "steer.py").write_text(STEER)
    return write_study(folder, f"""
        [study]
        name = "kinds"
        budget = 12
        objective = "y"
        output = "{folder / 'out'}"
        {extra}
        [models.simulate]
        python = "{folder / 'models.py'}:simulate"
        [models.train]
        python = "{folder / 'models.py'}:train"
        [algorithm]
        name = "{folder / 'steer.py'}:steer"
        seed = 7
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


@pytest.mark.mpi
def test_a_surrogate_trained_as_its_own_kind_steers_the_simulations(tmp_path: Path) -> None:
    done = run_cli("run", str(study(tmp_path)), "-n", "3", "--progress", "log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "12/12 done" in done.stderr and "auxiliary=1" in done.stderr, done.stderr
    records = journal(tmp_path / "out")
    simulations = [r for r in records if "kind" not in r]
    [training] = [r for r in records if r.get("kind") == "train"]
    assert len(simulations) == 12, "the budget counts the objective kind only"
    assert training["status"] == "ok" and training["metrics"]["points"] == 6 and "xs" in training["params"]
    steered = [abs(r["params"]["x"] - 0.3) for r in simulations if r["id"] > training["id"]]
    assert len(steered) == 6 and max(steered) < 0.1, "the surrogate's best candidates ran first"

    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(table.columns[:3]) == ["id", "kind", "status"]
    assert table["kind"].fillna("").tolist().count("train") == 1
    assert len(read_table(tmp_path / "out")) == 13, "results.h5's /table has every row, as results.csv"
    simulated, trained = read_table(tmp_path / "out", kind="simulate"), read_table(tmp_path / "out", kind="train")
    assert len(simulated) == 12 and "p:x" in simulated and not {"p:xs", "m:coef", "kind"} & set(simulated)
    assert trained["id"].tolist() == [training["id"]] and "p:xs" in trained and "p:x" not in trained
    with pytest.raises(KeyError, match="no table of kind 'infer': its kinds are simulate, train"):
        read_table(tmp_path / "out", kind="infer")
    best = run_cli("results", str(tmp_path / "out"), "--top", "13", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    lines = best.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["id"])  # notes above it vary
    shown = [line.split()[0] for line in lines[header + 1:]]
    assert len(shown) == 12 and str(training["id"]) not in shown, best.stdout
    assert "p:xs" not in best.stdout, "the auxiliary kind's own columns are not shown with the best"

    report = run_cli("report", str(tmp_path / "out"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    search = load_run(tmp_path / "out").objective_kind().frame
    assert len(search) == 12 and not any(c in search for c in ("p:xs", "m:coef", "kind")), list(search.columns)

    again = run_cli("run", str(study(tmp_path)), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(journal(tmp_path / "out")) == 13, "a resume of the finished run replays, runs nothing"


@pytest.mark.mpi
@pytest.mark.parametrize("kill_after", [2, 7, 10])
def test_kill_minus_9_of_a_steered_run_then_resume_loses_and_duplicates_nothing(tmp_path: Path, kill_after: int):
    """The journal replays both kinds to the algorithm (by kind and params): the resumed
    function takes the same decisions, reruns only what was in flight, and ends with the
    budget's 12 simulations and one training, each id once."""
    path = study(tmp_path)
    slow = {"SIMULATE_SECONDS": "0.05"}
    done = killed_then_resumed(path, tmp_path, kill_after, env=slow)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "no task journaled twice"
    assert sum("kind" not in r for r in records) == 12 and sum(r.get("kind") == "train" for r in records) == 1
    training = next(r for r in records if r.get("kind") == "train")
    steered = [abs(r["params"]["x"] - 0.3) for r in records if "kind" not in r and r["id"] > training["id"]]
    assert steered and max(steered) < 0.1, "the resumed function took the same decisions"


def test_the_objective_kind_is_named_or_the_first(tmp_path: Path) -> None:
    first = load_study(study(tmp_path))
    assert first.study.kind == "simulate" and list(first.kinds) == ["train"]
    assert first.model.python.endswith(":simulate")
    written = tmp_path / "written.toml"
    import tomli_w
    written.write_bytes(tomli_w.dumps(first.to_dict()).encode())
    assert load_study(written) == first, "study.toml as run reads back the same"
    named = load_study(study(tmp_path, 'kind = "train"'))
    assert named.study.kind == "train" and list(named.kinds) == ["simulate"]


@pytest.mark.parametrize(("extra", "model", "message"), [
    ('kind = "trian"', "", "study.kind = 'trian': expected one of the kinds simulate, train (did you mean 'train'?)"),
    ("", '[model]\npython = "x.py:f"', "both [model] and [models.<kind>]"),
    ("", "[models.train]\nranks = 2", "models.train = {'ranks': 2}: expected exactly one of python"),
])
def test_kind_errors_name_the_key(tmp_path: Path, extra: str, model: str, message: str) -> None:
    path = study(tmp_path, extra)
    if model:
        path.write_text(path.read_text().replace("[algorithm]", f"{model}\n[algorithm]", 1)
                        if "[models.train]" not in model else
                        path.read_text().replace("[models.train]\n", "[models.other]\n", 1)
                        .replace("[algorithm]", f"{model}\n[algorithm]", 1))
    with pytest.raises(StudyFileError) as error:
        load_study(path)
    assert message in str(error.value), str(error.value)


POOLED = '''
import numpy as np


def steer(queue, space, options):
    rng = np.random.default_rng(options["seed"])
    simulations = [queue.submit(space.sample(rng)) for _ in range(12)]
    trainings = [queue.submit({"xs": [0.0, 0.5, 1.0], "ys": [1.0, 0.0, 1.0]}, kind="train") for _ in range(3)]
    for future in trainings:
        future.result()
    queue.resize("train", 0)  # training is over: its worker joins the simulations
    for future in simulations:
        future.result()
    queue.map([space.sample(rng) for _ in range(9)])
'''


@pytest.mark.mpi
def test_pools_keep_kinds_apart_until_resized(tmp_path: Path) -> None:
    path = study(tmp_path, "budget = 21")
    path.write_text(path.read_text().replace("budget = 12\n", "").replace("[algorithm]", "[pools]\ntrain = 1\n[algorithm]"))
    (tmp_path / "steer.py").write_text(POOLED)
    done = run_cli("run", str(path), "-n", "4", "--progress", "log", cwd=tmp_path,
                   env={"SIMULATE_SECONDS": "0.05", "TRAIN_SECONDS": "0.3"})
    assert done.returncode == 0, done.stderr
    assert "pools train 1" in done.stderr and "pool train: 0 worker(s) asked" in done.stderr, done.stderr
    records = journal(tmp_path / "out")
    trainings = [r for r in records if r.get("kind") == "train"]
    simulations = [r for r in records if "kind" not in r]
    assert len(trainings) == 3 and len(simulations) == 21
    [trainer] = {r["rank"] for r in trainings}
    last_training = max(r["ended"] for r in trainings)
    before = [r for r in simulations if r["started"] < last_training]
    assert before and trainer not in {r["rank"] for r in before}, "no simulation on the train worker while pooled"
    after = [r for r in simulations if r["started"] > last_training]
    assert trainer in {r["rank"] for r in after}, "after the resize, the train worker runs simulations"


def test_ranks_written_as_its_default_places_the_tasks_and_survives_the_copy(tmp_path: Path) -> None:
    import tomli_w

    path = write_study(tmp_path, f"""
        [study]
        name = "placed"
        [model]
        python = "{tmp_path / 'models.py'}:simulate"
        ranks = 1
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    (tmp_path / "models.py").write_text(MODELS)
    study_ = load_study(path)
    assert study_.model.placed and study_.model.parallel
    written = tmp_path / "written.toml"
    written.write_bytes(tomli_w.dumps(study_.to_dict()).encode())
    assert load_study(written).model.placed
    path.write_text(path.read_text().replace("ranks = 1\n", ""))
    assert not load_study(path).model.parallel


SPACED = '''
def steer(queue, space, options):
    queue.submit({"window": 3}, kind="train").result()
    queue.submit({"window": 99}, kind="train").result()
'''


@pytest.mark.mpi
def test_an_auxiliary_kind_with_a_space_of_its_own_has_its_tasks_checked(tmp_path: Path) -> None:
    path = study(tmp_path)
    path.write_text(path.read_text().replace(
        "[algorithm]", '[models.train.space]\nwindow = { type = "int", low = 1, high = 10 }\nsmooth = true\n'
                       "[algorithm]", 1))
    (tmp_path / "models.py").write_text(MODELS + "\n\ndef windowed(params, ctx):\n    return dict(params)\n")
    path.write_text(path.read_text().replace(":train", ":windowed"))
    (tmp_path / "steer.py").write_text(SPACED)
    loaded = load_study(path)
    assert list(loaded.kind_spaces["train"].parameters) == ["window"]
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "proposed window = 99 ([models.train.space] window: above high = 10)" in done.stderr, done.stderr
    [first] = journal(tmp_path / "out")
    assert first["params"] == {"smooth": True, "window": 3}, "the kind's constants are added"


@pytest.mark.mpi
@pytest.mark.parametrize("kill_after", [2, 5, 12])
def test_kill_minus_9_around_a_pool_resize_then_resume_loses_and_duplicates_nothing(tmp_path: Path, kill_after: int):
    """Killed while the train pool works, near its resize, or after: the resumed function
    replays the trainings and simulations it had, resizes again, and the run ends with the
    3 trainings and 21 simulations, each id once."""
    path = study(tmp_path, "budget = 21")
    path.write_text(path.read_text().replace("budget = 12\n", "").replace("[algorithm]", "[pools]\ntrain = 1\n[algorithm]"))
    (tmp_path / "steer.py").write_text(POOLED)
    slow = {"SIMULATE_SECONDS": "0.05", "TRAIN_SECONDS": "0.2"}
    done = killed_then_resumed(path, tmp_path, kill_after, env=slow)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "no task journaled twice"
    assert sum(r.get("kind") == "train" for r in records) == 3 and sum("kind" not in r for r in records) == 21


POOLS_SEEN = '''
import json


def steer(queue, space, options):
    queue.submit({"xs": [0.0, 0.5, 1.0], "ys": [1.0, 0.0, 1.0]}, kind="train").result()
    seen = [queue.pools]
    queue.resize("train", 0)
    queue.map([{"x": 0.1 * i} for i in range(4)])  # the resize shows once the train worker moved
    seen.append(queue.pools)
    (queue.info.output / "pools.json").write_text(json.dumps(seen))
'''


@pytest.mark.mpi
def test_the_algorithm_sees_the_pools_as_they_are(tmp_path: Path) -> None:
    path = study(tmp_path, "budget = 4")
    path.write_text(path.read_text().replace("budget = 12\n", "").replace("[algorithm]", "[pools]\ntrain = 1\n[algorithm]"))
    (tmp_path / "steer.py").write_text(POOLS_SEEN)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before, after = json.loads((tmp_path / "out" / "pools.json").read_text())
    assert before == {"train": 1, "(shared)": 1} and after == {"(shared)": 2}


PARALLEL_TRAIN = '''
def train(params, ctx):
    """Data-parallel training of a kind of several ranks: every rank joins the allreduce."""
    return {"size": ctx.comm.Get_size(), "ranks": sorted(ctx.comm.allgather(ctx.rank))}
'''

PARALLEL_STEER = '''
import numpy as np


def steer(queue, space, options):
    rng = np.random.default_rng(options["seed"])
    first = queue.map([space.sample(rng) for _ in range(4)])
    default = queue.submit({"xs": [r.params["x"] for r in first]}, kind="train")
    wider = queue.submit({"xs": []}, kind="train", ranks=3)   # the algorithm sizes this one
    assert default.result().ok and wider.result().ok, (default.result().error, wider.result().error)
    queue.map([space.sample(rng) for _ in range(4)])
'''


@pytest.mark.mpi
def test_a_kind_of_several_ranks_runs_beside_single_rank_simulations(tmp_path: Path) -> None:
    path = study(tmp_path, "budget = 8")
    path.write_text(path.read_text().replace("budget = 12\n", "").replace(
        f"{tmp_path / 'models.py'}:train\"", f"{tmp_path / 'parallel.py'}:train\"\nranks = 2"))
    (tmp_path / "parallel.py").write_text(PARALLEL_TRAIN)
    (tmp_path / "steer.py").write_text(PARALLEL_STEER)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    trainings = sorted((r for r in records if r.get("kind") == "train"), key=lambda r: r["id"])
    simulations = [r for r in records if "kind" not in r]
    assert len(simulations) == 8 and all(r["status"] == "ok" and len(r.get("slots") or [1]) == 1 for r in simulations)
    assert [r["metrics"]["size"] for r in trainings] == [2, 3], [r.get("error") for r in trainings]
    assert [len(r["slots"]) for r in trainings] == [2, 3]
    assert all(r["metrics"]["ranks"] == sorted(r["slots"]) for r in trainings)


POOLED_PARALLEL = '''
import numpy as np


def steer(queue, space, options):
    rng = np.random.default_rng(options["seed"])
    simulations = [queue.submit(space.sample(rng)) for _ in range(8)]
    for future in simulations[:4]:
        future.result()  # these ran while the train slots were pooled, whatever the timing
    trainings = [queue.submit({"xs": []}, kind="train") for _ in range(3)]
    for future in trainings:
        assert future.result().ok, future.result().error
    queue.resize("train", 0)  # training is over: its slots join the simulations
    for future in simulations:
        future.result()
    queue.map([space.sample(rng) for _ in range(8)])
'''


@pytest.mark.mpi
def test_a_kind_of_several_ranks_on_its_own_pool_until_resized(tmp_path: Path) -> None:
    path = study(tmp_path, "budget = 16")
    path.write_text(path.read_text().replace("budget = 12\n", "").replace("[algorithm]", "[pools]\ntrain = 2\n[algorithm]")
                    .replace(f"{tmp_path / 'models.py'}:train\"", f"{tmp_path / 'parallel.py'}:train\"\nranks = 2"))
    (tmp_path / "parallel.py").write_text(PARALLEL_TRAIN)
    (tmp_path / "steer.py").write_text(POOLED_PARALLEL)
    done = run_cli("run", str(path), "-n", "5", "--progress", "log", cwd=tmp_path, env={"SIMULATE_SECONDS": "0.05"})
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    trainings = [r for r in records if r.get("kind") == "train"]
    simulations = [r for r in records if "kind" not in r]
    assert len(trainings) == 3 and len(simulations) == 16
    assert all(sorted(r["slots"]) == [1, 2] and r["metrics"]["size"] == 2 for r in trainings), trainings
    last_training = max(r["ended"] for r in trainings)
    before = [r for r in simulations if r["started"] < last_training]
    assert before and not {1, 2} & {r["rank"] for r in before}, "no simulation on a train slot while pooled"
    after = [r for r in simulations if r["started"] > last_training]
    assert {1, 2} & {r["rank"] for r in after}, "after the resize, the train slots run simulations"


@pytest.mark.mpi
def test_an_algorithm_error_seen_first_by_the_finished_check_stops_the_run_cleanly(tmp_path: Path) -> None:
    """The steering function raises (a size asked of a study whose tasks are not placed)
    while no task runs: the master learns it asking whether the algorithm is finished."""
    path = study(tmp_path, "budget = 8")
    path.write_text(path.read_text().replace("budget = 12\n", ""))
    (tmp_path / "steer.py").write_text(PARALLEL_STEER)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode != 0
    assert "raised ValueError in" in done.stderr and "set [model] ranks" in done.stderr, done.stderr
    assert "aborting the MPI job" not in done.stderr, done.stderr
    simulations = [r for r in journal(tmp_path / "out") if "kind" not in r]
    assert len(simulations) == 4, "the tasks finished before are kept"
