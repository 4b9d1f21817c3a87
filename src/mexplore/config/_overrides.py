"""``--set key=value`` overrides: parse them, and apply them to the raw study data.

Overrides are applied to the parsed TOML *before* validation, so an overridden value goes
through exactly the same checks as one written in the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MISSING, StudyFileError

FORM = "key=value with a dotted key, e.g. study.budget=2000"


@dataclass(frozen=True)
class Override:
    """One ``--set``: where it writes, what, and the text as the user typed it (for errors)."""

    key: tuple[str, ...]
    value: Any
    text: str

    def touches(self, key: tuple[str | int, ...]) -> bool:
        """True when this override wrote ``key`` or a table above or below it."""
        shortest = min(len(key), len(self.key))
        return tuple(key[:shortest]) == self.key[:shortest]


def parse(texts: Sequence[str]) -> list[Override]:
    """Parse every ``key=value``; a malformed one is an error whose source is ``--set``."""
    return [_parse_one(text) for text in texts]


def _parse_one(text: str) -> Override:
    if "=" not in text:
        raise StudyFileError("--set", text, MISSING, FORM)
    raw_key, raw_value = text.split("=", 1)
    key = tuple(part.strip() for part in raw_key.split("."))
    try:
        value = parse_value(raw_value.strip())
    except NotAValue as error:
        raise StudyFileError("--set", raw_key.strip(), raw_value.strip(), "a TOML value", str(error)) from None
    if not all(key):
        raise StudyFileError("--set", raw_key.strip() or "''", value, FORM)
    return Override(key, value, text)


class NotAValue(ValueError):
    """The text starts as a TOML table, list or string but does not parse as one."""


STRUCTURED = ("{", "[", '"', "'")
"""How a TOML table, list or string starts: such text is never meant as plain text."""


def parse_value(text: str) -> Any:
    """A TOML value (``5``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else the text itself.

    The fallback lets ``--set study.name=foo`` work without quoting; ``2024`` stays a number,
    so a string that looks like one needs TOML quotes: ``--set 'study.name="2024"'``. Text
    that starts like a table, list or string but does not parse (``{type="float", low=0``)
    raises :class:`NotAValue` with the reason instead of silently becoming a string.
    """
    try:
        parsed = tomllib.loads("v = " + text)
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        if text.startswith(STRUCTURED):
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise NotAValue(reason) from None
        return text
    return parsed["v"] if list(parsed) == ["v"] else text


def apply(data: dict[str, Any], overrides: Sequence[Override], source: str) -> None:
    """Write each override into ``data`` in order, creating tables on the way as needed.

    Going *through* a value that is not a table (``space.epochs.low`` where ``epochs = 20``)
    is refused rather than silently replacing the value.
    """
    for override in overrides:
        table = data
        for depth, part in enumerate(override.key[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise StudyFileError(
                    f"{source} (--set {override.text})",
                    ".".join(override.key[: depth + 1]),
                    table,
                    f"a table, to set {override.key[depth + 1]!r} in it",
                )
        table[override.key[-1]] = override.value
