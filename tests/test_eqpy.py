"""An EQ/Py genetic algorithm, written in EMEWS's idiom, runs unchanged under mpiexec (issue 15)."""

from __future__ import annotations

from collections import Counter

import pytest

from helpers import REPO, journal, killed_then_resumed, run_cli, write_study
from mexplore.compat.eqpy import parse_batch
from mexplore.errors import AlgorithmError
from mexplore.space import Float, Space

pytestmark = pytest.mark.mpi

GA = REPO / "tests" / "models" / "eqpy_ga"
GENERATIONS, POPULATION = 4, 8


def ga_study(folder, budget=None, options=None):
    budget_line = f"budget = {budget}" if budget else ""
    params = options or f"params = \"({GENERATIONS}, {POPULATION}, 7, '{GA / 'ga_params.json'}')\""
    return write_study(folder, f'''
        [study]
        name = "eqpy-ga"
        output = "out"
        {budget_line}
        [model]
        python = "{GA / 'model.py'}:rosenbrock"
        [algorithm]
        eqpy = "{GA / 'ga.py'}"
        [algorithm.options]
        {params}
        [space]
        from = "{GA / 'ga_params.json'}"
    ''')


def env_for(folder):
    return {"MEXPLORE_LOCAL_DIR": str(folder / "local")}


def points(output):
    return Counter(tuple(sorted(r["params"].items())) for r in journal(output))


def test_the_ga_runs_as_written_and_its_finals_land_in_the_output(tmp_path):
    done = run_cli("run", str(ga_study(tmp_path)), "-n", "3", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == GENERATIONS * POPULATION
    assert all(set(r["params"]) == {"x", "y", "shift", "kind", "epochs"} for r in records)
    best = float((tmp_path / "out" / "final_result-2").read_text())
    assert best == min(r["objective"] for r in records if r["status"] == "ok")
    assert '"epochs": 2' in (tmp_path / "out" / "final_result").read_text()


def test_killed_at_any_instant_it_resumes_to_the_same_points(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    done = run_cli("run", str(ga_study(reference)), "-n", "3", "--progress", "off", cwd=reference, env=env_for(reference))
    assert done.returncode == 0, done.stderr
    for killed_after in (3, 13):
        folder = tmp_path / f"killed-{killed_after}"
        folder.mkdir()
        path = ga_study(folder)
        again = killed_then_resumed(path, folder, killed_after, env=env_for(folder))
        assert again.returncode == 0, again.stderr
        assert points(folder / "out") == points(reference / "out")  # nothing lost, nothing twice
        assert (folder / "out" / "final_result").read_text() == (reference / "out" / "final_result").read_text()


def test_a_budget_cut_ends_the_module_with_a_clear_stop(tmp_path):
    done = run_cli("run", str(ga_study(tmp_path, budget=20)), "-n", "3", "--progress", "off",
                   cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    assert len(journal(tmp_path / "out")) == 20
    assert "the budget ended the EQ/Py module ga.py before it put DONE" in done.stderr
    assert not (tmp_path / "out" / "final_result").exists()


def test_a_module_that_raises_stops_the_run_with_its_traceback(tmp_path):
    done = run_cli("run", str(ga_study(tmp_path, options='params = "(4, 8)"')), "-n", "2", "--progress", "off",
                   cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode != 0
    assert "the EQ/Py module failed" in done.stderr and "ValueError" in done.stderr and "ga.py" in done.stderr


@pytest.mark.parametrize("message, expected", [
    ('{"x": 1.5};{"x": -0.5}', [{"x": 1.5}, {"x": -0.5}]),
    ('[{"x": 1}, {"x": 2}]', [{"x": 1}, {"x": 2}]),
    ("0.5;0.25", [{"x": 0.5, "k": 3}, {"x": 0.25, "k": 3}]),
])
def test_batches_come_as_json_points_a_json_list_or_comma_tuples(message, expected):
    assert parse_batch(message, Space({"x": Float(0, 2)}, {"k": 3}), GA / "ga.py") == expected


def test_a_batch_that_is_not_points_is_refused_naming_the_module():
    with pytest.raises(AlgorithmError, match="ga.py put the point '1,2'.*1 comma-separated values"):
        parse_batch("1,2", Space({"x": Float(0, 2)}, {}), GA / "ga.py")


def module_study(folder, module_name, body):
    (folder / "algo").mkdir()
    (folder / "algo" / module_name).write_text(body)
    (folder / "model.py").write_text("def f(params, ctx):\n    return params['x']\n")
    return write_study(folder, f'''
        [study]
        name = "eqpy-small"
        output = "out"
        [model]
        python = "model.py:f"
        [algorithm]
        eqpy = "{folder / 'algo' / module_name}"
        [space]
        x = {{ type = "float", low = 0.0, high = 10.0 }}
    ''')


def test_a_module_named_like_a_library_shadows_nothing(tmp_path):
    path = module_study(tmp_path, "csv.py", "import eqpy\n\ndef run():\n    eqpy.OUT_put('1.0;2.0;')\n"
                        "    assert eqpy.IN_get() == '1.0;2.0'\n    eqpy.OUT_put('DONE')\n")
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "results.csv").exists() and len(journal(tmp_path / "out")) == 2


def test_a_message_that_is_not_a_string_fails_the_module_where_it_was_put(tmp_path):
    path = module_study(tmp_path, "me.py", "import eqpy\n\ndef run():\n    eqpy.OUT_put(5)\n")
    done = run_cli("run", str(path), "-n", "2", "--progress", "off", cwd=tmp_path, env=env_for(tmp_path))
    assert done.returncode != 0
    assert "EQ/Py messages are strings, not int" in done.stderr and 'me.py", line 4' in done.stderr
