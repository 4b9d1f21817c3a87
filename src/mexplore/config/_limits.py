"""What a study or site file may hold beyond its shape: values every later step can carry.

TOML integers are 64-bit (the spec says a parser must reject larger ones, but Python's
accepts them), a string may hold a NUL character (``"\\u0000"``) that no command line or
file name can, and nesting has no limit in the syntax. Each of these got through once and
broke a run far from the file: a budget of 10**23 ran without end, a NUL in a command
failed every task in ``Popen``, a constant nested 600 deep gave a 3,000-line
RecursionError. One walk over the parsed data refuses them at the key where they are,
before anything starts.
"""

from __future__ import annotations

from typing import Any

from ._schema import Key, Problem

INT64 = (-(1 << 63), (1 << 63) - 1)
"""TOML's integer range."""
DATA = {("space",), ("algorithm",)}
"""Tables whose text values are data for the model or the algorithm, where a NUL is a value
like any other (a Python model takes it; a command model's task fails with the reason)."""
MAX_DEPTH = 32
"""Tables and lists nested deeper than this are refused: no study needs it, and the JSON
and HDF5 writers downstream recurse once per level."""


def check_values(data: Any, at: Key = ()) -> None:
    """Raise :class:`Problem` at the first integer outside TOML's range, NUL character (in a
    key, or a string outside the :data:`DATA` tables) or nesting deeper than
    :data:`MAX_DEPTH` in ``data``."""
    stack: list[tuple[Key, Any]] = [(at, data)]
    while stack:  # a loop, not recursion: the data may be deeper than Python's stack
        key, value = stack.pop()
        if len(key) - len(at) > MAX_DEPTH:
            raise Problem(key, "(nested further)", f"at most {MAX_DEPTH} levels of tables and lists")
        if isinstance(value, dict):
            for name, item in value.items():
                if "\0" in name:
                    raise Problem(key + (name,), name, "a key without NUL characters")
                stack.append((key + (name,), item))
        elif isinstance(value, list):
            stack.extend((key + (index,), item) for index, item in enumerate(value))
        elif isinstance(value, str) and "\0" in value and key[:1] not in DATA:
            raise Problem(key, value, "text without NUL characters (no program argument or file name can hold one)")
        elif isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            raise Problem(key, value, f"an integer within TOML's 64-bit range ({INT64[0]} to {INT64[1]})")
