"""Hostile values: what a model returns or a task receives that cannot be recorded is that
task's failure, with the reason; the run goes on, and a resume does not trip over it."""

from __future__ import annotations

import json
import math
import queue
import random
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import run_cli, write_study

from mexplore.models import ModelSpec, build_model
from mexplore.models.process import RESULT_LINE_LIMIT, _MarkerLines, run_program
from mexplore.store.results_file import read_table
from mexplore.types import Status, Task

PYTHON_MODEL = '''
import math


class BadFloat:
    def __float__(self):
        raise RuntimeError("no float for you")


class Mine(BaseException):
    """Not an Exception: a bare ``except Exception`` in a worker would let it through."""


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def model(params, ctx):
    case = params["case"]
    if case.startswith("ok"):
        ctx.report(0, math.nan)
        return {"loss": 0.5, "a": 1, "a/b": 2, "": 3, "nan": math.nan, "inf": -math.inf}
    if case == "big-int":
        return 10**400
    if case == "big-metric":
        return {"loss": 1.0, "count": 10**400}
    if case == "cycle":
        metrics = {"loss": 1.0}
        metrics["me"] = metrics
        return metrics
    if case == "deep":
        deep = []
        for _ in range(5000):
            deep = [deep]
        return {"loss": 1.0, "deep": deep}
    if case == "bad-float":
        return BadFloat()
    if case == "bad-repr":
        return {"loss": 1.0, "odd": BadRepr()}
    if case == "huge":
        return {"loss": 1.0, "blob": "x" * (2 << 20)}
    if case == "keyboard-interrupt":
        raise KeyboardInterrupt("not a real Ctrl-C")
    if case == "generator-exit":
        raise GeneratorExit
    if case == "own-base-exception":
        raise Mine("a BaseException of the model's own")
    raise ValueError(f"unknown case {case!r}")
'''

PYTHON_CASES = {
    "big-int": "objective 'loss' is int of about 401 digits, beyond the float range",
    "big-metric": "metric 'count' holds int of about 401 digits, beyond the float range",
    "cycle": "metric 'me' contains itself",
    "deep": "metric 'deep' nested deeper than 100 levels",
    "bad-float": "objective 'loss' is BadFloat",
    "bad-repr": "metric 'odd' is a BadRepr whose repr raised RuntimeError: no repr for you",
    "huge": "more than the limit of 1 MiB",
    "keyboard-interrupt": "KeyboardInterrupt: not a real Ctrl-C",
    "generator-exit": "GeneratorExit",
    "own-base-exception": "Mine: a BaseException of the model's own",
}

COMMAND_MODEL = '''
import json
import os
import sys

mode = sys.argv[1]


def result_file(text):
    with open(os.environ["MEXPLORE_RESULT_FILE"], "w") as out:
        out.write(text)


if mode.startswith("ok"):
    result_file('{"objective": 1.0, "nan": nan}')
elif mode == "deep-file":
    result_file("[" * 100_000 + "]" * 100_000)
elif mode == "digits-file":
    result_file('{"objective": ' + "1" * 400 + "}")
elif mode == "1mb-file":
    result_file(json.dumps({"objective": 2.0, "blob": "x" * 1_000_000}))
elif mode == "17mib-file":
    result_file(" " * (17 << 20) + "1.0")
elif mode == "100kib-line":
    print("MEXPLORE_RESULT " + json.dumps({"objective": 3.0, "blob": "y" * 100_000}))
elif mode == "2mib-line":
    print("MEXPLORE_RESULT " + "1" * (2 << 20))
else:
    sys.exit(f"unknown mode {mode!r}")
'''

COMMAND_CASES = {
    "deep-file": "the result file holds no result: JSON nested deeper than 100 levels",
    "digits-file": "objective 'objective' is int of about 400 digits, beyond the float range",
    "17mib-file": "the result file is larger than the limit of 16 MiB",
    "2mib-line": "the MEXPLORE_RESULT line is longer than the limit of 1 MiB",
    "nul\0byte": "parameter 'mode' holds a NUL byte, which a program cannot receive in its arguments",
}


def command_model(tmp_path: Path):
    script = tmp_path / "hostile_command.py"
    script.write_text(COMMAND_MODEL)
    spec = ModelSpec(("objective",), str(tmp_path / "local"), command=(sys.executable, str(script), "{mode}"))
    return build_model(spec, rank=1, host="h", report=lambda *_, send=True: None)


@pytest.mark.parametrize("mode", sorted(COMMAND_CASES))
def test_a_command_result_that_cannot_be_recorded_is_a_failed_task(tmp_path, mode):
    result = command_model(tmp_path)(Task(0, {"mode": mode}))
    assert result.status is Status.FAILED and result.error.endswith(COMMAND_CASES[mode])


@pytest.mark.parametrize("mode,objective", [("1mb-file", 2.0), ("100kib-line", 3.0)])
def test_results_up_to_the_documented_limits_are_read(tmp_path, mode, objective):
    result = command_model(tmp_path)(Task(0, {"mode": mode}))
    assert (result.status, result.objective, result.error) == (Status.OK, objective, None)


def test_marker_lines_are_found_however_the_output_is_cut_into_blocks():
    lines = [b"chatter", b"MEXPLORE_REPORT 1 0.5", b"MEXPLORE_RESULTS are not this", b"MEXPL",
             b"x MEXPLORE_RESULT 9", b"MEXPLORE_RESULT " + b"7" * 300, b"MEXPLORE_REPORT 2 0.25",
             b"", b"MEXPLORE_RESULT 1.5"]
    stream = b"\n".join(lines)  # the last line has no newline
    rng = random.Random(0)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(0, 30)))
        reports: queue.SimpleQueue = queue.SimpleQueue()
        markers = _MarkerLines(reports)
        for start, end in zip([0, *cuts], [*cuts, len(stream)]):
            markers.scan(stream[start:end])
        markers.end()
        assert markers.result_line == "1.5" and not markers.result_too_long
        assert [reports.get(), reports.get()] == [(1.0, 0.5), (2.0, 0.25)] and reports.empty()


def test_a_result_line_over_the_limit_is_flagged_and_a_later_one_wins(tmp_path):
    child = (f"import sys\nsys.stdout.write('MEXPLORE_RESULT ' + '1' * {RESULT_LINE_LIMIT + 1} + '\\n')\n"
             "sys.stdout.flush()\n")
    ended = _run(tmp_path, child)
    assert ended.result_line is None and ended.result_too_long
    ended = _run(tmp_path, child + "print('MEXPLORE_RESULT 2.5')\n")
    assert ended.result_line == "2.5" and not ended.result_too_long


def test_short_stderr_lines_are_read_in_bulk_with_a_bounded_tail(tmp_path):
    child = ("import sys\nchunk = b'error line\\n' * 100_000\n"
             "for _ in range(30):\n    sys.stderr.buffer.write(chunk)\nsys.stderr.write('the last words\\n')\n")
    ended = _run(tmp_path, child, limit=1 << 20)
    assert ended.returncode == 0 and ended.stderr_tail.endswith("error line\nthe last words\n")
    assert len(ended.stderr_tail) == 4096
    dropped = 30 * len(b"error line\n") * 100_000 + len(b"the last words\n") - (1 << 20)
    kept = (tmp_path / "err").read_bytes()
    assert kept.startswith(b"error line\n") and kept.endswith(f"[mexplore: {dropped} more bytes dropped]\n".encode())


def _run(tmp_path: Path, child: str, limit: int = 16 << 20):
    return run_program([sys.executable, "-c", child], cwd=tmp_path, env={}, stdout_path=tmp_path / "out",
                       stderr_path=tmp_path / "err", timeout=None, limit=limit, on_report=lambda *_: None)


# End to end, under mpiexec: the run goes on, and a resume with a larger budget too.

def _strict(constant):
    raise ValueError(f"{constant} is not RFC 8259 JSON")


def _study(folder: Path, model: str, values: list[str], budget: int, objective: str) -> Path:
    return write_study(folder, f"""
        [study]
        name = "hostile"
        objective = "{objective}"
        budget = {budget}
        output = "{folder / 'out'}"

        [model]
        {model}

        [algorithm]
        name = "grid"

        [space]
        {"case" if objective == "loss" else "mode"} = {{ type = "grid", values = {json.dumps(values)} }}
    """)


def _run_then_resume(folder: Path, path: Path, budget: int) -> dict:
    env = {"MEXPLORE_LOCAL_DIR": str(folder / "local")}
    first = run_cli("run", str(path), "-n", "3", cwd=folder, env=env, timeout=300)
    assert first.returncode == 4, first.stderr  # the first session's tasks all fail: no task finished ok
    again = run_cli("run", str(path), "-n", "3", "--set", f"study.budget={budget}", cwd=folder, env=env,
                    timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming after" in again.stderr
    lines = (folder / "out" / "journal.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=_strict) for line in lines]
    assert len(records) == budget and len({r["id"] for r in records}) == budget
    return records


@pytest.mark.mpi
def test_a_python_model_returning_hostile_values_fails_those_tasks_only(tmp_path):
    module = tmp_path / "hostile.py"
    module.write_text(textwrap.dedent(PYTHON_MODEL))
    values = [*PYTHON_CASES, "ok-1", "ok-nul\0", "ok-3"]
    path = _study(tmp_path, f'python = "{module}:model"', values, budget=len(PYTHON_CASES), objective="loss")
    records = _run_then_resume(tmp_path, path, budget=len(values))

    runs = {r["params"]["case"]: r for r in records}
    for case, reason in PYTHON_CASES.items():
        assert runs[case]["status"] == "failed" and reason in runs[case]["error"], case
    for case in ("ok-1", "ok-nul\0", "ok-3"):
        assert runs[case]["status"] == "ok" and runs[case]["metrics"]["nan"] == "NaN"
        assert runs[case]["reports"] == [[0, "NaN"]]
    table = read_table(tmp_path / "out")  # results.h5: metrics "a" and "a/b" side by side
    ok = table[table["status"] == "ok"]
    assert ok["m:a"].tolist() == [1, 1, 1] and ok["m:a/b"].tolist() == [2, 2, 2] and ok["m:"].tolist() == [3, 3, 3]
    assert all(math.isnan(value) for value in ok["m:nan"]) and set(ok["m:inf"]) == {-math.inf}
    assert "ok-nul\u2400" in set(table["p:case"])


@pytest.mark.mpi
def test_a_command_model_with_hostile_results_fails_those_tasks_only(tmp_path):
    script = tmp_path / "hostile_command.py"
    script.write_text(COMMAND_MODEL)
    values = [*COMMAND_CASES, "1mb-file", "100kib-line", "ok-1", "ok-2"]
    model = f'command = ["{sys.executable}", "{script}", "{{mode}}"]'
    path = _study(tmp_path, model, values, budget=len(COMMAND_CASES), objective="objective")
    records = _run_then_resume(tmp_path, path, budget=len(values))

    runs = {r["params"]["mode"]: r for r in records}
    for mode, reason in COMMAND_CASES.items():
        assert runs[mode]["status"] == "failed" and runs[mode]["error"].endswith(reason), mode
    for mode in ("1mb-file", "100kib-line", "ok-1", "ok-2"):
        assert runs[mode]["status"] == "ok", runs[mode]["error"]
    assert runs["ok-1"]["metrics"] == {"nan": "NaN"}
    assert len(read_table(tmp_path / "out")) == len(values)


@pytest.mark.mpi
def test_a_python_model_ending_its_process_is_named_with_the_remedy(tmp_path):
    """os._exit cannot be caught: the job ends, but the user learns which task on which rank
    did it and that isolate = true is the way to run such a model."""
    module = tmp_path / "exits.py"
    module.write_text("import os\n\ndef model(params, ctx):\n    os._exit(3)\n")
    path = _study(tmp_path, f'python = "{module}:model"', ["only"], budget=1, objective="loss")
    done = run_cli("run", str(path), "-n", "2", cwd=tmp_path, env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")},
                   timeout=300)
    assert done.returncode != 0
    assert "the model called os._exit(3) in task 0" in done.stderr, done.stderr
    assert "[model] isolate = true" in done.stderr
