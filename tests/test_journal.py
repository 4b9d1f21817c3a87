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


def journal_of(tmp_path, lines):
    path = tmp_path / JOURNAL_NAME
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_lines_orjson_would_change_come_back_as_json_means_them_in_any_block(tmp_path, monkeypatch, capsys):
    """Blocks of sound lines are read by orjson in one go; a line it would read differently
    (an integer beyond 64 bits: orjson makes it a float) or refuse (an unpaired surrogate,
    a bare NaN) is read by the standard library, and its neighbours are kept."""
    from mexplore.store import journal

    monkeypatch.setattr(journal, "_BLOCK_BYTES", 300)  # several blocks, some sound, some not
    sound = [json.dumps({"id": i, "status": "ok", "params": {"x": i / 7, "tiny": 0.000123456789012345678}})
             for i in range(20)]
    odd = ['{"id":100,"status":"ok","params":{"n":123456789012345678901234567890,"m":-9223372036854775809}}',
           '{"id":101,"status":"ok","params":{"s":"\\udc80"}}',
           '{"id":102,"status":"ok","params":{},"metrics":{"m":NaN,"n":"Infinity"}}',
           '{"id":103,"status":["ok"],"params":{}}',  # a status no set can hold: skipped, not a crash
           '{"id":104,"status":"ok","params":{"big":18446744073709551615,"x":1e400}}']
    path = journal_of(tmp_path, sound[:10] + odd + sound[10:])
    records = {record["id"]: record for record in journal.iter_records(path)}
    assert sorted(records) == [*range(20), 100, 101, 102, 104]
    assert records[100]["params"] == {"n": 123456789012345678901234567890, "m": -9223372036854775809}
    assert type(records[100]["params"]["n"]) is int
    assert records[101]["params"]["s"] == "\udc80"
    assert math.isnan(records[102]["metrics"]["m"]) and records[102]["metrics"]["n"] == math.inf
    assert records[104]["params"] == {"big": 18446744073709551615, "x": math.inf}
    assert all(records[i]["params"]["x"] == i / 7 for i in range(20))
    assert "journal.jsonl:14: skipping a line that is not a task's result" in capsys.readouterr().err
    blocks = list(journal.iter_record_blocks(path))
    assert len(blocks) > 3 and [r["id"] for block in blocks for r in block] == [*range(10), 100, 101, 102, 104,
                                                                              *range(10, 20)]


def test_line_numbers_in_warnings_count_across_blocks(tmp_path, monkeypatch, capsys):
    from mexplore.store import journal

    monkeypatch.setattr(journal, "_BLOCK_BYTES", 100)
    lines = [json.dumps({"id": i, "status": "ok", "params": {}}) for i in range(30)]
    lines[17] = lines[17][:-5]  # damaged
    lines[25] = ""
    assert [r["id"] for r in journal.iter_records(journal_of(tmp_path, lines))] == [
        i for i in range(30) if i not in (17, 25)]
    err = capsys.readouterr().err
    assert "journal.jsonl:18: skipping a damaged journal line" in err and err.count("skipping") == 1


def test_the_table_keeps_each_columns_first_place_missing_values_and_nones(tmp_path):
    """Columns built a column at a time come in the order a frame built row by row has
    them: a column first seen in a later row goes after the first row's columns; a value a
    row lacks is NaN, a null it holds stays None in a column of objects."""
    lines = [
        {"id": 1, "status": "ok", "params": {"a": 1}, "objective": 1.0, "metrics": {"m": 2},
         "started": 1.0, "ended": 3.5, "rank": 1, "host": "n", "gpu": None, "attempt": 0, "error": None},
        {"id": 0, "status": "failed", "params": {"a": 2, "b": [1, 2]}, "objective": None,
         "error": "Traceback\n  ...\nValueError: x, y", "kind": "sim", "slots": [2, 3], "hosts": ["h", "h", "g"]},
        {"id": 2, "status": "ok", "params": {"b": None}, "metrics": {"m": "NaN", "k": 4}},
    ]
    frame = results_frame(journal_of(tmp_path, [json.dumps(line) for line in lines]), ("objective",))
    assert list(frame.columns) == ["id", "kind", "status", "objective", "p:a", "m:m", "started", "ended",
                                   "duration", "rank", "host", "gpu", "attempt", "error", "algorithm_time",
                                   "lag", "p:b", "slots", "hosts", "m:k"]
    assert frame["id"].tolist() == [0, 1, 2]
    assert frame["p:b"].tolist()[0] == [1, 2] and frame["p:b"].tolist()[2] is None
    assert math.isnan(frame["p:b"].tolist()[1])  # task 1 has no b
    assert frame["error"].tolist()[0] == "ValueError: x, y"
    assert frame["slots"].tolist()[0] == "2 3" and frame["hosts"].tolist()[0] == "h,g"
    assert frame["duration"].tolist() == [0.0, 2.5, 0.0]
    assert frame["kind"].tolist()[0] == "sim" and frame["kind"].isna().tolist() == [False, True, True]
    assert math.isnan(frame["m:m"][2]) and frame["m:k"].tolist()[2] == 4


def test_results_csv_reads_back_as_the_frame_with_hostile_text_and_numbers(tmp_path, monkeypatch):
    """results.csv is written a column at a time: what any CSV reader gets back is the
    frame, whatever the text (commas, quotes, line breaks, NUL) and the numbers (NaN, ±inf,
    the largest and smallest floats), over several chunks of rows."""
    from mexplore.store import csv_text

    monkeypatch.setattr(csv_text, "ROWS_AT_ONCE", 3)
    texts = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\ronly", "", " padded ", "é ☃", "nul\0in", None]
    floats = [0.1, math.nan, math.inf, -math.inf, 1e-9, 5e-324, 1.7976931348623157e308, -0.0, 1e16, 2.5]
    frame = pd.DataFrame({
        "id": list(range(10)), "text, with comma": texts, "x": floats,
        "flag": [True, False] * 5, "mixed": [1, "a", None, 2.5, [1, 2], math.nan, "b", 3, None, "c"],
        "alike": [1, 1.0, True, "1", None, False, 0, 0.0, "0", "x"],  # equal to factorize, not as cells
    })
    write_results_csv(frame, tmp_path)
    back = pd.read_csv(tmp_path / "results.csv", keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(frame.columns)
    assert back["id"].tolist() == list(range(10))
    assert back["text, with comma"].fillna("").tolist() == [text or "" for text in texts]
    np.testing.assert_array_equal(back["x"].to_numpy(), np.array(floats))  # NaN in place, every bit of the rest
    assert back["flag"].tolist() == [True, False] * 5
    assert back["mixed"].fillna("").astype(str).tolist() == ["1", "a", "", "2.5", "[1, 2]", "", "b", "3", "", "c"]
    assert back["alike"].fillna("").astype(str).tolist() == ["1", "1.0", "True", "1", "", "False", "0", "0.0", "0", "x"]
    write_results_h5(tmp_path, frame)
    stored = read_table(tmp_path)
    assert stored["text, with comma"].tolist() == [(text or "").replace("\0", "\u2400") for text in texts]
    assert stored["alike"].tolist() == ["1", "1.0", "True", "1", "", "False", "0", "0.0", "0", "x"]


def test_results_csv_of_one_column_keeps_its_empty_rows(tmp_path):
    write_results_csv(pd.DataFrame({"only": ["a", None, ""]}), tmp_path)
    assert (tmp_path / "results.csv").read_text() == 'only\na\n""\n""\n'
    assert len(pd.read_csv(tmp_path / "results.csv")) == 3


def test_an_objective_named_as_a_metric_column_takes_the_metric_only_where_a_row_has_it(tmp_path):
    lines = [{"id": 0, "status": "ok", "params": {}, "objective": 1.0, "metrics": {"loss": 5.0}},
             {"id": 1, "status": "ok", "params": {}, "objective": 2.0}]
    frame = results_frame(journal_of(tmp_path, [json.dumps(line) for line in lines]), ("m:loss",))
    assert frame["m:loss"].tolist() == [5.0, 2.0] and list(frame.columns).count("m:loss") == 1


def test_lines_written_by_orjson_read_back_as_the_standard_librarys(tmp_path, monkeypatch):
    """The master writes journal lines with orjson, falling back to the standard library
    where orjson would write a value differently (NaN and infinities as null) or refuses it:
    every hostile record reads back exactly as the standard library's line of it does."""
    import collections
    import datetime
    import enum

    from mexplore.store import journal

    class Sub(float):
        pass

    Pair = collections.namedtuple("Pair", "x y")
    Color = enum.Enum("Color", "RED")
    nested = current = {}
    for _ in range(300):  # deeper than orjson's 254 levels
        current["d"] = current = {}
    results = [
        Result(task_id=0, status=Status.OK, params={"x": 0.1, "act": "é\u2028\x85", "n": 7}, objective=0.5,
               metrics={"acc": 1e-05, "big": 1e300, "neg": -0.0}, started=1.7e9, host="node"),
        Result(task_id=1, status=Status.OK, params={"x": math.nan}, objective=math.inf, metrics={"m": -math.inf}),
        Result(task_id=2, status=Status.FAILED, params={"null": "null"}, error="null pointer\x00 in 'null'"),
        Result(task_id=3, status=Status.OK, params={"a": np.float64("nan"), "b": np.arange(3), "c": np.float32(2.5),
                                                    "d": np.array([[1.0, np.inf]])[:, ::-1]}, objective=None),
        Result(task_id=4, status=Status.OK, params={"huge": 2**70, "neg": -(2**64)}, metrics={"none": None}),
        Result(task_id=5, status=Status.OK, params={"s": "\ud800"}, metrics={1: 2, None: 3}),
        Result(task_id=6, status=Status.OK, params={"when": datetime.datetime(2026, 12, 3, 13, 0)},
               metrics={"deep": nested, "t": (1, 2)}),
        Result(task_id=7, status=Status.OK, params={"x": 1.0}, objective=[1.0, math.nan], gpu="0", kind="sim"),
        Result(task_id=8, status=Status.OK, params={"sub": Sub(0.5), "nan": Sub("nan"), "half": np.float16(0.1),
                                                    "pair": Pair(1, 2), "color": Color.RED,
                                                    "day": np.datetime64("2020-01-02T03:04:05")}),
    ]
    fast, plain = tmp_path / "fast.jsonl", tmp_path / "plain.jsonl"
    for path in (fast, plain):
        writer = JournalWriter.open(path)
        writer.append(results)
        writer.close()
        monkeypatch.setattr(journal, "_encoded", lambda record: journal._line(record).encode())
    assert fast.read_bytes() != plain.read_bytes(), "the fast path wrote nothing of its own"
    assert [repr(record) for record in journal.iter_records(fast)] == \
        [repr(record) for record in journal.iter_records(plain)]
    assert len(list(journal.iter_records(fast))) == len(results)


def test_a_long_journal_read_in_parts_by_helpers_gives_the_one_process_table_and_warnings(
        tmp_path, monkeypatch, capsys):
    """Cut into parts read by helper processes at once, a journal gives the table and the
    warnings (at their line numbers) of a read in one process: a part with a damaged or a
    non-finite line is read again by the master, and so is one whose helper fails."""
    import sys

    from mexplore.store import table, table_part

    lines = [json.dumps({"id": i, "status": "ok", "params": {"x": i / 7, "c": "ab"[i % 2]}, "objective": i * 0.5,
                         "metrics": {f"m{i // 100}": 1.0}, "rank": 1 + i % 3, "host": "n"}) for i in range(300)]
    lines[40] = '{"id": 40, "status": "ok", "params": {"x": 1}, "objective": "NaN", "metrics": {"m": "Infinity"}}'
    lines[250] = '{"id": 250, "status": "ok", "par'  # damaged: in the last part
    lines.insert(120, "")  # a blank line counts in the numbering
    path = journal_of(tmp_path, lines)
    serial = results_frame(path, ["objective"])
    said = capsys.readouterr().err
    assert ":252: skipping a damaged journal line" in said

    monkeypatch.setattr(table, "PART_BYTES", 2000)
    monkeypatch.setattr(table, "usable_cores", lambda: 3)
    started, start = [], table_part.start_helpers
    monkeypatch.setattr(table_part, "start_helpers", lambda path, spans, objectives: started.extend(spans) or
                        start(path, spans, objectives))
    pd.testing.assert_frame_equal(results_frame(path, ["objective"]), serial)
    assert capsys.readouterr().err == said and len(started) == 2  # the master reads the first part

    monkeypatch.setattr(sys, "executable", "/bin/false")  # helpers that fail at once
    pd.testing.assert_frame_equal(results_frame(path, ["objective"]), serial)
    assert capsys.readouterr().err == said


def test_a_part_of_damaged_lines_alone_keeps_the_ids_integers(tmp_path, monkeypatch, capsys):
    """A part of the journal with no readable line (a crash left a run of garbage) adds no
    rows and changes no column's type."""
    from mexplore.store import table

    good = [json.dumps({"id": i, "status": "ok", "params": {"x": 0.5}, "objective": 1.0, "attempt": 0})
            for i in range(4)]
    path = journal_of(tmp_path, good[:2] + ['{"id": 9, "sta' + "x" * 200] * 12 + good[2:])
    serial = results_frame(path, ["objective"])
    monkeypatch.setattr(table, "PART_BYTES", 100)
    monkeypatch.setattr(table, "usable_cores", lambda: 3)
    in_parts = results_frame(path, ["objective"])
    pd.testing.assert_frame_equal(in_parts, serial)
    assert in_parts["id"].dtype == np.int64 and in_parts["id"].tolist() == [0, 1, 2, 3]
