"""Site files: which machine a study is submitted to, read and validated like study files.

A site file (``site-settings/<name>.toml``) says how a batch job runs on one machine: the
scheduler, the launcher line, ranks and GPUs per node, the node-local directory, the queue,
the account, the default walltime, extra scheduler directives and setup lines. This module
finds the file (a path, or a name looked up in a list of folders), applies ``--set
site.KEY=VALUE`` overrides, checks it with pydantic, and returns a frozen :class:`Site`.
Rendering the batch script from it is ``mexplore.batch``'s job.

Errors are :class:`~mexplore.errors.StudyFileError`, naming the file (and the ``--set``
that wrote the key), the key, the value and what was expected, as for study files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..errors import MISSING, StudyFileError
from . import _overrides
from ._limits import check_values
from ._schema import Key, Problem, Table, suggest, validate
from .model import LAUNCH_PLACEHOLDERS, seconds
from .study import read_toml, study_file_error

SITE_PREFIX = "site."
"""``--set site.account=NAME`` overrides the site file; every other ``--set`` the study."""

TASK_LAUNCHER = "MEXPLORE_TASK_LAUNCHER"
"""The environment variable a batch script sets to the site's ``task_launcher`` (a JSON
list), read by the master when the study names no ``[model] launcher``."""
LAUNCHER_PLACEHOLDERS = ("ranks", "nodes", "ranks_per_node", "gpus_per_node", "mpiexec")
_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${VAR} is left to the shell
_CLOCK = re.compile(r"(\d+):([0-5]\d):([0-5]\d)")
_DURATION_EXPECTED = 'a duration such as "30m", "2h", "1h30m" or "01:30:00", or a number of seconds > 0'
ACCOUNT_HINT = "add --set site.account=NAME, or set account in a copy of the site file in ./site-settings/"
"""How to give a batch site its account: said where one is missing."""


class SiteTable(Table):
    """The shape of a site file. Each description is what the user reads after "expected"."""

    scheduler: Literal["local", "pbs", "slurm"] = Field(
        description="one of 'local', 'pbs', 'slurm' (lsf is not supported yet)"
    )
    launcher: str = Field(
        min_length=1, description='a launch command such as "mpiexec -n {ranks} --ppn {ranks_per_node}"'
    )
    ranks_per_node: int = Field(ge=1, description="an integer >= 1")
    gpus_per_node: int = Field(0, ge=0, description="an integer >= 0")
    local_dir: str | None = Field(None, min_length=1, description="a directory path that exists on every node")
    queue: str | None = Field(None, min_length=1, description="a queue (PBS) or partition (Slurm) name")
    qos: str | None = Field(None, min_length=1, description="a Slurm quality of service name")
    account: str | None = Field(None, description="the project or allocation to charge")
    walltime: str | float | None = Field(None, description=_DURATION_EXPECTED)
    stop_before: str | float = Field("5m", description=_DURATION_EXPECTED)
    directives: list[str] = Field(
        default_factory=list, description='a list of scheduler options, e.g. ["-l filesystems=home:eagle"]'
    )
    setup: list[str] = Field(default_factory=list, description="a list of shell lines")
    task_launcher: list[str] | None = Field(
        None, min_length=1,
        description='a non-empty list of strings such as ["srun", "--exact", "-n", "{ranks}", "--nodelist", "{hosts}"]',
    )


@dataclass(frozen=True)
class Site:
    """A validated site, named after its file. Durations are seconds; ``launcher`` still holds its placeholders
    (``{ranks}``...), which only the job's size can fill. ``account`` is "" when the site
    has none to give; for a batch scheduler it is None only in a site loaded without
    ``account_needed`` (a dry run, which shows a placeholder)."""

    name: str
    scheduler: str
    launcher: str
    ranks_per_node: int
    gpus_per_node: int = 0
    local_dir: str | None = None
    queue: str | None = None
    qos: str | None = None
    account: str | None = None
    walltime: float | None = None
    stop_before: float = 300.0
    directives: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    task_launcher: tuple[str, ...] | None = None

    def launcher_placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.launcher))

    def launch_command(self, values: Mapping[str, object]) -> str:
        """The launcher with each ``{name}`` replaced by ``values[name]`` (``${VAR}`` kept)."""
        return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), self.launcher)


# --------------------------------------------------------------------------- finding


def find_site(site: str, folders: Sequence[Path]) -> Path:
    """The file for ``--site``: a path as given, or ``<folder>/<site>.toml`` in the first
    folder that has it (``my.toml`` or ``dir/x`` is a path). An unknown name lists the names
    the folders offer."""
    if site.endswith(".toml") or "/" in site:
        return Path(site)
    for folder in folders:
        candidate = folder / f"{site}.toml"
        if candidate.is_file():
            return candidate
    known = known_sites(folders)
    where = ", ".join(str(folder) for folder in folders)
    raise StudyFileError("--site", "site", site, "one of " + ", ".join(known) + f" (from {where}), "
                         "or the path of a site file", suggest(site, known))


def known_sites(folders: Iterable[Path]) -> list[str]:
    """Every site name the folders hold, sorted, each once."""
    return sorted({path.stem for folder in folders if folder.is_dir() for path in folder.glob("*.toml")})


def split_overrides(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """``--set`` texts for the study, and those for the site (``site.KEY=VALUE``)."""
    site = [text for text in texts if text.split("=", 1)[0].strip().startswith(SITE_PREFIX)]
    return [text for text in texts if text not in site], site


# --------------------------------------------------------------------------- loading


def load_site(path: Path, overrides: Sequence[str] = (), *, account_needed: bool = True) -> Site:
    """Read, override (``site.KEY=VALUE`` texts), validate and resolve the site file.
    A batch site without an account is refused unless ``account_needed`` is False: a dry
    run only shows the script, so it renders one without."""
    source = str(path)
    parsed = [_overrides.Override(o.key[1:], o.value, o.text) for o in _overrides.parse(overrides)]
    data = read_toml(path)
    _overrides.apply(data, parsed, source)
    try:
        check_values(data)
        return _resolve(path, validate(SiteTable, data), account_needed)
    except Problem as problem:
        raise study_file_error(problem, source, parsed) from None


def walltime_seconds(value: str | float, key: Key) -> float:
    """A walltime or ``stop_before`` in seconds: ``"H:MM:SS"``, a duration (``"1h30m"``),
    or a number of seconds. A Problem at ``key`` otherwise."""
    if isinstance(value, str) and (clock := _CLOCK.fullmatch(value.strip())):
        hours, minutes, secs = (int(part) for part in clock.groups())
        total = hours * 3600 + minutes * 60 + secs
        if total <= 0:
            raise Problem(key, value, _DURATION_EXPECTED)
        return float(total)
    try:
        total_seconds = seconds(value, key)
    except Problem:
        raise Problem(key, value, _DURATION_EXPECTED) from None
    assert total_seconds is not None  # seconds() returns None only for None
    return total_seconds


def walltime_option(text: str, option: str = "--walltime") -> float:
    """A duration given on the command line (``--walltime``, ``--stop-before``) in seconds;
    an error that names the option otherwise."""
    try:
        return walltime_seconds(text, (option.lstrip("-"),))
    except Problem as problem:
        raise StudyFileError(option, option.lstrip("-"), text, problem.expected) from None


def _resolve(source: Path, table: SiteTable, account_needed: bool) -> Site:
    """The rules between keys: what a scheduler needs and what it cannot use."""
    unknown = sorted(set(_PLACEHOLDER.findall(table.launcher)) - set(LAUNCHER_PLACEHOLDERS))
    if unknown:
        raise Problem(("launcher",), table.launcher,
                      "placeholders among {" + "}, {".join(LAUNCHER_PLACEHOLDERS) + "}",
                      f"{{{unknown[0]}}} is none of them; write ${{{unknown[0]}}} for a shell variable")
    _refuse_unused(table)
    if table.local_dir is not None and any(c in table.local_dir for c in '"`\\'):
        raise Problem(("local_dir",), table.local_dir, "a directory path without \", ` or \\",
                      "the script writes it in double quotes, so that $VARIABLES in it expand")
    if account_needed and table.scheduler != "local" and table.account is None:
        raise Problem(("account",), MISSING, "the project or allocation to charge", ACCOUNT_HINT)
    return Site(
        name=source.stem,
        scheduler=table.scheduler,
        launcher=table.launcher,
        ranks_per_node=table.ranks_per_node,
        gpus_per_node=table.gpus_per_node,
        local_dir=table.local_dir,
        queue=table.queue,
        qos=table.qos,
        account=table.account,
        walltime=None if table.walltime is None else walltime_seconds(table.walltime, ("walltime",)),
        stop_before=walltime_seconds(table.stop_before, ("stop_before",)),
        directives=tuple(table.directives),
        setup=tuple(table.setup),
        task_launcher=_task_launcher(table.task_launcher),
    )


def _task_launcher(argv: list[str] | None) -> tuple[str, ...] | None:
    """The launcher of tasks of several ranks: its placeholders are the task's placement,
    filled on the worker that starts it (:data:`~.model.LAUNCH_PLACEHOLDERS`)."""
    if argv is None:
        return None
    for index, item in enumerate(argv):
        unknown = sorted(set(_PLACEHOLDER.findall(item)) - set(LAUNCH_PLACEHOLDERS))
        if unknown:
            raise Problem(("task_launcher", index), item,
                          "placeholders among {" + "}, {".join(LAUNCH_PLACEHOLDERS) + "}",
                          f"{{{unknown[0]}}} is none of them")
    return tuple(argv)


_UNUSED_BY = {
    "local": ("queue", "qos", "account", "directives"),
    "pbs": ("qos",),
    "slurm": (),
}


def _refuse_unused(table: SiteTable) -> None:
    """A key the scheduler has no use for is a mistake worth saying, not a value to drop."""
    for key in _UNUSED_BY[table.scheduler]:
        value = getattr(table, key)
        if value:
            raise Problem((key,), value, f"no {key} for scheduler = {table.scheduler!r}",
                          involves=(("scheduler",),))
