"""The shape of a study file, as pydantic models, and the translation of pydantic's errors.

These models only check *shape*: which keys exist, their types, simple bounds. Rules that tie
keys together (low < high, one direction per objective, the model file exists) live in
``study.py`` as plain code, where they read as the rules they are.

Each field's ``description`` is the phrase shown to the user after "expected", so a wrong type
and an out-of-range value on the same key read the same way. Nothing outside ``config/`` sees
these models; the public result is the plain dataclasses of ``study.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import MISSING

Key = tuple[str | int, ...]
"""A path into the study file: ``("space", "lr", "low")`` is ``space.lr.low``."""


class Problem(Exception):
    """One thing wrong at one key. The loader adds the source (file, or file plus ``--set``).

    Checks raise this instead of ``StudyFileError`` so they need not know where a value came
    from; ``load_study`` converts it in one place. ``involves`` lists other keys the problem
    depends on (``low`` for a ``high`` that is too small), so a ``--set`` of any of them is
    named as the source.
    """

    def __init__(
        self, key: Key, value: object, expected: str, hint: str = "", involves: tuple[Key, ...] = ()
    ) -> None:
        super().__init__(key, value, expected, hint)
        self.key, self.value, self.expected, self.hint = key, value, expected, hint
        self.involves = involves


class Table(BaseModel):
    """Base of every table: unknown keys are errors, no silent type coercion ("5" is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class StudyTable(Table):
    name: str = Field(max_length=128, description="a name of at most 128 letters, digits, '-', '_' and '.'")
    budget: int | None = Field(None, ge=1, description="an integer >= 1")
    objective: str | list[str] = Field(
        "objective", description="a key name, or a non-empty list of key names"
    )
    direction: Literal["minimize", "maximize"] | list[Literal["minimize", "maximize"]] = Field(
        "minimize", description="'minimize' or 'maximize', or a list of them"
    )
    output: str | None = Field(None, min_length=1, description="a directory path")
    optuna_journal: bool = Field(False, description="true or false")
    kind: str | None = Field(None, min_length=1, description="the name of one of the [models.<kind>] tables")


class ModelTable(Table):
    python: str | None = Field(None, description='"path/to/file.py:function" or "package.module:function"')
    command: list[str] | None = Field(
        None, min_length=1, description="a non-empty list of strings: the program and its arguments"
    )
    env: dict[str, str] = Field(default_factory=dict, description="a table of strings")
    cwd: str | None = Field(None, min_length=1, description="a directory path")
    timeout: str | float | None = Field(
        None, description='a duration such as "30s", "10m", "2h" or "1h30m", or a number of seconds > 0'
    )
    retries: int = Field(0, ge=0, description="an integer >= 0")
    on_error: Literal["record", "continue", "abort"] = Field(
        "record", description="one of 'record', 'continue', 'abort'"
    )
    isolate: bool = Field(False, description="true or false")
    ranks: int | str = Field(1, description='an integer >= 1, or "{parameter}" to take it from each point')
    nodes: int | str = Field(0, description='an integer >= 1, or "{parameter}" to take it from each point')
    gpus: int | str = Field(0, description='an integer >= 0, or "{parameter}" to take it from each point')
    launcher: list[str] | None = Field(
        None, description='a list of strings such as ["srun", "-n", "{ranks}", "--nodelist", "{hosts}"], '
        "or [] when the command starts its ranks itself",
    )
    space: dict[str, Any] | None = Field(
        None, description="an auxiliary kind's own space: parameters and constants, as in [space]"
    )


class AlgorithmTable(Table):
    name: str | None = Field(None, min_length=1, description="an algorithm name")
    policy: Literal["batch", "async", "queue"] = Field(
        "async", description="one of 'batch', 'async', 'queue'"
    )
    backlog: int = Field(8, ge=0, description="an integer >= 0")
    batch_size: int | None = Field(None, ge=1, description="an integer >= 1")
    proposers: int = Field(1, ge=1, le=256, description="an integer from 1 to 256")
    seed: int | None = Field(None, ge=0, description="an integer >= 0")
    options: dict[str, Any] = Field(default_factory=dict, description="a table of options")
    pruner: str | None = Field(None, min_length=1, description="a pruner name such as 'median' or 'hyperband'")
    pruner_options: dict[str, Any] = Field(default_factory=dict, description="a table of options")
    initial: list[dict[str, Any]] | str | None = Field(
        None, description="a list of points ({ name = value, ... }) or the path of a .csv or .jsonl file of them"
    )
    from_: str | None = Field(None, alias="from", min_length=1, description="the output directory of an earlier run")
    file: str | None = Field(None, min_length=1, description="the path of a .jsonl, .txt or .csv file of points")
    eqpy: str | None = Field(None, min_length=1, description="the path of an EQ/Py module (its run() is the algorithm)")
    command: list[str] | None = Field(
        None, min_length=1, description="a non-empty list of strings: the algorithm's program and its arguments"
    )


class CacheTable(Table):
    keep: str = Field("all", description='"all", "none" or "top:K" with K an integer >= 1')
    reuse: bool = Field(False, description="true or false")
    flush_every: str | float | None = Field(
        None, description='a duration such as "30s", "10m", "2h" or "1h30m", or a number of seconds > 0'
    )


class StudyFileTable(Table):
    """The whole file. ``space`` entries are checked one by one (see ``PARAMETER_TABLES``)."""

    study: StudyTable = Field(description='a [study] table with at least name = "..."')
    # None when absent (the default is not validated): not "ModelTable | None", whose
    # errors pydantic would report against the None branch, at "model" instead of its key
    model: ModelTable = Field(None, description='a [model] table with python = "file.py:function"')  # type: ignore[assignment]
    models: dict[str, ModelTable] = Field(
        default_factory=dict, description="[models.<kind>] tables, each a model table like [model]"
    )
    pools: dict[str, int | float] = Field(
        default_factory=dict, description="a table of worker counts (or fractions of the workers) by kind"
    )
    algorithm: AlgorithmTable = Field(default_factory=AlgorithmTable, description="a table")
    cache: CacheTable = Field(default_factory=CacheTable, description="a table")
    space: dict[str, Any] = Field(
        default_factory=dict, description="a [space] table of parameters and constants"
    )
    provenance: dict[str, Any] | None = Field(None, description="a table (written by mexplore)")


class FloatTable(Table):
    type: Literal["float"] = Field(description="'float'")
    low: int | float = Field(description="a number")  # int kept as written, for messages
    high: int | float = Field(description="a number")
    log: bool = Field(False, description="true or false")


class IntTable(Table):
    type: Literal["int"] = Field(description="'int'")
    low: int = Field(description="an integer")
    high: int = Field(description="an integer")
    step: int = Field(1, ge=1, description="an integer >= 1")
    log: bool = Field(False, description="true or false")


class CategoricalTable(Table):
    type: Literal["categorical"] = Field(description="'categorical'")
    choices: list[Any] = Field(min_length=1, description="a non-empty list of choices")


class GridTable(Table):
    type: Literal["grid"] = Field(description="'grid'")
    values: list[Any] = Field(min_length=1, description="a non-empty list of values")


PARAMETER_TABLES: dict[str, type[Table]] = {
    "float": FloatTable,
    "int": IntTable,
    "categorical": CategoricalTable,
    "grid": GridTable,
}

# Used only when a field has no description; every field above has one, so this is a safety net.
_PHRASES = {
    "missing": "a value (this key is required)",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "finite_number": "a finite number",
}

T = TypeVar("T", bound=Table)


def validate(table: type[T], data: Mapping[str, Any], at: Key = ()) -> T:
    """Check ``data`` against ``table``; on failure raise one :class:`Problem` for the first error.

    ``at`` is where ``data`` sits in the file, so keys in the message are full dotted paths.
    """
    try:
        return table.model_validate(data)
    except ValidationError as exc:
        raise _problem(exc, table, data, at) from None


def unknown_key(key: Key, value: object, allowed: list[str]) -> Problem:
    """The problem for a key that does not exist here, with a suggestion when one is close."""
    expected = "one of the keys " + ", ".join(allowed)
    return Problem(key, value, expected, suggest(str(key[-1]), allowed))


def first_repeated(names: Iterable[str]) -> str | None:
    """The first name that appears a second time, or None."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def suggest(word: str, allowed: list[str]) -> str:
    """``did you mean 'x'?`` for the closest allowed word, or "" when none is close."""
    close = difflib.get_close_matches(word, allowed, n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def _problem(
    exc: ValidationError, table: type[Table], data: Mapping[str, Any], at: Key
) -> Problem:
    """Turn pydantic's first error into a Problem phrased from the study file's point of view.

    Unknown keys are reported first: a typo (``nmae``) also makes the real key look missing,
    and the typo is the one worth naming.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc: Key = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        owner = _owner_of(table, loc[:-1])
        return unknown_key(at + loc, error["input"], list(_keys(owner)))
    field_loc, description = _field_of(table, loc)
    expected = description or _PHRASES.get(error["type"], "a valid value")
    if error["type"] == "missing":
        # A table that lacks a required key may itself have been made by a --set.
        parent = at + field_loc[:-1]
        return Problem(at + field_loc, MISSING, expected, involves=(parent,) if parent else ())
    return Problem(at + field_loc, _lookup(data, field_loc), expected)


def _owner_of(table: type[Table], loc: Key) -> type[Table]:
    """The model whose fields are allowed at ``loc`` (the table an unknown key was found in)."""
    for part in loc:
        annotation = _keys(table)[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Table)):
            break
        table = annotation
    return table


def _field_of(table: type[Table], loc: Key) -> tuple[Key, str | None]:
    """Cut ``loc`` at the deepest declared field and return that field's description.

    pydantic's locations go below the key the user wrote (a list index, the name of a union
    member such as ``list[str]``); the user only needs the key, its whole value and what it
    should be.
    """
    for depth, part in enumerate(loc):
        field = _keys(table).get(part) if isinstance(part, str) else None
        if field is None:
            break
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Table)):
            return loc[: depth + 1], field.description
        table = annotation
        if depth == len(loc) - 1:
            return loc, field.description
    return loc, None


def _keys(table: type[Table]) -> dict[str, Any]:
    """The table's fields by the key the user writes: the alias where the key is a Python
    keyword (``from``), else the field's name."""
    return {field.alias or name: field for name, field in table.model_fields.items()}


def _lookup(data: Any, loc: Key) -> object:
    """The value the user wrote at ``loc``, or MISSING."""
    for part in loc:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return MISSING
    return data
