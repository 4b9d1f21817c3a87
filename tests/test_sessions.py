"""Sessions of a run (``sessions.jsonl``): the file a real run and its resume write, how a
journal is split into sessions (recorded, killed, or from before the file existed), and
the report's figures per session, without the idle time between sessions.

The figure-level tests use a journal and a sessions file written by hand, so the gap
between the sessions is eight minutes without anyone waiting eight minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO, journal, run_cli, write_study

from mexplore.report import best_so_far
from mexplore.report.build import write_report
from mexplore.report.plots import best_so_far_figure, workers_figure
from mexplore.report.summary import summarize
from mexplore.store.run import load_run
from mexplore.store.sessions import SESSIONS_NAME, SessionLog, read_session_records

T0 = 1_700_000_000.0
GAP = 449.0
"""Seconds from the last task of session 1 to the first of session 2."""


def lines(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / SESSIONS_NAME).read_text().splitlines()]


@pytest.mark.mpi
def test_a_run_and_its_resume_write_two_sessions_each_with_its_tasks(tmp_path):
    study = write_study(tmp_path, f"""
        [study]
        name = "twice"
        budget = 6
        objective = "loss"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{REPO / 'tests' / 'models' / 'toy.py'}:quadratic"

        [algorithm]
        name = "random"
        seed = 2

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    for ranks, budget in (("3", "6"), ("2", "10")):
        done = run_cli("run", str(study), "-n", ranks, "--progress", "off", "--set", f"study.budget={budget}",
                       cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    output = tmp_path / "out"
    first, end_1, second, end_2 = lines(output)
    assert [first["event"], end_1["event"], second["event"], end_2["event"]] == ["start", "end", "start", "end"]
    assert (first["session"], first["ranks"], first["workers"], first["first_task"]) == (1, 3, 2, 0)
    assert (second["session"], second["ranks"], second["workers"]) == (2, 2, 1)
    assert first["pid"] != second["pid"] and first["host"] and first["version"]
    assert end_1["outcome"] == end_2["outcome"] == "finished"
    assert first["time"] <= end_1["time"] <= second["time"] <= end_2["time"]
    ids = sorted(r["id"] for r in journal(output))
    later = [i for i in ids if i >= second["first_task"]]
    assert len(ids) == 10 and len(later) == 4  # the resume ran the 4 tasks the larger budget added
    sessions = load_run(output).sessions
    assert [(s.number, len(s.tasks), s.workers, s.outcome) for s in sessions] == [
        (1, 6, 2, "finished"), (2, 4, 1, "finished")]
    assert sorted(sessions[1].tasks["id"]) == later
    assert all(first["time"] <= t <= end_1["time"] for t in sessions[0].tasks["ended"])


def write_two_sessions(output: Path, *, ended: bool = True) -> None:
    """A run as the issue tells it: 60 tasks on 2 workers (only one of them busy: 50%
    utilization), then, 449 s later, 440 tasks on 4 workers, all busy; one second each.
    The second session is killed (no end line) unless ``ended``."""
    output.mkdir()
    (output / "study.toml").write_text('[study]\nname = "gap"\nobjective = "loss"\n[provenance]\nranks = 5\n')
    records = [_task(i, T0 + 1 + i, 1, loss=1.0 / (i + 1)) for i in range(60)]
    second = T0 + 61 + GAP
    records += [_task(60 + i, second + i // 4, 1 + i % 4, loss=0.5) for i in range(440)]
    (output / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    sessions = [
        {"event": "start", "session": 1, "time": T0, "host": "a", "pid": 1, "ranks": 3, "workers": 2,
         "first_task": 0, "version": "0"},
        {"event": "end", "session": 1, "time": T0 + 62, "outcome": "finished"},
        '{"event": "start", "session": 2, "ti',  # a line cut short by a kill: skipped
        {"event": "start", "session": 2, "time": second - 1, "host": "a", "pid": 2, "ranks": 5, "workers": 4,
         "first_task": 60, "version": "0"},
    ]
    if ended:
        sessions.append({"event": "end", "session": 2, "time": second + 111, "outcome": "stopped by SIGTERM"})
    (output / SESSIONS_NAME).write_text("".join((s if isinstance(s, str) else json.dumps(s)) + "\n" for s in sessions))


def _task(task_id: int, started: float, rank: int, loss: float) -> dict:
    return {"id": task_id, "status": "ok", "params": {"x": 0.5}, "objective": loss, "metrics": {},
            "started": started, "ended": started + 1.0, "rank": rank, "host": "a"}


def test_per_session_figures_leave_out_the_idle_time_between_sessions(tmp_path):
    write_two_sessions(tmp_path / "run")
    summary = summarize(load_run(tmp_path / "run"))
    first, second = summary.sessions
    assert (first.tasks, first.wall, first.workers, first.utilization) == (60, 60.0, 2, 0.5)
    assert (second.tasks, second.wall, second.workers, second.utilization) == (440, 110.0, 4, 1.0)
    assert (first.idle_before, second.idle_before) == (0.0, GAP)
    assert (first.ended, second.ended) == ("finished", "stopped by SIGTERM")
    assert summary.wall == 170.0 and summary.idle == GAP
    assert summary.rate == pytest.approx(500 / 170)
    assert summary.utilization == pytest.approx((60 + 440) / (2 * 60 + 4 * 110))
    assert summary.workers == "2-4"


def test_a_killed_session_ends_with_its_last_task(tmp_path):
    write_two_sessions(tmp_path / "run", ended=False)
    records = read_session_records(tmp_path / "run")
    assert [(r.number, r.outcome, r.end) for r in records] == [(1, "finished", T0 + 62), (2, None, None)]
    second = load_run(tmp_path / "run").sessions[1]
    assert second.end == T0 + 61 + GAP + 110 and second.outcome is None
    assert summarize(load_run(tmp_path / "run")).sessions[1].ended == "no end recorded (killed, or still running)"


def test_time_axes_and_the_report_cut_out_the_gap_and_mark_the_sessions(tmp_path):
    write_two_sessions(tmp_path / "run")
    run = load_run(tmp_path / "run")
    trace = best_so_far(run.frame, "loss", "minimize", run.sessions)
    assert trace["elapsed"].max() == 170.0 and trace["elapsed"].iloc[60] == 61.0
    assert best_so_far(run.frame, "loss", "minimize")["elapsed"].max() == 170.0 + GAP  # without sessions: wall clock
    timeline = workers_figure(run, "2-4", 0.9).axes[0]
    assert timeline.dataLim.x1 == 170.0
    assert [line.get_xdata()[0] for line in timeline.get_lines()] == [60.0]
    assert [t.get_text() for t in timeline.texts] == ["session 1", "session 2 (7m 29s idle cut)"]
    trace_axes = best_so_far_figure(run).axes[1]
    assert [line.get_xdata()[0] for line in trace_axes.get_lines() if line.get_linestyle() == "--"] == [60.0]
    page, _ = write_report(run, tmp_path / "report")
    html = page.read_text()
    assert "<th>sessions</th><td>2 (see below); the 7m 29s between them is left out of the figures" in html
    assert "<td>2m 50s (first task start to last task end, summed over the sessions)" in html
    assert "89% of 2-4 worker(s)" in html
    assert "<td>60</td><td>60 s</td><td>2</td><td>1 tasks/s</td><td>50%</td><td>-</td>" in html
    assert "<td>440</td><td>110 s</td><td>4</td><td>4 tasks/s</td><td>100%</td><td>7m 29s</td>" in html


def test_a_journal_from_before_sessions_is_one_session_and_a_resume_numbers_after_it(tmp_path):
    write_two_sessions(tmp_path / "run")
    (tmp_path / "run" / SESSIONS_NAME).unlink()
    run = load_run(tmp_path / "run")
    (only,) = run.sessions
    assert (only.number, len(only.tasks), only.workers, only.recorded) == (1, 500, 4, False)
    assert (only.start, only.end) == (T0 + 1, T0 + 61 + GAP + 110)
    log = SessionLog.start(tmp_path / "run", workers=3, first_task=500)
    log.end("finished")
    assert log.number == 2  # the unrecorded tasks before it are session 1
    sessions = load_run(tmp_path / "run").sessions
    assert [(s.number, len(s.tasks), s.workers, s.recorded) for s in sessions] == [(1, 500, 4, False), (2, 0, 3, True)]
    assert summarize(load_run(tmp_path / "run")).sessions[0].ended == "before sessions were recorded"


def test_a_new_run_starts_at_session_one_and_counts_on(tmp_path):
    assert SessionLog.start(tmp_path, workers=2, first_task=0).number == 1
    assert SessionLog.start(tmp_path, workers=2, first_task=64).number == 2
    assert [(r.number, r.first_task, r.workers) for r in read_session_records(tmp_path)] == [(1, 0, 2), (2, 64, 2)]
