"""Every proposal is checked against ``[space]`` where it enters the master's bookkeeping:
an algorithm that proposes a value outside a bound, a missing or unknown parameter, or a
value of the wrong type stops the run with a message naming the algorithm, the parameter,
the value and what was expected, and the journal keeps what finished."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, journal, run_cli

from mexplore.errors import AlgorithmError
from mexplore.queue.dispatch import Dispatcher
from mexplore.queue.policies import Async
from mexplore.space import Categorical, Float, Grid, Int, ProposalCheck, Space

SPACE = Space(
    parameters={
        "x": Float(0.0, 10.0),
        "lr": Float(1e-4, 1e-1, log=True),
        "units": Int(16, 128, step=16),
        "layers": Int(1, 8),
        "act": Categorical(("relu", "tanh")),
        "k": Categorical((1, 15)),
        "flag": Categorical((True, None)),
        "noise": Grid((0.0, 0.1)),
    },
    constants={"epochs": 3},
)
GOOD = {"x": 2.5, "lr": 0.01, "units": 32, "layers": 3, "act": "tanh", "k": 15, "flag": None, "noise": 0.1,
        "epochs": 3}
PREFIX = "algorithm 'Bad' proposed "
SUFFIX = "; the run stops (finished tasks are kept: fix the algorithm and run again to resume)"


def refusal(point: object) -> str:
    """What the refusal says between its fixed start and end."""
    with pytest.raises(AlgorithmError) as caught:
        ProposalCheck(SPACE, "Bad")(point)
    message = str(caught.value)
    assert message.startswith(PREFIX) and message.endswith(SUFFIX), message
    return message[len(PREFIX):-len(SUFFIX)]


@pytest.mark.parametrize("point", [
    GOOD,
    GOOD | {"x": 10, "layers": np.int64(8), "lr": np.float32(0.05)},  # an int for a float; numpy scalars
    GOOD | {"x": 0.0, "units": 128, "k": 1.0, "flag": True},  # both bounds; equal numbers match a choice
    GOOD | {"repeat": 2},  # a sweep's repeat number
])
def test_a_point_inside_the_space_passes(point):
    ProposalCheck(SPACE, "Bad")(point)
    assert SPACE.contains(point)


@pytest.mark.parametrize("change,said", [
    ({"x": 12.6}, "x = 12.6 ([space] x: above high = 10.0)"),
    ({"x": -0.5}, "x = -0.5 ([space] x: below low = 0.0)"),
    ({"x": math.nan}, "x = nan ([space] x: outside 0.0..10.0)"),
    ({"lr": 0.5}, "lr = 0.5 ([space] lr: above high = 0.1)"),
    ({"x": "3"}, "x = '3' ([space] x: a float parameter takes an int or a float, not str)"),
    ({"x": True}, "x = True ([space] x: a float parameter takes an int or a float, not bool)"),
    ({"layers": 3.0}, "layers = 3.0 ([space] layers: an int parameter takes an int, not float)"),
    ({"layers": False}, "layers = False ([space] layers: an int parameter takes an int, not bool)"),
    ({"layers": 9}, "layers = 9 ([space] layers: above high = 8)"),
    ({"units": 40}, "units = 40 ([space] units: not on the step: low = 16, step = 16 (nearest: 32 or 48))"),
    ({"act": "elu"}, "act = 'elu' ([space] act: not one of the choices ['relu', 'tanh'])"),
    ({"k": True}, "k = True ([space] k: not one of the choices [1, 15] (a bool matches only a bool))"),
    ({"flag": 1}, "flag = 1 ([space] flag: not one of the choices [True, None])"),
    ({"noise": 0.2}, "noise = 0.2 ([space] noise: not one of the grid values [0.0, 0.1])"),
    ({"epochs": 4}, "epochs = 4, but [space] holds the constant epochs = 3"),
    ({"depth": 2}, "depth = 2, which is not in [space] (its names: x, lr, units, layers, act, k, flag, noise, epochs)"),
    ({"repeat": -1}, "repeat = -1: expected a sweep's repeat number, an int >= 0"),
])
def test_each_kind_of_bad_value_is_named_with_its_bound_or_type(change, said):
    assert refusal(GOOD | change) == said


def test_a_missing_parameter_or_constant_and_a_non_dict_are_named():
    without_x = {k: v for k, v in GOOD.items() if k != "x"}
    assert refusal(without_x).startswith(f"a point without parameter 'x' ({without_x!r}); every proposal names "
                                         "every parameter of [space]: x, lr, units, layers, act, k, flag, noise")
    without_epochs = {k: v for k, v in GOOD.items() if k != "epochs"}
    assert refusal(without_epochs).startswith("a point without the constant epochs = 3 (")
    assert "space.sample(rng) adds them" in refusal(without_epochs)
    assert refusal([2.5, 0.01]) == "[2.5, 0.01] (list), not a dict of parameter values"


def test_what_space_sample_draws_always_passes():
    check, rng = ProposalCheck(SPACE, "Bad"), np.random.default_rng(3)
    for _ in range(500):
        check(SPACE.sample(rng))


def test_the_dispatcher_refuses_a_bad_batch_before_numbering_any_of_it():
    d = Dispatcher([1, 2], Async(), budget=None, check=ProposalCheck(SPACE, "Bad"))
    d.propose([GOOD])
    with pytest.raises(AlgorithmError, match=r"x = 12.6 \(\[space\] x: above high = 10.0\)"):
        d.propose([GOOD, GOOD | {"x": 12.6}])
    assert d.next_id == 1 and len(d.pending) == 1  # nothing of the bad batch got an id


BAD_ALGORITHM = '''
from mexplore import Algorithm


class Bad(Algorithm):
    """Good points until it has been told 3 results, then x beyond its high bound."""

    def __init__(self, space, info=None):
        super().__init__(space, info)
        self.told = 0

    def tell(self, results):
        self.told += len(results)

    def ask(self, n):
        x = 12.6 if self.told >= 3 else 0.1 * self.told
        return [{"x": x, "y": 0.5}] * n
'''


def study_of(folder: Path, algorithm: str) -> Path:
    """A 40-task study of the toy quadratic over x in [0, 10], y in [0, 1], output in
    ``folder/out``, with ``algorithm`` as the lines of its ``[algorithm]`` table."""
    path = folder / "study.toml"
    path.write_text(f"""
[study]
name = "checked"
budget = 40
objective = "loss"
output = "{folder / 'out'}"

[model]
python = "{REPO / 'tests' / 'models' / 'toy.py'}:quadratic"

[algorithm]
{algorithm}

[space]
x = {{ type = "float", low = 0.0, high = 10.0 }}
y = {{ type = "float", low = 0.0, high = 1.0 }}
""")
    return path


@pytest.mark.mpi
def test_a_run_whose_algorithm_proposes_outside_the_space_stops_with_the_journal_intact(tmp_path: Path):
    (tmp_path / "my_algos.py").write_text(BAD_ALGORITHM)
    output = tmp_path / "out"
    path = study_of(tmp_path, 'name = "my_algos.py:Bad"')
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert ("mexplore: error: algorithm 'Bad' proposed x = 12.6 ([space] x: above high = 10.0); the run stops "
            "(finished tasks are kept: fix the algorithm and run again to resume)") in done.stderr
    assert "Traceback" not in done.stderr
    records = journal(output)
    assert len(records) >= 3 and all(r["status"] == "ok" and r["params"]["x"] < 10 for r in records)
    assert len({r["id"] for r in records}) == len(records)
    assert (output / "results.csv").read_text().count("\n") == len(records) + 1  # the tables were written

    fixed = run_cli("run", str(path), "-n", "3", "--progress", "off", "--set", 'algorithm.name="random"',
                    cwd=tmp_path, timeout=120)
    assert fixed.returncode == 0, fixed.stderr
    assert f"resuming after {len(records)} finished tasks" in fixed.stderr
    again = journal(output)
    assert len(again) == 40 and len({r["id"] for r in again}) == 40


RAISING_ALGORITHM = '''
from mexplore import Algorithm


class Raising(Algorithm):
    """A bug of its own: raises in tell() (or ask()) once it has been told 3 results."""

    def __init__(self, space, info=None, where="tell"):
        super().__init__(space, info)
        self.told, self.where = 0, where

    def tell(self, results):
        self.told += len(results)
        if self.where == "tell" and self.told >= 3:
            raise KeyError("best_so_far")

    def ask(self, n):
        if self.where == "ask" and self.told >= 3:
            return [1 / 0]
        return [{"x": 0.1 * self.told, "y": 0.5}] * n
'''


@pytest.mark.mpi
@pytest.mark.parametrize(("where", "raised"), [("tell", "KeyError"), ("ask", "ZeroDivisionError")])
def test_an_algorithm_that_raises_stops_the_run_cleanly_naming_it(tmp_path: Path, where: str, raised: str):
    (tmp_path / "my_algos.py").write_text(RAISING_ALGORITHM)
    output = tmp_path / "out"
    path = study_of(tmp_path, f'name = "my_algos.py:Raising"\noptions = {{ where = "{where}" }}')
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    method = "tell" if where == "tell" else "propose"
    assert f"mexplore: error: algorithm 'Raising' raised {raised} in {method}()" in done.stderr, done.stderr
    assert "my_algos.py" in done.stderr  # its own traceback, to find the bug
    assert "aborting the MPI job" not in done.stderr and "results in" in done.stderr
    records = journal(output)
    assert len(records) >= 3 and len({r["id"] for r in records}) == len(records)
