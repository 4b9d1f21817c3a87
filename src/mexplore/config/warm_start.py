"""``[algorithm] initial`` and ``from``: what a study knows before its first task.

``initial`` lists points to evaluate first: inline (``[{ lr = 0.01, units = 64 }, ...]``)
or in a CSV (a header of parameter names) or JSONL (one object per line) file. Each point
is checked here against the space, so a typo in point 37 of a file is reported with its
line before any rank starts, not as a failed task an hour later.

``from`` names an earlier run's output directory; its results are told to the algorithm.
Only its existence and objectives are checked here; the results are read when the run
starts (``runtime/earlier.py``), so a study loads fast however large that journal is.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MISSING
from ..space import LABEL, Float, Int, Parameter, Space
from ._schema import Key, Problem, suggest
from .model import absolute
from .points_file import read_points

INITIAL: Key = ("algorithm", "initial")
FROM: Key = ("algorithm", "from")


def resolve_initial(value: list[dict[str, Any]] | str | None, space: Space) -> tuple[tuple[dict[str, Any], ...], Path | None]:
    """The initial points, each complete (every parameter, then the constants), and the
    file they came from (None when inline)."""
    if value is None:
        return (), None
    if isinstance(value, list):
        return tuple(_point(space, point, INITIAL + (index,)) for index, point in enumerate(value)), None
    file = absolute(value)
    points = []
    for line, row in read_points(file, INITIAL, space):
        try:
            points.append(_point(space, row, INITIAL))
        except Problem as problem:
            where = f"{file} line {line}: {problem.key[-1]} = {problem.value!r} is not {problem.expected}"
            raise Problem(INITIAL, value, "a file of points inside [space]",
                          f"{where}{'; ' + problem.hint if problem.hint else ''}") from None
    return tuple(points), file


def resolve_from(value: str | None, output: Path, objectives: tuple[str, ...], directions: tuple[str, ...]) -> Path | None:
    """The earlier run's output directory, once it is known to hold a run of the same
    objectives (results of another objective would teach the algorithm the wrong thing)."""
    if value is None:
        return None
    folder = absolute(value)
    if folder == output:
        raise Problem(FROM, value, "another run's output directory",
                      "this is the study's own output, which a run resumes anyway")
    try:
        earlier = tomllib.loads((folder / "study.toml").read_text())["study"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        raise Problem(FROM, value, "the output directory of an earlier run (holding study.toml and journal.jsonl)",
                      f"no readable run record at {folder / 'study.toml'}") from None
    if not (folder / "journal.jsonl").is_file():
        raise Problem(FROM, value, "the output directory of an earlier run (holding study.toml and journal.jsonl)",
                      f"{folder} has no journal.jsonl")
    theirs = (tuple(_as_list(earlier.get("objective"))), tuple(_as_list(earlier.get("direction"))))
    if theirs != (objectives, directions):
        raise Problem(FROM, value, f"a run with objective {list(objectives)} and direction {list(directions)}",
                      f"that run has objective {list(theirs[0])} and direction {list(theirs[1])}")
    return folder


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _point(space: Space, point: object, at: Key) -> dict[str, Any]:
    """One point: every parameter with a value inside its range, constants optional."""
    if not isinstance(point, Mapping):
        raise Problem(at, point, "a table of parameter values, such as { x = 1.5 }")
    for name, value in point.items():
        if name == LABEL and name not in space.parameters and name not in space.constants:
            continue
        if name not in space.parameters and name not in space.constants:
            raise Problem(at + (name,), value, f"a parameter of [space] ({', '.join(space.parameters)})",
                          suggest(name, list(space.parameters)))
        if name in space.constants and value != space.constants[name]:
            raise Problem(at + (name,), value, f"{space.constants[name]!r}, the constant of [space], or left out")
    missing = [name for name in space.parameters if name not in point]
    if missing:
        raise Problem(at + (missing[0],), MISSING, "a value: a point names every parameter of [space]")
    complete = {name: _value(param, point[name], at + (name,)) for name, param in space.parameters.items()}
    label = {LABEL: str(point[LABEL])} if LABEL in point and LABEL not in complete else {}
    return complete | dict(space.constants) | label


def _value(param: Parameter, value: Any, at: Key) -> Any:
    """The value as the parameter holds it (an int given for a float becomes a float)."""
    numeric = isinstance(param, (Float, Int))
    if numeric and isinstance(value, bool):  # True is an int to Python, not to a study
        raise Problem(at, value, _range(param))
    if isinstance(param, Float) and isinstance(value, int):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value) or not param.contains(value):
        raise Problem(at, value, _range(param))
    return value


def _range(param: Parameter) -> str:
    if isinstance(param, Float):
        return f"a number in [{param.low}, {param.high}]"
    if isinstance(param, Int):
        step = f" in steps of {param.step} from {param.low}" if param.step != 1 else ""
        return f"an integer in [{param.low}, {param.high}]{step}"
    return "one of " + ", ".join(map(repr, param.values()))
