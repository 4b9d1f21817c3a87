"""The journal: appended, flushed, and readable after a kill cut its last line short."""

from mexplore.store.journal import JournalWriter, read_results
from mexplore.store.table import best_rows, results_frame
from mexplore.types import Result, Status


def results(n, start=0):
    return [Result(task_id=start + i, params={"x": i / 10}, status=Status.OK, objective=float(i), metrics={"acc": i}) for i in range(n)]


def test_round_trip(tmp_path):
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter.open(path)
    writer.append(results(3))
    assert len(read_results(path)) == 3  # visible before close: flushed per append
    writer.close()
    back = read_results(path)
    assert [r.task_id for r in back] == [0, 1, 2]
    assert back[2].params == {"x": 0.2} and back[2].metrics == {"acc": 2} and back[2].status is Status.OK


def test_a_truncated_last_line_is_skipped_with_a_warning_and_appending_goes_on(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter.open(path)
    writer.append(results(2))
    writer.close()
    with open(path, "a") as journal:
        journal.write('{"id": 2, "status": "o')  # a kill mid-write
    assert len(read_results(path)) == 2
    assert "journal.jsonl:3: skipping a damaged journal line" in capsys.readouterr().err
    writer = JournalWriter.open(path)  # cuts the fragment off before appending
    writer.append(results(1, start=2))
    writer.close()
    assert [r.task_id for r in read_results(path)] == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_results_table_and_best_rows(tmp_path):
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter.open(path)
    writer.append(results(4) + [Result(task_id=4, params={"x": 9}, status=Status.FAILED, error="Traceback...\nValueError: bad")])
    writer.close()
    frame = results_frame(path, ["loss"])
    assert list(frame.columns[:5]) == ["id", "status", "loss", "p:x", "m:acc"]
    assert frame.loc[4, "error"] == "ValueError: bad"
    assert list(best_rows(frame, "loss", "maximize", 2)["id"]) == [3, 2]
    assert list(best_rows(frame, "loss", "minimize", 10)["id"]) == [0, 1, 2, 3]


def test_pareto_column_marks_the_non_dominated_ok_rows(tmp_path):
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter.open(path)
    points = [[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [5.0, 1.0], [0.5, 0.5]]
    statuses = [Status.OK] * 4 + [Status.FAILED]
    writer.append([Result(task_id=i, params={"i": i}, status=s, objective=p if s is Status.OK else None)
                   for i, (p, s) in enumerate(zip(points, statuses))])
    writer.close()
    frame = results_frame(path, ["loss", "time"], ["minimize", "minimize"])
    assert frame["pareto"].tolist() == [True, True, False, True, False]
    flipped = results_frame(path, ["loss", "time"], ["maximize", "minimize"])
    assert flipped["pareto"].tolist() == [False, False, False, True, False]  # (5, 1) beats all
    assert "pareto" not in results_frame(path, ["loss", "time"]).columns
