"""Study files: what a valid file becomes, and what every kind of mistake says."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
import tomli_w

from mexplore.config import (
    AlgorithmSection,
    ModelSection,
    Study,
    StudySection,
    load_study,
)
from mexplore.errors import MISSING, StudyFileError
from mexplore.space import Categorical, Float, Grid, Int, Space

FULL = """
[study]
name = "mlp-hpo"
budget = 200
objective = ["val_loss", "time"]
direction = ["minimize", "minimize"]
output = "out/mlp"

[model]
python = "model-scripts/mlp.py:train"

[algorithm]
name = "optuna.tpe"
policy = "queue"
backlog = 4
batch_size = 16
seed = 1
[algorithm.options]
n_startup_trials = 10

[space]
lr = { type = "float", low = 1e-4, high = 1e-1, log = true }
hidden = { type = "int", low = 16, high = 256, step = 16 }
activation = { type = "categorical", choices = ["relu", "tanh"] }
noise = { type = "grid", values = [0.0, 0.1, 0.2] }
epochs = 20
tag = "baseline"
"""

MINIMAL = """
[study]
name = "sweep"

[model]
python = "models.noise:run"

[space]
noise = { type = "grid", values = [0.0, 0.1] }
repeat = { type = "grid", values = [1, 2, 3] }
dataset = "mnist"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a model script, as a user's project would."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model-scripts").mkdir()
    (tmp_path / "model-scripts" / "mlp.py").write_text("def train(params, ctx):\n    return 0.0\n")
    return tmp_path


def write(project: Path, text: str, name: str = "study.toml") -> str:
    """Write a study file and return its path as a user would type it (relative)."""
    (project / name).write_text(textwrap.dedent(text))
    return name


def error_for(path: str, overrides: tuple[str, ...] = ()) -> StudyFileError:
    with pytest.raises(StudyFileError) as caught:
        load_study(path, overrides)
    return caught.value


def edited(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- valid files


def test_full_study_with_every_parameter_type(project: Path) -> None:
    study = load_study(write(project, FULL))

    assert study.source == project / "study.toml"
    assert study.study == StudySection(
        name="mlp-hpo",
        budget=200,
        objective=("val_loss", "time"),
        direction=("minimize", "minimize"),
        output=project / "out" / "mlp",
    )
    assert study.model == ModelSection(python=f"{project / 'model-scripts' / 'mlp.py'}:train")
    assert study.algorithm == AlgorithmSection(
        name="optuna.tpe", policy="queue", backlog=4, batch_size=16, seed=1,
        options={"n_startup_trials": 10},
    )
    assert study.space == Space(
        parameters={
            "lr": Float(low=1e-4, high=1e-1, log=True),
            "hidden": Int(low=16, high=256, step=16),
            "activation": Categorical(choices=("relu", "tanh")),
            "noise": Grid(values_=(0.0, 0.1, 0.2)),
        },
        constants={"epochs": 20, "tag": "baseline"},
    )
    assert list(study.space.parameters) == ["lr", "hidden", "activation", "noise"]


def test_defaults_are_filled(project: Path) -> None:
    study = load_study(write(project, MINIMAL))

    assert study.study == StudySection(
        name="sweep", budget=None, objective=("objective",), direction=("minimize",),
        output=project / "runs" / "sweep",
    )
    assert study.model.python == "models.noise:run"  # a module path is kept as written
    assert study.algorithm == AlgorithmSection(
        name="grid", policy="async", backlog=8, batch_size=None, seed=None, options={}
    )


def test_default_algorithm_is_random_when_a_range_is_present(project: Path) -> None:
    text = MINIMAL + 'lr = { type = "float", low = 0.1, high = 1.0 }\n'
    assert load_study(write(project, text)).algorithm.name == "random"


def test_one_direction_applies_to_every_objective(project: Path) -> None:
    text = edited(FULL, 'direction = ["minimize", "minimize"]', 'direction = "maximize"')
    assert load_study(write(project, text)).study.direction == ("maximize", "maximize")


def test_int_range_may_be_a_single_value(project: Path) -> None:
    text = MINIMAL + 'layers = { type = "int", low = 3, high = 3 }\n'
    assert load_study(write(project, text)).space.parameters["layers"] == Int(low=3, high=3)


def test_round_trip_through_to_dict(project: Path) -> None:
    for text in (FULL, MINIMAL):
        study = load_study(write(project, text))
        resolved = study.to_dict() | {"provenance": {"mexplore": "0.1", "host": "x"}}
        (project / "runs").mkdir(exist_ok=True)
        copy = project / "runs" / "study.toml"
        copy.write_text(tomli_w.dumps(resolved))

        again = load_study(copy)

        assert again == study
        assert dataclasses.astuple(again.study) == dataclasses.astuple(study.study)
        assert again.space.parameters == study.space.parameters


def test_to_dict_paths_are_absolute_and_defaults_explicit(project: Path) -> None:
    resolved = load_study(write(project, MINIMAL)).to_dict()

    assert resolved["study"]["output"] == str(project / "runs" / "sweep")
    assert resolved["algorithm"] == {"name": "grid", "policy": "async", "backlog": 8, "options": {}}
    assert "budget" not in resolved["study"]  # absent means "until the algorithm is done"


def test_overrides_set_any_key(project: Path) -> None:
    path = write(project, FULL)
    study = load_study(
        path,
        [
            "study.budget=2000",
            "study.name=other",  # not TOML: taken as a plain string
            "algorithm.options.n_startup_trials=5",
            "space.lr.high=0.5",
            "space.epochs=[1, 2]",
        ],
    )

    assert study.study.budget == 2000
    assert study.study.name == "other"
    assert study.algorithm.options == {"n_startup_trials": 5}
    assert study.space.parameters["lr"] == Float(low=1e-4, high=0.5, log=True)
    assert study.space.constants["epochs"] == [1, 2]


# --------------------------------------------------------------------------- mistakes


def assert_names(
    error: StudyFileError, source: str, key: str, value: object, expected: str
) -> None:
    """The message names the file, the key, the value found and what was expected."""
    assert (error.source, error.key, error.value) == (source, key, value)
    assert expected in error.expected
    message = str(error)
    assert message.startswith(f"{source}: {key} = ")
    assert expected in message
    if value is not MISSING:
        assert repr(value) in message


def test_unknown_top_level_table_suggests_the_close_one(project: Path) -> None:
    error = error_for(write(project, FULL.replace("[algorithm]", "[algoritm]", 1)))

    assert_names(error, "study.toml", "algoritm", error.value, "one of the keys study, model")
    assert error.hint == "did you mean 'algorithm'?"


def test_unknown_study_key_suggests_the_close_one(project: Path) -> None:
    error = error_for(write(project, edited(FULL, "budget = 200", "budgt = 5")))

    assert_names(error, "study.toml", "study.budgt", 5, "one of the keys name, budget, objective")
    assert str(error) == (
        "study.toml: study.budgt = 5: expected one of the keys name, budget, objective, "
        "direction, output, optuna_journal, kind (did you mean 'budget'?)"
    )


def test_a_typo_is_named_rather_than_the_key_it_hides(project: Path) -> None:
    error = error_for(write(project, edited(FULL, 'name = "mlp-hpo"', 'nmae = "mlp-hpo"')))

    assert error.key == "study.nmae"
    assert error.hint == "did you mean 'name'?"


def test_command_model_with_timeout_retries_and_placeholders(project: Path) -> None:
    (project / "model-scripts" / "sim.sh").write_text("echo 1\n")
    text = edited(FULL, 'python = "model-scripts/mlp.py:train"',
                  'command = ["bash", "model-scripts/sim.sh", "{params_file}", "--lr={lr}"]\n'
                  'timeout = "1h30m"\nretries = 2\non_error = "abort"\nenv = { OMP_NUM_THREADS = "4" }')
    model = load_study(write(project, text)).model
    assert model.command == ("bash", str(project / "model-scripts/sim.sh"), "{params_file}", "--lr={lr}")
    assert (model.timeout, model.retries, model.on_error, model.env) == (5400.0, 2, "abort", {"OMP_NUM_THREADS": "4"})


@pytest.mark.parametrize("value,seconds", [("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), (45, 45.0), (0.5, 0.5)])
def test_timeouts(project: Path, value: object, seconds: float) -> None:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    text = edited(FULL, "[model]\n", f"[model]\nisolate = true\ntimeout = {shown}\n")
    assert load_study(write(project, text)).model.timeout == seconds


@pytest.mark.parametrize("line,key,expected", [
    ('isolate = true\ntimeout = "soon"', "model.timeout", "a duration such as"),
    ("isolate = true\ntimeout = 0", "model.timeout", "a duration such as"),
    ('isolate = true\ncommand = ["sim"]', "model", "exactly one of python"),
    ('on_error = "ignore"', "model.on_error", "one of 'record', 'continue', 'abort'"),
])
def test_bad_model_keys(project: Path, line: str, key: str, expected: str) -> None:
    error = error_for(write(project, edited(FULL, "[model]\n", f"[model]\n{line}\n")))
    assert error.key == key and expected in str(error)


def test_unknown_key_in_a_parameter_table(project: Path) -> None:
    text = edited(FULL, "step = 16", "steps = 16")
    error = error_for(write(project, text))

    expected = "one of the keys type, low, high, step, log"
    assert_names(error, "study.toml", "space.hidden.steps", 16, expected)
    assert error.hint == "did you mean 'step'?"


def test_unknown_parameter_type(project: Path) -> None:
    error = error_for(write(project, edited(FULL, 'type = "categorical"', 'type = "categorial"')))

    expected = "one of 'float', 'int', 'categorical', 'grid'"
    assert_names(error, "study.toml", "space.activation.type", "categorial", expected)
    assert error.hint == "did you mean 'categorical'?"


def test_parameter_table_without_type(project: Path) -> None:
    error = error_for(write(project, MINIMAL + "x = { low = 1, high = 2 }\n"))

    assert_names(error, "study.toml", "space.x.type", MISSING, "one of 'float', 'int'")
    assert "(missing)" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "key", "value", "expected"),
    [
        ("budget = 200", "budget = -3", "study.budget", -3, "an integer >= 1"),
        ("budget = 200", 'budget = "200"', "study.budget", "200", "an integer >= 1"),
        ("budget = 200", "budget = 2.5", "study.budget", 2.5, "an integer >= 1"),
        ("budget = 200", "budget = true", "study.budget", True, "an integer >= 1"),
        ('name = "mlp-hpo"', 'name = "a/b"', "study.name", "a/b", "letters, digits"),
        ('name = "mlp-hpo"', 'name = ""', "study.name", "", "letters, digits"),
        ("high = 1e-1", "high = 1e-5", "space.lr.high", 1e-5, "a number > low"),
        ("high = 1e-1", 'high = "big"', "space.lr.high", "big", "a number"),
        ("low = 1e-4", "low = 0", "space.lr.low", 0, "a number > 0, because log = true"),
        ("high = 256", "high = 8", "space.hidden.high", 8, "an integer >= low"),
        ("low = 16", "low = 16.5", "space.hidden.low", 16.5, "an integer"),
        ("step = 16", "step = 0", "space.hidden.step", 0, "an integer >= 1"),
        ("step = 16", "step = 16, log = true", "space.hidden.step", 16, "1, because log = true"),
        ('["relu", "tanh"]', '["relu", "relu"]', "space.activation.choices", ["relu", "relu"],
         "without repeated values"),
        ('["relu", "tanh"]', "[]", "space.activation.choices", [], "a non-empty list"),
        ("[0.0, 0.1, 0.2]", "[]", "space.noise.values", [], "a non-empty list"),
        ('policy = "queue"', 'policy = "fast"', "algorithm.policy", "fast",
         "one of 'batch', 'async', 'queue'"),
        ("backlog = 4", "backlog = -1", "algorithm.backlog", -1, "an integer >= 0"),
        ("batch_size = 16", "batch_size = 0", "algorithm.batch_size", 0, "an integer >= 1"),
        ('direction = ["minimize", "minimize"]', 'direction = "up"', "study.direction", "up",
         "'minimize' or 'maximize'"),
        ('direction = ["minimize", "minimize"]', 'direction = ["minimize"]', "study.direction",
         ["minimize"], "a list of 2 of them"),
        ('objective = ["val_loss", "time"]', "objective = []", "study.objective", [], "key name"),
        ('python = "model-scripts/mlp.py:train"', 'python = "model-scripts/mlp.py"', "model.python",
         "model-scripts/mlp.py", '"path/to/file.py:function"'),
        ('python = "model-scripts/mlp.py:train"', 'python = "pkg.mod:not valid"', "model.python",
         "pkg.mod:not valid", '"package.module:function"'),
    ],
)
def test_bad_values(
    project: Path, old: str, new: str, key: str, value: object, expected: str
) -> None:
    error = error_for(write(project, edited(FULL, old, new)))

    assert_names(error, "study.toml", key, value, expected)


def test_missing_model_file_is_named(project: Path) -> None:
    text = edited(FULL, "model-scripts/mlp.py:train", "model-scripts/gone.py:train")
    error = error_for(write(project, text))

    value = "model-scripts/gone.py:train"
    assert_names(error, "study.toml", "model.python", value, "file.py:function")
    assert str(project / "model-scripts" / "gone.py") in error.hint


def test_missing_space(project: Path) -> None:
    text = MINIMAL[: MINIMAL.index("[space]")]
    error = error_for(write(project, text))

    assert_names(error, "study.toml", "space", MISSING, "at least one parameter")
    assert str(error).startswith("study.toml: space = (missing): expected")


def test_empty_space(project: Path) -> None:
    error = error_for(write(project, MINIMAL[: MINIMAL.index("[space]")] + "[space]\n"))

    assert_names(error, "study.toml", "space", MISSING, "at least one parameter: algorithm 'grid' draws")


def test_missing_required_name(project: Path) -> None:
    error = error_for(write(project, edited(MINIMAL, 'name = "sweep"', "")))

    assert_names(error, "study.toml", "study.name", MISSING, "a name of at most 128 letters")


def test_constant_of_an_unsupported_kind(project: Path) -> None:
    error = error_for(write(project, MINIMAL + "when = 1979-05-27\n"))

    assert error.key == "space.when"
    assert "a parameter table or a constant" in str(error)


def test_bad_toml_names_the_file_and_the_line(project: Path) -> None:
    error = error_for(write(project, '[study]\nname = "x"\nbudget = \n'))

    assert error.source == "study.toml"
    assert str(error).startswith("study.toml: invalid TOML: ")
    assert "line 3" in str(error)


def test_missing_file(project: Path) -> None:
    error = error_for("studies/nope.toml")

    assert error.source == "studies/nope.toml"
    assert str(error).startswith("studies/nope.toml: no such file")


def test_provenance_table_is_accepted_and_ignored(project: Path) -> None:
    path = write(project, MINIMAL + '\n[provenance]\nmexplore = "0.1"\n')
    assert load_study(path) == load_study(write(project, MINIMAL, "plain.toml"))


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize("override", ["study.budget", "=5", "study..budget=5", "  =x"])
def test_malformed_override(project: Path, override: str) -> None:
    error = error_for(write(project, FULL), (override,))

    assert error.source == "--set"
    assert str(error).startswith("--set: ")
    assert "key=value" in error.expected


def test_override_of_an_unknown_key_says_set(project: Path) -> None:
    error = error_for(write(project, FULL), ("study.budgt=5",))

    source = "study.toml (--set study.budgt=5)"
    assert_names(error, source, "study.budgt", 5, "one of the keys name, budget")
    assert error.hint == "did you mean 'budget'?"


def test_override_of_a_bad_value_says_set(project: Path) -> None:
    error = error_for(write(project, FULL), ("study.budget=-3",))

    assert str(error) == (
        "study.toml (--set study.budget=-3): study.budget = -3: expected an integer >= 1"
    )


def test_override_that_breaks_a_rule_with_another_key_says_set(project: Path) -> None:
    error = error_for(write(project, FULL), ("space.lr.low=0.5",))

    source = "study.toml (--set space.lr.low=0.5)"
    assert_names(error, source, "space.lr.high", 0.1, "a number > low (0.5)")


def test_error_in_the_file_does_not_blame_an_unrelated_override(project: Path) -> None:
    error = error_for(write(project, edited(FULL, "budget = 200", "budget = 0")), ("study.name=x",))

    assert error.source == "study.toml"


def test_override_can_add_a_parameter(project: Path) -> None:
    study = load_study(write(project, FULL), ['space.dropout={type="float", low=0.0, high=0.5}'])

    assert study.space.parameters["dropout"] == Float(low=0.0, high=0.5)


def test_override_that_makes_an_incomplete_parameter_says_set(project: Path) -> None:
    error = error_for(write(project, FULL), ("space.dropout.high=0.5",))

    source = "study.toml (--set space.dropout.high=0.5)"
    assert_names(error, source, "space.dropout.type", MISSING, "one of 'float'")


def test_override_through_a_constant_is_refused(project: Path) -> None:
    error = error_for(write(project, FULL), ("space.epochs.low=1",))

    assert_names(error, "study.toml (--set space.epochs.low=1)", "space.epochs", 20, "a table")


def test_override_value_parsing(project: Path) -> None:
    path = write(project, FULL)
    overrides = ['study.name="2024"', "study.output=runs/x y", "algorithm.options.a={b = 1}"]
    study = load_study(path, overrides)

    assert study.study.name == "2024"
    assert study.study.output == project / "runs" / "x y"
    assert study.algorithm.options["a"] == {"b": 1}


def test_study_is_a_frozen_plain_object(project: Path) -> None:
    study = load_study(write(project, MINIMAL))

    assert isinstance(study, Study)
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.study = None  # type: ignore[misc]


def test_objective_may_not_take_a_results_table_column_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("def f(p, c):\n    return 0\n")
    (tmp_path / "s.toml").write_text(
        '[study]\nname = "a"\nobjective = "error"\n[model]\npython = "m.py:f"\n'
        '[space]\nx = { type = "float", low = 0, high = 1 }\n'
    )
    with pytest.raises(StudyFileError, match=r"study.objective = 'error': expected key names other than id"):
        load_study("s.toml")


def test_an_algorithm_file_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("def f(p, c):\n    return 0\n")
    (tmp_path / "algo.py").write_text("def run(queue, space, options):\n    pass\n")
    (tmp_path / "s.toml").write_text(
        '[study]\nname = "a"\n[model]\npython = "m.py:f"\n[algorithm]\nname = "algo.py:run"\n'
        '[space]\nx = { type = "float", low = 0, high = 1 }\n'
    )
    assert load_study("s.toml").algorithm.name == f"{tmp_path / 'algo.py'}:run"
    (tmp_path / "s.toml").write_text((tmp_path / "s.toml").read_text().replace("algo.py", "nope.py"))
    with pytest.raises(StudyFileError, match="no such file"):
        load_study("s.toml")


def test_command_placeholders_must_name_a_task_field_or_parameter(project: Path) -> None:
    text = edited(FULL, 'python = "model-scripts/mlp.py:train"', 'command = ["sim", "{lr}", "{nope}"]')
    error = error_for(write(project, text))
    assert error.key == "model.command.2" and "{nope} is neither a task field nor a parameter" in str(error)


def test_python_models_need_isolate_for_timeout_env_and_cwd(project: Path) -> None:
    error = error_for(write(project, edited(FULL, "[model]\n", '[model]\ntimeout = "10m"\n')))
    assert error.key == "model.timeout" and "add isolate = true" in str(error)
    text = edited(FULL, "[model]\n", '[model]\ntimeout = "10m"\nisolate = true\n')
    assert load_study(write(project, text)).model.timeout == 600.0
