"""``mexplore new``: write a study file and a model script that run as they are.

The files written are often the first mexplore files a user reads, so the templates are
commented as a lesson: what each key means, where to change things, which page of the docs
goes deeper. The study is shaped to fit its algorithm (a sweep gets grid values and no
budget, a sampler gets ranges and a budget, a multi-objective algorithm gets two
objectives), because a scaffold the algorithm refuses teaches the wrong thing.

Both kinds of model compute the same stand-in for training (gradient descent on a bowl), so
a study's results look the same whichever kind the user picked.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from string import Template

from .algorithms.registry import NEEDS_A_SOURCE, available
from .config.study import is_study_name
from .errors import MexploreError

MODEL_KINDS = ("python", "command")


class ScaffoldError(MexploreError):
    """``mexplore new`` cannot write what was asked; nothing was written."""


@dataclass(frozen=True)
class Scaffold:
    """What ``mexplore new`` writes: the study and its model, paths relative to ``root``."""

    root: Path
    study: Path
    model: Path


# --------------------------------------------------------------------------- the study's shape


@dataclass(frozen=True)
class StudyShape:
    """How a study is shaped to suit its algorithm."""

    space: str
    budget: int | None  # None: the algorithm ends by itself (a sweep runs every point)
    objectives: int = 1  # 2: loss and cost, for algorithms that look for trade-offs
    options: tuple[tuple[str, str], ...] = ()  # (line, comment) of [algorithm.options]; none: no table
    note: str = ""  # what the algorithm needs that the user should know first


_SPACE_HEAD = """\
# What the algorithm chooses from. A table with a type is a parameter: float (low, high, log),
# int (low, high, step, log), categorical (choices) or grid (values). A plain value, such as
# steps = 20, is a constant: every task gets it unchanged. The model reads each entry as
# params["<name>"]. See study-file.md, "[space]".
"""

_NUMBER_RANGES = """\
lr = { type = "float", low = 1e-3, high = 0.3, log = true }       # log scale: useful values span decades
momentum = { type = "float", low = 0.0, high = 0.95 }
"""
_STEPS_RANGE = 'steps = { type = "int", low = 5, high = 50, step = 5 }\n'

_RANGES = (_SPACE_HEAD + _NUMBER_RANGES + 'update = { type = "categorical", choices = ["heavy-ball", "nesterov"] }\n'
           + _STEPS_RANGE)

_NUMBERS_ONLY = (_SPACE_HEAD + _NUMBER_RANGES + _STEPS_RANGE + 'update = "nesterov"    # a constant: CMA-ES '
                 "searches numbers (it would draw a categorical at random)\n")

_GRID = _SPACE_HEAD + """\
# A sweep runs every combination: here 3 x 3 x 2 = 18 tasks. The first entry varies slowest.
lr = { type = "grid", values = [0.01, 0.03, 0.1] }
momentum = { type = "grid", values = [0.0, 0.5, 0.9] }
update = { type = "categorical", choices = ["heavy-ball", "nesterov"] }   # every choice is swept too
steps = 20
"""

_SAMPLER = StudyShape(space=_RANGES, budget=30)

_FITS: dict[str, StudyShape] = {
    "grid": StudyShape(space=_GRID, budget=None, options=(
        ("# repeats = 3", "run every point 3 times, with a parameter repeat = 0, 1, 2 that"),
        ("", "seeds the model's noise: how much do results move? (howto-noise.md)"))),
    "optuna.grid": StudyShape(space=_GRID, budget=None),
    "sobol": StudyShape(space=_RANGES, budget=32,
                        note="a budget that is a power of two (16, 32, 64...) covers the space best"),
    "lhs": StudyShape(space=_RANGES, budget=30, options=(
        ("size = 30", "points per Latin hypercube design: the budget, for one design"),)),
    "optuna.tpe": StudyShape(space=_RANGES, budget=30, options=(
        ("# n_startup_trials = 10", "random trials before TPE models the results; any keyword"),
        ("", "argument of Optuna's TPESampler goes here"))),
    "optuna.cmaes": StudyShape(space=_NUMBERS_ONLY, budget=30),
    "optuna.gp": StudyShape(space=_RANGES, budget=30, note=(
        "optuna.gp needs PyTorch, which mexplore does not install: pip install torch")),
    "optuna.qmc": StudyShape(space=_RANGES, budget=32, options=(
        ('# qmc_type = "halton"', 'the default is "sobol"'),)),
    **{name: StudyShape(space=_RANGES, budget=40, objectives=2, options=(
        ("population_size = 10", "points per generation (Optuna's default, 50, suits larger budgets)"),))
       for name in ("optuna.nsga2", "optuna.nsga3")},
}
"""Algorithms whose study differs from the plain sampler's (``_SAMPLER``): ``random``,
``optuna.random`` and any plug-in get ranges, a budget and one objective."""


def fit_for(algorithm: str) -> StudyShape:
    """The study shape that ``algorithm`` runs well on (a plug-in gets the plain sampler's)."""
    return _FITS.get(algorithm, _SAMPLER)


# --------------------------------------------------------------------------- templates

_STUDY = Template("""\
# $name: a study scaffolded by `mexplore new` ($algorithm, $kind model).
# A study is one exploration: what to vary ([space]), what to run ([model]), who chooses the
# points ([algorithm]) and how many ([study] budget). Run it from the folder that holds
# studies/ and model-scripts/ (relative paths start there):
#     mexplore run studies/$name.toml          # add -n 4 for 4 ranks: the master and 3 workers
#     mexplore results runs/$name              # the best tasks so far, safe while it runs
# Any key can be changed for one run: --set study.budget=100. Every key is in study-file.md,
# the words in concepts.md (mexplore's docs).
$note
[study]
$study_name
$budget
$objectives
$output
                                  # put it on the parallel filesystem. Running again resumes it.

[model]
$model
[algorithm]
$algorithm_name
policy = "async"                  # how the queue feeds workers: async (a new task whenever one
                                  # frees), batch (wait for a whole batch), queue (for tasks of ms)
seed = 1                          # the same seed gives the same points; left out, one is drawn
                                  # and recorded in the output's study.toml
$options
[space]
$space""")

_SINGLE_OBJECTIVE = """\
objective = "loss"                # the key of the model's returned dict that the algorithm optimizes
direction = "minimize"            # or "maximize" (an accuracy, say)"""

_TWO_OBJECTIVES = """\
objective = ["loss", "cost"]      # two keys of the model's returned dict: the algorithm looks for
direction = ["minimize", "minimize"]  # the best trade-offs (results.csv marks them in column pareto)"""


_PYTHON_MODEL = Template("""\
# A Python function, FILE.py:FUNCTION, called as evaluate(params, ctx) once per task on a worker.
# Each worker imports the file once and keeps it loaded (models.md).
python = "model-scripts/$name.py:evaluate"
""")

_COMMAND_MODEL = Template("""\
# An external program, run once per task in a folder of its own, with no shell: the program,
# then its arguments. {python} is the worker's Python interpreter ("python3" works too for a
# script that needs nothing installed); {params_file} is the task's parameters as JSON; any
# {<parameter>} is that parameter's value. See models.md, "External commands".
command = ["{python}", "model-scripts/$name.py", "{params_file}"]
timeout = "1m"                    # a task still running after this is killed: status timeout
# retries = 1                     # run a failed or timed-out task again, up to this many times
""")

_DESCENT = '''\
def descend(lr, momentum, update, steps, report):
    """Gradient descent with momentum on the bowl (x^2 + 10 y^2) / 2 from (1, 1): a stand-in
    for training. Too large a learning rate diverges, too few steps stop short of the bottom."""
    curvature, position, velocity = (1.0, 10.0), [1.0, 1.0], [0.0, 0.0]
    loss = 0.5 * sum(c * p * p for c, p in zip(curvature, position))
    for step in range(steps):
        for i, c in enumerate(curvature):
            at = position[i] + momentum * velocity[i] if update == "nesterov" else position[i]
            velocity[i] = momentum * velocity[i] - lr * c * at
            position[i] += velocity[i]
        loss = 0.5 * sum(c * p * p for c, p in zip(curvature, position))
        report(step, loss)
    return loss
'''

_PYTHON_SCRIPT = Template('''\
"""The model of studies/$name.toml (scaffolded by `mexplore new`): a Python function.

mexplore imports this file once per worker and calls evaluate(params, ctx) once per task.
Replace descend() with your model (train a network, run a simulation) and keep the contract:

- params is a dict with one value per entry of [space]: params["lr"], params["steps"], ...
- ctx says where the task runs: ctx.task_id, ctx.rank, ctx.host, ctx.gpu, ctx.scratch_dir (a
  folder of its own on node-local disk), ctx.report(step, value) (an intermediate value,
  kept in the journal and seen by a pruner), ctx.save(name, array_or_path) (an output kept
  in the node-local cache, flushed to the output folder at the end: data.md).
- Return a dict holding the study's objective ("loss"): its other keys are kept as metrics
  (results.csv columns m:<key>). A bare number is the objective. An exception records the
  task as failed, with its traceback, and the run goes on.

See models.md in mexplore's docs.
"""


$descent

def evaluate(params, ctx):
    loss = descend(params["lr"], params["momentum"], params["update"], params["steps"], ctx.report)
    return {"loss": loss, "cost": params["steps"]}  # cost: what the evaluation took (here, steps)
''')

_COMMAND_SCRIPT = Template('''\
"""The model of studies/$name.toml (scaffolded by `mexplore new`): a program run once per task.

Called as: python $name.py PARAMS_FILE, in a task folder of its own on node-local disk. Any
program in any language can be a model if it keeps this contract (models.md, "External
commands"):

- read the parameters from the JSON file named on the command line (or in the environment
  variable MEXPLORE_PARAMS_FILE): one value per entry of [space];
- print a line "MEXPLORE_REPORT <step> <value>" for each intermediate value (optional);
- print a last line "MEXPLORE_RESULT <number or JSON>", or write the same into the file named
  by MEXPLORE_RESULT_FILE. A JSON object holds the study's objective ("loss"); its other keys
  are kept as metrics;
- exit with status 0. Any other status records the task as failed, with the end of stderr.

What it prints is kept in stdout.txt and stderr.txt in its task folder.
Replace descend() with your model, or this script with a call to your program.
"""

import json
import sys


$descent

def report(step, value):
    print(f"MEXPLORE_REPORT {step} {value}", flush=True)  # flush: the master sees it at once


def main(params_file):
    with open(params_file) as file:
        params = json.load(file)
    loss = descend(params["lr"], params["momentum"], params["update"], params["steps"], report)
    print("MEXPLORE_RESULT " + json.dumps({"loss": loss, "cost": params["steps"]}))


if __name__ == "__main__":
    main(sys.argv[1])
''')


def _commented(line: str, comment: str) -> str:
    """``line`` with ``comment`` in the comment column of the study file."""
    return f"{line:<33} # {comment}" if comment else line


def _budget_lines(budget: int | None) -> str:
    if budget is None:
        return "\n".join([_commented("# budget = 10", "no budget: the sweep runs every point of [space];"),
                          _commented("", "a budget stops it sooner")])
    return _commented(f"budget = {budget}", "evaluations (tasks) in all; a resumed run counts the finished ones")


def _options_table(options: tuple[tuple[str, str], ...]) -> str:
    if not options:
        return ""
    lines = [_commented("[algorithm.options]", "handed to the algorithm as is")]
    return "\n" + "\n".join(lines + [_commented(*option) for option in options]) + "\n"


def render_study(name: str, model: str, algorithm: str) -> str:
    """The study file's text for study ``name``, a ``model`` of kind python or command."""
    fit = fit_for(algorithm)
    model_block = (_PYTHON_MODEL if model == "python" else _COMMAND_MODEL).substitute(name=name)
    return _STUDY.substitute(
        name=name, kind=model, algorithm=algorithm, model=model_block, space=fit.space,
        note=f"# Note: {fit.note}.\n" if fit.note else "",
        study_name=_commented(f'name = "{name}"', "letters, digits, . _ -; names the default output folder"),
        output=_commented(f'# output = "runs/{name}"', "where the results go (the default); on a cluster,"),
        algorithm_name=_commented(f'name = "{algorithm}"',
                                  "what proposes the points; `mexplore algorithms` lists them (algorithms.md)"),
        budget=_budget_lines(fit.budget),
        objectives=_SINGLE_OBJECTIVE if fit.objectives == 1 else _TWO_OBJECTIVES,
        options=_options_table(fit.options),
    )


def render_model(name: str, model: str) -> str:
    """The model script's text: a function ``evaluate(params, ctx)`` or a program."""
    template = _PYTHON_SCRIPT if model == "python" else _COMMAND_SCRIPT
    return template.substitute(name=name, descent=_DESCENT)


# --------------------------------------------------------------------------- writing


def check_request(name: str, model: str, algorithm: str) -> None:
    """Refuse a bad name, model kind or algorithm before anything is written."""
    if not is_study_name(name):
        raise ScaffoldError(f"study name {name!r}: expected letters, digits, '.', '_' and '-' "
                            "(it names the study file, the model script and the output folder)")
    if model not in MODEL_KINDS:
        raise ScaffoldError(f"--model {model!r}: expected one of {', '.join(MODEL_KINDS)}")
    known = sorted(name for name in available() if name not in NEEDS_A_SOURCE)
    if algorithm not in known:
        close = ([name for name in known if name.rpartition(".")[2] == algorithm]  # tpe: optuna.tpe
                 or difflib.get_close_matches(algorithm, known, n=1))
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ScaffoldError(
            f"--algorithm {algorithm!r}: expected one of {', '.join(known)}{hint}. "
            "`mexplore algorithms` describes each; for an algorithm of your own, scaffold with "
            "one of these and set [algorithm] name to 'package.module:Name' or 'file.py:Name'")


def scaffold(directory: Path, name: str, model: str = "python", algorithm: str = "random") -> Scaffold:
    """Write ``studies/<name>.toml`` and ``model-scripts/<name>.py`` under ``directory``.

    Every check comes first and no existing file is ever replaced: either both files are
    written or, with a :class:`ScaffoldError`, neither is.
    """
    check_request(name, model, algorithm)
    written = Scaffold(root=directory, study=Path("studies", f"{name}.toml"),
                       model=Path("model-scripts", f"{name}.py"))
    contents = {written.study: render_study(name, model, algorithm), written.model: render_model(name, model)}
    for path in contents:
        if (directory / path).exists() or (directory / path).is_symlink():
            raise ScaffoldError(f"{directory / path} already exists: not overwriting it "
                                "(choose another name, or move the file away); nothing was written")
    done: list[Path] = []
    for path, text in contents.items():
        target = directory / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "x") as file:  # "x": fail rather than replace a file made meanwhile
                done.append(target)
                file.write(text)
        except OSError as exc:
            for finished in done:  # all or nothing: take back what this call wrote
                finished.unlink()
            raise ScaffoldError(f"cannot write {target}: {exc.strerror or exc}; nothing was written") from None
    return written
