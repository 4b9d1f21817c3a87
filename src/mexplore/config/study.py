"""Study files: TOML in, a validated, fully resolved :class:`Study` out.

Reading goes in four steps, each in its own function so each can be read alone:

1. read the TOML (a missing file or a syntax error names the file, and the line);
2. apply ``--set key=value`` overrides to the raw data;
3. check the shape with pydantic (``_schema.py``): keys, types, simple bounds;
4. resolve: apply the rules that tie keys together, fill every default, make paths absolute.

Every problem becomes one :class:`~mexplore.errors.StudyFileError` that names the file (and the
``--set`` when the value came from one), the dotted key, the value and what was expected.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..algorithm_names import PROPOSE_IN_PROCESSES, samples_space
from ..errors import MISSING, StudyFileError
from ..space import (
    PARAMETER_NAME,
    Categorical,
    Float,
    Grid,
    Int,
    OpenCheck,
    Parameter,
    ProposalCheck,
    Space,
)
from ..types import TABLE_COLUMNS
from . import _overrides
from ._limits import MAX_DEPTH, check_values
from ._schema import (
    PARAMETER_TABLES,
    AlgorithmTable,
    CategoricalTable,
    FloatTable,
    GridTable,
    IntTable,
    Key,
    ModelTable,
    Problem,
    StudyFileTable,
    StudyTable,
    suggest,
    validate,
)
from .cache import CacheSection, resolve_cache
from .emews_space import read_emews_space
from .model import ModelSection, absolute, resolve_model
from .points_file import read_points
from .warm_start import resolve_from, resolve_initial

_NAME = re.compile(r"[A-Za-z0-9._-]+")
_CONSTANT_TYPES = (bool, int, float, str, list)


# --------------------------------------------------------------------------- public objects


@dataclass(frozen=True)
class StudySection:
    """``[study]``: what is explored and where results go.

    ``budget`` is the number of evaluations, or None to run until the algorithm is done (a
    sweep runs all its points). ``objective`` and ``direction`` always have the same length.
    ``optuna_journal``: the master keeps ``<output>/optuna-journal.log`` up to date, for
    optuna-dashboard (docs/export.md). ``kind`` names the objective kind of a study of
    several ``[models.<kind>]`` (None for a study with one ``[model]``).
    """

    name: str
    budget: int | None
    objective: tuple[str, ...]
    direction: tuple[str, ...]
    output: Path
    optuna_journal: bool = False
    kind: str | None = None


@dataclass(frozen=True)
class AlgorithmSection:
    """``[algorithm]``: which algorithm proposes tasks and how the queue feeds the workers.

    ``options`` is handed to the algorithm as is; the algorithm validates it. ``pruner``
    (with ``pruner_options``) goes to algorithms that prune: the ``optuna.*`` ones.
    ``initial`` holds the points to evaluate first, complete and checked (read from
    ``initial_file`` when the study named one); ``from_run`` is an earlier run whose
    results the algorithm is told (the key ``from``).
    """

    name: str
    policy: str
    backlog: int
    batch_size: int | None
    seed: int | None
    options: dict[str, Any]
    proposers: int = 1
    """Processes that compute the algorithm's proposals ahead of need (1: the master does)."""
    pruner: str | None = None
    pruner_options: dict[str, Any] = field(default_factory=dict)
    initial: tuple[dict[str, Any], ...] = ()
    initial_file: Path | None = None
    from_run: Path | None = None
    file: Path | None = None
    """The ``points`` algorithm's file; its points, read and checked, are ``points``."""
    points: tuple[dict[str, Any], ...] = ()
    eqpy: Path | None = None
    """An EQ/Py module run as it is (``name`` is then ``"eqpy"``)."""
    command: tuple[str, ...] | None = None
    """A program that is the algorithm, over the JSON-lines protocol (``name`` is then ``"command"``)."""

    def algorithm_options(self) -> dict[str, Any]:
        """What the algorithm's constructor gets: ``options``, plus the pruner when set, and
        the points, module or program the algorithm is."""
        options = dict(self.options)
        if self.pruner is not None:
            options |= {"pruner": self.pruner, "pruner_options": dict(self.pruner_options)}
        if self.file is not None:
            options["points"] = self.points
        if self.eqpy is not None:
            options["module"] = str(self.eqpy)
        if self.command is not None:
            options["command"] = list(self.command)
        return options


@dataclass(frozen=True)
class Study:
    """A validated study with every default filled in and every path absolute.

    ``source`` is the file it was read from; it is left out of equality, so a study re-read
    from the copy the runtime writes to ``<output>/study.toml`` equals the original.
    """

    source: Path = field(compare=False)
    study: StudySection
    model: ModelSection
    algorithm: AlgorithmSection
    space: Space
    cache: CacheSection = CacheSection()
    kinds: dict[str, ModelSection] = field(default_factory=dict)
    """The auxiliary kinds (``[models.<kind>]`` other than the objective kind, which is
    ``model``): run when an algorithm submits them, outside the budget and ``[space]``."""
    kind_spaces: dict[str, Space] = field(default_factory=dict)
    """An auxiliary kind's own ``space`` (``[models.<kind>.space]``), when it declares one:
    its tasks' params are then checked against it, as the objective kind's are against ``[space]``."""
    pools: dict[str, int | float] = field(default_factory=dict)
    """``[pools]``: workers (a count, or a fraction of the job's) given to a kind, by name."""

    @property
    def sections(self) -> dict[str | None, ModelSection]:
        """Every kind's model section, keyed as tasks carry kinds: None for the objective kind."""
        return {None: self.model, **self.kinds}

    @property
    def parallel(self) -> bool:
        """Whether tasks are placed on worker slots: some kind's tasks may hold several."""
        return any(section.parallel for section in self.sections.values())

    def _algorithm_source(self) -> dict[str, Any]:
        """What the algorithm is, as the study file says it: a name (and a points file), an
        EQ/Py module or a program."""
        if self.algorithm.eqpy is not None:
            return {"eqpy": str(self.algorithm.eqpy)}
        if self.algorithm.command is not None:
            return {"command": list(self.algorithm.command)}
        if self.algorithm.file is not None:
            return {"name": self.algorithm.name, "file": str(self.algorithm.file)}
        return {"name": self.algorithm.name}

    def _kind_table(self, kind: str) -> dict[str, Any]:
        """An auxiliary kind's table as written back: its model, and its space if it has one."""
        table = self.kinds[kind].to_dict()
        if kind in self.kind_spaces:
            table["space"] = _space_to_dict(self.kind_spaces[kind])
        return table

    def to_dict(self) -> dict[str, Any]:
        """The resolved study as a TOML-ready dict, which :func:`load_study` reads back as is.

        Absent optional values (``budget``, ``seed``, ``batch_size``) are left out: TOML has
        no null, and leaving them out means the same thing.
        """
        study: dict[str, Any] = {"name": self.study.name}
        if self.study.budget is not None:
            study["budget"] = self.study.budget
        study |= {
            "objective": list(self.study.objective),
            "direction": list(self.study.direction),
            "output": str(self.study.output),
        }
        if self.study.optuna_journal:
            study["optuna_journal"] = True
        algorithm: dict[str, Any] = {
            **self._algorithm_source(),
            "policy": self.algorithm.policy,
            "backlog": self.algorithm.backlog,
        }
        for key in ("batch_size", "seed", "pruner"):
            if getattr(self.algorithm, key) is not None:
                algorithm[key] = getattr(self.algorithm, key)
        if self.algorithm.proposers > 1:
            algorithm["proposers"] = self.algorithm.proposers
        algorithm["options"] = dict(self.algorithm.options)
        if self.algorithm.pruner_options:
            algorithm["pruner_options"] = dict(self.algorithm.pruner_options)
        if self.algorithm.initial_file is not None:
            algorithm["initial"] = str(self.algorithm.initial_file)
        elif self.algorithm.initial:
            algorithm["initial"] = [dict(point) for point in self.algorithm.initial]
        if self.algorithm.from_run is not None:
            algorithm["from"] = str(self.algorithm.from_run)
        if self.study.kind is not None:
            study["kind"] = self.study.kind
        models = ({"model": self.model.to_dict()} if self.study.kind is None else
                  {"models": {self.study.kind: self.model.to_dict(),
                              **{kind: self._kind_table(kind) for kind in self.kinds}}})
        if self.pools:
            models["pools"] = dict(self.pools)
        return {
            "study": study,
            **models,
            "algorithm": algorithm,
            "cache": self.cache.to_dict(),
            "space": _space_to_dict(self.space),
        }


def is_study_name(name: str) -> bool:
    """The rule for ``[study] name``: it names a folder (``runs/<name>``), so letters,
    digits, ``.``, ``_`` and ``-``, and not ``.`` or ``..``."""
    return bool(_NAME.fullmatch(name)) and name not in (".", "..")


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> Study:
    """Read, override, validate and resolve the study file at ``path``.

    ``overrides`` are ``"dotted.key=value"`` strings (from ``--set``); the value is read as a
    TOML value, or as plain text when it is not one. Relative paths in the file resolve
    against the current working directory. Raises :class:`StudyFileError` on any problem.
    """
    source = str(path)
    parsed = _overrides.parse(overrides)
    data = read_toml(Path(path))
    _overrides.apply(data, parsed, source)
    try:
        check_values(data)
        return _resolve(Path(os.path.abspath(path)), validate(StudyFileTable, data))
    except Problem as problem:
        raise study_file_error(problem, source, parsed) from None


class StudyFileProblem(StudyFileError):
    """A problem told as a sentence after the file's name, where ``key = value: expected``
    does not fit: the file cannot be read, or a section is refused by the code it names
    (an algorithm rejecting its options). Still a :class:`StudyFileError`: callers catch one
    type."""

    def __init__(self, source: str, problem: str, expected: str = "a usable study file") -> None:
        super().__init__(source, "", MISSING, expected, problem)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


class UnreadableStudyFile(StudyFileProblem):
    """The file itself cannot be read or is not TOML, so there is no key to name."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(source, problem, "a readable TOML file")


# --------------------------------------------------------------------------- reading


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; tomllib's message already says the line and column of a syntax error."""
    try:
        if not stat.S_ISREG(path.stat().st_mode) and not path.is_dir():
            # a FIFO or a device would block or never end: nobody means one as a study
            raise UnreadableStudyFile(str(path), "is not a regular file (a pipe or a device?)")
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise UnreadableStudyFile(str(path), f"no such file (in {Path.cwd()})") from None
    except IsADirectoryError:
        raise UnreadableStudyFile(str(path), "is a directory, not a study file") from None
    except OSError as exc:
        raise UnreadableStudyFile(str(path), f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UnreadableStudyFile(str(path), f"is not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UnreadableStudyFile(str(path), f"invalid TOML: {exc}") from None
    except RecursionError:
        raise UnreadableStudyFile(str(path), f"tables or lists nested too deeply (at most {MAX_DEPTH} levels)") from None


def study_file_error(
    problem: Problem, source: str, overrides: Sequence[_overrides.Override]
) -> StudyFileError:
    """The user-facing error; when a ``--set`` wrote the key, the source says so."""
    keys = (problem.key, *problem.involves)
    setters = [o for o in overrides if any(o.touches(key) for key in keys)]
    if setters:
        source = f"{source} (--set {setters[-1].text})"
    key = ".".join(str(part) for part in problem.key)
    return StudyFileError(source, key, problem.value, problem.expected, problem.hint)


# --------------------------------------------------------------------------- resolving


def _check_size_parameter(size: int | str, space: Space, key: Key, least: int) -> None:
    """``[model] ranks = "{n}"`` must name a parameter whose every value is a whole number
    >= ``least``: an int range, a grid or choices of them, or a constant."""
    if isinstance(size, int):
        return
    name = size[1:-1]
    parameter = space.parameters.get(name)
    if isinstance(parameter, Float):
        found = "is a float range"
    else:
        if isinstance(parameter, Int):
            values: list[Any] = [parameter.low]
        elif isinstance(parameter, Categorical):
            values = list(parameter.choices)
        elif isinstance(parameter, Grid):
            values = list(parameter.values_)
        else:
            values = [space.constants[name]]
        bad = [value for value in values if isinstance(value, bool) or not isinstance(value, int) or value < least]
        if not bad:
            return
        found = f"takes the value {bad[0]!r}"
    raise Problem(key, size, f'"{{parameter}}" naming a parameter whose values are integers >= {least}',
                  f"[space] {name} {found}")


def _resolve(source: Path, table: StudyFileTable) -> Study:
    """Apply the rules that tie keys together and fill the defaults that depend on others."""
    study, space = _resolve_study(table.study), _resolve_space(_space_entries(table.space))
    kind, model_table, at = _objective_kind(table)
    model = resolve_model(model_table, set(space.names), at)
    for key, least in (("ranks", 1), ("nodes", 0), ("gpus", 0)):
        _check_size_parameter(getattr(model, key), space, (*at, key), least)
    if model_table.space is not None:
        raise Problem((*at, "space"), model_table.space, "no space here: the objective kind's is [space]")
    auxiliary = [(name, entry) for name, entry in (table.models or {}).items() if name != kind]
    kind_spaces = {name: _resolve_space(entry.space, ("models", name, "space"))
                   for name, entry in auxiliary if entry.space is not None}
    kinds = {name: _auxiliary_kind(name, entry, kind_spaces.get(name)) for name, entry in auxiliary}
    algorithm = _resolve_algorithm(table.algorithm, space, study)
    if algorithm.file is not None and study.budget is None:  # the points file's length, times its repeats
        repeats = algorithm.options.get("repeats", 1)
        study = replace(study, budget=len(algorithm.points) * (repeats if isinstance(repeats, int) and repeats > 0 else 1))
    return Study(
        source=source,
        study=replace(study, kind=kind),
        model=model,
        algorithm=algorithm,
        space=space,
        cache=resolve_cache(table.cache),
        kinds=kinds,
        kind_spaces=kind_spaces,
        pools=_resolve_pools(table.pools, [name for name in (kind, *kinds) if name is not None]),
    )


def _resolve_pools(pools: dict[str, int | float], kinds: list[str]) -> dict[str, int | float]:
    """``[pools]``: each key a kind of the study, each value a count >= 0 or a fraction in (0, 1]."""
    if pools and not kinds:
        raise Problem(("pools",), pools, "no [pools] in a study with one [model]", "pools give workers to the "
                      "kinds of [models.<kind>] tables")
    for name, value in pools.items():
        if name not in kinds:
            raise Problem(("pools", name), value, "a key naming one of the kinds " + ", ".join(kinds),
                          suggest(name, kinds))
        if isinstance(value, bool) or (isinstance(value, int) and value < 0) or (
                isinstance(value, float) and not 0 < value <= 1):
            raise Problem(("pools", name), value, "a worker count >= 0, or a fraction of the workers in (0, 1]")
    return dict(pools)


def _objective_kind(table: StudyFileTable) -> tuple[str | None, ModelTable, Key]:
    """The objective kind's name (None for a [model] study), its table and its key: the
    one ``[study] kind`` names, else the first ``[models.<kind>]``."""
    if (table.model is None) == (not table.models):
        found = "both [model] and [models.<kind>]" if table.model is not None else "neither"
        raise Problem(("model",), MISSING, 'a [model] table with python = "file.py:function", or '
                      "[models.<kind>] tables for a study of several task kinds", f"the file has {found}")
    if not table.models:
        if table.study.kind is not None:
            raise Problem(("study", "kind"), table.study.kind, "no kind in a study with one [model] table",
                          "kinds are the names of [models.<kind>] tables")
        assert table.model is not None
        return None, table.model, ("model",)
    for name in table.models:
        if not _NAME.fullmatch(name):
            raise Problem(("models", name), name, "a kind named with letters, digits, '-', '_' and '.'")
    kind = table.study.kind or next(iter(table.models))
    if kind not in table.models:
        raise Problem(("study", "kind"), kind, "one of the kinds " + ", ".join(table.models),
                      suggest(kind, list(table.models)))
    return kind, table.models[kind], ("models", kind)


def _auxiliary_kind(name: str, table: ModelTable, space: Space | None) -> ModelSection:
    """An auxiliary kind's model: free-form params (any placeholder) unless it declares a
    space of its own. Its ``ranks``, ``nodes`` and ``gpus`` may name a parameter of that
    space; with free-form params, one read from each task's params is checked as it is
    submitted."""
    section = resolve_model(table, None if space is None else set(space.names), ("models", name))
    if space is not None:
        for key, least in (("ranks", 1), ("nodes", 0), ("gpus", 0)):
            _check_size_parameter(getattr(section, key), space, ("models", name, key), least)
    return section


def _resolve_study(table: StudyTable) -> StudySection:
    """Name rules, one direction per objective, and the output directory (default runs/<name>)."""
    if not is_study_name(table.name):
        raise Problem(("study", "name"), table.name, "a name of letters, digits, '-', '_' and '.'")
    objective = _objectives(table.objective)
    return StudySection(
        name=table.name,
        budget=table.budget,
        objective=objective,
        direction=_directions(table.direction, len(objective)),
        output=absolute(table.output or f"runs/{table.name}"),
        optuna_journal=table.optuna_journal,
    )


def _objectives(value: str | list[str]) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or not all(names) or len(set(names)) != len(names):
        expected = "a key name, or a non-empty list of distinct key names"
        raise Problem(("study", "objective"), value, expected)
    taken = [name for name in names if name in TABLE_COLUMNS]
    if taken:
        expected = f"key names other than {', '.join(TABLE_COLUMNS)} (columns of results.csv)"
        raise Problem(("study", "objective"), value, expected, f"rename {taken[0]!r} in the model and here")
    return names


def _directions(value: str | list[str], count: int) -> tuple[str, ...]:
    """A single direction applies to every objective; a list must have one per objective."""
    if isinstance(value, str):
        return (value,) * count
    if len(value) != count:
        raise Problem(
            ("study", "direction"),
            value,
            f"'minimize' or 'maximize', or a list of {count} of them (one per objective)",
            involves=(("study", "objective"),),
        )
    return tuple(value)


def _resolve_algorithm(table: AlgorithmTable, space: Space, study: StudySection) -> AlgorithmSection:
    """Default algorithm: ``grid`` when every parameter lists its values, else ``random``;
    warm-start points checked against the space, an earlier run against the objectives."""
    only_grids = all(isinstance(p, Grid) for p in space.parameters.values())
    name = _algorithm_name(table) or ("grid" if only_grids else "random")
    if (table.file is None) != (name != "points"):
        raise Problem(("algorithm", "file"), table.file if table.file is not None else MISSING,
                      'a file of points with name = "points", and only with it',
                      involves=(("algorithm", "name"),))
    if not space.parameters and samples_space(name):
        found = "no [space]" if not space.constants else "no parameter in [space], only constants"
        raise Problem(("space",), MISSING, f"a [space] with at least one parameter: algorithm {name!r} draws its "
                      "points from it", f"the study has {found}; an algorithm that brings its own points "
                      "(points, eqpy, command, a function of yours) needs none")
    points_file = None if table.file is None else absolute(table.file)
    points = () if points_file is None else _points(points_file, space)
    eqpy = None if table.eqpy is None else absolute(table.eqpy)
    if eqpy is not None and not eqpy.is_file():
        raise Problem(("algorithm", "eqpy"), table.eqpy, "the path of an EQ/Py module (a .py file)", f"no such file: {eqpy}")
    target, _, attribute = name.rpartition(":")
    if target.endswith(".py"):
        file = absolute(target)
        if not file.is_file():
            raise Problem(("algorithm", "name"), name, '"file.py:Name" naming an existing file', f"no such file: {file}")
        name = f"{file}:{attribute}"
    if table.proposers > 1:
        _check_proposers(name, table)
    initial, initial_file = resolve_initial(table.initial, space)
    return AlgorithmSection(
        name=name,
        policy=table.policy,
        backlog=table.backlog,
        batch_size=table.batch_size,
        seed=table.seed,
        options=dict(table.options),
        pruner=table.pruner,
        pruner_options=dict(table.pruner_options),
        initial=initial,
        initial_file=initial_file,
        from_run=resolve_from(table.from_, study.output, study.objective, study.direction),
        file=points_file,
        points=points,
        eqpy=eqpy,
        command=None if table.command is None else tuple(table.command),
        proposers=table.proposers,
    )


def _check_proposers(name: str, table: AlgorithmTable) -> None:
    """Proposals in processes of their own suit an algorithm that decides from its trials
    alone, and not a pruner, which must answer each report at once from the master."""
    if name not in PROPOSE_IN_PROCESSES:
        raise Problem(("algorithm", "proposers"), table.proposers,
                      f"1 with algorithm {name!r}: only {' and '.join(PROPOSE_IN_PROCESSES)} propose in processes "
                      "of their own", involves=(("algorithm", "name"),))
    if table.pruner is not None:
        raise Problem(("algorithm", "proposers"), table.proposers,
                      "1 with a pruner: pruning decides at each report on the master, where the trials are",
                      involves=(("algorithm", "pruner"),))


def _algorithm_name(table: AlgorithmTable) -> str | None:
    """``name``, or what ``eqpy`` or ``command`` make of it; at most one of the three."""
    given = [key for key in ("name", "eqpy", "command") if getattr(table, key) is not None]
    if len(given) > 1:
        raise Problem(("algorithm", given[1]), getattr(table, given[1]),
                      f"no {given[1]} beside {given[0]}: an algorithm is a name, an EQ/Py module or a program",
                      involves=(("algorithm", given[0]),))
    return table.name if given == ["name"] else (given[0] if given else None)


def _points(file: Path, space: Space) -> tuple[dict[str, Any], ...]:
    """The ``points`` algorithm's points: each inside ``[space]`` when it has parameters,
    else free-form (names that can be columns) with the constants added where a line has none."""
    problem = ProposalCheck(space, "points").problem if space.parameters else OpenCheck.problem
    points = []
    for line, row in read_points(file, ("algorithm", "file"), space):
        why = problem(row)
        if why:
            raise Problem(("algorithm", "file"), str(file), "a file of points, each a JSON object of parameter values",
                          f"{file} line {line}: {why}")
        points.append(row if space.parameters else {**space.constants, **row})
    return tuple(points)


def _space_entries(entries: Mapping[str, Any]) -> dict[str, Any]:
    """``[space]``'s entries, with those of the EMEWS parameter file ``from`` names first
    (an entry written in ``[space]`` replaces the file's of the same name)."""
    source = entries.get("from")
    if source is None:
        return dict(entries)
    if not isinstance(source, str):
        raise Problem(("space", "from"), source, "the path of an EMEWS parameter file (a JSON list)")
    file = absolute(source)
    from_file = read_emews_space(file)
    try:
        _resolve_space(from_file)
    except Problem as problem:
        where = ".".join(map(str, problem.key[1:]))
        raise Problem(("space", "from"), source, "an EMEWS parameter file of valid parameters",
                      f"{file}: {where} = {problem.value!r} is not {problem.expected}") from None
    return from_file | {name: entry for name, entry in entries.items() if name != "from"}


# --------------------------------------------------------------------------- the space


def space_from_table(entries: Mapping[str, Any], source: str) -> Space:
    """The :class:`Space` of a ``[space]`` table read from ``source`` (a run's study.toml,
    say), checked as a study file's is."""
    try:
        return _resolve_space(entries)
    except Problem as problem:
        raise study_file_error(problem, source, ()) from None


def _resolve_space(entries: Mapping[str, Any], at: Key = ("space",)) -> Space:
    """Split ``[space]`` (or an auxiliary kind's ``space``, at ``at``) into parameters
    (tables) and constants (anything else), in file order."""
    parameters: dict[str, Parameter] = {}
    constants: dict[str, Any] = {}
    for name, entry in entries.items():
        if not PARAMETER_NAME.fullmatch(name):
            expected = ("a name of letters, digits, '_' and '-' that starts with a letter or '_' "
                        "(it is a {placeholder} in commands, a results column and an HDF5 name)")
            raise Problem((*at, name), entry, expected)
        if isinstance(entry, Mapping):
            parameters[name] = _parameter(name, entry, at)
        elif isinstance(entry, _CONSTANT_TYPES):
            constants[name] = entry
        else:
            expected = "a parameter table or a constant (number, string, boolean or list)"
            raise Problem((*at, name), entry, expected)
    return Space(parameters=parameters, constants=constants)


def _parameter(name: str, entry: Mapping[str, Any], space: Key = ("space",)) -> Parameter:
    """One parameter table: pick its model from ``type``, check its shape, then its rules."""
    at: Key = (*space, name)
    kind = entry.get("type", MISSING)
    if not (isinstance(kind, str) and kind in PARAMETER_TABLES):
        allowed = list(PARAMETER_TABLES)
        hint = suggest(kind, allowed) if isinstance(kind, str) else ""
        expected = "one of " + ", ".join(map(repr, allowed))
        raise Problem(at + ("type",), kind, expected, hint, involves=(at,))
    table = validate(PARAMETER_TABLES[kind], entry, at)
    if isinstance(table, FloatTable):
        return _float(at, table)
    if isinstance(table, IntTable):
        return _int(at, table)
    if isinstance(table, CategoricalTable):
        return Categorical(choices=_distinct(at + ("choices",), table.choices))
    assert isinstance(table, GridTable)
    return Grid(values_=_distinct(at + ("values",), table.values))


def _float(at: Key, table: FloatTable) -> Float:
    if table.low >= table.high:
        raise _broken(at, "high", table.high, f"a number > low ({table.low})", because="low")
    if table.log and table.low <= 0:
        raise _broken(at, "low", table.low, "a number > 0, because log = true", because="log")
    return Float(low=float(table.low), high=float(table.high), log=table.log)


def _int(at: Key, table: IntTable) -> Int:
    if table.low > table.high:
        raise _broken(at, "high", table.high, f"an integer >= low ({table.low})", because="low")
    if table.log and table.low <= 0:
        raise _broken(at, "low", table.low, "an integer > 0, because log = true", because="log")
    if table.log and table.step != 1:
        raise _broken(at, "step", table.step, "1, because log = true", because="log")
    if table.step > table.high - table.low > 0:
        raise _broken(at, "step", table.step, f"at most high - low ({table.high - table.low}): with this "
                      "step low is the only value", because="high")
    return Int(low=table.low, high=table.high, step=table.step, log=table.log)


def _broken(at: Key, key: str, value: object, expected: str, because: str) -> Problem:
    """A rule between two keys of one parameter; ``because`` is the other one (a ``--set`` of
    either is named as the source)."""
    return Problem(at + (key,), value, expected, involves=(at + (because,),))


def _distinct(key: Key, values: list[Any]) -> tuple[Any, ...]:
    """The values as a tuple, refusing repeats (``1`` and ``true`` are different values here)."""
    for index, value in enumerate(values):
        if any(type(value) is type(seen) and value == seen for seen in values[:index]):
            raise Problem(key, values, "a list without repeated values", f"{value!r} appears twice")
    return tuple(values)


def _space_to_dict(space: Space) -> dict[str, Any]:
    """The ``[space]`` table that rebuilds ``space``: parameters first, then constants."""
    entries: dict[str, Any] = {name: _parameter_to_dict(p) for name, p in space.parameters.items()}
    return entries | dict(space.constants)


def _parameter_to_dict(param: Parameter) -> dict[str, Any]:
    """One parameter as its table, with every optional key written out."""
    if isinstance(param, Float):
        return {"type": "float", "low": param.low, "high": param.high, "log": param.log}
    if isinstance(param, Int):
        return {
            "type": "int",
            "low": param.low,
            "high": param.high,
            "step": param.step,
            "log": param.log,
        }
    if isinstance(param, Categorical):
        return {"type": "categorical", "choices": list(param.choices)}
    return {"type": "grid", "values": list(param.values_)}


# --------------------------------------------------------------------------- small helpers
