"""``[model]``: a Python function or an external command, and how its failures are handled.

Resolving makes every path absolute (the workers run a command in its task folder, not
where the study was started), turns a timeout into seconds, and checks that every
``{placeholder}`` of a command names something a task has.
"""

from __future__ import annotations

import keyword
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..types import Shape
from ._schema import Key, ModelTable, Problem

TASK_PLACEHOLDERS = ("params_file", "result_file", "task_dir", "task_id", "attempt", "python")
LAUNCH_PLACEHOLDERS = ("ranks", "nodes", "hosts", "ranks_per_node", "hostfile", "mpiexec")
"""What a parallel command's argv and ``launcher`` may name besides the task's fields."""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_DURATION_EXPECTED = 'a duration such as "30s", "10m", "2h" or "1h30m", or a number of seconds > 0'


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: what one task runs, and what a failure does.

    Exactly one of ``python`` (``"/abs/file.py:function"`` or ``"package.module:function"``)
    and ``command`` (an argv list, absolute paths where an item named an existing file) is
    set. ``timeout`` is in seconds; ``retries`` re-runs a failed or timed-out task;
    ``on_error`` is ``record`` (go on, but stop early when a session's first tasks all fail
    for one reason: the model cannot work), ``continue`` (go on, always) or ``abort`` (stop
    at the first failure); a stop waits for the tasks in flight.

    ``ranks`` and ``nodes`` (an int, or ``"{parameter}"`` read from each point) say how many
    worker slots a task holds and on how many whole nodes (0: one node when it fits), and
    ``gpus`` how many distinct GPUs of one node its slots must own; a
    command with more than one rank is started through ``launcher`` (None: the site's, else
    the bundled ``mpiexec -n {ranks}``).
    """

    python: str | None = None
    command: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    timeout: float | None = None
    retries: int = 0
    on_error: str = "record"
    isolate: bool = False
    ranks: int | str = 1
    nodes: int | str = 0
    gpus: int | str = 0
    launcher: tuple[str, ...] | None = None
    placed: bool = False
    """``ranks``, ``nodes`` or ``gpus`` was written, even as its default (``ranks = 1``): tasks
    are placed, so an algorithm may size each (``queue.submit(params, ranks=R)``)."""

    @property
    def parallel(self) -> bool:
        """Whether a task may hold more than one worker slot: then every task is placed."""
        return self.placed or self.ranks != 1 or self.nodes != 0 or self.gpus != 0

    def shape(self, params: dict[str, Any]) -> Shape:
        """What the task at ``params`` needs; ValueError naming the key when a value read
        from the point is not a whole number in range."""
        return Shape(ranks=_size(self.ranks, params, "ranks", 1), nodes=_size(self.nodes, params, "nodes", 0),
                     gpus=_size(self.gpus, params, "gpus", 0))

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready; absent values are left out (TOML has no null)."""
        table: dict[str, Any] = {"python": self.python} if self.python else {"command": list(self.command or ())}
        if self.env:
            table["env"] = dict(self.env)
        if self.cwd is not None:
            table["cwd"] = str(self.cwd)
        if self.timeout is not None:
            table["timeout"] = self.timeout
        table |= {"retries": self.retries, "on_error": self.on_error}
        if self.python:
            table["isolate"] = self.isolate
        if self.parallel:
            table |= {"ranks": self.ranks, "nodes": self.nodes, "gpus": self.gpus}
        if self.launcher is not None:
            table["launcher"] = list(self.launcher)
        return table


def _size(value: int | str, params: dict[str, Any], key: str, least: int) -> int:
    if isinstance(value, int):
        return value
    name = value[1:-1]
    got = params.get(name)
    if isinstance(got, bool) or not isinstance(got, int) or got < least:
        raise ValueError(f"{key} = {value!r} took {got!r} from the point: expected an integer >= {least}")
    return got


def resolve_model(table: ModelTable, names: set[str] | None, at: Key = ("model",)) -> ModelSection:
    """Check a model table (``[model]``, or ``[models.<kind>]`` at ``at``) against itself
    and the space's parameter ``names``; None for an auxiliary kind, whose params are
    free-form, so any ``{placeholder}`` may name one of them."""
    if (table.python is None) == (table.command is None):
        raise Problem(at, dict(table.model_dump(exclude_defaults=True)),
                      "exactly one of python = \"file.py:function\" and command = [...]")
    if table.isolate and table.command is not None:
        raise Problem((*at, "isolate"), True, "isolate only with python (a command already runs apart)")
    if table.python is not None and not table.isolate:
        for key in ("timeout", "env", "cwd"):
            if getattr(table, key):
                raise Problem((*at, key), getattr(table, key), "no such key for a python model run in the worker",
                              "a child process is needed for it: add isolate = true")
    if table.isolate and (table.ranks != 1 or table.nodes != 0 or table.gpus != 0):
        raise Problem((*at, "isolate"), True, "isolate only with ranks = 1 (a parallel Python task runs in its "
                      "worker ranks, to share ctx.comm)", "use a command for a program that must run apart")
    cwd = None
    if table.cwd is not None:
        cwd = absolute(table.cwd)
        if not cwd.is_dir():
            raise Problem((*at, "cwd"), table.cwd, "an existing directory")
    return ModelSection(
        python=None if table.python is None else _python_target(table.python, (*at, "python")),
        command=None if table.command is None else _argv(table.command, (*at, "command"), names),
        env=dict(table.env), cwd=cwd, timeout=seconds(table.timeout, (*at, "timeout")), retries=table.retries,
        on_error=table.on_error, isolate=table.isolate,
        ranks=_size_key(table.ranks, (*at, "ranks"), 1, names), nodes=_size_key(table.nodes, (*at, "nodes"), 0, names),
        gpus=_size_key(table.gpus, (*at, "gpus"), 0, names),
        launcher=None if table.launcher is None else _argv(table.launcher, (*at, "launcher"), names),
        placed=bool({"ranks", "nodes", "gpus"} & table.model_fields_set),
    )


def _size_key(value: int | str, key: Key, least: int, names: set[str] | None) -> int | str:
    """``ranks``/``nodes``: an int (``nodes`` may be 0: as few as fit), or ``"{parameter}"``."""
    expected = f'an integer >= {least}, or "{{parameter}}" naming a parameter of [space]'
    if isinstance(value, int):
        if isinstance(value, bool) or value < least:
            raise Problem(key, value, expected)
        return value
    match = _PLACEHOLDER.fullmatch(value)
    if match is None or (names is not None and match.group(1) not in names):
        why = None if match is None else f"[space] has no parameter {match.group(1)!r}"
        raise Problem(key, value, expected, why)
    return value


def _python_target(spec: str, key: Key) -> str:
    """Check ``target:function``; a file target must exist and is made absolute."""
    expected = '"path/to/file.py:function" or "package.module:function"'
    if spec.count(":") != 1:
        raise Problem(key, spec, expected)
    target, function = spec.split(":")
    if not is_identifier(function):
        raise Problem(key, spec, expected, f"{function!r} is not a Python function name")
    if target.endswith(".py") or "/" in target or os.sep in target:
        file = absolute(target)
        if not file.is_file():
            raise Problem(key, spec, expected, f"no such file: {file}")
        return f"{file}:{function}"
    if not all(is_identifier(part) for part in target.split(".")):
        raise Problem(key, spec, expected, f"{target!r} is neither a .py file nor a module name")
    return spec


def _argv(argv: list[str], key: Key, names: set[str] | None) -> tuple[str, ...]:
    """Placeholders must name a task field or a parameter (any name, for an auxiliary
    kind's free-form params: ``names`` None); items naming an existing file (relative to
    where mexplore runs) become absolute, since the program runs elsewhere."""
    known = {*TASK_PLACEHOLDERS, *LAUNCH_PLACEHOLDERS, *(names or ()), "repeat"}
    resolved = []
    for index, item in enumerate(argv):
        unknown = [name for name in _PLACEHOLDER.findall(item) if name not in known]
        if unknown and names is not None:
            raise Problem((*key, index), item,
                          f"placeholders among {{{'}, {'.join(sorted(known))}}}",
                          f"{{{unknown[0]}}} is neither a task field nor a parameter")
        plain = not _PLACEHOLDER.search(item) and not os.path.isabs(item)
        resolved.append(str(absolute(item)) if plain and index > 0 and Path(item).is_file() else item)
    return tuple(resolved)


def seconds(value: str | float | None, key: Key) -> float | None:
    """A duration (``"1h30m"`` or a number of seconds) in seconds; a Problem at ``key`` if bad."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        total = float(value)
    else:
        match = _DURATION.fullmatch(value.strip())
        if not value.strip() or match is None or not any(match.groups()):
            raise Problem(key, value, _DURATION_EXPECTED)
        hours, minutes, secs = (float(part or 0) for part in match.groups())
        total = hours * 3600 + minutes * 60 + secs
    if total <= 0:
        raise Problem(key, value, _DURATION_EXPECTED)
    return total


def absolute(path: str) -> Path:
    """``path`` against the current directory (``~`` expanded), normalized, symlinks kept."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def is_identifier(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)
