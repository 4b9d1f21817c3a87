"""Malformed studies: each one is refused before anything starts, with one message that
names the file (or the ``--set``) and fits on a screen, never a traceback (issue 12, item 8).

The corpus is mutations of the quickstart study, one problem each, the way users and
attackers write them: values beyond TOML's integer range, NUL characters, nesting 600
deep, parameter names that cannot be columns, unparsable ``--set`` values, an algorithm,
options or a pruner the registry refuses, a FIFO in place of the file. Checked in-process
through the same two calls ``mexplore run`` makes before any rank starts (``load_study``,
``check_study``); a few go through the real CLI to see the exit status and the one line.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import REPO, run_cli

from mexplore.config import load_study
from mexplore.errors import MexploreError
from mexplore.runtime.session import check_study

BASE = (REPO / "studies" / "quickstart.toml").read_text()
SCREEN = 600
"""A message longer than this does not fit on a screen: it hides what to fix."""


def sub(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


MALFORMED = {
 "set_unterminated_table": (BASE, ['space.x={type="float", low=0']),
 "set_unterminated_list": (BASE, ['space.cost=[1, 2']),
 "set_unterminated_string": (BASE, ['study.name="abc']),
 "budget_huge": (BASE, ["study.budget=99999999999999999999999"]),
 "budget_huge_file": (sub("budget = 60", "budget = 99999999999999999999999"), []),
 "budget_zero": (sub("budget = 60", "budget = 0"), []),
 "budget_string": (sub("budget = 60", 'budget = "60"'), []),
 "budget_float": (sub("budget = 60", 'budget = 1.5'), []),
 "param_empty_name": (sub("x = {", '"" = {'), []),
 "param_slash_name": (sub("x = {", '"a/b" = {'), []),
 "param_space_name": (sub("x = {", '"a b" = {'), []),
 "param_nul_name": (sub("x = {", '"a\\u0000b" = {'), []),
 "param_brace_name": (sub("x = {", '"{x}" = {'), []),
 "deep_constant": (sub("cost = 0.02", "cost = " + "[" * 600 + "]" * 600), []),
 "deep_constant_50": (sub("cost = 0.02", "cost = " + "[" * 50 + "1" + "]" * 50), []),
 "deep_set": (BASE, ["space.cost=" + "[" * 600 + "]" * 600]),
 "deep_options": (sub('seed = 7', 'seed = 7\noptions = ' + "{a=" * 300 + "1" + "}" * 300), []),
 "algo_typo": (BASE, ["algorithm.name=randon"]),
 "algo_option": (BASE, ["algorithm.name=optuna.tpe", "algorithm.options.foo=1"]),
 "grid_floats": (BASE, ["algorithm.name=grid"]),
 "pruner_typo": (BASE, ["algorithm.name=optuna.tpe", "algorithm.pruner=medain"]),
 "pruner_option": (BASE, ["algorithm.name=optuna.tpe", "algorithm.pruner=median", "algorithm.pruner_options.bogus=2"]),
 "pruner_random": (BASE, ["algorithm.pruner=median"]),
 "policy_typo": (BASE, ["algorithm.policy=fast"]),
 "seed_huge": (BASE, ["algorithm.seed=99999999999999999999999"]),
 "seed_neg": (BASE, ["algorithm.seed=-1"]),
 "low_gt_high": (BASE, ["space.x.low=20"]),
 "low_nan": (sub("low = -5.0", "low = nan"), []),
 "high_inf": (sub("high = 10.0", "high = inf"), []),
 "high_1e400": (sub("high = 10.0", "high = 1e400"), []),
 "log_neg": (sub('low = -5.0, high = 10.0', 'low = -5.0, high = 10.0, log = true'), []),
 "int_huge": (sub('x = { type = "float", low = -5.0, high = 10.0 }', 'x = { type = "int", low = 0, high = 99999999999999999999999 }'), []),
 "int_float_bounds": (sub('x = { type = "float", low = -5.0, high = 10.0 }', 'x = { type = "int", low = 0.5, high = 3 }'), []),
 "cat_empty": (sub('x = { type = "float", low = -5.0, high = 10.0 }', 'x = { type = "categorical", choices = [] }'), []),
 "cat_dup": (sub('x = { type = "float", low = -5.0, high = 10.0 }', 'x = { type = "categorical", choices = [1, 1] }'), []),
 "grid_empty": (sub('x = { type = "float", low = -5.0, high = 10.0 }', 'x = { type = "grid", values = [] }'), []),
 "type_typo": (sub('x = { type = "float"', 'x = { type = "flaot"'), []),
 "unknown_section": (BASE + "\n[foo]\na = 1\n", []),
 "unknown_key": (sub('budget = 60', 'budget = 60\nbudjet = 3'), []),
 "name_slash": (sub('name = "quickstart"', 'name = "a/b"'), []),
 "name_dotdot": (sub('name = "quickstart"', 'name = ".."'), []),
 "name_empty": (sub('name = "quickstart"', 'name = ""'), []),
 "name_missing": (sub('name = "quickstart"\n', ''), []),
 "objective_empty_list": (sub('objective = "loss"', 'objective = []'), []),
 "objective_empty": (sub('objective = "loss"', 'objective = ""'), []),
 "direction_typo": (sub('direction = "minimize"', 'direction = "min"'), []),
 "direction_count": (sub('objective = "loss"\ndirection = "minimize"', 'objective = ["a", "b"]\ndirection = ["minimize", "maximize", "minimize"]'), []),
 "model_missing": (sub('[model]\npython = "model-scripts/quickstart.py:branin"', ''), []),
 "model_both": (sub('[model]\n', '[model]\ncommand = ["true"]\n'), []),
 "model_file_missing": (sub('quickstart.py:branin', 'nothere.py:branin'), []),
 "model_func_typo": (sub('quickstart.py:branin', 'quickstart.py:brannin'), []),
 "model_no_colon": (sub('quickstart.py:branin', 'quickstart.py'), []),
 "command_empty": (sub('python = "model-scripts/quickstart.py:branin"', 'command = []'), []),
 "command_string": (sub('python = "model-scripts/quickstart.py:branin"', 'command = "echo hi"'), []),
 "command_nul": (sub('python = "model-scripts/quickstart.py:branin"', 'command = ["ec\\u0000ho"]'), []),
 "command_unknown_placeholder": (sub('python = "model-scripts/quickstart.py:branin"', 'command = ["echo", "{nope}"]'), []),
 "timeout_bad": (sub('[model]\n', '[model]\ntimeout = "abc"\n'), []),
 "timeout_neg": (sub('[model]\n', '[model]\ntimeout = -1\n'), []),
 "timeout_huge": (sub('[model]\n', '[model]\ntimeout = 1e300\n'), []),
 "retries_neg": (sub('[model]\n', '[model]\nretries = -1\n'), []),
 "retries_huge": (sub('[model]\n', '[model]\nretries = 99999999999999999999\n'), []),
 "on_error_typo": (sub('[model]\n', '[model]\non_error = "ignore"\n'), []),
 "space_empty": (sub('x = { type = "float", low = -5.0, high = 10.0 }\ny = { type = "float", low = 0.0, high = 15.0 }\ncost = 0.02', ''), []),
 "space_not_table": (BASE, ['space=3']),
 "study_not_table": (BASE, ['study=3']),
 "flush_neg": (BASE + "\n[cache]\nflush_every = -1\n", []),
 "keep_bad": (BASE + "\n[cache]\nkeep = \"top:0\"\n", []),
 "keep_typo": (BASE + "\n[cache]\nkeep = \"some\"\n", []),
 "set_no_eq": (BASE, ['study.budget']),
 "set_empty_key": (BASE, ['=5']),
 "set_double_dot": (BASE, ['study..budget=5']),
 "set_through_value": (BASE, ['space.cost.low=1']),
 "set_low_string": (BASE, ['space.x.low=abc']),
 "initial_bad": (sub('seed = 7', 'seed = 7\ninitial = [{x = 100.0, y = 1.0}]'), []),
 "initial_unknown": (sub('seed = 7', 'seed = 7\ninitial = [{z = 1.0}]'), []),
 "from_missing": (sub('seed = 7', 'seed = 7\nfrom = "/nonexistent/run"'), []),
 "batch_zero": (sub('seed = 7', 'seed = 7\nbatch_size = 0'), []),
 "step_too_big": (sub('x = { type = "float", low = -5.0, high = 10.0 }', 'x = { type = "int", low = 0, high = 3, step = 10 }'), []),
 "float_step_log": (sub('low = -5.0, high = 10.0', 'low = 1.0, high = 10.0, log = true, step = 0.5'), []),
 "empty_file": ("", []),
 "binary": (None, []),
 "not_utf8": (b"name = \"\xff\xfe\"\n", []),
 "long_name": (sub('name = "quickstart"', 'name = "' + "a" * 5000 + '"'), []),
 "constant_huge_int": (sub('cost = 0.02', 'cost = 99999999999999999999999999'), []),
}


@pytest.fixture()
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "model-scripts", tmp_path / "model-scripts")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(path: Path, text: str | bytes | None) -> None:
    if text is None:
        path.write_bytes(bytes(range(256)) * 2)  # binary: not UTF-8, not TOML
    elif isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_study_is_refused_naming_its_file(name: str, in_folder: Path) -> None:
    text, overrides = MALFORMED[name]
    path = in_folder / f"{name}.toml"
    _write(path, text)
    with pytest.raises(MexploreError) as refused:
        check_study(load_study(path, [*overrides, f'study.output="{in_folder / "out"}"']))
    message = str(refused.value)
    assert str(path) in message or "--set" in message, message
    assert len(message) <= SCREEN, message
    assert not (in_folder / "out").exists()  # refused before anything was written


def test_the_cli_refuses_in_one_line(in_folder: Path) -> None:
    """Through ``mexplore run``: exit 2 and one line each, for the cases that once hung,
    recursed or became a string."""
    deep = in_folder / "deep.toml"
    _write(deep, MALFORMED["deep_constant"][0])
    fifo = in_folder / "fifo.toml"
    os.mkfifo(fifo)
    quickstart = in_folder / "quickstart.toml"
    _write(quickstart, BASE)
    for args in ([str(deep)], [str(fifo)], [str(quickstart), "--set", 'space.x={type="float", low=0'],
                 [str(quickstart), "--set", "study.budget=99999999999999999999999"], [str(quickstart), "-n", "0"]):
        done = run_cli("run", *args, "-o", str(in_folder / "out"), cwd=in_folder, timeout=60)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("mexplore: error:"), (args, done.stderr)
    assert not (in_folder / "out").exists()
