"""Python-function models: what a return value means, and failures as data."""

import json
import math

import numpy as np
import pytest
from helpers import REPO

from mexplore.models import ModelSpec, build_model
from mexplore.models.outcome import ERROR_LIMIT, interpret, parse_text
from mexplore.runtime.signals import Interrupted
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


class _BadFloat:
    def __float__(self):
        raise RuntimeError("no float for you")


class _BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr for you")


class _InterruptingFloat:
    def __float__(self):
        raise KeyboardInterrupt


class _UnreadableMapping(dict):
    def items(self):
        raise KeyboardInterrupt


def _nested(depth):
    outer = inner = []
    for _ in range(depth - 1):
        inner.append([])
        inner = inner[0]
    return outer


def _cycle():
    metrics = {"loss": 1.0}
    metrics["me"] = metrics
    return metrics


@pytest.mark.parametrize("returned,reason", [
    (10**400, "objective 'loss' is int of about 401 digits, beyond the float range"),
    (10**5000, "objective 'loss' is int of about 5001 digits, beyond the float range"),
    ({"loss": 1, "count": 10**400}, "metric 'count' holds int of about 401 digits, beyond the float range"),
    (_cycle(), "metric 'me' contains itself"),
    ({"loss": 1, "deep": _nested(5000)}, "metric 'deep' nested deeper than 100 levels"),
    ({"loss": 1, "deep": _nested(101)}, "metric 'deep' nested deeper than 100 levels"),
    (_BadFloat(), "objective 'loss' is _BadFloat <"),
    ({"loss": _BadFloat()}, "expected a number"),
    ({"loss": 1, "odd": _BadRepr()}, "metric 'odd' is a _BadRepr whose repr raised RuntimeError: no repr for you"),
    (_InterruptingFloat(), "expected a number"),
    (_UnreadableMapping(loss=1), "the model's return value could not be read: KeyboardInterrupt"),
    ({"loss": 1, "blob": "x" * (2 << 20)}, "the metrics take more than the limit of 1 MiB as JSON (at metric 'blob')"),
    ({"loss": 1, "many": list(range(300_000))}, "more than the limit of 1 MiB"),
    ({"loss": 1, "array": np.zeros(2 << 20)}, "metric 'array' is an array of 2097152 values"),
], ids=["int-400-digits", "int-5000-digits", "metric-400-digits", "cycle", "nested-5000", "nested-101",
        "bad-float", "bad-float-in-dict", "bad-repr", "interrupting-float", "unreadable-mapping", "long-text",
        "long-list", "big-array"])
def test_values_that_cannot_be_recorded_are_a_failed_result_with_the_reason(returned, reason):
    outcome = interpret(returned, ("loss",))
    assert outcome.status is Status.FAILED and outcome.objective is None and outcome.metrics == {}
    assert reason in outcome.error


def test_recorded_metrics_are_plain_bounded_json():
    returned = {"loss": np.float64(1.0), "nan": math.nan, "inf": -math.inf, "pair": (1, np.int64(2)),
                "keys": {1: "one"}, "text": "lone \udc80", "deep": _nested(100), "list": list(range(100_000))}
    outcome = interpret(returned, ("loss",))
    assert outcome.status is Status.OK and type(outcome.objective) is float
    metrics = outcome.metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == -math.inf  # the journal spells them
    assert metrics["pair"] == [1, 2] and metrics["keys"] == {"1": "one"} and metrics["text"] == "lone \\udc80"
    assert len(metrics["list"]) == 100_000
    json.dumps(metrics, allow_nan=True).encode()  # plain data, valid UTF-8


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "GeneratorExit"])
def test_keyboard_interrupt_or_generator_exit_raised_by_a_model_is_its_failure(tmp_path, raised):
    module = tmp_path / "raises.py"
    module.write_text(f"def model(params, ctx):\n    raise {raised}('from the model')\n")
    model = build_model(ModelSpec(("objective",), str(tmp_path), python=f"{module}:model"), 1, "h", print)
    failed = model(Task(0, {}))
    assert failed.status is Status.FAILED and f"{raised}: from the model" in failed.error


def test_a_stop_signal_still_interrupts_a_python_model(tmp_path):
    module = tmp_path / "interrupted.py"
    module.write_text("import signal\nfrom mexplore.runtime.signals import Interrupted\n"
                      "def model(params, ctx):\n    raise Interrupted(signal.SIGTERM)\n")
    model = build_model(ModelSpec(("objective",), str(tmp_path), python=f"{module}:model"), 1, "h", print)
    with pytest.raises(Interrupted):  # what the worker's signal handler raises; the worker catches it
        model(Task(0, {}))


def test_a_huge_error_text_is_cut_to_its_beginning_and_end(tmp_path):
    module = tmp_path / "chatty.py"
    module.write_text("def model(params, ctx):\n    raise ValueError('x' * 10_000_000 + ' the end')\n")
    model = build_model(ModelSpec(("objective",), str(tmp_path), python=f"{module}:model"), 1, "h", print)
    error = model(Task(0, {})).error
    assert len(error) < ERROR_LIMIT + 100 and error.startswith("rank 1 on h:") and error.endswith(" the end\n")
    assert "characters cut" in error


@pytest.mark.parametrize("text,reason", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested deeper than 100 levels"),
    ('{"loss": ' + "1" * 5000 + "}", "a number beyond the float range"),
], ids=["nested-100000", "5000-digits-in-json"])
def test_unreadable_json_is_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_text(text)


def test_a_400_digit_number_in_json_is_beyond_the_float_range():
    outcome = interpret(parse_text('{"loss": ' + "1" * 400 + "}"), ("loss",))
    assert outcome.status is Status.FAILED and "beyond the float range" in outcome.error
    assert interpret(parse_text("1" * 400), ("loss",)).error == "objective 'loss' is inf"
