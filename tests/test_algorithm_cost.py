"""Algorithm cost is visible: each task records the master's time in the algorithm, and the
progress and ``mexplore results`` say when workers waited for its proposals, and only then."""

import time

import pytest
from helpers import journal, run_cli
from test_master_inproc import algorithm_plugin, make_study

from mexplore.config import load_study
from mexplore.runtime.bottleneck import AT_LEAST, Span, measure, verdict
from mexplore.runtime.entry import run_inproc

ASK_SLEEP = 0.02
SLOW_ASK = f"""
    def ask(self, n):
        import time
        time.sleep({ASK_SLEEP})
        return [{{'x': 0.5}}]  # one at a time: each task bears a whole ask
"""


def timeline(workers, tasks, duration, ask, handoff=0.0, ok=True):
    """Spans of ``tasks`` tasks on ``workers`` ranks fed by a master that spends ``ask``
    seconds on each proposal, one at a time, plus ``handoff`` seconds on each hand-off."""
    free = dict.fromkeys(range(1, workers + 1), 0.0)
    master = 0.0
    spans = []
    for _ in range(tasks):
        rank = min(free, key=free.get)
        master = max(master, free[rank]) + ask  # proposes once the worker asks, after earlier asks
        started = master + handoff
        free[rank] = started + duration
        spans.append(Span(rank, started, started + duration, ask, ok))
    return spans


def test_workers_waiting_on_a_slow_algorithm_is_measured_and_the_advice_fits_the_load():
    # 20 ms per proposal, 2 workers, 1 ms tasks: each worker waits ~40 ms per task.
    slow = verdict(timeline(2, 40, duration=0.001, ask=0.02), workers=2)
    assert slow is not None and slow.waiting.share > 0.9 and slow.waiting.load > 1
    assert "20 ms of algorithm per task" in slow.line and "cannot keep up" in slow.line
    # 40 ms per proposal, 2 workers, 100 ms tasks: the algorithm could keep up (load 0.8),
    # but each worker waits 40 ms for its own proposal: 29% of its time.
    latency = verdict(timeline(2, 80, duration=0.1, ask=0.04), workers=2)
    assert latency is not None and latency.waiting.load == pytest.approx(0.8)
    assert latency.waiting.share == pytest.approx(0.04 / 0.14) and 'policy = "queue"' in latency.line
    # 20 ms per proposal for 100 ms tasks: a 17% wait is not noticeable enough to say.
    assert verdict(timeline(4, 80, duration=0.1, ask=0.02), workers=4) is None


def test_no_note_when_the_tasks_take_the_time_or_the_gaps_are_not_the_algorithms():
    assert verdict(timeline(4, 80, duration=0.1, ask=1e-4), workers=4) is None  # a cheap algorithm
    # A fast toy model: every gap is hand-off (1 ms), the algorithm costs 10 µs a task.
    toy = measure(timeline(2, 100, duration=1e-4, ask=1e-5, handoff=1e-3), workers=2)
    assert toy.share < 0.05 and verdict(timeline(2, 100, duration=1e-4, ask=1e-5, handoff=1e-3), 2) is None
    # A resumed run: an hour between two sessions is not blamed on a 1 ms ask.
    first = timeline(2, 20, duration=0.05, ask=0.001)
    second = [Span(s.rank, s.started + 3600, s.ended + 3600, s.algorithm_time, s.ok) for s in first]
    assert measure(first + second, workers=2).share < 0.05


def test_no_note_when_no_task_succeeded_or_too_few_gaps_were_seen():
    assert verdict(timeline(2, 40, duration=0.001, ask=0.02, ok=False), workers=2) is None
    assert verdict(timeline(1, AT_LEAST, duration=0.001, ask=0.02), workers=1) is None  # AT_LEAST - 1 gaps
    assert verdict(timeline(1, AT_LEAST + 1, duration=0.001, ask=0.02), workers=1) is not None


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
    assert "workers waited for the algorithm's proposals" in err  # tasks take microseconds, asks 20 ms

    shown = run_cli("results", str(tmp_path / "out"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "note: workers waited for the algorithm's proposals" in shown.stdout
    assert "cannot keep up" in shown.stdout
    assert "algorithm_time" in (tmp_path / "out" / "results.csv").read_text().splitlines()[0]


def test_a_cheap_algorithm_with_real_tasks_is_not_blamed(tmp_path, capsys):
    path = make_study(tmp_path, budget=12)
    started = time.perf_counter()
    assert run_inproc(lambda: load_study(path, ["space.sleep=0.05"]), "log", workers=2) == 0
    elapsed = time.perf_counter() - started
    assert "waited for the algorithm" not in capsys.readouterr().err
    shown = run_cli("results", str(tmp_path / "out"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "waited for the algorithm" not in shown.stdout
    records = journal(tmp_path / "out")
    assert all(r["algorithm_time"] > 0 for r in records), "every task bears a share of an ask"
    assert sum(r["algorithm_time"] for r in records) <= elapsed  # as above: on any machine
