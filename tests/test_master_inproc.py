"""The master's loop over the in-process twin of the transport: same logic, no MPI."""

import textwrap
from pathlib import Path

from helpers import REPO, journal, run_cli, write_study
from mexplore.config import load_study
from mexplore.queue.master_state import ID_BLOCK
from mexplore.runtime.entry import run_inproc


def make_study(tmp_path: Path, extra: str = "", budget: int = 30) -> Path:
    return write_study(tmp_path, f"""
        [study]
        name = "inproc"
        budget = {budget}
        objective = "loss"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{REPO / 'tests/models/toy.py'}:quadratic"
        [algorithm]
        seed = 2
        {extra}
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


def algorithm_plugin(folder: Path, name: str, body: str) -> str:
    """Write an Algorithm subclass ``name`` with ``body`` to a file; the study line naming it."""
    source = folder / f"{name.lower()}.py"
    methods = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    source.write_text(f"from mexplore.algorithms.base import Algorithm\nclass {name}(Algorithm):\n{methods}\n")
    return f'name = "{source}:{name}"'


def test_three_worker_threads_share_the_budget_exactly(tmp_path):
    path = make_study(tmp_path, 'policy = "queue"\nbacklog = 2')
    assert run_inproc(lambda: load_study(path), "off", workers=3) == 0
    records = journal(tmp_path / "out")
    assert sorted(r["id"] for r in records) == list(range(30))
    assert {r["rank"] for r in records} <= {1, 2, 3}


def test_a_second_run_on_the_same_output_resumes_and_grows_the_budget(tmp_path):
    path = make_study(tmp_path, budget=10)
    assert run_inproc(lambda: load_study(path), "off", workers=2) == 0
    assert run_inproc(lambda: load_study(path, ["study.budget=25"]), "off", workers=2) == 0
    records = journal(tmp_path / "out")
    ids = sorted(r["id"] for r in records)
    assert len(records) == 25 and len(set(ids)) == 25
    # the second session numbers after the whole block the first one reserved: ids skip, never repeat
    assert ids[:10] == list(range(10)) and ids[10] >= ID_BLOCK and ids[10:] == list(range(ids[10], ids[10] + 15))
    assert len({r["params"]["x"] for r in records}) == 25


def test_a_bad_study_stops_the_workers_and_returns_2(tmp_path, capsys):
    path = make_study(tmp_path, 'policy = "sometimes"')
    assert run_inproc(lambda: load_study(path), "off", workers=2) == 2
    assert "algorithm.policy" in capsys.readouterr().err


def test_bad_algorithm_options_name_the_algorithm(tmp_path, capsys):
    path = make_study(tmp_path, 'options = { population = 3 }')
    assert run_inproc(lambda: load_study(path), "off", workers=1) == 1
    assert "algorithm 'random' rejected [algorithm.options]" in capsys.readouterr().err


def test_resuming_with_another_space_warns(tmp_path, capsys):
    path = make_study(tmp_path, budget=4)
    assert run_inproc(lambda: load_study(path), "off") == 0
    assert run_inproc(lambda: load_study(path, ["space.x.high=2.0", "study.budget=6"]), "off") == 0
    err = capsys.readouterr().err
    assert "warning: resuming" in err and "with a different [space] than the run" in err
    assert len(journal(tmp_path / "out")) == 6


def test_an_algorithm_asked_for_n_that_returns_more_stops_the_run(tmp_path, capsys):
    path = make_study(tmp_path, algorithm_plugin(tmp_path, "Greedy", """
        def ask(self, n):
            return [{'x': 0.5}] * (n + 1)
    """))
    assert run_inproc(lambda: load_study(path), "log", workers=1) == 1
    err = capsys.readouterr().err
    assert "Greedy.ask(1) returned 2 parameter sets" in err and "mexplore: stopped: 0/30 done" in err
    assert not (tmp_path / "out" / "journal.jsonl").read_text()


def test_an_algorithm_that_waits_for_nothing_stops_the_run_instead_of_hanging(tmp_path, capsys):
    path = make_study(tmp_path, algorithm_plugin(tmp_path, "Stuck", """
        def ask(self, n):
            return []
    """))
    assert run_inproc(lambda: load_study(path), "off", workers=1) == 1
    assert "Stuck.ask(1) proposed nothing while no task is running" in capsys.readouterr().err


def test_resuming_a_sweep_whose_last_points_are_done_ends_cleanly(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "sweep"
        objective = "loss"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{REPO / 'tests/models/toy.py'}:quadratic"
        [space]
        x = {{ type = "grid", values = [0.1, 0.2, 0.3, 0.4] }}
    """)
    assert run_inproc(lambda: load_study(path, ["study.budget=2"]), "off") == 0
    assert run_inproc(lambda: load_study(path), "off") == 0
    assert run_inproc(lambda: load_study(path), "off") == 0
    assert sorted(r["params"]["x"] for r in journal(tmp_path / "out")) == [0.1, 0.2, 0.3, 0.4]


def test_an_algorithm_constructor_that_raises_is_named(tmp_path, capsys):
    path = make_study(tmp_path, algorithm_plugin(tmp_path, "Picky", """
        def __init__(self, space, info=None, *, step=0):
            raise ValueError('step must be > 0')
        def ask(self, n):
            return []
    """))
    assert run_inproc(lambda: load_study(path), "off", workers=1) == 1
    assert "failed to start: ValueError: step must be > 0" in capsys.readouterr().err


def test_an_output_path_that_is_a_file_is_refused_before_anything_runs(tmp_path, capsys):
    path = make_study(tmp_path, budget=4)
    (tmp_path / "out").write_text("not a directory")
    refused = run_cli("run", str(path), "-n", "2", cwd=tmp_path)  # refused before any rank starts
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and f"{tmp_path / 'out'} is a file, expected a directory" in refused.stderr
    assert run_inproc(lambda: load_study(path), "off", workers=1) == 1  # and by the master itself
    err = capsys.readouterr().err
    assert f"{tmp_path / 'out'} is a file, expected a directory" in err and "Traceback" not in err
    assert (tmp_path / "out").read_text() == "not a directory"
