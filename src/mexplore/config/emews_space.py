"""``[space] from = "ga_params.json"``: a space written in EMEWS's GA format, read once.

CANDLE Supervisor's GA workflow and EMEWS's GA templates describe their hyperparameters as
a JSON list of ``{"name", "type", ...}`` objects (``ga_utils.create_parameters``). A study
that runs such an algorithm reads the same file, so the space is written once. The types map:

=============  ======================================  =================================
EMEWS type     keys                                    ``[space]`` entry
=============  ======================================  =================================
``int``        ``lower``, ``upper``                    ``type = "int"``
``float``      ``lower``, ``upper``                    ``type = "float"``
``categorical````values``                              ``type = "categorical"``
``ordered``    ``values`` (an order the GA mutates in) ``type = "grid"`` (values in order)
``logical``    none                                    ``categorical``, ``[false, true]``
``constant``   ``value``                               a constant
=============  ======================================  =================================

``sigma`` and ``element_type`` are the GA's own (mutation width, parsing) and are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._limits import check_values
from ._schema import Key, Problem, first_repeated

AT: Key = ("space", "from")
_NEEDS = {"int": ("lower", "upper"), "float": ("lower", "upper"), "categorical": ("values",),
          "ordered": ("values",), "logical": (), "constant": ("value",)}


def read_emews_space(file: Path) -> dict[str, Any]:
    """The ``[space]`` entries the EMEWS GA parameter file ``file`` describes, in its order."""
    try:
        items = json.loads(file.read_text())
    except OSError as exc:
        raise Problem(AT, str(file), "a readable EMEWS parameter file (a JSON list)", f"{file}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Problem(AT, str(file), "an EMEWS parameter file: a JSON list of {\"name\", \"type\", ...} objects",
                      f"{file}: {exc}") from None
    if not isinstance(items, list) or not items:
        raise Problem(AT, str(file), "an EMEWS parameter file: a non-empty JSON list of {\"name\", \"type\", ...} objects")
    pairs = [_entry(file, index, item) for index, item in enumerate(items)]
    names = [name for name, _ in pairs]
    repeated = first_repeated(names)
    if repeated is not None:
        raise Problem(AT, str(file), "an EMEWS parameter file naming each parameter once", f"{file}: {repeated!r} twice")
    entries = dict(pairs)
    try:
        check_values(entries, ("space",))
    except Problem as problem:
        raise Problem(AT, str(file), "an EMEWS parameter file", f"{file}: {'.'.join(map(str, problem.key))} = "
                      f"{problem.value!r} is not {problem.expected}") from None
    return entries


def _entry(file: Path, index: int, item: Any) -> tuple[str, Any]:
    where = f"{file} item {index}"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise Problem(AT, str(file), "a list of objects, each with a \"name\"", f"{where} is {item!r}")
    name, kind = item["name"], item.get("type")
    if kind not in _NEEDS:
        raise Problem(AT, str(file), "parameters of type " + ", ".join(_NEEDS),
                      f"{where} ({name}) has type {kind!r}")
    missing = [key for key in _NEEDS[kind] if key not in item]
    if missing:
        raise Problem(AT, str(file), f"a {kind} parameter with {', '.join(_NEEDS[kind])}",
                      f"{where} ({name}) has no {missing[0]!r}")
    if kind in ("int", "float"):
        number = int if kind == "int" else float  # as ga_utils reads them
        try:
            return name, {"type": kind, "low": number(item["lower"]), "high": number(item["upper"])}
        except (TypeError, ValueError):
            raise Problem(AT, str(file), f"a {kind} parameter whose lower and upper are numbers",
                          f"{where} ({name}) has lower = {item['lower']!r}, upper = {item['upper']!r}") from None
    if kind == "categorical":
        return name, {"type": "categorical", "choices": item["values"]}
    if kind == "ordered":
        return name, {"type": "grid", "values": item["values"]}
    if kind == "logical":
        return name, {"type": "categorical", "choices": [False, True]}
    return name, item["value"]
