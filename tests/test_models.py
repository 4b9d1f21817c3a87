"""Python-function models: what a return value means, and failures as data."""

import math

import numpy as np
import pytest

from helpers import REPO
from mexplore.models import ModelSpec, build_model
from mexplore.models.outcome import interpret, parse_text
from mexplore.types import Status, Task


@pytest.mark.parametrize("returned,expected", [
    (1.5, (Status.OK, 1.5, {})),
    (np.float32(2.0), (Status.OK, 2.0, {})),
    ({"loss": 3, "acc": np.float64(0.5), "curve": np.arange(2)}, (Status.OK, 3.0, {"acc": 0.5, "curve": [0, 1]})),
])
def test_numbers_and_dicts_are_objectives_and_metrics(returned, expected):
    outcome = interpret(returned, ("loss",))
    assert (outcome.status, outcome.objective, outcome.metrics) == expected and outcome.error is None


@pytest.mark.parametrize("returned,reason", [
    (math.nan, "is nan"),
    (math.inf, "is inf"),
    ("garbage", "expected a number"),
    (None, "expected a number"),
    (True, "expected a number"),
    ({"acc": 1.0}, "returned no 'loss' (its keys: acc)"),
    ({"loss": [1, 2]}, "expected a number"),
])
def test_garbage_is_a_failed_result_with_the_reason(returned, reason):
    outcome = interpret(returned, ("loss",))
    assert outcome.status is Status.FAILED and outcome.objective is None and reason in outcome.error


def test_several_objectives_come_back_as_a_list():
    both = interpret({"a": 1, "b": 2.5}, ("a", "b"))
    assert (both.status, both.objective) == (Status.OK, [1.0, 2.5])
    assert "several objectives" in interpret(1.0, ("a", "b")).error


def test_an_exception_becomes_a_failed_result_with_traceback_rank_and_host(tmp_path):
    spec = ModelSpec(("objective",), str(tmp_path), python=f"{REPO / 'tests/models/toy.py'}:flaky")
    model = build_model(spec, rank=3, host="node7", report=print)
    failed = model(Task(5, {"x": 1}))
    assert failed.status is Status.FAILED and failed.task_id == 5
    assert failed.error.startswith("rank 3 on node7:") and "model blew up" in failed.error
    ok = model(Task(6, {"x": 4}))
    assert (ok.status, ok.objective, ok.rank, ok.host) == (Status.OK, 4.0, 3, "node7")
    assert ok.ended >= ok.started > 0


def test_sys_exit_in_a_model_is_data_too(tmp_path):
    module = tmp_path / "exits.py"
    module.write_text("import sys\ndef model(params, ctx):\n    sys.exit(3)\n")
    model = build_model(ModelSpec(("objective",), str(tmp_path), python=f"{module}:model"), 1, "h", print)
    assert model(Task(0, {})).status is Status.FAILED


def test_scratch_dir_is_made_on_first_use(tmp_path):
    module = tmp_path / "scratch.py"
    module.write_text("def model(params, ctx):\n    return float(ctx.scratch_dir.is_dir())\n")
    model = build_model(ModelSpec(("objective",), str(tmp_path), python=f"{module}:model"), 1, "h", print)
    assert model(Task(9, {})).objective == 1.0
    assert (tmp_path / "tasks" / "9").is_dir()


@pytest.mark.parametrize("text,expected", [
    ("3.5", 3.5),
    (' {"loss": 1, "acc": 0.5} ', {"loss": 1, "acc": 0.5}),
    ('{"error": nan, "steps": 10}', {"error": math.nan, "steps": 10}),
    ('{"a": -inf, "note": "nan"}', {"a": -math.inf, "note": "nan"}),
])
def test_external_results_are_numbers_or_json_with_c_style_nan(text, expected):
    parsed = parse_text(text)
    assert repr(parsed) == repr(expected)


def test_anything_else_is_refused():
    with pytest.raises(ValueError, match="neither a number nor JSON"):
        parse_text("loss: low")
