"""Algorithm cost is visible: each task records the master's time in the algorithm, and the
progress and ``mexplore results`` say when the algorithm, not the workers, limits throughput."""

import time

import pytest

from helpers import journal, run_cli
from mexplore.config import load_study
from mexplore.runtime.bottleneck import algorithm_load, verdict
from mexplore.runtime.entry import run_inproc
from test_master_inproc import algorithm_plugin, make_study

ASK_SLEEP = 0.02
SLOW_ASK = f"""
    def ask(self, n):
        import time
        time.sleep({ASK_SLEEP})
        return [{{'x': 0.5}}]  # one at a time: each task bears a whole ask
"""


def test_load_is_the_share_of_the_master_the_algorithm_needs():
    # 10 ms per proposal, 4 workers finishing a 100 ms task each: a task every 25 ms wanted.
    load, seconds = algorithm_load([(0.01, 0.1)] * 10, workers=4)
    assert (load, seconds) == (pytest.approx(0.4), pytest.approx(0.01))
    assert verdict([(0.01, 0.1)] * 10, workers=4) is None
    near = verdict([(0.01, 0.1)] * 10, workers=6)
    assert near is not None and not near.bound and "nearly limits" in near.line
    bound = verdict([(0.01, 0.1)] * 10, workers=12)
    assert bound is not None and bound.bound and "10 ms of algorithm time per task" in bound.line
    assert verdict([(0.01, 0.1)] * 9, workers=10) is None  # too few tasks to say


def test_each_task_records_its_share_of_a_slow_ask(tmp_path, capsys):
    path = make_study(tmp_path, algorithm_plugin(tmp_path, "Slow", SLOW_ASK), budget=40)
    started = time.perf_counter()
    assert run_inproc(lambda: load_study(path), "log", workers=2) == 0
    elapsed = time.perf_counter() - started
    records = journal(tmp_path / "out")
    assert len(records) == 40
    # Bounds that hold on any machine, however busy: the sleep is a floor on each ask, and
    # the master calls the algorithm one call at a time within the run, so what is billed
    # to the tasks adds up to no more than the run's length.
    assert all(r["algorithm_time"] >= ASK_SLEEP for r in records)
    assert sum(r["algorithm_time"] for r in records) <= elapsed
    err = capsys.readouterr().err
    assert "the algorithm limits throughput" in err  # tasks take microseconds, asks 20 ms

    shown = run_cli("results", str(tmp_path / "out"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "note: the algorithm limits throughput" in shown.stdout
    assert "algorithm_time" in (tmp_path / "out" / "results.csv").read_text().splitlines()[0]


def test_a_cheap_algorithm_with_real_tasks_is_not_blamed(tmp_path, capsys):
    path = make_study(tmp_path, budget=12)
    started = time.perf_counter()
    assert run_inproc(lambda: load_study(path, ["space.sleep=0.05"]), "log", workers=2) == 0
    elapsed = time.perf_counter() - started
    assert "limits throughput" not in capsys.readouterr().err
    shown = run_cli("results", str(tmp_path / "out"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "limits throughput" not in shown.stdout
    records = journal(tmp_path / "out")
    assert all(r["algorithm_time"] > 0 for r in records), "every task bears a share of an ask"
    assert sum(r["algorithm_time"] for r in records) <= elapsed  # as above: on any machine
