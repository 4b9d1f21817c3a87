"""The journal: appended, flushed, and readable after a kill cut its last line short."""

import json
import math

import h5py
import numpy as np
import pandas as pd
import pytest

from mexplore.store.journal import JOURNAL_NAME, JournalWriter, read_results
from mexplore.store.results_file import read_table, write_results_h5
from mexplore.store.table import best_rows, results_frame, write_results_csv
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


def test_lines_of_the_wrong_shape_are_skipped_with_a_warning_naming_them(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter.open(path)
    writer.append(results(1))
    writer.close()
    with open(path, "a") as journal:
        journal.write('{}\nnull\n[1, 2]\n{"id": "7", "status": "ok"}\n{"id": 8, "status": "fine"}\n'
                      '{"id": 9, "status": "ok", "params": 3}\n')
    writer = JournalWriter.open(path)
    writer.append(results(1, start=1))
    writer.close()
    assert [r.task_id for r in read_results(path)] == [0, 1]
    err = capsys.readouterr().err
    assert all(f"journal.jsonl:{n}: skipping" in err for n in range(2, 8)), err


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


def _strict(constant):
    raise ValueError(f"{constant} is not RFC 8259 JSON")


def test_every_line_is_strict_json_and_non_finite_numbers_come_back_as_floats(tmp_path):
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter.open(path)
    writer.append([
        Result(task_id=0, params={"fill": "NaN", "scale": math.inf}, status=Status.OK, objective=1.0,
               metrics={"nan": math.nan, "curve": [1.0, math.inf, -math.inf], "np": np.float32("nan"), "text": "NaN"},
               reports=[(0, math.nan), (1, 0.5)]),
        Result(task_id=1, params={"fill": "mean", "scale": 1.0}, status=Status.FAILED, error="bad"),
    ])
    writer.close()
    lines = path.read_text().splitlines()
    records = [json.loads(line, parse_constant=_strict) for line in lines]
    assert records[0]["metrics"]["nan"] == "NaN" and records[0]["metrics"]["curve"] == [1.0, "Infinity", "-Infinity"]

    [back, _] = read_results(path)
    assert math.isnan(back.metrics["nan"]) and back.metrics["curve"] == [1.0, math.inf, -math.inf]
    assert math.isnan(back.metrics["np"]) and math.isnan(back.reports[0][1])
    assert back.params == {"fill": "NaN", "scale": "Infinity"}, "params come back as written, never guessed at"
    frame = results_frame(path, ["loss"])
    assert math.isnan(frame.loc[0, "m:nan"]) and frame["loss"].tolist()[0] == 1.0
    write_results_csv(frame, tmp_path)
    assert pd.read_csv(tmp_path / "results.csv")["m:nan"].isna().all()


def test_an_old_journal_with_bare_nan_is_still_read(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"id": 0, "status": "ok", "params": {}, "objective": 1.0, "metrics": {"m": NaN, "n": -Infinity}}\n')
    [back] = read_results(path)
    assert math.isnan(back.metrics["m"]) and back.metrics["n"] == -math.inf


def test_results_h5_holds_columns_whose_names_clash_as_hdf5_paths(tmp_path):
    names = ["a", "a/b", "a/b/c", "", ".", "..", "%2F", "nul\0", "Δ"]
    path = tmp_path / JOURNAL_NAME
    writer = JournalWriter.open(path)
    writer.append([Result(task_id=0, params={"text": "x\0y"}, status=Status.OK, objective=1.0,
                          metrics={name: index for index, name in enumerate(names)})])
    writer.close()
    write_results_h5(tmp_path, results_frame(path, ["loss"]))
    table = read_table(tmp_path)
    shown = [name.replace("\0", "\u2400") for name in names]
    assert [table.loc[0, f"m:{name}"] for name in shown] == list(range(len(names)))
    assert table.loc[0, "p:text"] == "x\u2400y"
    with h5py.File(tmp_path / "results.h5", "r") as file:  # without mexplore: the datasets attribute
        columns = dict(zip(file["table"].attrs["columns"], file["table"].attrs["datasets"]))
        assert file["table"][columns["m:a/b"]][0] == 1 and columns["m:a/b"] == "m:a%2Fb"


def test_results_h5_keeps_a_table_per_kind_named_safely_and_refuses_an_unknown_kind(tmp_path):
    path = tmp_path / JOURNAL_NAME
    writer = JournalWriter.open(path)
    writer.append([Result(task_id=0, params={"x": 0.5}, status=Status.OK, objective=1.0),
                   Result(task_id=1, params={"xs": "[1, 2]"}, status=Status.OK, metrics={"coef": 2.0}, kind="fit/a")])
    writer.close()
    write_results_h5(tmp_path, results_frame(path, ["loss"]), objective_kind="sim")
    assert read_table(tmp_path, kind="sim").columns[:3].tolist() == ["id", "status", "loss"]
    fitted = read_table(tmp_path, kind="fit/a")  # a kind name that is an HDF5 path: escaped
    assert fitted["id"].tolist() == [1] and fitted.loc[0, "m:coef"] == 2.0 and "p:x" not in fitted
    with pytest.raises(KeyError, match="no table of kind 'train': its kinds are fit/a, sim"):
        read_table(tmp_path, kind="train")
    alone = tmp_path / "alone"
    alone.mkdir()
    writer = JournalWriter.open(alone / JOURNAL_NAME)
    writer.append([Result(task_id=0, params={"x": 0.5}, status=Status.OK, objective=1.0)])
    writer.close()
    write_results_h5(alone, results_frame(alone / JOURNAL_NAME, ["loss"]))
    with pytest.raises(KeyError, match="its study has one kind"):
        read_table(alone, kind="sim")
