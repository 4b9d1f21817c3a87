"""Find an algorithm by name: a built-in, an installed plug-in, a module path or a file path."""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import Any

from ..algorithm_names import BUILTINS, NEEDS_A_SOURCE
from ..errors import AlgorithmError
from ..importing import load_target

ENTRY_POINT_GROUP = "mexplore.algorithms"
__all__ = ["BUILTINS", "ENTRY_POINT_GROUP", "NEEDS_A_SOURCE", "available", "resolve"]


def available() -> dict[str, str]:
    """Every algorithm usable by a short name, with where it comes from."""
    names = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, ep.value)
    return names


def resolve(name: str) -> Any:
    """The object ``name`` stands for: an :class:`~.base.Algorithm` subclass, or a function
    ``run(queue, space, options)`` for the imperative shape.

    Raises :class:`AlgorithmError` naming ``name`` when it is unknown or fails to import.
    """
    known = available()
    target = known.get(name)
    if target is None and ":" not in name:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise AlgorithmError(
            f"unknown algorithm {name!r}: expected one of {', '.join(sorted(known))}, "
            f"'package.module:Name' or 'file.py:Name'{hint}"
        )
    try:
        return load_target(target or name)
    except Exception as exc:  # the plug-in's own import error, shown with its name
        raise AlgorithmError(f"algorithm {name!r} could not be loaded: {exc}") from exc
