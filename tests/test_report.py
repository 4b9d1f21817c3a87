"""`mexplore report`: the HTML page and its plots for real runs (MPI, 3 ranks), and the
numbers behind the plots on frames made by hand."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, journal, run_cli, write_study
from matplotlib.image import imread

from mexplore.cli.main import main
from mexplore.report import best_so_far, sweep_table
from mexplore.report.parameters import swept_parameters
from mexplore.report.plots import sweep_figure
from mexplore.store.run import load_run

MODELS = REPO / "tests" / "models" / "report_models.py"
PLOTS = {"best_so_far", "parameters", "workers", "sweep", "pareto"}
T_975 = {2: 4.302652729911275, 3: 3.182446305284263}  # Student t quantiles, from tables

STUDIES = {
    "search": ("picky", ["loss"], ["minimize"], 'name = "random"\nseed = 3', """
        x = { type = "float", low = 0.0, high = 1.0 }
        lr = { type = "float", low = 1e-4, high = 1e-1, log = true }
        act = { type = "categorical", choices = ["relu", "tanh", "bad"] }
        epochs = 3""", 24),
    "sweep": ("noisy_accuracy", ["accuracy"], ["maximize"], 'name = "grid"\noptions = { repeats = 3 }', """
        noise = { type = "grid", values = [0.0, 0.1, 0.2, 0.3] }
        k = { type = "categorical", choices = [1, 15] }""", None),
    "pareto": ("tradeoff", ["loss", "cost"], ["minimize", "minimize"], 'name = "random"\nseed = 5', """
        x = { type = "float", low = 0.0, high = 1.0 }
        waste = { type = "float", low = 0.0, high = 0.5 }""", 20),
}


def run_study(folder: Path, kind: str) -> Path:
    model, objectives, directions, algorithm, space, budget = STUDIES[kind]
    path = write_study(folder, f"""
        [study]
        name = "{kind}"
        {f"budget = {budget}" if budget else ""}
        objective = {json.dumps(objectives)}
        direction = {json.dumps(directions)}
        output = "{folder / 'out'}"

        [model]
        python = "{MODELS}:{model}"

        [algorithm]
        {algorithm}

        [space]
        {space}
    """.replace("\n        ", "\n"))
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "out"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Each study run once under MPI, then reported (the sweep into a folder of its own)."""
    outputs = {kind: run_study(tmp_path_factory.mktemp(kind), kind) for kind in STUDIES}
    made = run_cli("report", str(outputs["search"]), cwd=REPO)
    assert made.returncode == 0, made.stderr
    assert "report in" in made.stdout and "left out: sweep" in made.stdout
    assert main(["report", str(outputs["sweep"]), "--to", str(outputs["sweep"].parent / "mine")]) == 0
    assert main(["report", str(outputs["pareto"])]) == 0
    return outputs


def report_folder(runs, kind: str) -> Path:
    return runs[kind].parent / "mine" if kind == "sweep" else runs[kind] / "report"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, after checking it decodes as one."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(path).shape[:2]
    return width, height


@pytest.mark.mpi
@pytest.mark.parametrize("kind,sizes", [
    ("search", {"best_so_far": (1000, 320), "parameters": (1080, 300), "workers": (1000, 450)}),
    ("sweep", {"best_so_far": (1000, 320), "parameters": (720, 300), "workers": (1000, 450),
               "sweep": (720, 300)}),
    ("pareto", {"best_so_far": (1000, 640), "parameters": (720, 600), "workers": (1000, 450),
                "pareto": (650, 500)}),
])
def test_each_study_kind_gets_its_plots_embedded_in_the_page(runs, kind, sizes):
    folder = report_folder(runs, kind)
    assert {path.stem: png_size(path) for path in folder.glob("*.png")} == sizes
    page = (folder / "index.html").read_text()
    embedded = {base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)}
    assert embedded == {(folder / f"{name}.png").read_bytes() for name in sizes}
    for name in PLOTS - set(sizes):
        assert re.search(rf'id="{name}">[^<]*: left out, [^<]+\.</p>', page), name


@pytest.mark.mpi
def test_summary_counts_statuses_and_shows_the_best_ok_task(runs):
    records = journal(runs["search"])
    failed = [r for r in records if r["status"] == "failed"]
    best = min((r for r in records if r["status"] == "ok"), key=lambda r: r["objective"])
    assert failed and all(r["params"]["act"] == "bad" for r in failed)
    page = (report_folder(runs, "search") / "index.html").read_text()
    assert f"24: {len(failed)} failed, {24 - len(failed)} ok" in page
    assert f"<td>{best['objective']:.6g}</td><td>{best['id']}</td>" in page
    x, lr, act = (best["params"][k] for k in ("x", "lr", "act"))
    assert f"<td>x = {x:.6g}, lr = {lr:.6g}, act = {act}</td>" in page  # the constant epochs left out
    assert re.search(r"worker utilization</th><td>\d+% of 2 worker\(s\)", page)
    assert "<th>sessions</th>" not in page and 'id="sessions"' not in page  # one session: no table


@pytest.mark.mpi
def test_the_failures_table_gives_each_reason_its_count_and_first_tasks(runs):
    failed = [r["id"] for r in journal(runs["search"]) if r["status"] == "failed"]
    page = (report_folder(runs, "search") / "index.html").read_text()
    assert f"{len(failed)} of 24 tasks did not finish ok" in page
    reason = "RuntimeError: act = &quot;bad&quot; is not supported"
    examples = ", ".join(str(i) for i in sorted(failed)[:3])
    assert f"<tr><td>{len(failed)}</td><td>failed</td><td>{reason}</td><td>{examples}</td></tr>" in page
    assert 'id="failures"' not in (report_folder(runs, "pareto") / "index.html").read_text()


@pytest.mark.mpi
def test_the_sweep_plot_says_in_its_legend_what_the_band_is(runs):
    run = load_run(runs["sweep"])
    panels = [axes for axes in sweep_figure(run, swept_parameters(run)).axes if axes.get_visible()]
    legends = [[text.get_text() for text in axes.get_legend().get_texts()] for axes in panels]
    assert legends == [["task", "k = 1", "k = 15", "95% t interval of the mean"],
                       ["task", *(f"noise = {n}" for n in (0.0, 0.1, 0.2, 0.3)), "95% t interval of the mean"]]


@pytest.mark.mpi
def test_sweep_table_of_a_real_sweep_averages_the_three_repeats(runs):
    frame = pd.read_csv(runs["sweep"] / "results.csv")
    table = sweep_table(frame, "accuracy", "p:noise", by="p:k").set_index(["p:k", "p:noise"])
    assert len(table) == 8 and set(table["n"]) == {3}
    repeats = [r["objective"] for r in journal(runs["sweep"]) if r["params"]["noise"] == 0.2 and r["params"]["k"] == 1]
    assert table.loc[(1, 0.2), "mean"] == pytest.approx(sum(repeats) / 3)
    assert table.loc[(1, 0.3), "mean"] < table.loc[(15, 0.3), "mean"]  # k = 1 loses accuracy faster


@pytest.mark.mpi
def test_a_run_without_ok_tasks_gets_a_report_that_says_so(runs, tmp_path):
    source = runs["search"]
    shutil.copy(source / "study.toml", tmp_path / "study.toml")
    failed = [line for line in (source / "journal.jsonl").read_text().splitlines() if '"failed"' in line]
    (tmp_path / "journal.jsonl").write_text("\n".join(failed) + "\n")
    shutil.copytree(source / "report", tmp_path / "report")  # an earlier report's PNGs must go
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "No task finished ok" in page and 'id="best_so_far">Best so far: left out, no task finished ok' in page
    assert sorted(p.name for p in (tmp_path / "report").glob("*.png")) == ["workers.png"]


def test_an_empty_journal_gets_a_report_and_a_missing_run_an_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "study.toml").write_text('[study]\nname = "empty"\nobjective = ["loss"]\n')
    (tmp_path / "run" / "journal.jsonl").write_text("")
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "no finished task yet" in (tmp_path / "run" / "report" / "index.html").read_text()
    assert not list((tmp_path / "run" / "report").glob("*.png"))
    assert main(["report", str(tmp_path / "nothing")]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "nothing") in error and "study.toml and journal.jsonl expected" in error


def test_sweep_table_gives_the_student_t_interval_over_repeats():
    frame = pd.DataFrame({
        "status": ["ok"] * 7 + ["failed"],
        "acc": [1.0, 2.0, 3.0, 5.0, 5.0, 6.0, 7.0, 100.0],
        "p:noise": [0.0, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1],
    })
    table = sweep_table(frame, "acc", "p:noise").set_index("p:noise")
    assert table["n"].tolist() == [3, 4]  # the failed row is not a repeat
    assert table.loc[0.0, ["mean", "std"]].tolist() == pytest.approx([2.0, 1.0])
    assert table.loc[0.0, "high"] - 2.0 == pytest.approx(T_975[2] / 3**0.5)
    assert table.loc[0.0, "low"] == pytest.approx(2.0 - T_975[2] / 3**0.5)
    std = pd.Series([5.0, 5.0, 6.0, 7.0]).std()
    assert table.loc[0.1, "high"] - 5.75 == pytest.approx(T_975[3] * std / 2)


def test_sweep_table_with_one_row_per_point_has_no_interval_and_splits_by_the_other_parameter():
    frame = pd.DataFrame({"status": "ok", "acc": [0.9, 0.8, 0.7, 0.6],
                          "p:noise": [0.0, 0.1, 0.0, 0.1], "p:k": [1, 1, 15, 15]})
    table = sweep_table(frame, "acc", "p:noise", by="p:k")
    assert table[["p:k", "p:noise", "mean"]].values.tolist() == [[1, 0.0, 0.9], [1, 0.1, 0.8],
                                                                 [15, 0.0, 0.7], [15, 0.1, 0.6]]
    assert table["low"].isna().all() and table["high"].isna().all()


@pytest.mark.parametrize("direction,best", [("minimize", [None, 5.0, 3.0, 2.0, 2.0]),
                                            ("maximize", [None, 5.0, 5.0, 5.0, 5.0])])
def test_best_so_far_follows_the_end_order_and_skips_failed_tasks(direction, best):
    frame = pd.DataFrame({
        "id": [0, 1, 2, 3, 4],
        "status": ["ok", "failed", "ok", "ok", "timeout"],
        "loss": [2.0, -50.0, 5.0, 3.0, None],
        "started": [100.0, 100.0, 101.0, 102.0, 101.0],
        "ended": [105.0, 101.0, 102.0, 104.0, 106.0],
    })
    trace = best_so_far(frame, "loss", direction)
    assert trace["evaluation"].tolist() == [1, 2, 3, 4, 5]
    assert trace["elapsed"].tolist() == [1.0, 2.0, 4.0, 5.0, 6.0]
    assert trace["value"].tolist()[1:4] == [5.0, 3.0, 2.0] and trace["value"].isna().tolist() == [True, False, False, False, True]
    assert trace["best"].tolist()[1:] == best[1:] and pd.isna(trace["best"].iloc[0])


def test_a_task_of_several_slots_counts_on_each_slot_of_the_timeline():
    from mexplore.report.tables import per_slot, worker_time

    frame = pd.DataFrame({"id": [0, 1], "status": ["ok", "ok"], "rank": [1, 3], "started": [10.0, 10.0],
                          "ended": [12.0, 12.0], "slots": ["1 2", float("nan")]})
    spread = per_slot(frame)
    assert sorted(spread["rank"]) == [1, 2, 3] and list(spread["id"]) == [0, 0, 1]
    assert worker_time(frame, workers=3) == (6.0, 6.0)  # slot-seconds: every slot busy all along
    assert per_slot(frame.drop(columns="slots")).equals(frame.drop(columns="slots"))
