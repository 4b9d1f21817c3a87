"""``[algorithm] name = "points"``: CANDLE-style unrolled parameter files, with their own keys per line."""

from __future__ import annotations

import pytest

from helpers import journal, run_cli, write_study
from mexplore.config.study import load_study
from mexplore.errors import StudyFileError

MODEL = '''
def evaluate(params, ctx):
    return params.get("lr", 0.5) * params.get("epochs", 3)
'''


def bare_study(folder, tables):
    """A study of the model above with the given [algorithm] and [space] tables."""
    (folder / "model.py").write_text(MODEL)
    return write_study(folder, '''
        [study]
        name = "upf"
        [model]
        python = "model.py:evaluate"
    ''' + tables)


def study(folder, points_file, extra=""):
    (folder / "model.py").write_text(MODEL)
    return write_study(folder, f'''
        [study]
        name = "upf"
        output = "out"
        [model]
        python = "model.py:evaluate"
        [algorithm]
        name = "points"
        file = "{points_file}"
        {extra}
    ''')


def test_lines_with_their_own_keys_need_no_space_and_keep_their_id_as_a_label(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "upf-1.txt").write_text('{"id": "RUN000", "epochs": 1, "lr": 0.1}\n{"id": "RUN001", "epochs": 2}\n'
                                        '\n# the dense one\n{"id": 7, "dense": "500 100", "lr": 0.01}\n')
    loaded = load_study(study(tmp_path, "upf-1.txt"))
    assert loaded.study.budget == 3  # the file's length
    assert loaded.algorithm.points == ({"label": "RUN000", "epochs": 1, "lr": 0.1}, {"label": "RUN001", "epochs": 2},
                                       {"label": "7", "dense": "500 100", "lr": 0.01})


@pytest.mark.mpi
def test_a_points_file_runs_every_line_once_and_a_second_run_resumes_to_nothing(tmp_path):
    (tmp_path / "upf.jsonl").write_text("".join(f'{{"id": "R{i}", "epochs": {i % 3 + 1}}}\n' for i in range(5))
                                        + '{"id": "R5", "lr": 0.25, "note": "odd one"}\n')
    path = study(tmp_path, "upf.jsonl")
    env = {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert sorted(r["params"]["label"] for r in records) == [f"R{i}" for i in range(6)]
    assert {r["params"]["label"]: r["objective"] for r in records}["R5"] == 0.75
    again = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert len(journal(tmp_path / "out")) == 6  # nothing ran twice


def test_csv_points_leave_empty_cells_out_and_a_space_checks_every_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "points.csv").write_text("id,lr,epochs\nA,0.1,2\nB,,3\n")
    loaded = load_study(study(tmp_path, "points.csv"))
    assert loaded.algorithm.points == ({"label": "A", "lr": 0.1, "epochs": 2}, {"label": "B", "epochs": 3})
    (tmp_path / "points.csv").write_text("id,lr\nA,0.1\nB,0.7\n")
    with pytest.raises(StudyFileError) as error:
        load_study(study(tmp_path, "points.csv", '[space]\nlr = { type = "float", low = 0.0, high = 0.5 }'))
    message = str(error.value)
    assert "study.toml" in message and "algorithm.file" in message and "line 3" in message and "lr = 0.7" in message


@pytest.mark.parametrize("content, says", [
    ('{"lr": 0.1}\n[1, 2]\n', "line 2: [1, 2] (list), not a dict"),
    ('{"lr": 0.1}\n{"bad key": 1}\n', "line 2: a point with the key 'bad key'"),
    ('{"lr": 0.1\n', "line 1: Expecting ',' delimiter"),
    ('{"id": "a", "label": "b"}\n', "line 1 has both"),
    ("\n", "has none"),
    ('{"lr": ' + "[" * 5000 + "]" * 5000 + "}\n", "line 1: nested too deep"),  # hostile ones
    ('{"lr": ' + "[" * 40 + "]" * 40 + "}\n", "at most 32 levels"),
    ('{"lr": 123456789012345678901234567890}\n', "64-bit range"),
], ids=["list", "bad-key", "not-json", "id-and-label", "empty", "nested-5000", "nested-40", "huge-int"])
def test_a_bad_line_is_named_by_its_number_before_anything_runs(tmp_path, monkeypatch, content, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "upf.txt").write_text(content)
    with pytest.raises(StudyFileError) as error:
        load_study(study(tmp_path, "upf.txt"))
    assert "upf.txt" in str(error.value) and "algorithm.file" in str(error.value) and says in str(error.value)


def test_a_file_without_points_and_points_without_a_file_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = bare_study(tmp_path, '''
        [algorithm]
        name = "points"
    ''')
    with pytest.raises(StudyFileError, match="algorithm.file.*with name = \"points\""):
        load_study(path)
    path.write_text(path.read_text().replace('name = "points"', 'name = "random"\nfile = "x.jsonl"'))
    with pytest.raises(StudyFileError, match="algorithm.file"):
        load_study(path)


def test_an_algorithm_that_samples_the_space_needs_a_parameter_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = bare_study(tmp_path, '''
        [algorithm]
        name = "optuna.tpe"
        [space]
        epochs = 3
    ''')
    with pytest.raises(StudyFileError, match="only constants; an algorithm that brings its own points"):
        load_study(path)


def test_initial_takes_a_upf_file_whose_points_fit_the_space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "warm.txt").write_text('{"id": "RUN000", "lr": 0.1}\n{"id": "RUN001", "lr": 0.2}\n')
    path = write_study(tmp_path, '''
        [study]
        name = "warm"
        [model]
        python = "model.py:evaluate"
        [algorithm]
        name = "random"
        initial = "warm.txt"
        [space]
        lr = { type = "float", low = 0.0, high = 1.0 }
        epochs = 2
    ''')
    assert load_study(path).algorithm.initial == ({"lr": 0.1, "epochs": 2, "label": "RUN000"},
                                                  {"lr": 0.2, "epochs": 2, "label": "RUN001"})


def test_a_nul_in_a_value_is_data_for_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "upf.txt").write_text('{"name": "a\\u0000b"}\n')
    assert load_study(study(tmp_path, "upf.txt")).algorithm.points == ({"name": "a\0b"},)


def test_the_space_comes_from_an_emews_ga_parameter_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ga.json").write_text('''[
      {"name": "batch_size", "type": "ordered", "element_type": "int", "values": [32, 64, 128], "sigma": 1},
      {"name": "epochs", "type": "int", "lower": 1, "upper": 5, "sigma": 20},
      {"name": "dropout", "type": "float", "lower": 0, "upper": 0.9},
      {"name": "act", "type": "categorical", "element_type": "string", "values": ["relu", "tanh"]},
      {"name": "warm", "type": "logical"},
      {"name": "model", "type": "constant", "value": "nt3"}
    ]''')
    path = bare_study(tmp_path, '''
        [space]
        from = "ga.json"
        epochs = { type = "int", low = 1, high = 10 }
    ''')
    space = load_study(path).to_dict()["space"]
    assert space == {
        "batch_size": {"type": "grid", "values": [32, 64, 128]},
        "epochs": {"type": "int", "low": 1, "high": 10, "step": 1, "log": False},
        "dropout": {"type": "float", "low": 0.0, "high": 0.9, "log": False},
        "act": {"type": "categorical", "choices": ["relu", "tanh"]},
        "warm": {"type": "categorical", "choices": [False, True]},
        "model": "nt3",
    }
    (tmp_path / "ga.json").write_text('[{"name": "epochs", "type": "int", "lower": 1}]')
    with pytest.raises(StudyFileError, match=r"space.from.*ga.json item 0 \(epochs\) has no 'upper'"):
        load_study(path)


def test_repeats_multiply_the_default_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "upf.txt").write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    loaded = load_study(study(tmp_path, "upf.txt", "options = { repeats = 3 }"))
    assert loaded.study.budget == 9


def test_csv_cells_keep_their_line_breaks_and_a_header_names_each_key_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "points.csv").write_bytes('\ufeffname,note\nA,"two\nlines"\r\n'.encode())
    assert load_study(study(tmp_path, "points.csv")).algorithm.points == ({"name": "A", "note": "two\nlines"},)
    (tmp_path / "points.csv").write_text("x,y,x\n1,2,3\n")
    with pytest.raises(StudyFileError, match="header names each key once.*'x' twice"):
        load_study(study(tmp_path, "points.csv"))
    (tmp_path / "upf.txt").write_text('{"note": "a\u2028b", "id": {"run": 1}}\n')
    assert load_study(study(tmp_path, "upf.txt")).algorithm.points == ({"note": "a\u2028b", "label": '{"run": 1}'},)


@pytest.mark.parametrize("content, says", [
    ('[{"name": "x", "type": "float", "lower": 0, "upper": 1}, {"name": "x", "type": "int", "lower": 5, "upper": 9}]',
     "'x' twice"),
    ('[{"name": "x", "type": "float", "lower": 5, "upper": 1}]', "ga.json: x.high = 1.0 is not a number > low (5.0)"),
])
def test_a_bad_emews_parameter_file_is_named(tmp_path, monkeypatch, content, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ga.json").write_text(content)
    path = bare_study(tmp_path, '''
        [space]
        from = "ga.json"
    ''')
    with pytest.raises(StudyFileError) as error:
        load_study(path)
    assert "space.from" in str(error.value) and says in str(error.value)
